"""Workload: thread scaling of a pure-Python allocation loop (issue 8).

Owns: an allocation loop with no shared objects between threads (dicts,
lists, str, tuples; a window of 64 live rows, so frees happen out of
allocation order) and a threaded driver that runs it for a fixed time.
Meant for free-threaded builds (3.13t), where the threads really allocate
in parallel; on a GIL build it measures the same loop serialised.

Each of ``threads`` threads runs the loop with its stack ``depth`` frames
deep (benchlib.at_depth) until ``seconds`` have passed, checking a stop
flag every 128 iterations.  Timed region: from the release of the start
barrier to the join of the last thread.  Prints BENCH_RESULT with
``rate`` (total iterations per second over all threads), ``iters``,
``seconds`` and ``threads``.  Throughput, not a fixed amount of work: the
traced modes differ by 40x, and a fixed duration keeps every mode's run
equally long.

    python wl_ftscale.py threads=2 depth=30 seconds=2

The modes are chosen as for the other workloads: untraced, ``-X
tracemalloc=N`` (builtin) or ``FASTTRACEMALLOC=N`` (the start-up switch),
each in a fresh process.
"""

import sys
import threading
import time

import benchlib

STOP = False


def loop(seed):
    window = [None] * 64
    n = 0
    while not STOP:
        for i in range(n, n + 128):
            key = str(seed + i)
            record = {"id": i, "key": key,
                      "tags": [key, "x" * (i % 13), i & 7]}
            pair = (i, key, record["tags"])
            text = "-".join((key, record["tags"][1], "end"))
            window[i & 63] = [pair, text, record]
        n += 128
    return n


def worker(barrier, depth, seed, out, slot):
    barrier.wait()
    out[slot] = benchlib.at_depth(depth, loop, seed)


def main():
    global STOP
    args = benchlib.parse_args(sys.argv[1:], threads=1, depth=30,
                               seconds=2.0)
    nthreads = args["threads"]
    out = [0] * nthreads
    barrier = threading.Barrier(nthreads + 1)
    threads = [threading.Thread(target=worker,
                                args=(barrier, args["depth"], n * 1000003,
                                      out, n))
               for n in range(nthreads)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    time.sleep(args["seconds"])
    STOP = True
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    if 0 in out:
        raise SystemExit("a loop thread did not run")
    iters = sum(out)
    benchlib.emit(rate=iters / seconds, iters=iters, seconds=seconds,
                  threads=nthreads, depth=args["depth"],
                  gil=getattr(sys, "_is_gil_enabled", lambda: True)())


if __name__ == "__main__":
    main()
