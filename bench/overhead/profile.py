"""Where the time goes: one case of the overhead suite, in one mode, under perf.

Owns: running a single (case, mode) of the suite -- the same command line
and environment as runner.py uses -- under ``perf record -e cpu-clock -g``
(software clock: this VM exposes no hardware counters) and printing the top
symbols by self time (``perf report --no-children``), so a missed target can
be explained from the hot path.  Needs ``perf`` (Debian: linux-perf).  Uses
the venv bench/run_overhead.sh made; run it with that venv's python:

    bench/.venv-*/bin/python bench/overhead/profile.py --mode ftm@25 \
        --case "churn, 8 threads" [--quick] [--top 30] [--out FILE.txt]

--case matches the start of a case name (see --list).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

import modes as modes_mod
import runner


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", default="ftm@25")
    parser.add_argument("--case", default="churn, 8 threads")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", help="also write the report to this file")
    parser.add_argument("--list", action="store_true",
                        help="list the cases and modes, then exit")
    args = parser.parse_args(argv)

    size = runner.SIZES["quick" if args.quick else "full"]
    cases = [c for c in runner.build_cases(size, runner.WORKLOADS)
             if c.workload not in runner.SERVED + ("startup",
                                                   "pyperformance")]
    all_modes = modes_mod.all_modes()
    if args.list:
        print("cases:", "; ".join(c.name for c in cases))
        print("modes:", ", ".join(m.key for m in all_modes))
        return 0
    perf = shutil.which("perf")
    if not perf:
        raise SystemExit("perf not found (Debian: apt-get install linux-perf)")
    case = next((c for c in cases if c.name.startswith(args.case)), None)
    if case is None:
        raise SystemExit(f"no case starts with {args.case!r}; try --list")
    mode = next((m for m in all_modes if m.key == args.mode), None)
    if mode is None or not case.applies(mode):
        raise SystemExit(f"mode {args.mode!r} does not apply; try --list")
    modes_mod.detect([mode], args.python)
    if not mode.available:
        raise SystemExit(f"{mode.key}: {mode.why} {'; '.join(mode.notes)}")

    with tempfile.TemporaryDirectory(prefix="ftm-perf-") as tmp:
        argv_, env = mode.command(args.python, case.args(mode), tmp)
        data = os.path.join(tmp, "perf.data")
        print(f"== perf record: {case.name} [{mode.key}]", flush=True)
        rec = subprocess.run([perf, "record", "-q", "-e", "cpu-clock",
                              "-F", "2000", "-g", "-o", data, "--", *argv_],
                             env=env, cwd=runner.HERE, text=True,
                             capture_output=True)
        result = runner.parse_result(rec.stdout)
        if rec.returncode != 0 or result is None:
            raise SystemExit(f"run failed ({rec.returncode}): "
                             f"{runner.last_line(rec.stderr)}")
        rep = subprocess.run(
            [perf, "report", "-i", data, "--no-children", "--stdio",
             "--sort", "dso,symbol", "-g", "none", "--percent-limit", "0.5"],
            text=True, capture_output=True)
        lines = [re.sub(r"(\s+-)+\s*$", "", ln)
                 for ln in rep.stdout.splitlines()
                 if ln.strip() and not ln.startswith("#")]
        text = "\n".join(
            [f"# {case.name} [{mode.key}]: "
             f"{result.get(case.metric, result)} {case.unit}",
             "# self time by DSO and symbol (perf, cpu-clock)"]
            + lines[:args.top])
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
