#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS] -- fuzz what users hand fasttracemalloc
# (issue 11, item 4) with atheris (libFuzzer for Python, from PyPI):
#
#   fuzz_safeload.py  snapshot files: the safe loader and what the CLI does
#                     with what it loads (seeds: real dumps, ours and the
#                     builtin's);
#   fuzz_cli.py       the argument lists of report/compare/export/flamegraph;
#   fuzz_switch.py    every FASTTRACEMALLOC / -X fasttracemalloc value,
#                     against the builtin's parsing rule.
#
# SECONDS per target (default 60); CI runs a bounded 20 s each from
# tests/run_all.sh, longer runs are on demand.  A finding (an exception the
# property does not allow, a crash, a hang past -timeout) stops the run
# with libFuzzer's report and the input saved under build/fuzz/<target>/;
# the script then exits non-zero.  Corpora persist in build/fuzz/ between
# runs.  The venv is build/pyvenv-fuzz (pyenv's python3, or $FTM_FUZZ_PYTHON),
# with atheris pinned below and the package installed from this tree.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=${1:-60}
py=${FTM_FUZZ_PYTHON:-$(command -v python3)}
venv=$root/build/pyvenv-fuzz
out=$root/build/fuzz
ATHERIS=atheris==3.0.0

[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$ATHERIS"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$root"

mkdir -p "$out"/{safeload,cli,switch}/corpus
cp "$here"/regressions/safeload-* "$out/safeload/corpus/"
# Seeds: a builtin dump, the same snapshot dumped by fasttracemalloc, and
# pickle.dumps of ours (the copyreg form).
"$venv/bin/python" - "$out/safeload/corpus" <<'PY'
import os, pickle, sys, tracemalloc
from fasttracemalloc._snapshot import Snapshot
corpus = sys.argv[1]
tracemalloc.start(4)
keep = [bytearray(100 + i) for i in range(8)]
snap = tracemalloc.take_snapshot()
tracemalloc.stop()
snap.dump(os.path.join(corpus, "seed-builtin"))
ours = Snapshot(snap.traces._traces, snap.traceback_limit)
ours.dump(os.path.join(corpus, "seed-ours"))
with open(os.path.join(corpus, "seed-pickled"), "wb") as fp:
    fp.write(pickle.dumps(ours))
PY
export FTM_FUZZ_GOOD_SNAPSHOT="$out/safeload/corpus/seed-builtin"

status=0
for target in safeload cli switch; do
    printf '\n=== fuzz: %s, %s s ===\n' "$target" "$seconds"
    log=$out/$target/last.log
    rc=0
    (cd "$out/$target" &&
        "$venv/bin/python" "$here/fuzz_$target.py" \
            -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix="$out/$target/" \
            "$out/$target/corpus") >"$log" 2>&1 || rc=$?
    # The summary, or the whole report when libFuzzer stopped on a finding.
    if [ "$rc" = 0 ]; then
        grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)" "$log" || true
        echo "corpus: $(ls "$out/$target/corpus" | wc -l) inputs"
    else
        grep -v -E "^(#[0-9]+|INFO:|WARNING: It looks like)" "$log" | tail -40
        echo "FINDING in $target (exit $rc); input saved under $out/$target/"
        status=1
    fi
done
exit $status
