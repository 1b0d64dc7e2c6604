"""Sampled mode: start_sampled(), its estimates, the switch options and
continuous mode.

The statistical tests run one deterministic workload (blocks of known,
fixed sizes, kept alive, allocated on three known lines) once exactly, to
get every block's size per line, then sampled with a fixed list of seeds.
The Poisson model (python/src/sampled.h) says each block of s bytes is
sampled independently with probability q(s) = 1 - exp(-s/P) and then
counts for e(s) = s/q(s) bytes and 1/q(s) blocks, so per line the estimate
is unbiased with variance sum(s**2 (1-q)/q) (bytes) and sum((1-q)/q)
(blocks).  Bounds are computed from that model, not fitted to the results,
and the seeds are fixed, so every run of the test sees the same numbers.
"""

import gc
import math
import os
import random
import sys
import time
import tracemalloc

import pytest

import fasttracemalloc
from fasttracemalloc import _backend
from fasttracemalloc._sampling import inclusion, scaled, unscale

from conftest import (MERGER_INLINE, free_list_restamped, needs_engine,
                      needs_pth, newref_in_shared_libpython, run_python)

pytestmark = needs_engine

P = 64 * 1024  # the workload's period: enough samples per line per run
# bytes(n) is one block of HEADER + n bytes (33 on GIL builds, 49 on 3.13t)
HEADER = sys.getsizeof(b"")
SEEDS = list(range(1, 31))
HERE = os.path.abspath(__file__)


def snapshot_and_current():
    """A snapshot and get_traced_memory()[0] with nothing traced between
    them: this thread's allocations are not traced meanwhile (the
    package's "do not trace" scope), so at a small mean the Snapshot
    object itself cannot be sampled in between."""
    fasttracemalloc._suspend()
    try:
        snap = fasttracemalloc.take_snapshot()
        cur, _ = fasttracemalloc.get_traced_memory()
    finally:
        fasttracemalloc._resume()
    return snap, cur


def _sizes():
    rng = random.Random(12345)
    small = [rng.randrange(8, 400) for _ in range(100000)]
    medium = [rng.randrange(1000, 6000) for _ in range(10000)]
    large = [rng.randrange(100000, 1000000) for _ in range(60)]
    return small, medium, large


SMALL, MEDIUM, LARGE = _sizes()


def workload(keep):
    # b"\0" * n is one malloc of HEADER + n bytes, bytes(n) one calloc: the
    # small and medium lines go through the allocation fast path (small:
    # decided before the call; medium: pymalloc hands it to the RAW domain,
    # and it must be counted once), the large one through calloc.
    for n in SMALL:
        b = b"\0" * n  # LINE:small
        keep.append(b)
    for n in MEDIUM:
        b = b"\0" * n  # LINE:medium
        keep.append(b)
    for n in LARGE:
        b = bytes(n)  # LINE:large
        keep.append(b)


def _lines():
    lines = {}
    with open(HERE) as fp:
        for lineno, text in enumerate(fp, 1):
            if "# LINE:" in text and (
                    "bytes(n)" in text or "* n" in text):
                lines[lineno] = text.split("# LINE:")[1].strip()
    return lines


LINES = _lines()


def per_line(snapshot):
    """{name: [trace sizes]} for the workload's lines."""
    out = {name: [] for name in LINES.values()}
    for trace in snapshot.traces:
        frame = trace.traceback[0]
        if frame.filename == HERE and frame.lineno in LINES:
            out[LINES[frame.lineno]].append(trace.size)
    return out


def run_exact():
    keep = []
    fasttracemalloc.start(1)
    try:
        workload(keep)
        return per_line(fasttracemalloc.take_snapshot())
    finally:
        fasttracemalloc.stop()
        del keep
        gc.collect()


