"""Per-thread attribution (fasttracemalloc._threads, issue 9 item 2).

Each trace knows the thread that allocated it; thread_statistics(),
take_thread_snapshot() and split_by_thread() group by thread; the stdlib
answers (take_snapshot, statistics, dump) are those of a session without
attribution, and thread snapshot files load in the builtin and through the
safe loader.  Runs on GIL builds and on 3.13t, where the worker threads
really allocate in parallel.
"""

import os
import pickle
import subprocess
import sys
import threading
import warnings

import pytest

import fasttracemalloc
from fasttracemalloc import _safeload
from conftest import (bytearray_block, child_env, free_list_restamped,
                      needs_engine, run_python)

import diff_harness
from test_differential import compare_with_builtin

pytestmark = needs_engine


@pytest.fixture
def attributing(stopped):
    fasttracemalloc.start(10)
    fasttracemalloc.set_thread_attribution(True)
    yield
    fasttracemalloc.set_thread_attribution(False)


def by_name(stats):
    out = {}
    for st in stats:
        out.setdefault(st.thread.name, []).append(st)
    return out


def line_stat(snapshot, lineno):
    """(size, count) of the statistics('lineno') entry for this file at
    lineno in *snapshot*, or None."""
    for st in snapshot.statistics("lineno"):
        frame = st.traceback[0]
        if frame.filename == __file__ and frame.lineno == lineno:
            return st.size, st.count
    return None


def owns(stat, nblocks, block):
    """*stat* (line_stat) is exactly *nblocks* bytearrays of data block
    *block*: each is its data block plus its object (one more block of at
    most 256 bytes, or none where the object holds the data)."""
    assert stat is not None
    size, count = stat
    assert count in (nblocks, 2 * nblocks)
    assert nblocks * block <= size <= nblocks * (block + 256)


SIZES = {"alpha": 300_000, "beta": 500_000, "gamma": 700_000}
KEEP = {}


def hold(name, started, release):
    KEEP[name] = bytearray(SIZES[name])
    started.wait()
    release.wait()


HOLD_LINE = hold.__code__.co_firstlineno + 1


def run_holders(check_alive, check_dead):
    """Threads named by SIZES allocate their bytearray and wait; the
    checks run while they are alive, then after they ended (the blocks
    stay in KEEP)."""
    for name in SIZES:
        KEEP[name] = None  # the key exists: storing allocates nothing
    started = threading.Barrier(len(SIZES) + 1)
    release = threading.Event()
    threads = [threading.Thread(target=hold, name=name,
                                args=(name, started, release))
               for name in SIZES]
    for t in threads:
        t.start()
    try:
        started.wait()
        check_alive()
    finally:
        release.set()
        for t in threads:
            t.join()
    check_dead()
    KEEP.clear()


def test_per_thread_sizes_names_and_lines(attributing):
    main_block = bytearray(123_456)

    def check(alive):
        stats = by_name(fasttracemalloc.thread_statistics())
        for name, size in SIZES.items():
            (st,) = stats[name]
            assert st.thread.alive is alive
            # its bytearray plus the thread's own bookkeeping (frames,
            # locks of threading), far less than the next thread's size
            assert bytearray_block(size) <= st.size < bytearray_block(size) \
                + 64 * 1024
        (main,) = stats["MainThread"]
        assert main.thread.alive
        # the fields the live view reads (fasttracemalloc._live)
        assert (main.name, main.ident, main.alive) == (
            "MainThread", main.thread.ident, True)
        assert main.thread.ident == threading.main_thread().ident
        assert main.size >= bytearray_block(123_456)
        parts = fasttracemalloc.split_by_thread(
            fasttracemalloc.take_thread_snapshot())
        named = {info.name: snap for info, snap in parts.items()}
        for name, size in SIZES.items():
            # the worker line, in this thread's part: its block only
            owns(line_stat(named[name], HOLD_LINE), 1, bytearray_block(size))
        assert line_stat(named["MainThread"], HOLD_LINE) is None

    run_holders(lambda: check(True), lambda: check(False))
    del main_block


