"""Free-list objects re-stamped through PyRefTracer (3.13+), and the
tracer's one global slot shared with the builtin; on 3.11/3.12, through
the engine's wrapper of _Py_NewReference (capi_rebind.c).

CPython hands out some objects (empty lists among them) from free lists
without calling the allocator.  From 3.13 the engine re-stamps such an
object with the traceback of its creation, as the builtin does; on
3.11/3.12 it does so where the interpreter calls _Py_NewReference through
a GOT slot (a shared libpython) and cannot where it calls it directly (a
static executable: README, "Differences"); a test pins both down, so the
difference stays documented rather than drifting.

Each case runs in a fresh interpreter: free lists and the tracer slot are
process-wide state.
"""

import json
import sys
import textwrap

import pytest

from conftest import (free_list_restamped, needs_engine,
                      newref_in_shared_libpython, newref_patchable,
                      run_json_case, run_python)

pytestmark = needs_engine

# Line numbers below are relative to SCRIPT's first line (1-based).
SCRIPT = """\
import gc, json, sys, tracemalloc, _tracemalloc
import fasttracemalloc as ftm

def make():
    return []                                   # line 5: the first list

def reuse():
    return []                                   # line 8: taken from the free list

def where(get, obj):
    tb = get(obj)
    return None if tb is None else tb[0].lineno

def case(get):
    gc.collect()                               # empties the free lists
    first = make()
    first = None                               # back to the free list
    second = reuse()
    return where(get, second)

out = {}
"""


def run_case(tmp_path, body):
    return run_json_case(tmp_path, SCRIPT, body)


def test_free_list_object_gets_its_own_traceback(tmp_path):
    out = run_case(tmp_path, """
        ftm.start(1)
        out["ours"] = case(ftm.get_object_traceback)
        out["rebound"] = ftm._fasttracemalloc._stats()["newref_rebound"]
        out["patched"] = ftm._fasttracemalloc._stats().get("newref_patched")
        ftm.stop()
        tracemalloc.start(1)
        out["builtin"] = case(tracemalloc.get_object_traceback)
        tracemalloc.stop()
    """)
    assert out["builtin"] == 8, out   # the builtin re-stamps on every version
    if sys.version_info >= (3, 13):
        assert out["ours"] == 8, out
        assert out["rebound"] is False, out   # PyRefTracer instead
    elif newref_in_shared_libpython():
        # 3.11/3.12 with a shared libpython: _Py_NewReference rebound
        assert out["rebound"] is True, out
        assert out["ours"] == 8, out
    elif newref_patchable():
        # a static 3.11 on x86-64: _PyTraceMalloc_NewReference patched
        assert out["rebound"] is False, out
        assert out["patched"] is True, out
        assert out["ours"] == 8, out
    else:
        # a static executable calls _Py_NewReference directly: the reuse is
        # invisible to a third party and the block keeps the traceback of
        # its first allocation (documented; the engine says so).
        assert out["rebound"] is False, out
        assert out["ours"] == 5, out


@pytest.mark.skipif(sys.version_info >= (3, 13),
                    reason="3.11/3.12: the _Py_NewReference wrapper")
def test_newref_wrapper_chains_to_the_builtin(tmp_path):
    """With the interpreter's _Py_NewReference slots rewritten, the builtin
    started on top of ours still re-stamps (the wrapper calls the original,
    which calls the builtin's hook), and so does the builtin alone after
    ours stopped (the slots stay rewritten: the wrapper forwards)."""
    out = run_case(tmp_path, """
        ftm.start(1)
        _tracemalloc.start(1)
        gc.collect()
        first = make(); first = None
        second = reuse()
        out["both_ours"] = where(ftm.get_object_traceback, second)
        out["both_builtin"] = where(tracemalloc.get_object_traceback, second)
        _tracemalloc.stop()
        ftm.stop()
        tracemalloc.start(1)
        out["builtin_after"] = case(tracemalloc.get_object_traceback)
        tracemalloc.stop()
    """)
    # ours is below the builtin's allocator hook: the builtin's wrapper
    # calls ours, so ours traces (and re-stamps, when rebound) as well
    assert out["both_builtin"] == 8, out
    assert out["builtin_after"] == 8, out
    if newref_in_shared_libpython():
        assert out["both_ours"] == 8, out
    elif newref_patchable():
        # the builtin's start undid the patch (it needs its flag back):
        # ours goes on without re-stamping (newref_patch.c)
        assert out["both_ours"] == 5, out


@pytest.mark.skipif(sys.version_info < (3, 13),
                    reason="PyRefTracer_SetTracer exists from 3.13")