def run_sampled(seed, mean=P):
    keep = []
    fasttracemalloc.start_sampled(1, mean_bytes=mean, seed=seed)
    try:
        workload(keep)
        snap = fasttracemalloc.take_snapshot()
        stats = {st.traceback[0].lineno: st
                 for st in snap.sampled_statistics("lineno")
                 if st.traceback[0].filename == HERE}
        return snap, {name: stats.get(lineno)
                      for lineno, name in LINES.items()}
    finally:
        fasttracemalloc.stop()
        del keep
        gc.collect()


@pytest.fixture(scope="module")
def exact():
    sizes = run_exact()
    # the workload's own blocks: what the test expects to find
    assert sorted(sizes["small"]) == sorted(HEADER + n for n in SMALL)
    assert sorted(sizes["large"]) == sorted(HEADER + n for n in LARGE)
    return sizes


@pytest.fixture(scope="module")
def sampled_runs():
    return [run_sampled(seed)[1] for seed in SEEDS]


def model(sizes, mean=P):
    """(exact bytes, bytes variance, exact blocks, blocks variance) of one
    sampled run's estimate for a line whose blocks have *sizes*."""
    var_b = var_n = 0.0
    for s in sizes:
        q = inclusion(s, mean)
        var_b += s * s * (1 - q) / q
        var_n += (1 - q) / q
    return sum(sizes), var_b, len(sizes), var_n


def test_scaling_arithmetic():
    # e(s) >= P, e(s) ~ P + s/2 for small s, e(s) = s for huge s;
    # unscale() inverts it to within a byte
    assert scaled(1, P) >= P
    assert abs(scaled(100, P) - (P + 50)) <= 1
    assert scaled(100 * P, P) == 100 * P
    for s in (1, 33, 400, 5000, P, 3 * P, 40 * P):
        assert abs(unscale(scaled(s, P), P) - s) <= 1.0, s


@pytest.mark.parametrize("line", ["small", "medium", "large"])
def test_estimates_unbiased_over_seeds(exact, sampled_runs, line):
    """Mean over 30 seeds within 4 standard errors (of that mean, from
    the model) of the exact bytes and blocks."""
    true_b, var_b, true_n, var_n = model(exact[line])
    sizes = [r[line].size if r[line] else 0 for r in sampled_runs]
    counts = [r[line].count if r[line] else 0.0 for r in sampled_runs]
    k = len(SEEDS)
    mean_b = sum(sizes) / k
    mean_n = sum(counts) / k
    assert abs(mean_b - true_b) <= 4 * math.sqrt(var_b / k), \
        (line, mean_b, true_b, math.sqrt(var_b / k))
    assert abs(mean_n - true_n) <= 4 * math.sqrt(var_n / k) + 1e-9, \
        (line, mean_n, true_n, math.sqrt(var_n / k))


def test_one_run_error_matches_model(exact, sampled_runs):
    """Each run's error, in model standard deviations, behaves like a
    standard normal: sum of z**2 over 30 runs x 2 noisy lines is within
    5 sd of its chi-square(60) mean; and the standard error a run reports
    (from its own samples) is on average the model's."""
    chi2 = 0.0
    reported = []
    for line in ("small", "medium"):
        true_b, var_b, _, _ = model(exact[line])
        for r in sampled_runs:
            st = r[line]
            chi2 += (st.size - true_b) ** 2 / var_b
            reported.append(st.size_stderr / math.sqrt(var_b))
    dof = 2 * len(SEEDS)
    assert abs(chi2 - dof) <= 5 * math.sqrt(2 * dof), chi2
    ratio = sum(reported) / len(reported)
    assert 0.8 <= ratio <= 1.2, ratio


def test_large_blocks_always_sampled():
    """Blocks of >= 10 P are missed with probability <= exp(-10) each; with
    the fixed seed, all 50 are seen, each with its (scaled) size."""
    keep = []
    sizes = [10 * P + 4096 * i for i in range(50)]
    fasttracemalloc.start_sampled(1, mean_bytes=P, seed=7)
    try:
        for n in sizes:
            keep.append(bytes(n))
        for obj, n in zip(keep, sizes):
            assert fasttracemalloc.get_object_traceback(obj) is not None
        snap = fasttracemalloc.take_snapshot()
        got = sorted(t.size for t in snap.traces if t.size >= 10 * P)
        assert got == sorted(scaled(HEADER + n, P) for n in sizes)
    finally:
        fasttracemalloc.stop()


