#!/usr/bin/env bash
# The Python half of the fasttracemalloc test suite (tests/run_all.sh calls it).
#
# For each interpreter, builds the package with pip into a FRESH venv under
# build/pyvenv-<source>-<version>, then runs:
#   1. pytest tests/python (API, fast Snapshot, install(), the start-up
#      switch, `run`, differential vs that interpreter's builtin, threads,
#      and that interpreter's own test_tracemalloc through its regrtest);
#   2. the CPython suite runner on its own, so its verdict is in the log;
#   3. free-threaded interpreters only: the threaded and differential tests
#      again with exact sessions that run no merger thread
#      (FASTTRACEMALLOC_TEST_MERGER=inline, tests/python/conftest.py);
#   4. pytest again with LD_PRELOAD=libjemalloc.so.2, on one interpreter
#      of each allocator family only (see jemalloc_pass below).
# numpy (test_capi.py: array buffers tracked through the C API) is installed
# into each venv from a binary wheel only; where no wheel exists for the
# interpreter (or no index is reachable, e.g. in the chroot) the script says
# so and test_capi.py skips its numpy tests with that reason (pytest -rs
# prints it).
# Interpreters from pyenv or a build of ours build with `pip install .`
# (isolated build: pip fetches scikit-build-core); Debian's (/usr/bin, on
# the host or in the forky chroot) first install the build requirements,
# then build offline-style with `pip install --no-index
# --no-build-isolation .`, so both documented install paths are exercised.
#
# Default interpreters (host): pyenv's 3.11 (the `python3` on PATH),
# Debian's /usr/bin/python3 (3.11.2), pyenv's 3.12 and 3.13, and the
# free-threaded 3.13t that tests/interpreters/setup.sh builds, each once and
# only if present -- tests/run_all.sh provisions them first and checks that
# all are there.  3.14 and 3.15 run in the forky chroot (tests/run_all.sh
# calls this script through tests/interpreters/in_forky.sh).
#
# Environment: FTM_PY_INTERPRETERS="python3 /usr/bin/python3" to choose
# interpreters; FTM_SKIP_JEMALLOC=1 skips step 4 (CI never sets it);
# FTM_JEMALLOC_ALL=1 runs step 4 on every interpreter.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
unset FASTTRACEMALLOC FASTTRACEMALLOC_BACKEND PYTHONTRACEMALLOC PYTHONPATH || true
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
interp_root=${FTM_INTERP_ROOT:-/var/cache/fasttracemalloc}
default_interpreters() {
    local found="" cand real seen=""
    for cand in "$(command -v python3 || true)" \
                "$pyenv_root"/versions/3.11.*/bin/python3 \
                /usr/bin/python3 \
                "$pyenv_root"/versions/3.12.*/bin/python3 \
                "$pyenv_root"/versions/3.13.*/bin/python3 \
                "$interp_root"/cpython-3.13t/bin/python3.13t; do
        [ -n "$cand" ] && [ -x "$cand" ] || continue
        real=$("$cand" -c 'import sys; print(sys.executable if (3, 11) <= sys.version_info[:2] <= (3, 15) else "")' 2>/dev/null) || continue
        [ -n "$real" ] || continue
        real=$(readlink -f "$real")
        case " $seen " in *" $real "*) continue ;; esac
        seen="$seen $real"
        found="$found $cand"
    done
    echo "$found"
}
interpreters=${FTM_PY_INTERPRETERS:-$(default_interpreters)}
echo "python interpreters under test:$interpreters"
jemalloc=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2

step() { printf '\n=== python: %s ===\n' "$*"; }

# Step 3 re-runs the whole suite with the engine keeping its memory in a
# private jemalloc arena (mallocx found at run time, see README).  What it
# exercises depends on the allocator family, not on the patch release, so
# by default it runs once per family: pyenv's 3.11 (GIL, pymalloc over
# glibc), the free-threaded build (mimalloc per-thread heaps) and 3.14
# (tagged stack refs, RAW still on malloc).  The other four interpreters
# gave identical verdicts in every CI run up to 2026-12-07 and cost about
# 3 minutes each.
jemalloc_pass() { # $1 = name (pyenv/debian/built/other), $2 = version
    [ "${FTM_JEMALLOC_ALL:-0}" = 1 ] && return 0
    case "$1:$2" in
        pyenv:3.11.*|*:*t|*:3.14.*) return 0 ;;
    esac
    return 1
}

