"""What per-thread attribution costs (issue 9 item 2).

    python bench/thread_attribution.py [--reps N] [--threads T]

Numbers only, no assertion; every ratio is measured in the same run.

1. Pool growth.  The same function (a 4-deep call chain allocating on 3
   lines) runs 200 times in 1 thread, then in T short-lived threads (one
   after the other, as a thread-per-request server does), with attribution
   off and on.  Prints the engine's traceback count and engine bytes after
   each: off, the T threads add no traceback; on, each thread interns its
   own copy of every traceback it allocates from (same frames, another
   thread tag), so the pool grows by about T x the distinct tracebacks.
2. Capture cost.  bench/capture_micro.py's same_lines and many_funcs
   workloads in the main thread, traced at nframe 25, attribution off and
   on, interleaved, median of N runs each (the hot path with attribution
   on adds one relaxed load and a compare per capture; the per-thread
   cache keeps its id).
"""

import argparse
import os
import statistics
import sys
import threading
import time

import fasttracemalloc
from fasttracemalloc import _fasttracemalloc as engine

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import capture_micro  # noqa: E402


def request(keep):
    def c(i):
        keep.append([i])
        keep.append(str(i) * 3)
        keep.append({i: i})

    def b(i):
        c(i)

    def a():
        for i in range(200):
            b(i)
    a()
    keep.clear()


def pool_growth(nthreads, attribute):
    fasttracemalloc.start(25)
    fasttracemalloc.set_thread_attribution(attribute)
    keep = []
    request(keep)
    one = engine._stats()
    for _ in range(nthreads):
        t = threading.Thread(target=request, args=([],))
        t.start()
        t.join()
    many = engine._stats()
    fasttracemalloc.stop()
    fasttracemalloc.set_thread_attribution(False)
    return one, many


def timed(fn, attribute):
    fasttracemalloc.start(25)
    fasttracemalloc.set_thread_attribution(attribute)
    t = time.perf_counter()
    fn()
    t = time.perf_counter() - t
    fasttracemalloc.stop()
    fasttracemalloc.set_thread_attribution(False)
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=64)
    args = ap.parse_args()
    print("python %s" % sys.version.split()[0])
    print("1. pool growth: 1 thread, then +%d short-lived threads running "
          "the same code" % args.threads)
    for attribute in (False, True):
        one, many = pool_growth(args.threads, attribute)
        print("  attribution %-3s  tracebacks %6d -> %6d (x%.1f)   "
              "engine bytes %9d -> %9d"
              % ("on" if attribute else "off", one["tracebacks"],
                 many["tracebacks"],
                 many["tracebacks"] / max(1, one["tracebacks"]),
                 one["engine_bytes"], many["engine_bytes"]))
    print("2. capture cost, nframe 25, median of %d (seconds)" % args.reps)
    for fn in (capture_micro.same_lines, capture_micro.many_funcs):
        off, on = [], []
        for _ in range(args.reps):
            off.append(timed(fn, False))
            on.append(timed(fn, True))
        m_off, m_on = statistics.median(off), statistics.median(on)
        print("  %-11s off %.3f  on %.3f  on/off x%.3f"
              % (fn.__name__, m_off, m_on, m_on / m_off))


if __name__ == "__main__":
    main()