def test_freeing_sampled_blocks_removes_them():
    keep = []
    fasttracemalloc.start_sampled(1, mean_bytes=P, seed=3)
    try:
        for i in range(2000):
            keep.append(bytes(2 * P))
        traced = [i for i, o in enumerate(keep)
                  if fasttracemalloc.get_object_traceback(o) is not None]
        # q(2P) = 0.86: most are sampled
        assert len(traced) > 1000
        gone = traced[: len(traced) // 2]
        expected_drop = len(gone) * scaled(HEADER + 2 * P, P)
        cur0, _ = fasttracemalloc.get_traced_memory()
        for i in gone:  # frees the bytes objects and nothing else
            keep[i] = None
        cur1, peak = fasttracemalloc.get_traced_memory()
        assert cur0 - cur1 == expected_drop
        assert peak >= cur0
        snap, cur = snapshot_and_current()
        assert sum(t.size for t in snap.traces) == cur
    finally:
        fasttracemalloc.stop()


def test_unsampled_frees_cost_no_engine_event():
    """A free of an address that was never sampled is not sent to the
    engine: freeing 100,000 small blocks (a handful sampled at P=1 MiB)
    records far fewer than 100,000 events."""
    keep = [None] * 100000
    fasttracemalloc.start_sampled(1, mean_bytes=1 << 20, seed=1)
    try:
        for i in range(len(keep)):
            keep[i] = bytes(40)
        before = fasttracemalloc._engine._stats()["events_recorded"]
        del keep
        after = fasttracemalloc._engine._stats()["events_recorded"]
        assert after - before < 1000, after - before
    finally:
        fasttracemalloc.stop()


def test_realloc_of_sampled_block_keeps_accounts_consistent():
    fasttracemalloc.start_sampled(1, mean_bytes=4096, seed=5)
    try:
        buffers = [bytearray(100) for _ in range(200)]  # LINE:ba
        for _ in range(50):
            for b in buffers:
                b.extend(b"x" * 300)  # LINE:extend (realloc)
        snap, cur = snapshot_and_current()
        assert sum(t.size for t in snap.traces) == cur
        lines = {n for n, text in enumerate(open(HERE), 1)
                 if "# LINE:ba" in text or "# LINE:extend" in text}
        ours = [t for t in snap.traces if t.traceback[0].filename == HERE
                and t.traceback[0].lineno in lines]
        # 200 buffers of ~15 KB: q(15000) = 0.97 at P=4096
        assert len(ours) > 150
        del buffers, b
        snap2, cur2 = snapshot_and_current()
        assert not [t for t in snap2.traces
                    if t.traceback[0].filename == HERE
                    and t.traceback[0].lineno in lines]
        assert sum(t.size for t in snap2.traces) == cur2
    finally:
        fasttracemalloc.stop()


def test_api_state_and_errors(stopped):
    assert fasttracemalloc.get_sampling() == 0
    with pytest.raises(ValueError, match=r"range \[1; 65535\]"):
        fasttracemalloc.start_sampled(0)
    with pytest.raises(ValueError, match="mean_bytes must be in range"):
        fasttracemalloc.start_sampled(1, mean_bytes=0)
    with pytest.raises(TypeError, match="mean_bytes must be an int"):
        fasttracemalloc.start_sampled(1, mean_bytes="512k")
    with pytest.raises(TypeError, match="seed must be None or an int"):
        fasttracemalloc.start_sampled(1, seed=1.5)
    with pytest.raises(TypeError):
        fasttracemalloc.start_sampled(1, 4096)  # mean is keyword-only
    assert not fasttracemalloc.is_tracing()
    fasttracemalloc.start_sampled(7, mean_bytes=4096)
    assert fasttracemalloc.is_tracing()
    assert fasttracemalloc.get_traceback_limit() == 7
    assert fasttracemalloc.get_sampling() == 4096
    fasttracemalloc.start(3)  # already tracing: no change, as the builtin
    assert fasttracemalloc.get_sampling() == 4096
    fasttracemalloc.stop()
    assert fasttracemalloc.get_sampling() == 0
    fasttracemalloc.start(2)
    assert fasttracemalloc.get_sampling() == 0
    fasttracemalloc.stop()


def test_failed_snapshot_leaves_the_sampled_session_running(stopped):
    """A snapshot that fails for want of engine memory raises MemoryError
    and changes nothing else: the session is still sampled (it used to
    fall back to exact mode, recording every block at its real size)."""
    engine = fasttracemalloc._engine
    fasttracemalloc.start_sampled(1, mean_bytes=1 << 20, seed=2)
    try:
        keep = [bytes(2 << 20) for _ in range(4)]  # always sampled
        engine._inject_engine_oom(0)
        try:
            with pytest.raises(MemoryError):
                fasttracemalloc.take_snapshot()
        finally:
            engine._inject_engine_oom(-1)
        assert fasttracemalloc.get_sampling() == 1 << 20
        before = engine._stats()["events_recorded"]
        small = [bytes(40) for _ in range(20000)]  # 1.3 MB: a few samples
        recorded = engine._stats()["events_recorded"] - before
        assert recorded < 200, recorded
        snap = fasttracemalloc.take_snapshot()
        assert len(snap.traces) >= 4
        del keep, small
    finally:
        fasttracemalloc.stop()


def test_snapshot_flag_survives_dump_and_load(tmp_path, stopped):
    import tracemalloc
    from fasttracemalloc import report
    fasttracemalloc.start_sampled(1, mean_bytes=4096, seed=2)
    keep = [bytes(1000) for _ in range(1000)]
    snap = fasttracemalloc.take_snapshot()
    fasttracemalloc.stop()
    del keep
    assert snap.sample_mean_bytes == 4096
    assert snap.filter_traces([]).sample_mean_bytes == 4096
    assert snap.filter_traces(
        [tracemalloc.Filter(True, HERE)]).sample_mean_bytes == 4096
    path = str(tmp_path / "s.snapshot")
    snap.dump(path)
    ours = fasttracemalloc.Snapshot.load(path)
    assert ours.sample_mean_bytes == 4096
    assert report.load_snapshot(path).sample_mean_bytes == 4096
    # the builtin's loader reads it; its byte statistics are the estimates
    plain = tracemalloc.Snapshot.load(path)
    assert type(plain) is tracemalloc.Snapshot
    assert [(s.traceback, s.size, s.count)
            for s in plain.statistics("lineno")] == \
        [(s.traceback, s.size, s.count) for s in snap.statistics("lineno")]
    # an exact snapshot pickles without the attribute
    fasttracemalloc.start(1)
    keep = [bytes(1000) for _ in range(10)]
    exact_snap = fasttracemalloc.take_snapshot()
    fasttracemalloc.stop()
    del keep
    assert exact_snap.sample_mean_bytes == 0
    assert "sample_mean_bytes" not in exact_snap.__dict__
    st = exact_snap.sampled_statistics("filename")[0]
    assert st.size_stderr == 0 and st.count == st.samples


def test_safe_loader_checks_the_flag(tmp_path):
    import pickle
    import tracemalloc
    from fasttracemalloc import _safeload
    snap = tracemalloc.Snapshot([], 1)
    snap.sample_mean_bytes = "big"
    with pytest.raises(_safeload.UnsafeSnapshotError,
                       match="sample_mean_bytes"):
        _safeload.loads(pickle.dumps(snap))
    snap.sample_mean_bytes = 512
    assert _safeload.loads(pickle.dumps(snap)).sample_mean_bytes == 512


def test_pprof_carries_period_and_estimates(tmp_path, stopped):
    from test_report_export import decode_profile
    from fasttracemalloc import report
    fasttracemalloc.start_sampled(1, mean_bytes=4096, seed=4)
    keep = [bytes(3000) for _ in range(3000)]
    snap = fasttracemalloc.take_snapshot()
    fasttracemalloc.stop()
    del keep
    path = str(tmp_path / "p.pb.gz")
    report.to_pprof(snap, path)
    prof = decode_profile(path)
    assert prof["period_type"] == ("space", "bytes")
    assert prof["period"] == 4096
    assert sum(v[0] for v, _ in prof["samples"]) == sum(
        st.size for st in snap.sampled_statistics("traceback"))
    est = sum(st.count for st in snap.sampled_statistics("traceback"))
    assert abs(sum(v[1] for v, _ in prof["samples"]) - est) <= len(
        prof["samples"])
    # objects are estimates (blocks), not the number of samples
    assert sum(v[1] for v, _ in prof["samples"]) > len(snap.traces)


def test_continuous_writes_and_rotates(tmp_path, stopped):
    from fasttracemalloc import report
    d = tmp_path / "prof"
    fasttracemalloc.start_sampled(1, mean_bytes=4096, seed=1)
    keep = [bytes(5000) for _ in range(100)]
    try:
        fasttracemalloc.start_continuous(str(d), interval=0.02, keep=3,
                                         format="snapshot")
        with pytest.raises(RuntimeError, match="already running"):
            fasttracemalloc.start_continuous(str(d))
        deadline = time.monotonic() + 60
        while (fasttracemalloc.continuous_stats()["written"] < 6
               and time.monotonic() < deadline):
            time.sleep(0.01)
    finally:
        fasttracemalloc.stop_continuous()
        fasttracemalloc.stop()
    stats = fasttracemalloc.continuous_stats()
    assert stats["errors"] == 0, stats["last_error"]
    assert stats["written"] >= 6
    files = sorted(os.listdir(d))
    assert len(files) == 3, files
    seqs = [int(f.rsplit("-", 1)[1].split(".")[0]) for f in files]
    assert seqs == list(range(stats["written"] - 2, stats["written"] + 1))
    snap = report.load_snapshot(str(d / files[-1]))
    assert snap.sample_mean_bytes == 4096
    assert any(t.traceback[0].filename == HERE for t in snap.traces)
    assert stats["max_pause"] > 0
    del keep


def test_continuous_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="format"):
        fasttracemalloc.start_continuous(str(tmp_path), format="json")
    with pytest.raises(ValueError, match="keep"):
        fasttracemalloc.start_continuous(str(tmp_path), keep=0)
    with pytest.raises(ValueError, match="interval"):
        fasttracemalloc.start_continuous(str(tmp_path), interval=0)
    with pytest.raises(TypeError, match="directory"):
        fasttracemalloc.start_continuous(None)


