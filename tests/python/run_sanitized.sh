#!/usr/bin/env bash
# The Python side under AddressSanitizer + UBSan (issue 11, item 6).
#
#   tests/python/run_sanitized.sh [PYTHON ...]
#
# For each interpreter (default: pyenv's 3.11 -- the `python3` on PATH --
# and the free-threaded 3.13t that tests/interpreters/setup.sh builds, when
# present), builds the package with the extension AND the engine compiled
# with -fsanitize=address,undefined (scikit-build-core: FTM_SANITIZE=address,
# RelWithDebInfo, not stripped) into build/pyvenv-asan-<version>, then runs
# with the ASan/UBSan runtimes preloaded (the interpreter itself is not
# instrumented) and PYTHONMALLOC=malloc, so every Python object lives in a
# malloc block ASan watches (not on free-threaded builds, which require
# mimalloc):
#   1. the pytest suite (tests/python; its child interpreters inherit the
#      preload, so the switch, `run` and the differential tests are covered);
#   2. that interpreter's own test_tracemalloc through regrtest
#      (run_cpython_suite.py).
# Any ASan/UBSan report aborts the process (abort_on_error, halt_on_error),
# which fails the test that ran it.  Leak checking is off: the interpreter
# itself does not free everything at exit.
# Not here: ThreadSanitizer over the Python side.  TSan needs the whole
# process instrumented; with an uninstrumented interpreter it cannot see
# the GIL's or the free-threaded runtime's synchronisation and reports
# races that are not there.  The engine's concurrency runs under TSan in the
# engine suite (ctest --preset tsan), including the stress oracle.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
unset FASTTRACEMALLOC PYTHONTRACEMALLOC PYTHONPATH || true
interp_root=${FTM_INTERP_ROOT:-/var/cache/fasttracemalloc}
if [ $# -gt 0 ]; then
    interpreters=("$@")
else
    interpreters=("$(command -v python3)")
    [ -x "$interp_root/cpython-3.13t/bin/python3.13t" ] &&
        interpreters+=("$interp_root/cpython-3.13t/bin/python3.13t")
fi
asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
[ -f "$asan" ] && [ -f "$ubsan" ] || { echo "no libasan/libubsan from gcc" >&2; exit 2; }

for py in "${interpreters[@]}"; do
    ver=$("$py" -c 'import sys, sysconfig; print("%d.%d.%d%s" % (sys.version_info[:3] + ("t" if sysconfig.get_config_var("Py_GIL_DISABLED") else "",)))')
    venv=$root/build/pyvenv-asan-$ver
    printf '\n=== sanitized (ASan+UBSan): %s (%s) ===\n' "$py" "$ver"
    rm -rf "$venv"
    "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check pytest 2>&1 | grep -v "^WARNING: Location" || true
    "$venv/bin/python" -m pip install -q --disable-pip-version-check \
        --config-settings=cmake.define.FTM_SANITIZE=address \
        --config-settings=cmake.build-type=RelWithDebInfo \
        --config-settings=install.strip=false "$root"
    so=$(ls "$venv"/lib/python*/site-packages/fasttracemalloc/_fasttracemalloc*.so)
    ldd "$so" | grep libasan >/dev/null || { echo "$so is not built with ASan" >&2; exit 1; }
    (
        cd "$here"
        export LD_PRELOAD="$asan $ubsan" \
            ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
            UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
        # Free-threaded builds refuse PYTHONMALLOC=malloc (mimalloc is
        # required); ASan then sees the RAW domain's and the engine's
        # blocks only.
        case $ver in *t) ;; *) export PYTHONMALLOC=malloc ;; esac
        "$venv/bin/python" -m pytest -q -p no:cacheprovider .
        "$venv/bin/python" run_cpython_suite.py
    )
done
printf '\n=== sanitized Python side: all passed ===\n'
