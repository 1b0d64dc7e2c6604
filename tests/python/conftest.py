"""Shared helpers for the fasttracemalloc Python tests.

Owns: how the tests run child interpreters (same interpreter, same
environment, so a venv install or a PYTHONPATH checkout is used alike) and
the markers for tests that need the real engine or the installed .pth.

The suite runs against whatever `import fasttracemalloc` finds.  With
FASTTRACEMALLOC_BACKEND=builtin (development before the engine existed)
the tests that compare the engine with the builtin or need a separate
engine are skipped with a reason, never passed vacuously.

FASTTRACEMALLOC_TEST_MERGER=inline runs every exact session of the suite
without a merger thread (set_merger_thread(False), fasttracemalloc._merger):
an allocating thread whose ring is full merges, as do exiting threads and
queries.  The tests that are about the
merger thread itself (they assert it runs) are skipped in that run, with
the reason.
"""

import os
import site
import subprocess
import sys
import sysconfig

import pytest

import fasttracemalloc
from fasttracemalloc import _backend

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

needs_engine = pytest.mark.skipif(
    _backend.is_builtin,
    reason="FASTTRACEMALLOC_BACKEND=builtin: the engine under test is the "
           "builtin itself")


def pth_installed():
    dirs = set(site.getsitepackages()) | {sysconfig.get_paths()["purelib"],
                                          sysconfig.get_paths()["platlib"]}
    return any(os.path.exists(os.path.join(d, "fasttracemalloc_switch.pth"))
               for d in dirs)


needs_pth = pytest.mark.skipif(
    not pth_installed(),
    reason="fasttracemalloc_switch.pth is not installed in site-packages "
           "(run from a pip-installed venv: tests/python/run_all.sh)")


def child_env(**overrides):
    """The current environment without any tracer switch, plus overrides
    (a value of None removes the variable)."""
    env = dict(os.environ)
    for name in ("PYTHONTRACEMALLOC", "FASTTRACEMALLOC"):
        env.pop(name, None)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def bytearray_block(n):
    """Size of the memory block that bytearray(n) allocates for its data:
    n + 1 (data and a NUL) up to 3.14; from 3.15 a bytearray keeps its data
    in a bytes object, whose block is that object's getsizeof."""
    if sys.version_info >= (3, 15):
        return sys.getsizeof(bytes(n))
    return n + 1


def newref_in_shared_libpython():
    """3.11/3.12: whether this interpreter's _Py_NewReference lives in a
    shared libpython (whose own calls to it go through its PLT, which the
    engine rebinds: capi_rebind.c) rather than in a static executable
    (Debian's /usr/bin/python3.11), found independently of the engine:
    the mapping that holds the function's address."""
    import ctypes
    addr = ctypes.cast(ctypes.pythonapi._Py_NewReference, ctypes.c_void_p).value
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if lo <= addr < hi:
                return len(fields) > 5 and "libpython" in fields[5]
    raise AssertionError("no mapping holds _Py_NewReference")


def newref_patchable():
    """Whether this is a static 3.11 executable on x86-64 Linux (Debian's
    /usr/bin/python3.11), where the engine re-stamps by patching the entry
    of _PyTraceMalloc_NewReference (newref_patch.c) instead of the GOT."""
    import platform
    return (sys.version_info[:2] == (3, 11) and sys.platform == "linux"
            and platform.machine() == "x86_64"
            and not newref_in_shared_libpython())


def free_list_restamped():
    """Whether the engine re-stamps objects handed out from free lists, as
    the builtin does: 3.13+ (PyRefTracer), or 3.11/3.12 where it can wrap
    the interpreter's own _Py_NewReference calls (a shared libpython), or
    patch them (a static 3.11 on x86-64)."""
    return (sys.version_info >= (3, 13) or newref_in_shared_libpython()
            or newref_patchable())


SNAPSHOT_MODULES = {"builtin": "tracemalloc", "fasttracemalloc": "fasttracemalloc"}


def dump_snapshot_pair(tmp, which, program):
    """Run `program` (a format string naming {module}; it dumps two
    snapshots to argv[1] and argv[2]) under SNAPSHOT_MODULES[which] in
    directory tmp; returns (old path, new path, program path)."""
    prog = tmp / "prog.py"
    prog.write_text(program.format(module=SNAPSHOT_MODULES[which]))
    old, new = tmp / "old.snapshot", tmp / "new.snapshot"
    args = [str(prog), str(old), str(new)]
    if which == "builtin":
        # the stdlib only: no fasttracemalloc importable or installed
        proc = subprocess.run([sys.executable, "-I", "-S", *args],
                              capture_output=True, text=True, cwd=str(tmp),
                              env=child_env())
    else:
        proc = run_python(*args, cwd=str(tmp))
    assert proc.returncode == 0, proc.stderr
    return old, new, prog


def bad_files(tmp_path):
    """Files in tmp_path that are not snapshots, each with the one-line
    error the report commands give for it (the missing one is not made)."""
    import pickle
    (tmp_path / "garbage").write_bytes(b"garbage")
    (tmp_path / "list.pickle").write_bytes(pickle.dumps([1, 2]))
    return [("missing", "cannot read 'missing'"),
            ("garbage", "'garbage' is not a snapshot"),
            ("list.pickle", "'list.pickle' holds a list, not a snapshot")]


def run_python(*args, env=None, cwd=None, timeout=300, **env_overrides):
    """Run this interpreter with *args*; return CompletedProcess (text)."""
    if env is None:
        env = child_env(**env_overrides)
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def run_json_case(tmp_path, prelude, body, **env):
    """Run `prelude` + dedented `body` as a script in a fresh interpreter
    (env overrides as for run_python); the script fills a dict `out`, which
    is printed as JSON and returned.  The script must exit 0 and print
    nothing on stderr."""
    import json
    import textwrap
    path = tmp_path / "case.py"
    path.write_text(prelude + textwrap.dedent(body)
                    + "\nprint(json.dumps(out))\n")
    proc = run_python(str(path), **env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


MERGER_INLINE = os.environ.get("FASTTRACEMALLOC_TEST_MERGER") == "inline"

needs_merger_thread = pytest.mark.skipif(
    MERGER_INLINE,
    reason="FASTTRACEMALLOC_TEST_MERGER=inline: asserts that exact sessions "
           "run a merger thread")


def pytest_configure(config):
    if MERGER_INLINE:
        if _backend.is_builtin:
            raise pytest.UsageError("FASTTRACEMALLOC_TEST_MERGER=inline "
                                    "needs the engine")
        fasttracemalloc.set_merger_thread(False)


def pytest_report_header(config):
    return ["fasttracemalloc %s from %s, engine: %s (%s)"
            % (fasttracemalloc.__version__,
               os.path.dirname(fasttracemalloc.__file__), _backend.name,
               _backend.engine.__name__),
            "LD_PRELOAD=%s" % os.environ.get("LD_PRELOAD", ""),
            "exact sessions' merger: %s"
            % ("inline (FASTTRACEMALLOC_TEST_MERGER)" if MERGER_INLINE
               else "thread")]


@pytest.fixture
def stopped():
    """Ensure neither tracer is running before and after a test."""
    import _tracemalloc
    import tracemalloc
    assert not tracemalloc.is_tracing(), "a previous test left tracing on"
    yield
    fasttracemalloc.stop()
    _tracemalloc.stop()
    fasttracemalloc.uninstall()
