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
