"""Prints how long take_snapshot() + statistics('lineno') takes with the
builtin tracemalloc and with fasttracemalloc at N live traces (default 1M).
A benchmark that prints numbers; nothing is asserted.

    python tests/python/bench_snapshot.py [N] [NFRAME]

Each tracer runs in its own child process (same workload: N live objects
allocated from 200 distinct call sites under a 20-deep stack).
"""

import subprocess
import sys

CHILD = r"""
import sys, time
which, n, nframe = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if which == "builtin":
    import tracemalloc as tm
    take = tm.take_snapshot
else:
    import fasttracemalloc as tm
    take = tm.take_snapshot
    tm.Snapshot  # load the lazy parts before tracing
src = "\n".join("def site%d(n):\n    return [object() for _ in range(n)]" % i
                for i in range(200))
ns = {}
exec(compile(src, "sites.py", "exec"), ns)
sites = [ns["site%d" % i] for i in range(200)]
def deep(level):
    if level:
        return deep(level - 1)
    return [site(n // 200) for site in sites]
tm.start(nframe)
keep = deep(20)
t0 = time.perf_counter()
snap = take()
t1 = time.perf_counter()
stats = snap.statistics("lineno")
t2 = time.perf_counter()
print("%s: traces=%d take_snapshot=%.3fs statistics(lineno)=%.3fs total=%.3fs"
      % (which, len(snap.traces), t1 - t0, t2 - t1, t2 - t0))
"""


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    nframe = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    totals = {}
    for which in ("builtin", "fasttracemalloc"):
        out = subprocess.run([sys.executable, "-c", CHILD, which, str(n),
                              str(nframe)], capture_output=True, text=True)
        if out.returncode:
            print(which, "failed:", out.stderr.strip().splitlines()[-1:])
            continue
        line = out.stdout.strip()
        print(line)
        totals[which] = float(line.rsplit("=", 1)[1].rstrip("s"))
    if len(totals) == 2 and totals["fasttracemalloc"] > 0:
        print("speed-up (builtin / fasttracemalloc): %.1fx"
              % (totals["builtin"] / totals["fasttracemalloc"]))


if __name__ == "__main__":
    main()