# --- the start-up switch's options --------------------------------------

CODE_MODE = ("import tracemalloc, fasttracemalloc; print(tracemalloc."
             "is_tracing(), tracemalloc.get_traceback_limit(), "
             "fasttracemalloc.get_sampling())")


@needs_pth
@pytest.mark.parametrize("value,expected", [
    ("25,sample=512k", "True 25 524288"),
    ("3,sample=4096", "True 3 4096"),
    ("1,sample=1m,seed=9", "True 1 1048576"),
    ("2, sample=2K", "True 2 2048"),
    ("25", "True 25 0"),
    ("0,sample=512k", "False 1 0"),
])
def test_switch_options(value, expected):
    proc = run_python("-c", CODE_MODE, FASTTRACEMALLOC=value)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected
    proc = run_python("-X", "fasttracemalloc=" + value, "-c", CODE_MODE)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected


@needs_pth
@pytest.mark.parametrize("value,message", [
    ("25,sample=0", "invalid sampling mean '0'"),
    ("25,sample=x", "invalid sampling mean 'x'"),
    ("25,sample=12q", "invalid sampling mean '12q'"),
    ("25,sample=2000g", "invalid sampling mean '2000g'"),
    ("25,sample", "invalid option 'sample'"),
    ("25,frobnicate=1", "invalid option 'frobnicate=1'"),
    ("25,sample=1k,sample=2k", "option sample given twice"),
    ("25,seed=3", "option seed needs sample=SIZE"),
    ("25,sample=1k,seed=x", "invalid seed 'x'"),
    ("25,keep=3", "option keep needs dir=DIRECTORY"),
    ("25,dir=/tmp,keep=0", "invalid keep '0'"),
    ("25,dir=/tmp,interval=-1", "invalid interval '-1'"),
    ("25,dir=/tmp,format=json", "invalid format 'json'"),
    ("x,sample=1k", "invalid number of frames 'x'"),
])
def test_switch_option_errors(value, message):
    proc = run_python("-c", "pass", FASTTRACEMALLOC=value)
    assert proc.returncode == 1
    assert "FASTTRACEMALLOC: " + message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    proc = run_python("-X", "fasttracemalloc=" + value, "-c", "pass")
    assert proc.returncode == 1
    assert "-X fasttracemalloc=NFRAME: " + message in proc.stderr


