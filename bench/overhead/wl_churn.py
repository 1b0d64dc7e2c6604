"""Workload 1: allocation-heavy churn at a 30-deep Python stack.

Owns: the churn loop (dicts, lists, strings, tuples, json round-trips, a
small window of live objects so frees happen out of allocation order) and its
threaded driver.  ``iters`` is the total number of loop iterations, split
evenly over ``threads``; every thread runs the loop with its stack ``depth``
frames deep.  Timed region: from the release of the start barrier to the
join of the last thread.  Prints BENCH_RESULT with ``seconds`` and a
checksum of the work (the report checks every mode computed the same).

    python wl_churn.py iters=200000 threads=8 depth=30
"""

import json
import sys
import threading
import time

import benchlib


def churn(iters, seed):
    window = [None] * 64
    total = 0
    for i in range(iters):
        key = str(seed + i)
        record = {"id": i, "key": key, "tags": [key, "x" * (i % 13), i & 7]}
        pair = (i, key, record["tags"])
        text = "-".join((key, record["tags"][1], "end"))
        row = [pair, text, record]
        if i % 8 == 0:
            row.append(json.loads(json.dumps(record)))
        window[i & 63] = row
        total += len(text)
    return total


def worker(barrier, iters, depth, seed, out, slot):
    barrier.wait()
    out[slot] = benchlib.at_depth(depth, churn, iters, seed)


def main():
    args = benchlib.parse_args(sys.argv[1:], iters=200000, threads=1,
                               depth=30)
    nthreads = args["threads"]
    per_thread = args["iters"] // nthreads
    out = [0] * nthreads
    barrier = threading.Barrier(nthreads + 1)
    threads = [threading.Thread(target=worker,
                                args=(barrier, per_thread, args["depth"],
                                      n * 1000003, out, n))
               for n in range(nthreads)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    if 0 in out:
        raise SystemExit("a churn thread did not finish")
    benchlib.emit(seconds=seconds, iters=per_thread * nthreads,
                  threads=nthreads, depth=args["depth"], checksum=sum(out))


if __name__ == "__main__":
    main()
