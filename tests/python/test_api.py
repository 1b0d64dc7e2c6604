"""The public API is the stdlib's: names, signatures, answers, exceptions.

Every error case is executed on the builtin ``_tracemalloc``/``tracemalloc``
and on fasttracemalloc, and the exception type and message must match.
"""

import inspect
import os
import pickle

import _tracemalloc
import pytest
import tracemalloc

import fasttracemalloc

from conftest import needs_engine

ENGINE_FUNCTIONS = ("start", "stop", "is_tracing", "clear_traces",
                    "get_traceback_limit", "get_traced_memory", "reset_peak",
                    "get_tracemalloc_memory", "_get_traces",
                    "_get_object_traceback")
PUBLIC = ENGINE_FUNCTIONS[:-2] + (
    "take_snapshot", "get_object_traceback", "Snapshot", "Statistic",
    "StatisticDiff", "Filter", "DomainFilter", "Frame", "Traceback", "Trace",
    "BaseFilter")


def outcome(fn, *args, **kwargs):
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:  # the point is to compare them
        # CPython's generic argument errors name the function with its
        # module ("_tracemalloc.start() takes no keyword arguments"); the
        # engine's module is fasttracemalloc._fasttracemalloc.  That prefix
        # is the only difference allowed.
        message = str(exc).replace("fasttracemalloc._fasttracemalloc.",
                                   "_tracemalloc.")
        return ("raises", type(exc), message)
    return ("returns", result)


def test_every_public_name_exists():
    stdlib_public = {n for n in dir(tracemalloc) if not n.startswith("_")
                     and (callable(getattr(tracemalloc, n)))
                     and getattr(getattr(tracemalloc, n), "__module__", None)
                     in ("tracemalloc", "_tracemalloc")}
    assert stdlib_public <= set(dir(fasttracemalloc))
    for name in PUBLIC:
        assert hasattr(fasttracemalloc, name), name
        assert name in fasttracemalloc.__all__, name


def test_classes_are_the_stdlibs():
    for name in ("Statistic", "StatisticDiff", "Filter", "DomainFilter",
                 "Frame", "Traceback", "Trace", "BaseFilter"):
        assert getattr(fasttracemalloc, name) is getattr(tracemalloc, name)
    assert issubclass(fasttracemalloc.Snapshot, tracemalloc.Snapshot)


@pytest.mark.parametrize("name", ENGINE_FUNCTIONS + ("take_snapshot",
                                                    "get_object_traceback"))
def test_signatures_match(name):
    ours = getattr(fasttracemalloc, name)
    theirs = getattr(tracemalloc, name)
    try:
        expected = inspect.signature(theirs)
    except ValueError:
        expected = None
    if expected is None:
        pytest.skip("the builtin %s has no introspectable signature" % name)
    assert inspect.signature(ours) == expected


def test_answers_when_not_tracing(stopped):
    assert fasttracemalloc.is_tracing() is False
    assert fasttracemalloc.get_traced_memory() == (0, 0)
    assert fasttracemalloc._get_traces() == []
    assert fasttracemalloc._get_object_traceback([]) is None
    assert fasttracemalloc.get_object_traceback(object()) is None
    assert fasttracemalloc.get_tracemalloc_memory() >= 0
    assert fasttracemalloc.clear_traces() is None
    assert fasttracemalloc.reset_peak() is None
    assert fasttracemalloc.stop() is None


def test_traceback_limit_survives_stop(stopped):
    for mod in (_tracemalloc, fasttracemalloc):
        mod.start(7)
        assert mod.get_traceback_limit() == 7
        mod.stop()
        assert mod.get_traceback_limit() == 7
        mod.start()
        assert mod.get_traceback_limit() == 1
        mod.stop()


BAD_CALLS = [
    ("start", ("x",), {}),
    ("start", (0,), {}),
    ("start", (-1,), {}),
    ("start", (65536,), {}),
    ("start", (2 ** 30,), {}),
    ("start", (2 ** 70,), {}),
    ("start", (-2 ** 70,), {}),
    ("start", (1.5,), {}),
    ("start", (None,), {}),
    ("start", (1, 2), {}),
    ("start", (), {"nframe": 5}),
    ("stop", (1,), {}),
    ("is_tracing", (1,), {}),
    ("clear_traces", (1,), {}),
    ("get_traceback_limit", (1,), {}),
    ("get_traced_memory", (1,), {}),
    ("reset_peak", (1,), {}),
    ("get_tracemalloc_memory", (1,), {}),
    ("_get_traces", (1,), {}),
    ("_get_object_traceback", (), {}),
    ("_get_object_traceback", (1, 2), {}),
    ("_get_object_traceback", (), {"obj": 1}),
]


@pytest.mark.parametrize("name,args,kwargs", BAD_CALLS,
                         ids=["%s%r%r" % c for c in BAD_CALLS])
