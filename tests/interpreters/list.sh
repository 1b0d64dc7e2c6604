#!/usr/bin/env bash
# tests/interpreters/list.sh host|forky -- the interpreters the test suite
# runs on, one path each, space-separated; fails (naming what is missing)
# unless every supported version is there, so a machine that lost one
# cannot pass by testing fewer.
#
#   host   pyenv's 3.11.x, Debian's /usr/bin/python3 (3.11), pyenv's 3.12.x
#          and 3.13.x, and the 3.13t that setup.sh builds
#   forky  /usr/bin/python3.14 and /usr/bin/python3.15 inside the chroot
#          (paths as seen from inside it)
set -euo pipefail
ROOT=${FTM_INTERP_ROOT:-/var/cache/fasttracemalloc}
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
newest() { ls -d $1 2>/dev/null | sort -V | tail -n1; }
missing=()
out=()
want() { # want LABEL PATH
    if [ -n "$2" ] && [ -x "$2" ]; then out+=("$2"); else missing+=("$1"); fi
}
case ${1:-} in
    host)
        want "pyenv 3.11" "$(newest "$pyenv_root/versions/3.11.*/bin/python3")"
        want "Debian 3.11 (/usr/bin/python3)" /usr/bin/python3
        want "pyenv 3.12" "$(newest "$pyenv_root/versions/3.12.*/bin/python3")"
        want "pyenv 3.13" "$(newest "$pyenv_root/versions/3.13.*/bin/python3")"
        want "3.13t (tests/interpreters/setup.sh py313t)" "$ROOT/cpython-3.13t/bin/python3.13t"
        ;;
    forky)
        want "forky chroot 3.14 (setup.sh forky)" "$ROOT/forky/usr/bin/python3.14"
        want "forky chroot 3.15 (setup.sh forky)" "$ROOT/forky/usr/bin/python3.15"
        out=("${out[@]/#$ROOT\/forky/}")
        ;;
    *) echo "usage: $0 host|forky" >&2; exit 2 ;;
esac
if [ ${#missing[@]} -gt 0 ]; then
    printf 'missing interpreter: %s\n' "${missing[@]}" >&2
    exit 1
fi
echo "${out[*]}"