for py in $interpreters; do
    exe=$(command -v "$py") || { echo "interpreter not found: $py" >&2; exit 1; }
    # 3.13.15t for a free-threaded build
    version=$("$exe" -c 'import sys, sysconfig; print("%d.%d.%d" % sys.version_info[:3] + ("t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""))')
    real=$("$exe" -c 'import sys; print(sys.executable)')
    case "$real" in
        /usr/bin/*) name=debian ;;
        *.pyenv*) name=pyenv ;;
        "$interp_root"/*) name=built ;;
        *) name=other ;;
    esac
    venv="$root/build/pyvenv-$name-$version"
    # Free-threaded builds (3.13t) run with the GIL disabled: the extension
    # declares Py_MOD_GIL_NOT_USED, and test_freethreaded.py checks that the
    # GIL stays off after the import.  Never inherit a PYTHON_GIL setting.
    unset PYTHON_GIL || true
    step "$exe ($version): fresh venv $venv"
    rm -rf "$venv"
    "$exe" -m venv "$venv"
    vpy="$venv/bin/python"
    "$vpy" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    if [ "$name" = debian ]; then
        step "$version: build requirements, then offline pip install --no-index --no-build-isolation ."
        "$vpy" -m pip install -q "scikit-build-core>=0.8" pytest
        command -v cmake >/dev/null || "$vpy" -m pip install -q cmake ninja
        # --no-index: nothing may be fetched -- the air-gapped install path
        "$vpy" -m pip install -q --no-index --no-build-isolation "$root"
    else
        step "$version: pip install . (isolated build)"
        "$vpy" -m pip install -q pytest
        "$vpy" -m pip install -q "$root"
    fi
    # numpy for test_capi.py: a wheel or nothing (a source build takes many
    # minutes on this machine and proves nothing about fasttracemalloc).
    if "$vpy" -m pip install -q --only-binary=:all: numpy >/dev/null 2>&1; then
        echo "numpy $("$vpy" -c 'import numpy; print(numpy.__version__)') installed"
    else
        echo "numpy: no binary wheel installable for $version here;" \
             "test_capi.py skips its numpy tests (reason shown by pytest -rs)"
    fi
    "$vpy" -c 'import fasttracemalloc, fasttracemalloc._backend as b, sysconfig, os
assert b.name == "engine", b.name
site = sysconfig.get_paths()["platlib"]
assert fasttracemalloc.__file__.startswith(site), fasttracemalloc.__file__
assert os.path.exists(os.path.join(site, "fasttracemalloc_switch.pth"))
print("installed:", os.path.dirname(fasttracemalloc.__file__))'

    # Run from a scratch directory so the source tree is never imported.
    work=$(mktemp -d)
    step "$version: pytest"
    (cd "$work" && "$vpy" -m pytest -q -rs -p no:cacheprovider "$here")
    step "$version: CPython's test_tracemalloc on the engine"
    (cd "$work" && "$vpy" "$here/run_cpython_suite.py" | tail -n 12)
    if [ "${version%t}" != "$version" ]; then
        # Free-threaded: the parallel tests again with exact sessions that
        # run no merger thread (fasttracemalloc.set_merger_thread(False):
        # the producers whose rings fill up do the merging).
        step "$version: threaded tests without a merger thread (FASTTRACEMALLOC_TEST_MERGER=inline)"
        (cd "$work" && FASTTRACEMALLOC_TEST_MERGER=inline "$vpy" -m pytest -q -rs -p no:cacheprovider \
            "$here/test_merger.py" "$here/test_freethreaded.py" \
            "$here/test_threads.py" "$here/test_differential.py")
    fi
    if [ "${FTM_SKIP_JEMALLOC:-0}" = 1 ]; then
        step "$version: jemalloc pass skipped (FTM_SKIP_JEMALLOC=1)"
    elif ! jemalloc_pass "$name" "$version"; then
        step "$version: jemalloc pass not repeated for this allocator family (FTM_JEMALLOC_ALL=1 runs it)"
    else
        step "$version: pytest under LD_PRELOAD=$jemalloc"
        [ -e "$jemalloc" ] || { echo "missing $jemalloc (apt-get install libjemalloc2)" >&2; exit 1; }
        (cd "$work" && LD_PRELOAD="$jemalloc" "$vpy" -m pytest -q -rs -p no:cacheprovider "$here")
    fi
    rm -rf "$work"
done
step "all Python tests passed"