def test_dead_thread_keeps_its_name(attributing):
    seen = {}

    def alive():
        for st in fasttracemalloc.thread_statistics():
            if st.thread.name in SIZES:
                seen[st.thread.tag] = st.thread.name

    def dead():
        now = {st.thread.tag: st.thread for st
               in fasttracemalloc.thread_statistics()}
        assert sorted(seen.values()) == sorted(SIZES)
        for tag, name in seen.items():
            assert now[tag].name == name and not now[tag].alive
        snap = fasttracemalloc.take_thread_snapshot()
        kept = {row[0]: row[3] for row in snap.threads}
        for tag, name in seen.items():
            assert kept[tag] == name

    run_holders(alive, dead)


def test_stdlib_snapshot_merges_threads(attributing):
    """The same code in two threads: two tags in the thread snapshot, ONE
    traceback object and one Statistic in take_snapshot(), and a dump()
    with no thread attribute (what the builtin would write)."""
    box = {"a": None, "b": None}

    def same(key):
        box[key] = bytearray(77_777)

    for key in box:
        t = threading.Thread(target=same, args=(key,))
        t.start()
        t.join()
    line = same.__code__.co_firstlineno + 1
    snap = fasttracemalloc.take_snapshot()
    owns(line_stat(snap, line), 2, bytearray_block(77_777))
    tbs = [tb for _dom, size, tb, _tot in snap.traces._traces
           if size == bytearray_block(77_777)]
    assert len(tbs) == 2 and tbs[0] is tbs[1]
    assert set(snap.__dict__) == {"traces", "traceback_limit"}
    tsnap = fasttracemalloc.take_thread_snapshot()
    tags = {tag for tag, (_d, size, _tb, _t) in zip(
        tsnap.thread_tags, tsnap.traces._traces)
        if size == bytearray_block(77_777)}
    assert len(tags) == 2 and 0 not in tags


def test_thread_snapshot_file(attributing, tmp_path):
    KEEP["alpha"] = None
    done, release = threading.Event(), threading.Event()

    def filer():
        KEEP["alpha"] = bytearray(250_000)
        done.set()
        release.wait()

    t = threading.Thread(target=filer, name="filer")
    t.start()
    done.wait()
    snap = fasttracemalloc.take_thread_snapshot()  # names it: alive
    release.set()
    t.join()
    path = tmp_path / "threads.snapshot"
    snap.dump(str(path))
    expect = {(st.thread.tag, st.thread.name, st.size, st.count)
              for st in fasttracemalloc.thread_statistics(snap)}
    assert any(name == "filer" and size >= bytearray_block(250_000)
               for _tag, name, size, _count in expect)
    # the builtin alone (no fasttracemalloc importable) loads it
    code = ("import sys, tracemalloc\n"
            "s = tracemalloc.Snapshot.load(sys.argv[1])\n"
            "print(len(s.traces), sum(st.size for st in "
            "s.statistics('lineno')), len(s.thread_tags))\n")
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(path)],
                          capture_output=True, text=True, env=child_env())
    assert proc.returncode == 0, proc.stderr
    total = sum(tr.size for tr in snap.traces)
    assert proc.stdout.split() == [str(len(snap.traces)), str(total),
                                   str(len(snap.traces))]
    # the safe loader accepts it, and the thread view survives the trip
    loaded = _safeload.load(str(path))
    assert {(st.thread.tag, st.thread.name, st.size, st.count)
            for st in fasttracemalloc.thread_statistics(loaded)} == expect
    KEEP.clear()


def _with(snapshot, **attrs):
    snapshot.__dict__.update(attrs)
    return pickle.dumps(snapshot._as_stdlib(), 5)


