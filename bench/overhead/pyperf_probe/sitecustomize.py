"""Tracer report of one pyperf worker process (the overhead suite's probe).

Owns: nothing but an exit hook.  pyperf_suite.py's worker launcher puts
this directory on PYTHONPATH, so site.py imports this module at start-up
in every pyperf worker -- after the .pth files, so after fasttracemalloc's
start-up switch.  At start-up it only registers the hook; at exit (after
the benchmark ran, in the process that ran it) the hook loads
bench/overhead/benchlib.py by its path (the workloads' directory never goes
on sys.path: its profile.py would shadow the stdlib's) and writes
benchlib.tracer_state() to $FTM_BENCH_PROBE_DIR/worker-<pid>.json, which
the runner checks against the mode.  Nothing is imported or allocated for
the report before the benchmark has finished.  If the interpreter had a
sitecustomize of its own, this one shadows it (pyenv's and a venv's have
none).
"""

import atexit
import os


def _report():
    out = os.environ.get("FTM_BENCH_PROBE_DIR")
    if not out:
        return
    import importlib.util
    import json
    import sys
    path = os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "benchlib.py")
    spec = importlib.util.spec_from_file_location("_ftm_bench_benchlib", path)
    benchlib = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchlib)
    report = {"pid": os.getpid(), "argv": sys.argv[:8],
              "tracer": benchlib.tracer_state()}
    tmp = os.path.join(out, f".worker-{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(report, f)
    os.rename(tmp, os.path.join(out, f"worker-{os.getpid()}.json"))


atexit.register(_report)
