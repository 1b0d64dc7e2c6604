#!/usr/bin/env bash
# The whole fasttracemalloc test suite (the README's test command; .ci/run calls it).
#
#   1. engine (core/): cmake + ctest in Release, ASan+UBSan and TSan builds
#      (the stress tests shrink themselves under FTM_STRESS_SCALE=sanitizer);
#   2. the Python package: built and installed into fresh venvs for pyenv's
#      python3 and Debian's /usr/bin/python3, its pytest suite, CPython's own
#      test_tracemalloc against the engine, and a pass under
#      LD_PRELOAD=libjemalloc.so.2 (tests/python/run_all.sh);
#   3. the overhead benchmark suite in --quick mode as a smoke test (no timing
#      is asserted anywhere).
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
if [ "${FTM_SKIP_SANITIZERS:-0}" != 1 ]; then
    engine_suite asan
    engine_suite tsan
fi

step "python package: both interpreters, CPython suite, jemalloc preload"
bash "$root/tests/python/run_all.sh"

if [ "${FTM_SKIP_BENCH:-0}" != 1 ]; then
    step "overhead benchmark suite: its own unit tests, then a --quick smoke run"
    python3 -m pytest -q "$root/bench/overhead/test_overhead.py"
    bash "$root/bench/run_overhead.sh" --quick
fi

step "all tests passed"