def test_bad_engine_calls_raise_like_builtin(stopped, name, args, kwargs):
    expected = outcome(getattr(_tracemalloc, name), *args, **kwargs)
    got = outcome(getattr(fasttracemalloc, name), *args, **kwargs)
    fasttracemalloc.stop()
    _tracemalloc.stop()
    assert expected[0] == "raises"
    assert got == expected


@pytest.mark.parametrize("name,args", [
    ("get_object_traceback", ()),
    ("get_object_traceback", (1, 2)),
    ("take_snapshot", (1,)),
])
def test_bad_python_level_calls(stopped, name, args):
    assert outcome(getattr(fasttracemalloc, name), *args) == \
        outcome(getattr(tracemalloc, name), *args)


def test_take_snapshot_requires_tracing(stopped):
    expected = outcome(tracemalloc.take_snapshot)
    assert expected[0] == "raises" and expected[1] is RuntimeError
    assert outcome(fasttracemalloc.take_snapshot) == expected


def test_load_errors(tmp_path):
    missing = str(tmp_path / "missing")
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"this is not a pickle")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated"
    truncated.write_bytes(pickle.dumps(tracemalloc.Snapshot([], 1))[:10])
    for path in (missing, str(garbage), str(empty), str(truncated),
                 str(tmp_path)):
        expected = outcome(tracemalloc.Snapshot.load, path)
        assert expected[0] == "raises"
        assert outcome(fasttracemalloc.Snapshot.load, path) == expected


def _snapshot_pair():
    traces = [(0, 10, (("a.py", 2), ("b.py", 4)), 3), (1, 5, (("c.py", 1),), 1)]
    return (tracemalloc.Snapshot(list(traces), 2),
            fasttracemalloc.Snapshot(list(traces), 2))


@pytest.mark.parametrize("method,args,kwargs", [
    ("statistics", ("bad",), {}),
    ("statistics", ("traceback",), {"cumulative": True}),
    ("statistics", (), {}),
    ("statistics", (None,), {}),
    ("compare_to", (None, "lineno"), {}),
    ("compare_to", (), {}),
    ("filter_traces", (5,), {}),
    ("filter_traces", (tracemalloc.Filter(True, "a.py"),), {}),
    ("filter_traces", ([5],), {}),
    ("filter_traces", (), {}),
    ("dump", (), {}),
    ("dump", ("/nonexistent-dir/x/y",), {}),
])
def test_bad_snapshot_calls(method, args, kwargs):
    theirs, ours = _snapshot_pair()
    assert outcome(getattr(ours, method), *args, **kwargs) == \
        outcome(getattr(theirs, method), *args, **kwargs)


def test_malformed_traces_fail_alike():
    for traces in ([(0, 10, (("a.py", 2),))],        # 3-tuples
                   [(0, 10, (), 0)],                   # empty traceback
                   [(0, "x", (("a.py", 2),), 1), (0, 1, (("a.py", 2),), 1)]):
        for key_type in ("lineno", "filename", "traceback"):
            theirs = tracemalloc.Snapshot(list(traces), 1)
            ours = fasttracemalloc.Snapshot(list(traces), 1)
            assert outcome(ours.statistics, key_type) == \
                outcome(theirs.statistics, key_type)


@pytest.mark.parametrize("args,kwargs", [
    ((), {}), ((True,), {}), ((True, None), {}), ((True, 5), {}),
    ((True, "a.py", 1, False, 1, 2), {}), ((True, "a.py"), {"bogus": 1}),
])
def test_filter_constructor_errors_are_the_stdlibs(args, kwargs):
    assert outcome(fasttracemalloc.Filter, *args, **kwargs)[:2] == \
        outcome(tracemalloc.Filter, *args, **kwargs)[:2]
    assert outcome(fasttracemalloc.DomainFilter, *args[:1]) [:2]== \
        outcome(tracemalloc.DomainFilter, *args[:1])[:2]


@needs_engine
def test_get_object_traceback_of_class_instance(stopped):
    """3.11's builtin forgets the managed-dict pre-header and answers None
    for ordinary class instances; the engine must find them."""
    class Plain:
        pass
    fasttracemalloc.start(1)
    obj = Plain()
    line = inspect.currentframe().f_lineno - 1
    tb = fasttracemalloc.get_object_traceback(obj)
    fasttracemalloc.stop()
    assert tb is not None
    assert (tb[-1].filename, tb[-1].lineno) == (__file__, line)


def test_get_object_traceback_matches_frames(stopped):
    fasttracemalloc.start(4)
    data = b"x" * 5000
    line = inspect.currentframe().f_lineno - 1
    tb = fasttracemalloc.get_object_traceback(data)
    traces = fasttracemalloc._get_traces()
    fasttracemalloc.stop()
    assert tb is not None and len(tb) == 4
    assert (tb[-1].filename, tb[-1].lineno) == (os.path.abspath(__file__), line)
    assert isinstance(traces, list)
    assert all(isinstance(t, tuple) and len(t) == 4 for t in traces)
