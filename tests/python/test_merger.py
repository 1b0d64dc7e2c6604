"""Exact sessions without a merger thread (fasttracemalloc._merger).

What is checked: set_merger_thread(False) gives exact sessions that run no
merger thread (no OS thread added, the engine says so), whose answers are
those of a session with one (the same workload from several threads,
compared statistic by statistic, and current/peak); the setting applies at
the next start and survives stop; the start-up switch's merger= option and
its errors.
"""

import os
import threading
import time

import pytest

import fasttracemalloc
from conftest import needs_engine, needs_merger_thread, needs_pth, run_python

pytestmark = needs_engine

HERE = os.path.abspath(__file__)


def _stats():
    return fasttracemalloc._engine._stats()


def _os_threads():
    return len(os.listdir("/proc/self/task"))


def _settled(read, want, timeout=10.0):
    """read() once it equals want, or its last value after timeout (a
    joined thread's OS thread may still be exiting)."""
    deadline = time.monotonic() + timeout
    value = read()
    while value != want and time.monotonic() < deadline:
        time.sleep(0.01)
        value = read()
    return value


@pytest.fixture
def merger_default(stopped):
    """The setting as the test found it (the suite may run inline:
    conftest's FASTTRACEMALLOC_TEST_MERGER) is restored after it."""
    was = fasttracemalloc.get_merger_thread()
    yield
    fasttracemalloc.set_merger_thread(was)


def _workload(nthreads=4, per_thread=300):
    """Each thread keeps per_thread blocks of sizes it alone uses, frees
    every other one, and the main thread keeps the survivors: the traces
    left, by line, do not depend on how the threads interleaved."""
    kept = [None] * nthreads
    barrier = threading.Barrier(nthreads)

    def run(k):
        barrier.wait()
        mine = [b"%d" % k * (100 + 7 * i + k) for i in range(per_thread)]
        del mine[::2]
        kept[k] = mine

    threads = [threading.Thread(target=run, args=(k,))
               for k in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return kept


def _mine(snapshot):
    """The traces of the kept bytes objects (at least 133 bytes each) and
    of the kept lists' item arrays (the workload's other blocks are
    small), as sorted (line, size) pairs.  The
    small blocks are left out: which of them are alive at the snapshot
    depends on timing (the builtin itself shows it: in 30 runs of this
    workload, one had 3 more blocks on the comprehension's line).  A
    Trace's traceback is oldest frame first: [-1] is where it was made."""
    return sorted((t.traceback[-1].lineno, t.size) for t in snapshot.traces
                  if t.traceback[-1].filename == HERE and t.size >= 133)


def _session(merger):
    fasttracemalloc.set_merger_thread(merger)
    fasttracemalloc.start(5)
    try:
        merger_running = _stats()["merger_thread"]
        kept = _workload()
        snap = fasttracemalloc.take_snapshot()
        current, peak = fasttracemalloc.get_traced_memory()
        lost = _stats()["events_lost"]
        del kept
        after, _ = fasttracemalloc.get_traced_memory()
    finally:
        fasttracemalloc.stop()
    return merger_running, _mine(snap), current, peak, after, lost


@needs_merger_thread
def test_default_is_a_merger_thread(merger_default):
    assert fasttracemalloc.get_merger_thread() is True
    fasttracemalloc.start(1)
    assert _stats()["merger_thread"] == 1


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"),
                    reason="counts threads in /proc/self/task (Linux)")
def test_exact_session_without_merger_thread_adds_no_thread(merger_default):
    fasttracemalloc.set_merger_thread(False)
    assert fasttracemalloc.get_merger_thread() is False
    before = _settled(_os_threads, 1, timeout=2.0)
    fasttracemalloc.start(3)
    try:
        assert _stats()["merger_thread"] == 0
        assert _settled(_os_threads, before) == before
        kept = [bytes(1000 + i) for i in range(100)]
        snap = fasttracemalloc.take_snapshot()
        line = [s for s in snap.statistics("lineno")
                if s.traceback[0].filename == HERE]
        assert sum(s.count for s in line) >= 100
        del kept
    finally:
        fasttracemalloc.stop()