@needs_pth
def test_switch_continuous(tmp_path):
    d = tmp_path / "out"
    code = ("import time, fasttracemalloc\n"
            "keep = [bytes(3000) for _ in range(1000)]\n"
            "deadline = time.monotonic() + 60\n"
            "while (fasttracemalloc.continuous_stats()['written'] < 4\n"
            "       and time.monotonic() < deadline):\n"
            "    time.sleep(0.01)\n"
            "print(fasttracemalloc.continuous_stats()['written'])\n")
    proc = run_python("-c", code, FASTTRACEMALLOC="5,sample=8k,dir=%s,"
                      "interval=0.05,keep=2" % d)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) >= 4
    files = os.listdir(d)
    assert len(files) == 2 and all(f.endswith(".pb.gz") for f in files)


def test_report_cli_prints_error_bars(tmp_path, stopped):
    fasttracemalloc.start_sampled(1, mean_bytes=4096, seed=8)
    keep = [bytes(2000) for _ in range(2000)]  # LINE:cli
    snap = fasttracemalloc.take_snapshot()
    fasttracemalloc.stop()
    del keep
    path = str(tmp_path / "s.snapshot")
    snap.dump(path)
    proc = run_python("-m", "fasttracemalloc", "report", path, "--top", "1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Sampled snapshot (one sample per 4096 bytes")
    st = snap.sampled_statistics("lineno")[0]
    fmt = tracemalloc._format_size
    assert "%s +- %s (~%.0f blocks, %d samples)" % (
        fmt(st.size, False), fmt(st.size_stderr, False), st.count,
        st.samples) in lines[2]


