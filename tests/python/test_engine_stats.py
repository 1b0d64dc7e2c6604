"""The engine's own accounting, as seen from Python: under
LD_PRELOAD=libjemalloc.so.2 it uses jemalloc's private arena, and a normal
workload loses nothing (anything lost would be counted here)."""

import os


import fasttracemalloc
from fasttracemalloc import _backend

from conftest import needs_engine

pytestmark = needs_engine


def stats():
    return _backend.engine._stats()


def test_backend_follows_jemalloc_preload(stopped):
    fasttracemalloc.start(1)
    backend = stats()["backend"]
    fasttracemalloc.stop()
    if "libjemalloc" in os.environ.get("LD_PRELOAD", ""):
        assert backend == "jemalloc"
    else:
        assert backend != "jemalloc"


def test_nothing_lost_on_a_normal_workload(stopped):
    fasttracemalloc.start(25)
    keep = [{"k": [str(i)] * 5} for i in range(20000)]
    assert fasttracemalloc.get_tracemalloc_memory() > 0
    snap = fasttracemalloc.take_snapshot()
    counters = stats()
    fasttracemalloc.stop()
    assert len(snap.traces) >= 20000
    for name in ("events_lost", "traces_lost_oom", "tracebacks_lost_oom",
                 "capture_oom", "coderef_oom", "filename_oom"):
        if name in counters:
            assert counters[name] == 0, (name, counters)
    del keep


def test_idle_threads_cost_what_their_rings_used(stopped):
    """get_tracemalloc_memory() counts the ring slots that events used: 200
    live threads that each allocated a little cost a few KiB each, not a
    whole 4096-slot ring (128 KiB; it reported 132.7 MiB for 1,000 threads
    while RSS grew 28 MB)."""
    import threading
    n = 200
    fasttracemalloc.start(1)
    ready = threading.Barrier(n + 1)
    leave = threading.Event()

    def idle():
        keep = [str(i) for i in range(20)]
        ready.wait()
        leave.wait()
        return keep

    threads = [threading.Thread(target=idle) for _ in range(n)]
    before = fasttracemalloc.get_tracemalloc_memory()
    for t in threads:
        t.start()
    ready.wait()
    after = fasttracemalloc.get_tracemalloc_memory()
    untouched = stats()["rings_untouched_bytes"]
    leave.set()
    for t in threads:
        t.join()
    fasttracemalloc.stop()
    whole_rings = n * 4096 * 32
    per_thread = (after - before) / n
    assert untouched > whole_rings // 2, untouched
    # ring header and a few dozen used slots, plus per-thread capture
    # buffers, code-object sets (one per thread on free-threaded builds)
    # and tracebacks: measured 10.7 KB on 3.11, 20.4 KB on 3.13t; a whole
    # ring alone is 128 KiB
    assert per_thread < 4096 * 32 / 4, per_thread
