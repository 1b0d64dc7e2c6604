"""Harness of the differential test (test_differential.py).

    python diff_harness.py (builtin|fasttracemalloc) NFRAME WORKLOAD

Runs diff_workloads.w_WORKLOAD traced by the named tracer at NFRAME frames
in this fresh process, keeps what the workload returns alive, takes a
snapshot, drops the tracers' and this harness's own traces, and prints
statistics('traceback') as JSON: {"limit": N, "stats": [[frames (oldest
first), size, count], ...] sorted}.

Determinism: run with PYTHONHASHSEED=0; the cyclic GC is collected (which
also empties CPython's free lists) and disabled before tracing starts;
every module the workloads use is imported before tracing starts.
"""

import gc
import json
import os
import sys
import threading
import tracemalloc

import diff_workloads

HERE = os.path.abspath(__file__)
WORKLOADS = {name[2:]: getattr(diff_workloads, name)
             for name in dir(diff_workloads) if name.startswith("w_")}


def main(tracer, nframe, workload):
    if tracer == "builtin":
        mod = tracemalloc
    else:
        import fasttracemalloc as mod
        mod.Snapshot, mod.take_snapshot, mod.Filter   # load lazy parts
        tracer_dir = os.path.dirname(mod.__file__)
    fn = WORKLOADS[workload]
    gc.collect()
    gc.disable()
    mod.start(nframe)
    kept = fn()
    snapshot = mod.take_snapshot()
    mod.stop()
    excluded = [tracemalloc.Filter(False, HERE),
                tracemalloc.Filter(False, tracemalloc.__file__),
                # thread bookkeeping (locks, _active...) varies with timing
                tracemalloc.Filter(False, threading.__file__)]
    if tracer != "builtin":
        excluded.append(tracemalloc.Filter(False, tracer_dir + os.sep + "*"))
    snapshot = snapshot.filter_traces(excluded)
    stats = sorted([[list(map(list, stat.traceback._frames)), stat.size,
                     stat.count] for stat in snapshot.statistics("traceback")])
    json.dump({"limit": snapshot.traceback_limit, "stats": stats},
              sys.stdout)
    del kept


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
