"""fasttracemalloc.Snapshot answers exactly what tracemalloc.Snapshot answers.

Each check builds the same traces into a plain stdlib Snapshot and into the
fast subclass and compares statistics()/compare_to()/filter_traces() element
by element, in order.  Traces come from random synthetic data (shared
traceback objects, equal-but-distinct tuples, several domains, recursion,
"<unknown>" frames) and from real snapshots of the engine.
"""

import pickle
import random
import subprocess
import sys

import pytest
import tracemalloc

import fasttracemalloc

from conftest import child_env

KEYS = [("lineno", False), ("filename", False), ("traceback", False),
        ("lineno", True), ("filename", True)]


def synthetic_traces(seed, n=3000):
    rng = random.Random(seed)
    files = ["a.py", "b.py", "pkg/c.py", "<unknown>", "d.pyc", "x/y/z.py"]
    frames = [(f, rng.randrange(0, 40)) for f in files for _ in range(6)]
    pool = []
    for _ in range(60):
        depth = rng.randrange(1, 8)
        tb = tuple(rng.choice(frames) for _ in range(depth))
        if rng.random() < 0.2:          # recursion: repeated frames
            tb = tb + tb[:2]
        pool.append(tb)
    traces = []
    for _ in range(n):
        tb = rng.choice(pool)
        if rng.random() < 0.3:          # equal, but a distinct tuple object
            tb = tuple(list(tb))
        traces.append((rng.choice([0, 0, 0, 1, 2, 389047]),
                       rng.randrange(1, 5000), tb, len(tb) + rng.randrange(3)))
    return traces


def pair(traces, limit=8):
    return (tracemalloc.Snapshot(list(traces), limit),
            fasttracemalloc.Snapshot(list(traces), limit))


def assert_same_statistics(theirs, ours):
    for key_type, cumulative in KEYS:
        expected = theirs.statistics(key_type, cumulative)
        got = ours.statistics(key_type, cumulative)
        assert got == expected, (key_type, cumulative)
        # equal Statistic objects, in the same order, with equal tracebacks
        assert [s.traceback for s in got] == [s.traceback for s in expected]
        assert [str(s) for s in got] == [str(s) for s in expected]


# limit 2 folds traces by traceback value, limit 8 by identity
@pytest.mark.parametrize("limit", [2, 8])
@pytest.mark.parametrize("seed", range(6))
def test_statistics_equal_stdlib(seed, limit):
    theirs, ours = pair(synthetic_traces(seed), limit)
    assert_same_statistics(theirs, ours)


@pytest.mark.parametrize("limit", [2, 8])
@pytest.mark.parametrize("seed", range(4))
def test_compare_to_equal_stdlib(seed, limit):
    old_t, old_o = pair(synthetic_traces(seed), limit)
    new_t, new_o = pair(synthetic_traces(seed + 100), limit)
    for key_type, cumulative in KEYS:
        expected = new_t.compare_to(old_t, key_type, cumulative)
        assert new_o.compare_to(old_o, key_type, cumulative) == expected
        # mixed: fast vs plain old snapshot, and the reverse
        assert new_o.compare_to(old_t, key_type, cumulative) == expected
        assert new_t.compare_to(old_o, key_type, cumulative) == expected
        assert [str(s) for s in new_o.compare_to(old_o, key_type, cumulative)] \
            == [str(s) for s in expected]


class SizeFilter(tracemalloc.BaseFilter):
    """A user filter reading the size: must be evaluated per trace."""

    def __init__(self, inclusive, limit):
        super().__init__(inclusive)
        self.limit = limit

    def _match(self, trace):
        return (trace[1] < self.limit) ^ (not self.inclusive)


FILTER_SETS = [
    [],
    [tracemalloc.Filter(False, "b.py")],
    [tracemalloc.Filter(True, "a.py", 2), tracemalloc.Filter(True, "a.py", 5)],
    [tracemalloc.Filter(True, "*.py", all_frames=True)],
    [tracemalloc.Filter(False, "<unknown>", all_frames=True)],
    [tracemalloc.Filter(True, "pkg/*", domain=1)],
    [tracemalloc.Filter(False, "a.py", domain=0)],
    [tracemalloc.DomainFilter(True, 389047)],
    [tracemalloc.DomainFilter(False, 0), tracemalloc.Filter(False, "d.py")],
    [tracemalloc.Filter(True, "d.py", all_frames=True),
     tracemalloc.DomainFilter(False, 2)],
    [SizeFilter(True, 1000)],
    [SizeFilter(False, 3000), tracemalloc.Filter(True, "a.py")],
]


@pytest.mark.parametrize("filters", FILTER_SETS,
                         ids=[str(i) for i in range(len(FILTER_SETS))])
def test_filter_traces_equal_stdlib(filters):
    theirs, ours = pair(synthetic_traces(7))
    expected = theirs.filter_traces(filters)
    got = ours.filter_traces(filters)
    assert type(got) is fasttracemalloc.Snapshot
    assert got.traces._traces == expected.traces._traces
    assert got.traceback_limit == expected.traceback_limit
    assert_same_statistics(expected, got)
    # a generator of filters is accepted as the stdlib accepts it
    assert ours.filter_traces(iter(filters)).traces._traces == \
        theirs.filter_traces(iter(filters)).traces._traces