def test_set_overflow_chains(stopped):
    """At mean_bytes=1 nearly every block is sampled: 120,000 live sampled
    blocks overflow the set's 57,344 slots into its chains; every one of
    them is still found when freed (no trace left behind), and every
    sampled free reaches the engine."""
    keep = [None] * 120000
    before = fasttracemalloc._engine._stats()["sampled_overflow"]
    fasttracemalloc.start_sampled(1, mean_bytes=1, seed=1)
    try:
        for i in range(len(keep)):
            keep[i] = bytes(100)  # LINE:overflow
        st = fasttracemalloc._engine._stats()
        assert st["sampled_overflow"] - before > 0
        line = [n for n, text in enumerate(open(HERE), 1)
                if "# LINE:overflow" in text and "bytes(100)" in text][0]
        snap = fasttracemalloc.take_snapshot()
        ours = [t for t in snap.traces if t.traceback[0].filename == HERE
                and t.traceback[0].lineno == line]
        assert len(ours) == len(keep)
        del snap, ours
        for i in range(len(keep)):
            keep[i] = None
        snap = fasttracemalloc.take_snapshot()
        assert not [t for t in snap.traces
                    if t.traceback[0].filename == HERE
                    and t.traceback[0].lineno == line]
    finally:
        fasttracemalloc.stop()


