"""Queries trace nothing of their own (issue 10, item 5).

A builtin user has ``tracemalloc`` (and with it pickle, linecache, fnmatch
...) imported before tracing starts; fasttracemalloc loads those lazily, on
the first query, so that the start-up switch imports nothing.  That lazy
work, and any scratch memory the package needs and the stdlib does not,
must not show in later snapshots or in get_traced_memory().  What the
user's code itself keeps from a query (the Snapshot, the Statistic list)
stays traced, as under the builtin.

The lazy imports happen once per process, so every comparison runs the
same script in fresh interpreters, once with the builtin and once with
fasttracemalloc, and compares their answers.  The in-process tests cover
the private per-thread scope behind it (_suspend/_resume).
"""

import json
import os
import textwrap
import threading

import pytest

import fasttracemalloc
from conftest import needs_engine, needs_pth, run_python

pytestmark = needs_engine

# The README's example, with a workload that dominates the top line.
README_EXAMPLE = textwrap.dedent("""\
    import json, os, sys
    if sys.argv[1] == "ftm":
        import fasttracemalloc as tracemalloc
    else:
        import tracemalloc
    tracemalloc.start(25)
    data = [bytes(1000) for _ in range(1000)]
    snapshot = tracemalloc.take_snapshot()
    top = [[s.traceback[0].filename, s.traceback[0].lineno, s.size, s.count]
           for s in snapshot.statistics('lineno')[:10]]
    # every frame of every trace (nframe=25 keeps whole tracebacks here)
    files = sorted({f.filename for t in snapshot.traces for f in t.traceback})
    print(json.dumps({"top": top, "files": files}))
    """)
DATA_LINE = 7


# On 3.11 and 3.12 an object taken from a CPython free list keeps the
# trace of the block's first allocation (README, Differences), or none if
# it was first allocated untraced.  Whether, say, the program's `data` list
# is a fresh block or a recycled one depends on what ran before it (the
# builtin traces from the first instruction, the .pth switch from site
# import; fasttracemalloc's untraced imports recycle their own blocks), so
# a line may gain or lose a few such blocks: 1 KiB and 16 blocks covers
# that (a handful measured) and is a thousandth of what the lines hold.
FREE_LIST_SLACK = 1024
FREE_LIST_BLOCKS = 16


def same_line(ours, builtin):
    """[filename, lineno, size, count] lines: the same line, the same size
    and count within the free-list slack."""
    return (ours[:2] == builtin[:2]
            and abs(ours[2] - builtin[2]) <= FREE_LIST_SLACK
            and abs(ours[3] - builtin[3]) <= FREE_LIST_BLOCKS)


PACKAGE_DIR = os.path.dirname(os.path.abspath(fasttracemalloc.__file__))


def package_files(files):
    """The files of this package among *files* (the children run the same
    installed package; a path test, since an interpreter's own prefix may
    contain the word fasttracemalloc)."""
    return [f for f in files
            if os.path.dirname(os.path.abspath(f)) == PACKAGE_DIR]


def run_both(tmp_path, script, *args):
    path = tmp_path / "prog.py"
    path.write_text(script)
    out = {}
    for mode in ("builtin", "ftm"):
        proc = run_python(str(path), mode, *args)
        assert proc.returncode == 0, proc.stderr
        out[mode] = json.loads(proc.stdout)
    return str(path), out["builtin"], out["ftm"]


def test_readme_example_top_line_is_the_builtins(tmp_path):
    path, builtin, ftm = run_both(tmp_path, README_EXAMPLE)
    # The builtin's top line is the program's data line ...
    assert builtin["top"][0][:2] == [path, DATA_LINE], builtin
    # ... and so is ours, with the size of the data the program keeps
    # there (1000 bytes objects and their list, about 1 MiB), give or take
    # FREE_LIST_SLACK.
    assert same_line(ftm["top"][0], builtin["top"][0]), (ftm, builtin)
    # No line of the first query's own imports is in the answer: the same
    # lines as the builtin's, in the same order.
    assert [t[:2] for t in ftm["top"]] == [t[:2] for t in builtin["top"]]
    for files in (builtin["files"], ftm["files"]):
        assert not [f for f in files if "importlib" in f
                    or f.endswith("tracemalloc.py")
                    or f.endswith("pickle.py")], files
        assert package_files(files) == [], files