@pytest.mark.parametrize("name, attrs", [
    ("tags without threads", {"thread_tags": []}),
    ("tags not a list", {"threads": (), "thread_tags": (1,)}),
    ("tag too big", {"threads": (), "thread_tags": [2 ** 32]}),
    ("tag count", {"threads": (), "thread_tags": [1, 2]}),
    ("row shape", {"threads": ((1, 2, 3),), "thread_tags": [1]}),
    ("row name", {"threads": ((1, 2, 3, b"x"),), "thread_tags": [1]}),
])
def test_safe_loader_checks_thread_fields(name, attrs):
    snap = fasttracemalloc.Snapshot([(0, 10, (("f", 1),), 1)], 1)
    with pytest.raises(_safeload.UnsafeSnapshotError):
        _safeload.loads(_with(snap, **attrs))


def test_errors_and_switch(stopped):
    with pytest.raises(RuntimeError):
        fasttracemalloc.take_thread_snapshot()
    fasttracemalloc.start(5)
    with pytest.raises(ValueError, match="no thread information"):
        fasttracemalloc.split_by_thread(fasttracemalloc.take_snapshot())
    assert not fasttracemalloc.get_thread_attribution()
    block = bytearray(90_000)  # traced before attribution: tag 0
    fasttracemalloc.set_thread_attribution(True)
    try:
        assert fasttracemalloc.get_thread_attribution()
        block2 = bytearray(91_000)
        stats = {st.thread.tag: st for st
                 in fasttracemalloc.thread_statistics()}
        assert stats[0].thread.name == "<not attributed>"
        assert stats[0].size >= bytearray_block(90_000)
        mine = fasttracemalloc._engine._current_thread_tag()
        assert mine != 0 and stats[mine].size >= bytearray_block(91_000)
        assert stats[0].size < bytearray_block(90_000) + bytearray_block(
            91_000)
    finally:
        fasttracemalloc.set_thread_attribution(False)
    del block, block2


def test_fork_child_keeps_the_thread(attributing):
    """After fork() the child's thread keeps its tag, as threading keeps
    its Thread object (whose native_id is the parent's on 3.11 and the
    child's on 3.13): the child's allocations count under MainThread,
    alive."""
    parent_tag = fasttracemalloc._engine._current_thread_tag()
    assert parent_tag != 0
    r, w = os.pipe()
    with warnings.catch_warnings():
        # 3.12+: the engine's merger is a thread; the child only allocates
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # child: report through the pipe, never return to pytest
        status = 1
        try:
            block = bytearray(333_333)
            stats = {st.thread.tag: st for st
                     in fasttracemalloc.thread_statistics()}
            mine = stats.get(parent_tag)
            ok = (fasttracemalloc._engine._current_thread_tag() == parent_tag
                  and mine is not None and mine.thread.alive
                  and mine.thread.name == "MainThread"
                  and mine.size >= bytearray_block(333_333))
            os.write(w, b"ok" if ok else repr(stats).encode())
            status = 0
            del block
        finally:
            os._exit(status)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        report = f.read()
    _, status = os.waitpid(pid, 0)
    assert status == 0 and report == b"ok", report


def new_tracebacks(nthreads, attribute):
    """Tracebacks the pool gains when nthreads threads run the same code
    one after the other, after one thread ran it once."""
    def work():
        keep = []
        for i in range(50):
            keep.append([i])
            keep.append({i: str(i)})

    def run(n):
        for _ in range(n):
            t = threading.Thread(target=work)
            t.start()
            t.join()

    fasttracemalloc.start(10)
    fasttracemalloc.set_thread_attribution(attribute)
    try:
        counts = []
        for n in (1, nthreads):  # one call site: the main thread's stack
            run(n)               # is the same in both rounds
            counts.append(fasttracemalloc._engine._stats()["tracebacks"])
        return counts[0], counts[1] - counts[0]
    finally:
        fasttracemalloc.set_thread_attribution(False)
        fasttracemalloc.stop()


def test_pool_growth_is_per_thread_and_bounded(stopped):
    """Off, threads running code already seen add (almost) no traceback;
    on, each adds its own copy of the tracebacks it allocates from: about
    nthreads times one thread's, never more than that plus slack."""
    nthreads = 16
    first_off, grow_off = new_tracebacks(nthreads, False)
    first_on, grow_on = new_tracebacks(nthreads, True)
    print("pool: off %d + %d, on %d + %d (%d threads)"
          % (first_off, grow_off, first_on, grow_on, nthreads))
    assert grow_off < nthreads  # nothing per thread
    per_thread = grow_on / nthreads
    assert per_thread >= 4  # work()'s own lines, at least, per thread
    assert grow_on <= nthreads * (first_on + 8)


