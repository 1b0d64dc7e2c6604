#!/usr/bin/env bash
# The whole fasttracemalloc test suite (the README's test command; .ci/run calls it).
#
#   1. engine (core/): cmake + ctest in Release, ASan+UBSan and TSan builds
#      (the stress tests shrink themselves under FTM_STRESS_SCALE=sanitizer);
#   2. the interpreters: tests/interpreters/setup.sh provisions 3.13t
#      (built from Debian's python3.13 source tarball) and a Debian forky
#      chroot with 3.14 and 3.15, reusing both when already there;
#   3. the Python package on every supported interpreter -- pyenv's 3.11,
#      Debian's 3.11, pyenv's 3.12 and 3.13, 3.13t, then 3.14 and 3.15 in
#      the chroot: built and installed into fresh venvs, its pytest suite,
#      that interpreter's own test_tracemalloc against the engine, and a
#      pass under LD_PRELOAD=libjemalloc.so.2 once per allocator family
#      (tests/python/run_all.sh);
#   4. the overhead benchmark suite in --quick mode as a smoke test (no timing
#      is asserted anywhere).
#   After 3 on the host: the package again with the extension and engine
#   built under ASan+UBSan (tests/python/run_sanitized.sh).
#   Between 1 and 2: atheris fuzzing of what users hand it (snapshot files,
#   CLI arguments, switch values), 20 s per target (tests/fuzz/run.sh).
#
# Needs the Debian packages that .ci/run installs (see README "Install").
# FTM_SKIP_SANITIZERS=1 or FTM_SKIP_BENCH=1 skip steps for quick local runs;
# CI never sets them.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)

step() { printf '\n=== %s ===\n' "$*"; }

engine_suite() {
    local preset=$1
    step "engine: $preset build + ctest"
    cmake --preset "$preset" >/dev/null
    cmake --build --preset "$preset" -j"$jobs"
    ctest --preset "$preset" -j1
}

engine_suite release
step "engine: mutation testing, the fixed CI subset (tests/mutation/run.sh; --all for every fault)"
bash "$root/tests/mutation/run.sh"
if [ "${FTM_SKIP_SANITIZERS:-0}" != 1 ]; then
    engine_suite asan
    engine_suite tsan
fi

step "fuzzing, bounded: the safe snapshot loader, the CLI's arguments, the switch's values (tests/fuzz/run.sh; longer on demand)"
bash "$root/tests/fuzz/run.sh" "${FTM_FUZZ_SECONDS:-20}"

step "interpreters: 3.13t build and the forky chroot (3.14, 3.15), reused when present"
bash "$root/tests/interpreters/setup.sh"
host_interpreters=$(bash "$root/tests/interpreters/list.sh" host)
echo "host interpreters: $host_interpreters"

step "python package on 3.11 (pyenv, Debian), 3.12, 3.13, 3.13t: pytest, CPython suite, jemalloc preload"
FTM_PY_INTERPRETERS="$host_interpreters" bash "$root/tests/python/run_all.sh"

step "python package under ASan+UBSan (pyenv 3.11 with PYTHONMALLOC=malloc, 3.13t): pytest and CPython's test_tracemalloc"
bash "$root/tests/python/run_sanitized.sh"

step "python package on 3.14 and 3.15 (forky chroot): pytest, CPython suite, jemalloc preload"
FTM_PY_INTERPRETERS="$(bash "$root/tests/interpreters/list.sh" forky)" \
    bash "$root/tests/interpreters/in_forky.sh" bash tests/python/run_all.sh

if [ "${FTM_SKIP_BENCH:-0}" != 1 ]; then
    step "overhead benchmark suite: its own unit tests, then a --quick smoke run"
    python3 -m pytest -q "$root/bench/overhead/test_overhead.py"
    bash "$root/bench/run_overhead.sh" --quick
fi

step "all tests passed"