DEEP_QUERY = textwrap.dedent("""\
    import json, sys
    if sys.argv[1] == "ftm":
        import fasttracemalloc as tracemalloc
    else:
        import tracemalloc
    DEPTH = 40

    def deep(n):
        if n > 1:
            return deep(n - 1)
        before = tracemalloc.get_traced_memory()[0]
        snapshot = tracemalloc.take_snapshot()
        stats = snapshot.statistics('lineno')
        after = tracemalloc.get_traced_memory()
        count = len(tracemalloc.take_snapshot().traces)
        return before, after, count, snapshot, stats

    keep = [bytearray(100) for _ in range(500)]
    tracemalloc.start(25)
    more = [bytearray(200) for _ in range(500)]
    before, after, count, snapshot, stats = deep(DEPTH)
    print(json.dumps({"delta": after[0] - before, "peak": after[1] - before,
                      "traces": count, "stats": len(stats),
                      "limit": snapshot.traceback_limit}))
    """)


def test_query_at_depth_leaves_traced_memory_where_the_builtins_is(tmp_path):
    """nframe=25 at a stack 40 frames deep.  After the query, the program
    keeps the snapshot and its statistics: get_traced_memory() has grown
    by their size under both tracers.  Before the fix, fasttracemalloc's
    grew by about 1 MiB more (the first query's imports).

    Tolerance: FREE_LIST_SLACK on current and peak, FREE_LIST_BLOCKS
    traces.  Both keep the same objects, but which transient blocks (ints,
    tuples, lists, built by the stdlib's _group_by or by ours) end up
    parked in CPython's free lists, where a block keeps the trace of its
    first allocation, differs: under 100 bytes measured on 3.11 and 3.13."""
    _, builtin, ftm = run_both(tmp_path, DEEP_QUERY)
    assert ftm["limit"] == builtin["limit"] == 25
    assert ftm["stats"] == builtin["stats"]
    assert builtin["delta"] > 0
    assert abs(ftm["delta"] - builtin["delta"]) <= FREE_LIST_SLACK, \
        (ftm, builtin)
    assert abs(ftm["peak"] - builtin["peak"]) <= FREE_LIST_SLACK, \
        (ftm, builtin)
    assert abs(ftm["traces"] - builtin["traces"]) <= FREE_LIST_BLOCKS, \
        (ftm, builtin)


SWITCH_QUERY = textwrap.dedent("""\
    import json
    data = [bytes(1000) for _ in range(3000)]
    import tracemalloc
    snapshot = tracemalloc.take_snapshot()
    top = snapshot.statistics('lineno')[0]
    files = sorted({f.filename for t in snapshot.traces for f in t.traceback})
    print(json.dumps({"top": [top.traceback[0].lineno, top.size, top.count],
                      "files": files}))
    """)


@needs_pth
def test_switch_install_is_untraced(tmp_path):
    """Under FASTTRACEMALLOC=25 the program's own `import tracemalloc` is
    traced (about 1 MiB, as under PYTHONTRACEMALLOC=25), but install(),
    which the switch runs right after it, is not: no trace has a frame in
    the modules install() loads or runs.  (The import's own tracebacks
    pass through the switch's loader wrapper in _switch.py.)"""
    path = tmp_path / "prog.py"
    path.write_text(SWITCH_QUERY)
    results = []
    for env in ({"PYTHONTRACEMALLOC": "25"}, {"FASTTRACEMALLOC": "25"}):
        proc = run_python(str(path), **env)
        assert proc.returncode == 0, proc.stderr
        results.append(json.loads(proc.stdout))
    builtin, ftm = results
    assert builtin["top"][0] == 2
    assert same_line([path] + ftm["top"], [path] + builtin["top"]), \
        (ftm, builtin)
    assert package_files(builtin["files"]) == []
    ours = {os.path.basename(f) for f in package_files(ftm["files"])}
    assert ours <= {"_switch.py"}, ours