def test_filter_traces_copies(stopped=None):
    theirs, ours = pair(synthetic_traces(1, n=50))
    copy = ours.filter_traces(())
    assert copy is not ours and copy.traces is not ours.traces
    assert copy.traces == ours.traces
    assert copy.traces._traces is not ours.traces._traces


def test_stdlib_test_data():
    """The raw traces of CPython's own test_tracemalloc.create_snapshots()."""
    raw_traces = [
        (0, 10, (('a.py', 2), ('b.py', 4)), 3),
        (0, 10, (('a.py', 2), ('b.py', 4)), 3),
        (0, 10, (('a.py', 2), ('b.py', 4)), 3),
        (1, 2, (('a.py', 5), ('b.py', 4)), 3),
        (2, 66, (('b.py', 1),), 1),
        (3, 7, (('<unknown>', 0),), 1),
    ]
    theirs, ours = pair(raw_traces, 2)
    assert_same_statistics(theirs, ours)


def engine_snapshot(nframe):
    fasttracemalloc.start(nframe)
    try:
        def nest(level):
            if level:
                return nest(level - 1)
            return [{"k%d" % i: [str(i)] * (i % 7)} for i in range(3000)]
        keep = [nest(depth) for depth in (0, 3, 12, 30)]
        snap = fasttracemalloc.take_snapshot()
    finally:
        fasttracemalloc.stop()
    del keep
    return snap


@pytest.mark.parametrize("nframe", [1, 5, 25])
def test_real_snapshot_equal_stdlib(stopped, nframe):
    ours = engine_snapshot(nframe)
    assert isinstance(ours, tracemalloc.Snapshot)
    assert type(ours) is fasttracemalloc.Snapshot
    assert ours.traceback_limit == nframe
    theirs = tracemalloc.Snapshot(ours.traces._traces, ours.traceback_limit)
    assert_same_statistics(theirs, ours)
    filters = [tracemalloc.Filter(True, __file__, all_frames=True)]
    assert ours.filter_traces(filters).traces._traces == \
        theirs.filter_traces(filters).traces._traces


def test_dump_is_plain_stdlib_pickle(tmp_path):
    _, ours = pair(synthetic_traces(3, n=200))
    ours.extra_attribute = "kept"
    path = tmp_path / "fast.snapshot"
    ours.dump(str(path))
    data = path.read_bytes()
    assert b"fasttracemalloc" not in data
    # byte-identical to what the stdlib writes for the same snapshot
    plain_path = tmp_path / "plain.snapshot"
    theirs = tracemalloc.Snapshot(ours.traces._traces, ours.traceback_limit)
    theirs.extra_attribute = "kept"
    theirs.dump(str(plain_path))
    assert data == plain_path.read_bytes()
    assert b"fasttracemalloc" not in pickle.dumps(ours)


def test_builtin_loads_our_dump(tmp_path):
    """A bare interpreter (-I -S: no site-packages, no PYTHONPATH, so no
    fasttracemalloc) loads our dump with the stdlib's Snapshot.load()."""
    _, ours = pair(synthetic_traces(4, n=300))
    path = tmp_path / "fast.snapshot"
    ours.dump(str(path))
    code = ("import sys, tracemalloc\n"
            "assert 'fasttracemalloc' not in sys.modules\n"
            "s = tracemalloc.Snapshot.load(sys.argv[1])\n"
            "assert type(s) is tracemalloc.Snapshot\n"
            "print(len(s.traces), s.traceback_limit, "
            "s.statistics('lineno')[0].size)\n")
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(path)],
                          capture_output=True, text=True, env=child_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(len(ours.traces)),
                                   str(ours.traceback_limit),
                                   str(ours.statistics("lineno")[0].size)]


def test_we_load_builtin_dump(tmp_path):
    """A snapshot taken and dumped by the builtin tracemalloc in a bare
    interpreter loads into the fast class with the same answers."""
    path = tmp_path / "builtin.snapshot"
    code = ("import sys, tracemalloc\n"
            "tracemalloc.start(5)\n"
            "data = [dict(a=str(i)) for i in range(2000)]\n"
            "s = tracemalloc.take_snapshot()\n"
            "s.dump(sys.argv[1])\n")
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(path)],
                          capture_output=True, text=True, env=child_env())
    assert proc.returncode == 0, proc.stderr
    ours = fasttracemalloc.Snapshot.load(str(path))
    theirs = tracemalloc.Snapshot.load(str(path))
    assert type(ours) is fasttracemalloc.Snapshot
    assert type(theirs) is tracemalloc.Snapshot
    assert ours.traceback_limit == theirs.traceback_limit == 5
    assert ours.traces == theirs.traces and len(ours.traces) > 2000
    assert_same_statistics(theirs, ours)
