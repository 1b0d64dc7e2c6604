"""Focused micro-benchmark of the capture path (issue 10 item 4).

    python bench/capture_micro.py [nframe ...]

Times three workloads untraced and under fasttracemalloc (started in
process at each nframe), best of 5, and prints seconds and the ratio to
untraced.  No assertion: numbers only.
  - same_lines: a loop allocating on two lines, 20 frames deep (the
    per-thread cache's common case: nothing changed since the last
    capture but the top line);
  - many_funcs: 64 distinct functions called in turn, each allocating
    (the top frame's code object changes at every capture: one map probe);
  - codegen:    exec of a small generated function, called, dropped (a
    code object dies at every step: the caches start over).
"""

import sys
import time

import fasttracemalloc


def same_lines(n=300000):
    def deep(k):
        if k:
            return deep(k - 1)
        out = None
        for i in range(n):
            out = [i]
            out = (i, i)
        return out
    return deep(20)


FUNCS = []
for _j in range(64):
    _ns = {}
    exec("def f(i):\n    return [i, %d]\n" % _j, _ns)
    FUNCS.append(_ns["f"])


def many_funcs(n=300000):
    funcs = FUNCS
    for i in range(n):
        funcs[i & 63](i)


def codegen(n=20000):
    for i in range(n):
        ns = {}
        exec("def g(x):\n    y = [x] * 3\n    return y\n", ns)
        ns["g"](i)


WORKLOADS = [same_lines, many_funcs, codegen]


def best(fn, reps=5):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(nframes):
    print("python %s" % sys.version.split()[0])
    for fn in WORKLOADS:
        base = best(fn)
        row = ["%-11s untraced %.3fs" % (fn.__name__, base)]
        for nf in nframes:
            fasttracemalloc.start(nf)
            t = best(fn)
            fasttracemalloc.stop()
            row.append("ftm@%d %.3fs (x%.2f)" % (nf, t, t / base))
        print("  ".join(row))


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1, 25])
