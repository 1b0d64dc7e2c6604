"""pyperformance's benchmarks, run through pyperf, in one tracing mode.

Owns: finding a pyperformance benchmark by name in the installed
pyperformance (its run script and extra options, from pyperformance's own
manifest); the worker launcher, a small shell script given to pyperf as
``--python`` so that every worker process pyperf spawns -- and only the
workers, not the pyperf manager -- starts in the mode (``-X tracemalloc=N``,
``FASTTRACEMALLOC=N``, ``memray run --trace-python-allocators``), whatever
pyperf does to the environment (it passes workers only a few variables);
reading the pyperf JSON (per benchmark: the values of every worker run,
seconds per loop; calibration runs carry none); and checking the tracer
report that every worker writes at exit (pyperf_probe/sitecustomize.py): a
worker whose tracer does not match the mode, or a worker that did not
report, makes the whole run an error.

Used by runner.py (the run) and test_overhead.py (the parsing and checks);
importing it needs neither pyperf nor pyperformance.  Single-threaded.
"""

import json
import os
import re
import shlex
import statistics

import modes as modes_mod

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE_DIR = os.path.join(HERE, "pyperf_probe")
PROBE_ENV = "FTM_BENCH_PROBE_DIR"  # where workers write their tracer report

# The benchmarks issue 12 names (in its order).
ISSUE12 = ("chaos", "deepcopy", "float", "json_loads", "json_dumps", "nbody",
           "pathlib", "richards", "go", "hexiom", "raytrace", "spectral_norm",
           "unpickle_pure_python", "pickle_pure_python", "xml_etree",
           "sqlite_synth", "regex_v8", "unpack_sequence", "logging",
           "generators")

_manifest = None


def installed_version():
    try:
        import importlib.metadata as md
        return md.version("pyperformance")
    except Exception:  # not installed: callers report it
        return None


def locate(name):
    """(run script, extra options) of a pyperformance benchmark; raise
    LookupError (with the reason) when it cannot be run."""
    global _manifest
    if _manifest is None:
        try:
            from pyperformance import _manifest as manifest_mod
            _manifest = {b.name: b for b in
                         manifest_mod.load_manifest(None).benchmarks}
        except Exception as exc:
            raise LookupError(f"pyperformance unusable: {exc!r}"[:200])
    bench = _manifest.get(name)
    if bench is None:
        raise LookupError(f"no benchmark {name!r} in pyperformance "
                          f"{installed_version()}")
    return bench.runscript, list(bench.extra_opts or ())


def launcher_text(mode, python, tmpdir, serial, probe_out):
    """The shell script pyperf runs as its worker "python": it puts the
    probe on PYTHONPATH, sets exactly the mode's variables and execs the
    mode's command line with pyperf's worker arguments appended."""
    argv, env = mode.command(python, [], tmpdir, serial)
    base = modes_mod.child_env()
    lines = ["#!/bin/sh",
             f"# pyperf worker launcher, mode {mode.key} (generated)"]
    for name in modes_mod.SCRUBBED_ENV:
        if name not in env:
            lines.append(f"unset {name}")
    exports = {"PYTHONHASHSEED": env["PYTHONHASHSEED"],
               PROBE_ENV: probe_out}
    exports.update({k: v for k, v in env.items() if base.get(k) != v})
    for name, value in sorted(exports.items()):
        lines.append(f"export {name}={shlex.quote(value)}")
    lines.append(f"export PYTHONPATH={shlex.quote(PROBE_DIR)}"
                 "${PYTHONPATH:+:$PYTHONPATH}")
    lines.append("exec " + shlex.join(argv) + ' "$@"')
    return "\n".join(lines) + "\n"


def write_launcher(mode, python, workdir, tmpdir, serial):
    """Create the launcher and the probe directory under workdir; return
    (launcher path, probe directory)."""
    probe_out = os.path.join(workdir, "workers")
    os.makedirs(probe_out, exist_ok=True)
    path = os.path.join(workdir, "python-worker")
    with open(path, "w") as f:
        f.write(launcher_text(mode, python, tmpdir, serial, probe_out))
    os.chmod(path, 0o755)
    return path, probe_out


def command(python, script, extra_opts, launcher, pyperf_opts, output):
    """The pyperf manager's command line (run untraced; workers via the
    launcher)."""
    return [python, "-u", script, *extra_opts, "--python", launcher,
            *pyperf_opts, "--output", output]


def parse_suite(data):
    """pyperf JSON (a dict) -> ({benchmark name: [values]}, worker runs).

    pyperf moves metadata shared by all benchmarks (the name, when there
    is one benchmark) to the file's top level; runs without "values" are
    calibration runs, which still were worker processes."""
    common = data.get("metadata", {})
    values, runs = {}, 0
    for bench in data.get("benchmarks", []):
        name = bench.get("metadata", {}).get("name") or common.get("name")
        if not name:
            raise ValueError("pyperf JSON: a benchmark without a name")
        vals = values.setdefault(name, [])
        for run in bench.get("runs", []):
            runs += 1
            vals.extend(run.get("values", []))
    if not values or not all(values.values()):
        raise ValueError("pyperf JSON: a benchmark without values")
    return values, runs


def summarize(values):
    """One sample for the case: the geometric mean over its benchmarks of
    each one's median value (so ratios of samples are the geomean of the
    per-benchmark ratios); plus the per-benchmark medians."""
    import report
    medians = {name: statistics.median(v) for name, v in values.items()}
    return report.geomean(list(medians.values())), medians


def failure_text(stderr):
    """The cause of a failed pyperf run: a worker's traceback goes to the
    manager's stderr before the manager's own "worker failed" error, so the
    first exception line names the cause and the last one the consequence."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines
              if re.match(r"^[A-Za-z_.]*(Error|Exception|Exit)\b.*:", ln)]
    last = lines[-1] if lines else ""
    if errors and errors[0] != last:
        return f"{errors[0]} (then: {last})"[:300]
    return last[:300]


def read_worker_reports(probe_out):
    reports = []
    for name in sorted(os.listdir(probe_out)):
        if name.startswith("worker-") and name.endswith(".json"):
            with open(os.path.join(probe_out, name)) as f:
                reports.append(json.load(f))
    return reports


def check_workers(mode, reports, expected):
    """None if every one of the ``expected`` worker processes reported the
    mode's tracer, else a one-line description of what went wrong."""
    if len(reports) != expected:
        return (f"{expected} pyperf worker(s) ran but {len(reports)} "
                "reported their tracer")
    for rep in reports:
        bad = mode.check(rep.get("tracer", {}))
        if bad:
            return f"worker pid {rep.get('pid')}: {bad}"
    return None