def test_threads_alloc_and_free_across_threads(stopped):
    """4 threads allocate (sampled, mean 2 KiB: many samples), hand half
    their blocks to the next thread, which frees them: afterwards no trace
    of those blocks is left and the snapshot sums to current.  On 3.13t
    the threads run in parallel (per-thread samplers, the lock-free set)."""
    import queue
    import threading
    qs = [queue.Queue() for _ in range(4)]
    done = threading.Barrier(4)

    def worker(k):
        mine = []
        for i in range(20000):
            b = bytes(50 + (i * 7 + k) % 3000)  # LINE:threads
            if i % 2:
                qs[(k + 1) % 4].put(b)
            else:
                mine.append(b)
            del b
        qs[(k + 1) % 4].put(None)
        while qs[k].get() is not None:
            pass  # frees the block handed over by the previous thread
        done.wait()
        mine.clear()

    fasttracemalloc.start_sampled(1, mean_bytes=2048)
    try:
        threads = [threading.Thread(target=worker, args=(k,))
                   for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        line = [n for n, text in enumerate(open(HERE), 1)
                if "# LINE:threads" in text and "bytes(" in text][0]
        snap, cur = snapshot_and_current()
        assert sum(t.size for t in snap.traces) == cur
        assert not [t for t in snap.traces
                    if t.traceback[0].filename == HERE
                    and t.traceback[0].lineno == line]
        assert fasttracemalloc._engine._stats()["sampled_add_oom"] == 0
    finally:
        fasttracemalloc.stop()


RESTAMP_SCRIPT = """\
import gc, json, sys
import fasttracemalloc as ftm

def make():
    return []                                   # line 5: the first list

def reuse():
    return []                                   # line 8: from the free list

def case():
    gc.collect()
    first = make()
    first = None                                # back to the free list
    second = reuse()
    tb = ftm.get_object_traceback(second)
    return None if tb is None else tb[0].lineno

def wrapped():
    return ftm._fasttracemalloc._stats().get("newref_wrapped")

out = {}
ftm.start_sampled(1, mean_bytes=1, seed=1)      # every block is sampled
out["default"] = case()
out["default_wrapped"] = wrapped()
ftm.stop()
ftm.start_sampled(1, mean_bytes=1, seed=1, restamp=True)
out["restamp"] = case()
out["restamp_wrapped"] = wrapped()
ftm.stop()
ftm.start_sampled(1, mean_bytes=1, seed=1)
ftm.start(1)                                    # already tracing: no change
out["kept"] = [case(), wrapped()]
ftm.stop()
ftm.start(1)                                    # exact after sampled
out["exact"] = case()
out["exact_wrapped"] = wrapped()
ftm.stop()
print(json.dumps(out))
"""


def test_free_list_restamp_is_opt_in(tmp_path):
    """By default sampled mode installs no PyRefTracer (its per-object cost
    is the mode's largest on 3.13+): a sampled block reused from a free
    list keeps its first traceback.  restamp=True gives it the new one
    wherever exact mode re-stamps (3.13+; 3.11/3.12 with a shared
    libpython)."""
    import json
    path = tmp_path / "restamp.py"
    path.write_text(RESTAMP_SCRIPT)
    proc = run_python(str(path))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["default"] == 5, out
    assert out["restamp"] == (8 if free_list_restamped() else 5), out
    assert out["exact"] == (8 if free_list_restamped() else 5), out
    assert out["kept"][0] == 5, out
    # 3.11/3.12 with a shared libpython: the interpreter's own
    # _Py_NewReference calls reach the wrapper only in a session that
    # re-stamps; elsewhere there is no such route (False).
    routed = sys.version_info < (3, 13) and newref_in_shared_libpython()
    assert [out["default_wrapped"], out["restamp_wrapped"],
            out["kept"][1], out["exact_wrapped"]] == \
        [False, routed, False, routed], out


def test_c_api_domains_count_as_exact():
    """Blocks outside domain 0 come from PyTraceMalloc_Track, which is not
    sampled: sampled_statistics() takes them at face value."""
    tb = ((HERE, 1),)
    snap = fasttracemalloc.Snapshot([(389047, 1000, tb, 1),
                                     (0, scaled(1000, P), tb, 1)], 1)
    snap.sample_mean_bytes = P
    st = snap.sampled_statistics("lineno")[0]
    assert st.size == 1000 + scaled(1000, P)
    assert st.samples == 2
    q = inclusion(1000, P)
    assert abs(st.count - (1 + 1 / q)) < 1e-3 / q
    assert abs(st.size_stderr - math.sqrt((1 - q)) * scaled(1000, P)) < 2.0


def _os_threads():
    return len(os.listdir("/proc/self/task"))


def _settled(read, want, timeout=10.0):
    """read() once it equals want, or its last value after timeout: a
    joined Python thread's OS thread may still be exiting (its pthread
    destructors, where the engine closes and merges its ring, run after
    join() returned)."""
    deadline = time.monotonic() + timeout
    value = read()
    while value != want and time.monotonic() < deadline:
        time.sleep(0.01)
        value = read()
    return value


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"),
                    reason="counts threads in /proc/self/task (Linux)")
