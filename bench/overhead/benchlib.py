"""Helpers shared by the overhead workloads (bench/overhead/wl_*.py).

Owns: the result protocol between a workload process and the runner, the
"which tracer is active in this process" probe, and the call-stack-depth
helper.  Every workload runs in a fresh interpreter started by the runner
under one mode (untraced, builtin, fasttracemalloc, memray); it does its own
set-up untimed, times only the measured region with time.perf_counter, and
prints exactly one line ``BENCH_RESULT {json}`` on stdout at the end.  The
runner ignores every other line (memray, for instance, prints its own).

Nothing here may import tracemalloc or fasttracemalloc: importing them would
change what is measured.  The probe only looks at modules already loaded.
Single-threaded use only (called from a workload's main thread).
"""

import json
import sys

RESULT_PREFIX = "BENCH_RESULT "


def tracer_state():
    """Describe the tracer active in this process, without importing any."""
    state = {"builtin": False, "builtin_nframe": 0, "ftm": False,
             "ftm_nframe": 0, "ftm_sampling": 0, "memray": "memray" in sys.modules}
    try:
        import _tracemalloc  # compiled into the interpreter: no side effect
        if _tracemalloc.is_tracing():
            state["builtin"] = True
            state["builtin_nframe"] = _tracemalloc.get_traceback_limit()
    except ImportError:
        pass
    ftm = sys.modules.get("fasttracemalloc")
    if ftm is not None:
        try:
            if ftm.is_tracing():
                state["ftm"] = True
                state["ftm_nframe"] = ftm.get_traceback_limit()
                # mean bytes between samples, 0 when tracing exactly
                # (called once, after the timed region: it may load the
                # package's small _sampling module)
                get = getattr(ftm, "get_sampling", None)
                state["ftm_sampling"] = get() if get is not None else 0
                # 1 if the session runs the engine's merger thread
                engine = getattr(ftm, "_engine", None)
                stats = getattr(engine, "_stats", None)
                if stats is not None:
                    state["ftm_merger_thread"] = stats()["merger_thread"]
        except Exception as exc:  # report, never hide, a broken package
            state["ftm_error"] = repr(exc)
    return state


def emit(**fields):
    """Print the one result line the runner reads."""
    fields["tracer"] = tracer_state()
    sys.stdout.write(RESULT_PREFIX + json.dumps(fields) + "\n")
    sys.stdout.flush()


def serving(port):
    """Tell the runner a server workload is listening: ``PORT <n>``, then
    ``THREADS <tid,...>``, the native ids of the Python threads alive now
    (the runner counts the CPU time of every other thread that exists
    before the load starts -- a tracer's own threads -- separately)."""
    import threading
    tids = sorted(t.native_id for t in threading.enumerate()
                  if t.native_id is not None)
    sys.stdout.write(f"PORT {port}\nTHREADS {','.join(map(str, tids))}\n")
    sys.stdout.flush()


def stack_depth():
    """Number of Python frames on the calling thread's stack."""
    depth = 0
    frame = sys._getframe(1)
    while frame is not None:
        depth += 1
        frame = frame.f_back
    return depth


def at_depth(target, fn, *args):
    """Call fn(*args) with the Python stack target frames deep.

    fn itself is the target-th frame.  If the stack is already deeper, fn is
    called directly.
    """
    return _descend(target - 1, fn, args)


def _descend(target, fn, args):
    if stack_depth() < target:
        return _descend(target, fn, args)
    return fn(*args)


def parse_args(argv, **defaults):
    """Tiny ``key=value`` argument parser: values are converted to the type of
    the default.  Keeps workloads free of argparse (an import that allocates).
    """
    out = dict(defaults)
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in defaults:
            raise SystemExit(f"unknown argument {arg!r}; expected one of "
                             f"{sorted(defaults)} as key=value")
        out[key] = type(defaults[key])(value)
    return out