def test_same_answers_with_and_without_merger_thread(merger_default):
    _workload()  # untraced: first-use allocations out of the way
    with_thread = _session(True)
    without = _session(False)
    assert with_thread[0] == 1 and without[0] == 0
    # every kept bytes object traced, on one line, at its size, both ways
    assert without[1] == with_thread[1]
    assert len(without[1]) == 4 * 150 + 4  # and the 4 lists' item arrays
    # the bytes objects on the comprehension's line, the item arrays on
    # the line that shrank them (`del mine[::2]`, one line below)
    lines = sorted({line for line, _ in without[1]})
    assert len(lines) == 2 and lines[1] == lines[0] + 1
    assert sum(1 for line, _ in without[1] if line == lines[0]) == 4 * 150
    for result in (with_thread, without):
        _, _, current, peak, after, lost = result
        assert lost == 0
        assert peak >= current > after
    # what the kept blocks held is what freeing them released, both ways
    freed_with = with_thread[2] - with_thread[4]
    freed_without = without[2] - without[4]
    assert abs(freed_with - freed_without) <= 4096  # frames, list slack


def test_setting_applies_at_next_start_and_survives_stop(merger_default):
    fasttracemalloc.set_merger_thread(True)
    fasttracemalloc.start(1)
    try:
        fasttracemalloc.set_merger_thread(False)
        # the running session keeps what it started with
        assert _stats()["merger_thread"] == 1
    finally:
        fasttracemalloc.stop()
    for _ in range(2):
        fasttracemalloc.start(1)
        try:
            assert _stats()["merger_thread"] == 0
        finally:
            fasttracemalloc.stop()
    fasttracemalloc.set_merger_thread(True)
    fasttracemalloc.start(1)
    try:
        assert _stats()["merger_thread"] == 1
    finally:
        fasttracemalloc.stop()


def test_sampled_sessions_never_run_one(merger_default):
    fasttracemalloc.set_merger_thread(True)
    fasttracemalloc.start_sampled(5, mean_bytes=4096, seed=1)
    try:
        assert _stats()["merger_thread"] == 0
    finally:
        fasttracemalloc.stop()


CODE_MODE = ("import fasttracemalloc as f\n"
             "print(f.is_tracing(), f.get_traceback_limit(),"
             " f.get_merger_thread(), f._engine._stats()['merger_thread'])")


# The switch's own entry point, called the way its .pth line calls it (it
# acts once: with the .pth installed the call is a no-op), so these run
# from a source tree too.
SWITCH = "import fasttracemalloc._switch as s; s.main()\n"


@pytest.mark.parametrize("value,expected", [
    ("7,merger=inline", "True 7 False 0"),
    ("7,merger=thread", "True 7 True 1"),
    ("7", "True 7 True 1"),
    ("7,sample=64k,merger=thread", "True 7 True 0"),
])
def test_switch_merger_option(value, expected):
    proc = run_python("-c", SWITCH + CODE_MODE, FASTTRACEMALLOC=value)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected


@needs_pth
@pytest.mark.parametrize("value,expected", [
    ("7,merger=inline", "True 7 False 0"),
    ("7,merger=thread", "True 7 True 1"),
])
def test_switch_merger_option_at_startup(value, expected):
    proc = run_python("-c", CODE_MODE, FASTTRACEMALLOC=value)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected
    proc = run_python("-X", "fasttracemalloc=" + value, "-c", CODE_MODE)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected


@pytest.mark.parametrize("value,message", [
    ("7,merger=off", "invalid merger 'off'"),
    ("7,merger=", "invalid merger ''"),
    ("7,merger=inline,merger=thread", "option merger given twice"),
])
def test_switch_merger_errors(value, message):
    proc = run_python("-c", SWITCH, FASTTRACEMALLOC=value)
    assert proc.returncode == 1
    assert "FASTTRACEMALLOC: " + message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