def test_sampled_session_runs_without_merger_thread(stopped):
    """A sampled session's few events do not keep a merger thread polling
    the rings: the process keeps the threads it had (a single-threaded
    program stays single-threaded), and a thread that exits merges and
    frees its own ring, so a thread-per-request server does not pile rings
    up between queries.  An exact session has its merger thread."""
    import threading
    stats = fasttracemalloc._engine._stats
    before = _os_threads()  # threads of earlier tests may still be exiting
    fasttracemalloc.start_sampled(5, mean_bytes=4096, seed=3)
    try:
        before = _settled(_os_threads, 1, timeout=2.0)
        assert _os_threads() == before
        assert stats()["merger_thread"] == 0
        # a query merges, which also frees the rings of threads that exited
        # before (earlier tests): from here on only ours are freed
        fasttracemalloc.get_traced_memory()
        st0 = stats()
        kept = []

        def request(k):
            local = [bytearray(512) for _ in range(400)]  # 200 KiB, freed
            kept.append(bytes(100000 + k))  # kept: always sampled at 4 KiB

        for k in range(50):
            t = threading.Thread(target=request, args=(k,))
            t.start()
            t.join()
        # every request thread sampled something (its 100 KB block), so
        # each had a ring (this thread may have got its first one too)
        registered = stats()["threads_registered"] - st0["threads_registered"]
        assert registered in (50, 51)
        # _stats() takes no merging step itself: the 50 rings were freed by
        # their exiting threads (a thread of an earlier test that exited
        # meanwhile may add its own)
        assert _settled(
            lambda: stats()["rings_reclaimed"] - st0["rings_reclaimed"] >= 50,
            True)
        assert _settled(_os_threads, before) == before
        # the query merges what is left and sees every kept block
        snap = fasttracemalloc.take_snapshot()
        mine = [s for s in snap.statistics("lineno")
                if s.traceback[0].filename == HERE]
        assert sum(s.count for s in mine) >= 50
        assert stats()["events_lost"] == 0
    finally:
        fasttracemalloc.stop()
    fasttracemalloc.start(1)
    try:
        # (an exact session without one when the suite runs inline:
        # conftest's FASTTRACEMALLOC_TEST_MERGER)
        extra = 0 if MERGER_INLINE else 1
        assert stats()["merger_thread"] == extra
        assert _settled(_os_threads, before + extra) == before + extra
    finally:
        fasttracemalloc.stop()
    assert _settled(_os_threads, before) == before
