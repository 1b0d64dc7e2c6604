"""multiprocessing children are traced the way the builtin's are (issue 10,
item 5).

The builtin's ``-X tracemalloc=N`` reaches the children that multiprocessing
starts with ``spawn`` and ``forkserver`` (through
``subprocess._args_from_interpreter_flags``), ``PYTHONTRACEMALLOC=N``
through the inherited environment, and ``fork`` children inherit the
tracer.  Each case runs the same program under the builtin's switch and
under fasttracemalloc's, and the child's answers must be the same: tracing,
the traceback limit, the line of an allocation the child makes -- with the
engine (not the builtin) doing the tracing in ours.  ``python -m
fasttracemalloc run -n N`` traces such children like ``-X
fasttracemalloc=N``.
"""

import json
import textwrap

import pytest

from conftest import needs_engine, needs_pth, run_python

pytestmark = [needs_pth, needs_engine]

PROGRAM = textwrap.dedent("""\
    import json, sys
    import multiprocessing as mp


    def probe(queue):
        import _tracemalloc
        import tracemalloc
        x = bytearray(12345)
        tb = tracemalloc.get_object_traceback(x)
        ftm = sys.modules.get("fasttracemalloc")
        queue.put({
            "tracing": tracemalloc.is_tracing(),
            "limit": tracemalloc.get_traceback_limit(),
            "engine": "fasttracemalloc" if ftm is not None
                      and tracemalloc.start is ftm.start else "builtin",
            "builtin_tracing": _tracemalloc.is_tracing(),
            "line": tb[-1].lineno if tb is not None else None,
        })


    if __name__ == "__main__":
        ctx = mp.get_context(sys.argv[1])
        queue = ctx.Queue()
        child = ctx.Process(target=probe, args=(queue,))
        child.start()
        answer = queue.get()
        child.join()
        print(json.dumps(answer))
        sys.exit(child.exitcode)
    """)
ALLOC_LINE = PROGRAM.splitlines().index(
    "    x = bytearray(12345)") + 1

METHODS = ("spawn", "forkserver", "fork")


def child_answer(tmp_path, method, *args, **env):
    path = tmp_path / "prog.py"
    path.write_text(PROGRAM)
    proc = run_python(*args, str(path), method, cwd=str(tmp_path), **env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def traced(limit, engine):
    return {"tracing": True, "limit": limit, "engine": engine,
            "builtin_tracing": engine == "builtin", "line": ALLOC_LINE}


UNTRACED = {"tracing": False, "limit": 1, "engine": "builtin",
            "builtin_tracing": False, "line": None}


@pytest.mark.parametrize("method", METHODS)
def test_xoption_reaches_children(tmp_path, method):
    builtin = child_answer(tmp_path, method, "-X", "tracemalloc=5")
    assert builtin == traced(5, "builtin")
    ours = child_answer(tmp_path, method, "-X", "fasttracemalloc=5")
    assert ours == traced(5, "fasttracemalloc")


@pytest.mark.parametrize("method", METHODS)
def test_env_reaches_children(tmp_path, method):
    builtin = child_answer(tmp_path, method, PYTHONTRACEMALLOC="7")
    assert builtin == traced(7, "builtin")
    ours = child_answer(tmp_path, method, FASTTRACEMALLOC="7")
    assert ours == traced(7, "fasttracemalloc")


@pytest.mark.parametrize("method", ("spawn", "forkserver"))
def test_xoption_off_wins_over_env_in_children(tmp_path, method):
    """-X ...=0 with the variable set: the parent does not trace, and its
    children do not either (the -X option travels, and wins there too)."""
    builtin = child_answer(tmp_path, method, "-X", "tracemalloc=0",
                           PYTHONTRACEMALLOC="3")
    assert builtin == UNTRACED
    ours = child_answer(tmp_path, method, "-X", "fasttracemalloc=0",
                        FASTTRACEMALLOC="3")
    assert ours == UNTRACED


@pytest.mark.parametrize("method", METHODS)
def test_run_traces_children(tmp_path, method):
    snapshot = tmp_path / "out.snapshot"
    ours = child_answer(tmp_path, method, "-m", "fasttracemalloc", "run",
                        "-n", "6", "--top", "0", "-o", str(snapshot))
    assert ours == traced(6, "fasttracemalloc")
    assert snapshot.exists()


def test_untraced_parent_has_untraced_children(tmp_path):
    assert child_answer(tmp_path, "spawn") == UNTRACED