def test_parallel_threads_counted_exactly(attributing):
    """Threads allocating at the same time (in parallel on 3.13t): each
    thread's part holds exactly its own blocks.  They are named although
    they ended before the query: their Thread objects are still alive."""
    nthreads, per = 4, 200
    sizes = [1000 + 100 * k for k in range(nthreads)]
    keep = [None] * nthreads
    barrier = threading.Barrier(nthreads)

    def worker(k):
        out = [None] * per
        barrier.wait()
        for i in range(per):
            out[i] = bytearray(sizes[k])
        keep[k] = out

    line = worker.__code__.co_firstlineno + 4
    threads = [threading.Thread(target=worker, args=(k,), name="par%d" % k)
               for k in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    parts = fasttracemalloc.split_by_thread(
        fasttracemalloc.take_thread_snapshot())
    named = {info.name: snap for info, snap in parts.items()}
    for k in range(nthreads):
        owns(line_stat(named["par%d" % k], line), per,
             bytearray_block(sizes[k]))


@pytest.mark.parametrize("nframe", [1, 25])
@pytest.mark.parametrize("workload", sorted(diff_harness.WORKLOADS))
def test_attribution_keeps_builtin_statistics(workload, nframe):
    """test_differential's comparison with attribution on and the snapshot
    from take_thread_snapshot(): the same statistics as the builtin."""
    if workload == "freelists" and not free_list_restamped():
        pytest.skip("static 3.11/3.12 executable: see test_differential")
    compare_with_builtin("fasttracemalloc-threads", nframe, workload)


PROGRAM = """\
import threading
keep = {}
ready = threading.Barrier(3)
done = threading.Event()
def work(name, n):
    keep[name] = [bytearray(n) for _ in range(10)]
    ready.wait()
    done.wait()
threads = [threading.Thread(target=work, args=("w%d" % i, 40000 * (i + 1)),
                            name="worker-%d" % i) for i in range(2)]
for t in threads:
    t.start()
ready.wait()
done.set()
for t in threads:
    t.join()
"""


def test_cli_run_threads_and_report_by_thread(tmp_path):
    prog = tmp_path / "prog.py"
    prog.write_text(PROGRAM)
    snap = tmp_path / "t.snapshot"
    proc = run_python("-m", "fasttracemalloc", "run", "--threads", "-n", "3",
                      "-o", str(snap), "--top", "0", str(prog),
                      cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    proc = run_python("-m", "fasttracemalloc", "report", "--by-thread",
                      "--top", "3", str(snap), cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # the totals, largest first: worker-1 (10 x 80 kB) above worker-0
    totals = [line.split(" (tag")[0].strip() for line in out.splitlines()
              if " (tag " in line and not line.startswith("==")]
    assert totals.index("worker-1") < totals.index("worker-0")
    # each worker's section has its own line 6 at its own size
    for k, size in ((0, 40000), (1, 80000)):
        section = out.split("== Thread worker-%d " % k)[1].split("== ")[0]
        first = section.splitlines()[2]
        assert first.startswith("#1: ") and "prog.py:6: " in first
        kib = float(first.split("prog.py:6: ")[1].split(" KiB")[0])
        assert 10 * size / 1024 <= kib <= 10 * (size + 256) / 1024 + 0.1
    # a snapshot without thread information: one-line error, status 2
    plain = tmp_path / "plain.snapshot"
    proc = run_python("-m", "fasttracemalloc", "run", "-o", str(plain),
                      "--top", "0", str(prog), cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    proc = run_python("-m", "fasttracemalloc", "report", "--by-thread",
                      str(plain), cwd=str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1].endswith(
        "the snapshot has no thread information: take it with "
        "take_thread_snapshot() or 'run --threads'")
