#!/usr/bin/env bash
# tests/interpreters/in_forky.sh -- run a command inside the forky chroot
# that holds CPython 3.14 and 3.15 (made by setup.sh), with this repository
# visible at the same absolute path as on the host.
#
#   in_forky.sh COMMAND [ARGS...]       e.g. in_forky.sh python3.14 -V
#
# Mounts /proc, /dev (+pts, shm) and the repository into the chroot for the
# duration of the command and always unmounts them (trap), so nothing stays
# mounted after a failure.  Copies the host's CA bundle (the file PIP_CERT
# or SSL_CERT_FILE names) into the chroot, so pip inside reaches PyPI.
# The command runs with a clean environment: PATH, HOME=/root, LANG, the
# certificate variables and every FTM_* variable of the caller.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
ROOT=${FTM_INTERP_ROOT:-/var/cache/fasttracemalloc}
ch="$ROOT/forky"
[ -f "$ch/.ftm-stamp" ] || { echo "no forky chroot at $ch: run tests/interpreters/setup.sh forky" >&2; exit 2; }
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

mounted=()
cleanup() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        $SUDO umount -l "${mounted[$i]}" 2>/dev/null || true
    done
}
trap cleanup EXIT
mnt() { # mnt TARGET ARGS...: mount unless already mounted, remember it
    local target=$1
    shift
    $SUDO mkdir -p "$target"
    if ! mountpoint -q "$target"; then
        $SUDO mount "$@" "$target"
        mounted+=("$target")
    fi
}
mnt "$ch/proc" -t proc proc
mnt "$ch/dev" --bind /dev
mnt "$ch/dev/pts" --bind /dev/pts
mnt "$ch/dev/shm" -t tmpfs shm
mnt "$ch$root" --bind "$root"
$SUDO mkdir -p "$ch/tmp" && $SUDO chmod 1777 "$ch/tmp"

cert=${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
envs=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
      DEBIAN_FRONTEND=noninteractive PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1)
if [ -f "$cert" ]; then
    $SUDO cp "$cert" "$ch/etc/ftm-host-ca.crt"
    envs+=(PIP_CERT=/etc/ftm-host-ca.crt SSL_CERT_FILE=/etc/ftm-host-ca.crt REQUESTS_CA_BUNDLE=/etc/ftm-host-ca.crt)
fi
while IFS='=' read -r name value; do
    case $name in FTM_*) envs+=("$name=$value") ;; esac
done < <(env)
$SUDO chroot "$ch" /usr/bin/env -i "${envs[@]}" sh -c 'cd "$0" && exec "$@"' "$root" "$@"
