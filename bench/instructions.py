"""Instructions executed, per mode, by pyperformance workers (callgrind).

Owns: a deterministic overhead figure for a noisy machine.  Wall and CPU
time on this shared 2-core VM swing by tens of percent between adjacent
runs (steal time); the number of instructions a process executes does not.
For each pyperformance benchmark, one pyperf worker per mode runs under
``valgrind --tool=callgrind --separate-threads=yes`` and the instructions
of all its threads are summed; the table gives each mode over the first
(the baseline, normally untraced).  What it cannot show: cache misses,
branch mispredictions, the cost of an atomic instruction over a plain one,
sleeps and wake-ups -- read it next to a timed run, never instead of one.

    python bench/instructions.py \\
        --mode untraced=/venv-a/bin/python \\
        --mode before=/venv-a/bin/python:FASTTRACEMALLOC=25,sample=512k \\
        --mode after=/venv-b/bin/python:FASTTRACEMALLOC=25,sample=512k \\
        [--json out.json] float json_loads:1024 ...

A benchmark given without ``:LOOPS`` is calibrated first (the baseline
runs it, doubling the loops, until one worker takes 0.4 s).  The
interpreter running this script needs pyperformance installed (it finds
each benchmark's run script and options the way the overhead suite does,
bench/overhead/pyperf_suite.py); the modes' interpreters need pyperf.
Written here, not taken from a tool: pyperf and pyperformance time
benchmarks, none of them counts instructions per mode.  Prints numbers,
asserts nothing.
"""

import argparse
import glob
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "overhead"))
import pyperf_suite  # noqa: E402


def parse_mode(text):
    """NAME=PYTHON[:VAR=VALUE] -> (name, python, env)."""
    name, sep, rest = text.partition("=")
    if not sep or not rest:
        raise argparse.ArgumentTypeError("expected NAME=PYTHON[:VAR=VALUE]")
    python, _, assign = rest.partition(":")
    env = {}
    if assign:
        var, sep, value = assign.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError("expected VAR=VALUE after ':'")
        env[var] = value
    return name, python, env


def worker_argv(python, script, extra, loops, out):
    return [python, script, *extra, "--worker", "--loops", str(loops),
            "--values", "1", "--warmups", "0", "-o", out]


def calibrate(python, script, extra, tmp):
    loops = 1
    while True:
        t0 = time.perf_counter()
        subprocess.run(worker_argv(python, script, extra, loops,
                                   os.path.join(tmp, "cal.json")),
                       check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        os.unlink(os.path.join(tmp, "cal.json"))
        if time.perf_counter() - t0 >= 0.4 or loops >= 1 << 24:
            return loops
        loops *= 2


def count(python, env, script, extra, loops, tmp):
    """Instructions of every thread of one worker."""
    for f in glob.glob(os.path.join(tmp, "cg.*")):
        os.unlink(f)
    child_env = dict(os.environ)
    for name in ("FASTTRACEMALLOC", "PYTHONTRACEMALLOC"):
        child_env.pop(name, None)
    child_env.setdefault("PYTHONHASHSEED", "0")  # same dict layouts each run
    child_env.update(env)
    subprocess.run(["valgrind", "--tool=callgrind", "--separate-threads=yes",
                    "--callgrind-out-file=" + os.path.join(tmp, "cg.%p"),
                    *worker_argv(python, script, extra, loops,
                                 os.path.join(tmp, "w.json"))],
                   env=child_env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    os.unlink(os.path.join(tmp, "w.json"))
    total = 0
    for f in glob.glob(os.path.join(tmp, "cg.*")):
        with open(f) as fp:
            m = re.search(r"^(?:totals|summary): (\d+)", fp.read(), re.M)
        if m:  # the per-process file next to per-thread ones has none
            total += int(m.group(1))
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", action="append", type=parse_mode, required=True,
                    help="NAME=PYTHON[:VAR=VALUE]; the first is the baseline")
    ap.add_argument("--json", help="also write the counts here")
    ap.add_argument("benchmarks", nargs="+", help="NAME or NAME:LOOPS")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("instructions.py: valgrind is not installed")
    modes = args.mode
    results = {}
    tmp = tempfile.mkdtemp(prefix="ftm-instr-")
    ratios = {name: [] for name, _, _ in modes[1:]}
    print("| benchmark | loops | %s (M instr.) | %s |" % (
        modes[0][0], " | ".join(name for name, _, _ in modes[1:])))
    print("|---|---:|---:|" + "---:|" * (len(modes) - 1), flush=True)
    for spec in args.benchmarks:
        bench, _, loops = spec.partition(":")
        script, extra = pyperf_suite.locate(bench)
        loops = int(loops) if loops else calibrate(modes[0][1], script,
                                                   extra, tmp)
        counts = {name: count(py, env, script, extra, loops, tmp)
                  for name, py, env in modes}
        results[bench] = {"loops": loops, "instructions": counts}
        base = counts[modes[0][0]]
        cells = []
        for name, _, _ in modes[1:]:
            ratios[name].append(counts[name] / base)
            cells.append("%.3fx" % (counts[name] / base))
        print("| %s | %d | %s | %s |" % (bench, loops, f"{base / 1e6:,.0f}",
                                         " | ".join(cells)), flush=True)
        if args.json:
            with open(args.json, "w") as fp:
                json.dump(results, fp, indent=1)
    if len(args.benchmarks) > 1:
        print("| **geomean** | | | %s |" % " | ".join(
            "**%.3fx**" % math.exp(sum(map(math.log, r)) / len(r))
            for r in ratios.values()))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