# --- the private scope itself ---------------------------------------------

engine = fasttracemalloc._backend.engine


def test_suspended_allocations_are_not_traced(stopped):
    fasttracemalloc.start(5)
    try:
        kept = bytearray(50_000)
        before = fasttracemalloc.get_traced_memory()[0]
        engine._suspend()
        try:
            hidden = bytearray(100_000)
        finally:
            engine._resume()
        assert fasttracemalloc.get_object_traceback(hidden) is None
        assert fasttracemalloc.get_object_traceback(kept) is not None
        middle = fasttracemalloc.get_traced_memory()[0]
        assert middle - before < 50_000
        # its free is recorded but removes nothing: current does not drop
        # by the untraced block's size, and the traced one is still there
        del hidden
        after = fasttracemalloc.get_traced_memory()[0]
        assert after > middle - 50_000
        assert fasttracemalloc.get_object_traceback(kept) is not None
        shown = bytearray(100_000)
        assert fasttracemalloc.get_object_traceback(shown) is not None
        assert fasttracemalloc.get_traced_memory()[0] >= after + 100_000
    finally:
        fasttracemalloc.stop()


def test_suspend_nests_and_resume_checks(stopped):
    fasttracemalloc.start(1)
    try:
        engine._suspend()
        engine._suspend()
        engine._resume()
        still = bytearray(10_000)  # one level left: still suspended
        engine._resume()
        again = bytearray(10_000)
        assert fasttracemalloc.get_object_traceback(still) is None
        assert fasttracemalloc.get_object_traceback(again) is not None
        with pytest.raises(RuntimeError, match="without a matching"):
            engine._resume()
        with pytest.raises(TypeError):
            engine._suspend(1)
    finally:
        fasttracemalloc.stop()


def test_suspend_is_per_thread(stopped):
    """While the main thread is suspended, another thread's allocations
    are traced (free-threaded builds included: the scope is per thread)."""
    fasttracemalloc.start(1)
    go = threading.Event()
    box = []

    def work():
        go.wait()
        box.append(bytearray(30_000))

    thread = threading.Thread(target=work)
    thread.start()
    try:
        engine._suspend()
        try:
            go.set()
            thread.join()
            mine = bytearray(30_000)
        finally:
            engine._resume()
        assert fasttracemalloc.get_object_traceback(box[0]) is not None
        assert fasttracemalloc.get_object_traceback(mine) is None
    finally:
        go.set()
        thread.join()
        fasttracemalloc.stop()


def test_package_modules_are_loaded_untraced(stopped):
    """In a fresh process: the first access to a lazy name while tracing
    leaves no trace of the import."""
    code = textwrap.dedent("""\
        import sys, fasttracemalloc
        assert "tracemalloc" not in sys.modules
        fasttracemalloc.start(25)
        before = fasttracemalloc.get_traced_memory()[0]
        fasttracemalloc.Snapshot, fasttracemalloc.Filter
        after = fasttracemalloc.get_traced_memory()[0]
        assert "tracemalloc" in sys.modules
        print(after - before)
        """)
    proc = run_python("-c", code)
    assert proc.returncode == 0, proc.stderr
    # tracemalloc, pickle, fnmatch, linecache ... are hundreds of KiB; what
    # may be left is free-list noise (see FREE_LIST_SLACK)
    assert int(proc.stdout) <= FREE_LIST_SLACK, proc.stdout
