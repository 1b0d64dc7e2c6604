"""Sampled mode: overhead, accuracy and the continuous-mode pause.

Owns: one script that prints three tables for the sampled mode
(fasttracemalloc.start_sampled):

 1. Overhead.  Allocation-heavy workloads (the overhead suite's classic
    programs, bench/overhead/classic, and its churn loop at a 30-deep stack,
    4 threads), each mode in a fresh process, modes interleaved round by
    round in the same run; the table gives the median over rounds of each
    process's median time, as a ratio to untraced.  Modes: untraced,
    builtin tracemalloc @25, fasttracemalloc exact @25, sampled @25 with a
    512 KiB mean, and sampled @25 with the private record_all_frees knob
    (every free sent to the engine, as a design without the sampled-address
    set would; python/src/sampled.h).
 2. Accuracy.  A deterministic workload (blocks of fixed sizes kept alive,
    three lines: small, medium, large blocks) traced exactly once, then
    sampled at 512 KiB with seeds 1..N: per line the exact bytes and
    blocks, the mean estimate and its bias in model standard errors, the
    model's standard deviation of one run, the observed one across seeds,
    and the mean standard error the runs reported themselves.
 3. Pause.  With ~1M live blocks, the time the engine's _get_traces() holds
    the interpreter (the GIL: the stop-the-world part of a snapshot, and of
    each continuous-mode write), sampled and exact, median and max of 20.

    python bench/sampled_bench.py [--rounds 5] [--seeds 30] [--quick]

No assertion on any number: it prints what it measured.
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OVERHEAD = os.path.join(HERE, "overhead")
MEAN = 512 * 1024
NFRAME = 25

MODES = ("untraced", "builtin@25", "exact@25", "sampled@25",
         "sampled@25+allfrees")
WORKLOADS = ("jsoncodec", "deepcopy_nested", "gametree", "points",
             "churn-4threads")

# --- 1. overhead: one child process per (mode, workload) --------------------

CHILD = r"""
import sys, time, json, threading
sys.path.insert(0, %(overhead)r)
mode, workload, scale, reps = %(mode)r, %(workload)r, %(scale)r, %(reps)r
if workload == "churn-4threads":
    import wl_churn
    def work():
        iters = int(60000 * scale)
        def deep(n, f):
            return deep(n - 1, f) if n else f()
        ts = [threading.Thread(target=deep,
                               args=(30, lambda s=s: wl_churn.churn(iters // 4, s)))
              for s in range(4)]
        for t in ts: t.start()
        for t in ts: t.join()
else:
    import importlib
    prog = importlib.import_module("classic." + workload)
    def work():
        prog.run(scale)
import fasttracemalloc, tracemalloc
if mode == "builtin@25":
    tracemalloc.start(25)
elif mode == "exact@25":
    fasttracemalloc.start(25)
elif mode == "sampled@25":
    fasttracemalloc.start_sampled(25, mean_bytes=%(mean)d)
elif mode == "sampled@25+allfrees":
    fasttracemalloc._engine._start_sampled(25, %(mean)d, None, True)
work()  # warm-up
walls, cpus = [], []
for _ in range(reps):
    c0 = time.process_time()
    t0 = time.perf_counter()
    work()
    walls.append(time.perf_counter() - t0)
    cpus.append(time.process_time() - c0)
walls.sort()
cpus.sort()
print("RESULT", json.dumps([walls[len(walls) // 2], cpus[len(cpus) // 2]]))
"""


def child_time(mode, workload, scale, reps):
    code = CHILD % {"overhead": OVERHEAD, "mode": mode, "workload": workload,
                    "scale": scale, "reps": reps, "mean": MEAN}
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONTRACEMALLOC", "FASTTRACEMALLOC")}
    out = subprocess.run([sys.executable, "-c", code], env=env,
                         capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError("%s/%s failed:\n%s" % (mode, workload, out.stderr))
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError("no result from %s/%s" % (mode, workload))


def overhead(rounds, scale, reps, modes=MODES):
    MODES = modes
    results = {(m, w): [] for m in MODES for w in WORKLOADS}
    for r in range(rounds):
        for w in WORKLOADS:
            for m in MODES:
                # the builtin at 25 frames is ~30x: one timed repetition
                results[m, w].append(child_time(
                    m, w, scale, 1 if m.startswith("builtin") else reps))
        print("  round %d/%d done" % (r + 1, rounds), file=sys.stderr)
    for index, what in ((1, "process CPU time (all threads, merger "
                         "included)"), (0, "wall time")):
        print("\n## Overhead: %s / untraced (median of %d rounds)\n"
              % (what, rounds))
        print("| workload | untraced s | " + " | ".join(MODES[1:]) + " |")
        print("|---|---:|" + "---:|" * (len(MODES) - 1))
        geo = {m: [] for m in MODES[1:]}
        for w in WORKLOADS:
            base = statistics.median(x[index] for x in results["untraced", w])
            row = ["%s" % w, "%.3f" % base]
            for m in MODES[1:]:
                ratio = statistics.median(
                    x[index] for x in results[m, w]) / base
                geo[m].append(ratio)
                row.append("%.2fx" % ratio)
            print("| " + " | ".join(row) + " |")
        print("| geomean | | " + " | ".join(
            "%.2fx" % math.exp(sum(map(math.log, geo[m])) / len(geo[m]))
            for m in MODES[1:]) + " |")


# --- 2. accuracy ---------------------------------------------------------------

ACCURACY = r"""
import gc, json, random, sys
import fasttracemalloc
from fasttracemalloc._sampling import inclusion
rng = random.Random(12345)
SMALL = [rng.randrange(8, 400) for _ in range(%(nsmall)d)]
MEDIUM = [rng.randrange(1000, 6000) for _ in range(%(nmedium)d)]
LARGE = [rng.randrange(100000, 1000000) for _ in range(%(nlarge)d)]
def workload(keep):
    for n in SMALL:
        keep.append(bytes(n))
    for n in MEDIUM:
        keep.append(bytes(n))
    for n in LARGE:
        keep.append(bytes(n))
code = workload.__code__
LINES = {code.co_firstlineno + 2: "small", code.co_firstlineno + 4: "medium",
         code.co_firstlineno + 6: "large"}
def per_line(snap, key):
    out = {}
    for st in key(snap):
        f = st.traceback[-1]  # the most recent frame
        if f.filename == "<string>" and f.lineno in LINES:
            out[LINES[f.lineno]] = st
    return out
keep = []
fasttracemalloc.start(%(nframe)d)
workload(keep)
snap = fasttracemalloc.take_snapshot()
fasttracemalloc.stop()
exact = {}
for name in ("small", "medium", "large"):
    exact[name] = [t.size for t in snap.traces
                   if t.traceback[-1].filename == "<string>"
                   and LINES.get(t.traceback[-1].lineno) == name]
del keep, snap
gc.collect()
runs = []
for seed in range(1, %(seeds)d + 1):
    keep = []
    fasttracemalloc.start_sampled(%(nframe)d, mean_bytes=%(mean)d, seed=seed)
    workload(keep)
    snap = fasttracemalloc.take_snapshot()
    fasttracemalloc.stop()
    got = per_line(snap, lambda s: s.sampled_statistics("lineno"))
    runs.append({k: (v.size, v.count, v.size_stderr, v.samples)
                 for k, v in got.items()})
    del keep, snap
    gc.collect()
model = {}
for name, sizes in exact.items():
    vb = sum(s * s * (1 - inclusion(s, %(mean)d)) / inclusion(s, %(mean)d)
             for s in sizes)
    model[name] = (sum(sizes), len(sizes), vb)
print("RESULT", json.dumps({"model": model, "runs": runs}))
"""


def accuracy(seeds, scale):
    code = ACCURACY % {"nsmall": int(100000 * scale),
                       "nmedium": int(10000 * scale),
                       "nlarge": max(6, int(60 * scale)), "seeds": seeds,
                       "mean": MEAN, "nframe": NFRAME}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    data = json.loads(out.stdout.split("RESULT ", 1)[1])
    print("\n## Accuracy (mean %d KiB, nframe %d, %d seeds; exact = the same "
          "workload traced exactly)\n" % (MEAN // 1024, NFRAME, seeds))
    print("| line | exact MB | exact blocks | mean est. MB | bias (model SE "
          "of the mean) | model SD of one run | observed SD | mean reported "
          "SE | mean est. blocks | samples/run |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in ("small", "medium", "large"):
        true_b, true_n, var_b = data["model"][name]
        ests = [r.get(name, (0, 0.0, 0.0, 0))[0] for r in data["runs"]]
        counts = [r.get(name, (0, 0.0, 0.0, 0))[1] for r in data["runs"]]
        ses = [r.get(name, (0, 0.0, 0.0, 0))[2] for r in data["runs"]]
        samples = [r.get(name, (0, 0.0, 0.0, 0))[3] for r in data["runs"]]
        mean = statistics.fmean(ests)
        sd_model = math.sqrt(var_b)
        z = (mean - true_b) / (sd_model / math.sqrt(len(ests))) \
            if sd_model else 0.0
        print("| %s | %.2f | %d | %.2f | %+.2f | %.1f%% | %.1f%% | %.1f%% | "
              "%.0f | %.0f |"
              % (name, true_b / 1e6, true_n, mean / 1e6, z,
                 100 * sd_model / true_b,
                 100 * statistics.pstdev(ests) / true_b,
                 100 * statistics.fmean(ses) / true_b,
                 statistics.fmean(counts), statistics.fmean(samples)))


# --- 3. pause --------------------------------------------------------------------

PAUSE = r"""
import json, time
import fasttracemalloc
out = {}
for mode in ("sampled", "exact"):
    if mode == "sampled":
        fasttracemalloc.start_sampled(%(nframe)d, mean_bytes=%(mean)d)
    else:
        fasttracemalloc.start(%(nframe)d)
    keep = [(i, str(i)) for i in range(%(n)d)]
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        traces = fasttracemalloc._get_traces()
        times.append(time.perf_counter() - t0)
        del traces
    out[mode] = (sorted(times)[10], max(times), fasttracemalloc._engine._stats()["live_traces"])
    fasttracemalloc.stop()
    del keep
print("RESULT", json.dumps(out))
"""


def pause(n):
    code = PAUSE % {"nframe": NFRAME, "mean": MEAN, "n": n}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    data = json.loads(out.stdout.split("RESULT ", 1)[1])
    print("\n## Snapshot pause (_get_traces() holding the GIL; ~%d live "
          "objects, nframe %d)\n" % (3 * n, NFRAME))
    print("| mode | live traces | median ms | max ms |")
    print("|---|---:|---:|---:|")
    for mode, (med, mx, live) in data.items():
        print("| %s | %d | %.3f | %.3f |" % (mode, live, med * 1e3, mx * 1e3))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes: a smoke run, numbers meaningless")
    ap.add_argument("--skip", default="",
                    help="comma-separated: overhead, accuracy, pause")
    ap.add_argument("--modes", default=",".join(MODES),
                    help="comma-separated subset of %s (untraced always "
                         "runs)" % ", ".join(MODES))
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.reps, args.scale, args.seeds = 1, 1, 0.05, 3
    skip = set(filter(None, args.skip.split(",")))
    print("# fasttracemalloc sampled mode (%s, %s)"
          % (sys.version.split()[0], time.strftime("%Y-%m-%d %H:%M")))
    modes = ("untraced",) + tuple(
        m for m in MODES[1:] if m in args.modes.split(","))
    if "overhead" not in skip:
        overhead(args.rounds, args.scale, args.reps, modes)
    if "accuracy" not in skip:
        accuracy(args.seeds, args.scale if args.quick else 1.0)
    if "pause" not in skip:
        pause(int(1000000 * (args.scale if args.quick else 1.0)))


if __name__ == "__main__":
    main()
