"""What the live view costs the traced program (issue 9, item 3: below 2%).

Runs one workload traced by `python -m fasttracemalloc run -n 25`, twice
per round: once alone, once with `--live-socket` and a viewer (`live
PATH --interval 1`, output discarded) polling it every second.  The
workload keeps a heap of LIVE objects alive (so every top-lines snapshot
has that many traces to copy and group) and churns allocations for a
fixed amount of work; it prints its own elapsed time, which is what is
compared.  The view's own cost is also read directly: the CPU time of the
live-view thread in the traced process (``server_cpu`` of its last
answer) over the run's length, which a loaded machine does not blur the
way it blurs wall-clock ratios.  Rounds alternate the two modes; medians
are printed.  A
benchmark that prints numbers; nothing is asserted.

    python bench/live_overhead.py [--rounds 5] [--live 200000] [--work 3000000]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

WORKLOAD = r"""
import sys, time
live = int(sys.argv[1]); work = int(sys.argv[2])
def deep(n, f):
    return f() if n == 0 else deep(n - 1, f)
heap = deep(20, lambda: [(i, str(i)) for i in range(live)])
def churn():
    window = [None] * 64
    for i in range(work):
        window[i & 63] = {"k": i, "v": [i, i + 1]}
t0 = time.perf_counter()
deep(20, churn)
print("ELAPSED %.6f" % (time.perf_counter() - t0))
"""


def one(python, script, live, work, with_viewer, tmp):
    sock = os.path.join(tmp, "live.sock")
    cmd = [python, "-m", "fasttracemalloc", "run", "-n", "25", "--top", "0",
           "-o", os.path.join(tmp, "s.snap")]
    if with_viewer:
        cmd += ["--live-socket", sock]
    cmd += [script, str(live), str(work)]
    env = dict(os.environ)
    env.pop("FASTTRACEMALLOC", None)
    env.pop("PYTHONTRACEMALLOC", None)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, text=True)
    viewer = None
    if with_viewer:
        while not os.path.exists(sock) and proc.poll() is None:
            time.sleep(0.01)
        viewer = subprocess.Popen(
            [python, "-c", VIEWER, sock], stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=env, text=True)
    out, _ = proc.communicate()
    share = None
    if viewer is not None:
        vout, _ = viewer.communicate(timeout=30)
        last = [ln for ln in vout.splitlines() if ln.startswith("LAST ")]
        if last:
            cpu, elapsed = map(float, last[-1].split()[1:])
            share = cpu / elapsed
    for line in out.splitlines():
        if line.startswith("ELAPSED "):
            return float(line.split()[1]), share
    raise RuntimeError("workload failed: %r" % out)


# The viewer: the real `live` view, drawing into /dev/null, then the last
# answer's server CPU time and elapsed time.
VIEWER = r"""
import io, sys
from fasttracemalloc._live import view
last = view(sys.argv[1], interval=1.0, out=io.StringIO())
if last is not None:
    print("LAST %.6f %.6f" % (last["server_cpu"], last["elapsed"]))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--live", type=int, default=200000)
    ap.add_argument("--work", type=int, default=3000000)
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "workload.py")
        with open(script, "w") as fp:
            fp.write(WORKLOAD)
        alone, viewed, shares = [], [], []
        for r in range(args.rounds):
            alone.append(one(args.python, script, args.live, args.work,
                             False, tmp)[0])
            t, share = one(args.python, script, args.live, args.work, True,
                           tmp)
            viewed.append(t)
            shares.append(share if share is not None else float("nan"))
            print("round %d: alone %.3f s, with the live view %.3f s; the "
                  "view's thread used %.2f%% of one core"
                  % (r + 1, alone[-1], viewed[-1], 100 * shares[-1]),
                  flush=True)
    a, v = statistics.median(alone), statistics.median(viewed)
    print("median: alone %.3f s, with the live view %.3f s (%+.1f%%); the "
          "view's own CPU: %.2f%% of one core over the run (%d rounds, "
          "%d live objects, load average %.1f)"
          % (a, v, 100 * (v / a - 1), 100 * statistics.median(shares),
             args.rounds, args.live, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