def test_tracer_slot_survives_the_builtin_taking_it(tmp_path):
    """The builtin takes the slot while ours is installed and clears it on
    its stop; our next session must install ours again."""
    out = run_case(tmp_path, """
        ftm.start(1)
        _tracemalloc.start(1)   # overwrites the slot with the builtin's tracer
        _tracemalloc.stop()     # and clears it
        ftm.stop()
        ftm.start(1)
        out["ours_again"] = case(ftm.get_object_traceback)
        ftm.stop()
    """)
    assert out["ours_again"] == 8, out


@pytest.mark.skipif(sys.version_info < (3, 13),
                    reason="PyRefTracer_SetTracer exists from 3.13")
def test_builtin_tracer_is_chained_and_restored(tmp_path):
    """Ours installed on top of the builtin's tracer: both see the reuse
    while both trace, and the builtin's tracer is put back when ours
    stops."""
    out = run_case(tmp_path, """
        _tracemalloc.start(1)
        ftm.start(1)
        gc.collect()
        first = make(); first = None
        second = reuse()
        out["both_ours"] = where(ftm.get_object_traceback, second)
        out["both_builtin"] = where(tracemalloc.get_object_traceback, second)
        ftm.stop()
        out["builtin_after"] = case(tracemalloc.get_object_traceback)
        _tracemalloc.stop()
    """)
    assert out == {"both_ours": 8, "both_builtin": 8, "builtin_after": 8}, out


@pytest.mark.skipif(sys.version_info >= (3, 13),
                    reason="3.11/3.12: the _Py_NewReference wrapper")
def test_newref_refusal_is_counted_and_keeps_tracing(tmp_path):
    """Where _Py_NewReference cannot be rebound (forced here, as on a static
    executable), every start() is counted in newref_refusals, nothing is
    printed (no warning perturbs the program or its free lists), and
    tracing goes on as before: a free-list object keeps its block's first
    traceback."""
    path = tmp_path / "case.py"
    path.write_text(SCRIPT + textwrap.dedent("""
        ftm.start(1)
        out["ours"] = case(ftm.get_object_traceback)
        ftm.stop()
        ftm.start(1)
        stats = ftm._fasttracemalloc._stats()
        out["rebound"] = stats["newref_rebound"]
        out["refusals"] = stats["newref_refusals"]
        ftm.stop()
        """) + "\nprint(json.dumps(out))\n")
    proc = run_python(str(path), _FASTTRACEMALLOC_REFUSE_NEWREF="1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out == {"ours": 5, "rebound": False, "refusals": 2}, out


needs_restamp = pytest.mark.skipif(
    not free_list_restamped(),
    reason="free-list objects are not re-stamped on a static 3.11/3.12 "
           "executable (README, Differences)")


@needs_restamp
def test_fresh_object_shortcut_is_one_shot(tmp_path):
    """The same function, at the same instruction and the same frame
    address, creates a list twice from two callers; the second list is the
    first one's block back from the free list, with no allocation in
    between.  Only the one-shot rule of the fresh-object shortcut (hooks.c)
    tells the second CREATE from the first: it must be re-stamped with the
    second caller's line, as the builtin does."""
    out = run_case(tmp_path, """
        def f():
            return []                          # line 24

        def case2(get):
            gc.collect()
            first = f()                        # line 28
            first = None
            second = f()                       # line 30
            tb = get(second)
            return None if tb is None else [fr.lineno for fr in tb]

        ftm.start(2)
        out["ours"] = case2(ftm.get_object_traceback)
        ftm.stop()
        tracemalloc.start(2)
        out["builtin"] = case2(tracemalloc.get_object_traceback)
        tracemalloc.stop()
    """)
    # oldest frame first: the second caller's line, then f's
    assert out["builtin"] == [30, 24], out
    assert out["ours"] == out["builtin"], out


@needs_restamp
def test_fresh_objects_cost_one_event(tmp_path):
    """An object created from a fresh block costs the engine one event
    (its allocation), not two: the re-stamp that would record the same
    traceback is skipped.  An object taken from a free list is still
    re-stamped (test above and test_free_list_object_gets_its_own_traceback).
    """
    out = run_case(tmp_path, """
        N = 20000
        nones = [None] * N
        stats = ftm._fasttracemalloc._stats
        ftm.start(1)
        before = stats()["events_recorded"]
        objs = [object() for _ in nones]           # line 28
        out["events"] = stats()["events_recorded"] - before
        out["line"] = where(ftm.get_object_traceback, objs[N // 2])
        ftm.stop()
        out["n"] = N
    """)
    assert out["line"] == 28, out
    # N allocations, the list's own growth (a few dozen reallocs) and the
    # query's bookkeeping; without the shortcut: 2 N
    assert out["n"] <= out["events"] < 1.1 * out["n"], out
