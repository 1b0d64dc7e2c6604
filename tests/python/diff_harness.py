"""Harness of the differential test (test_differential.py).

    python diff_harness.py (builtin|fasttracemalloc|fasttracemalloc-threads) NFRAME WORKLOAD

Runs diff_workloads.w_WORKLOAD traced by the named tracer at NFRAME frames
in this fresh process, keeps what the workload returns alive, takes a
snapshot, drops the tracers' and this harness's own traces, and prints
statistics('traceback') as JSON: {"limit": N, "stats": [[frames (oldest
first), size, count], ...] sorted}.  fasttracemalloc-threads: the same
with per-thread attribution on and the snapshot from take_thread_snapshot()
(test_threads_attribution.py: attribution must not change the answers).

Determinism: run with PYTHONHASHSEED=0; the cyclic GC is collected (which
also empties CPython's free lists) and disabled before tracing starts;
every module the workloads use is imported before tracing starts.

Free lists: on 3.11 an object popped from a free list is re-stamped with
the current traceback only by the builtin (see run_cpython_suite.py).  So
the free lists are emptied again (gc.collect) between the workload and the
snapshot -- otherwise the snapshot's own list could reuse an entry the
workload freed -- and the workloads avoid keeping objects that reuse a
traced entry (diff_workloads.py).
"""

import gc
import json
import os
import sys
import threading
import tracemalloc
import _weakrefset

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
        if tracer == "fasttracemalloc-threads":
            mod.set_thread_attribution(True)
            mod.take_snapshot = mod.take_thread_snapshot
    fn = WORKLOADS[workload]
    gc.collect()
    gc.disable()
    mod.start(nframe)
    kept = fn()
    # Empty the free lists before the snapshot allocates: an object the
    # snapshot makes must not reuse a traced entry the workload freed.
    gc.collect()
    snapshot = mod.take_snapshot()
    mod.stop()
    excluded = [tracemalloc.Filter(False, HERE),
                tracemalloc.Filter(False, tracemalloc.__file__),
                # thread bookkeeping (locks, _active, the _dangling
                # WeakSet) varies with timing and reuses free-list entries
                tracemalloc.Filter(False, threading.__file__),
                tracemalloc.Filter(False, _weakrefset.__file__)]
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
