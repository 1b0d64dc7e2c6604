"""Who merges the per-thread rings in exact mode: a merger thread, or the
allocating threads themselves.

Owns: ``set_merger_thread``/``get_merger_thread`` (new names; no stdlib
name changes behaviour) and the start-up switch's ``merger=`` option
(fasttracemalloc._switch).

The engine records each allocation and free in the calling thread's ring;
the rings are merged, in the engine's global event order and under its one
apply lock (core/merger.h), into the trace map.  By default an exact
session runs a merger thread that polls the rings, so the allocating
threads only append.  With ``set_merger_thread(False)``, exact sessions
started afterwards run none: an allocating thread whose ring is full takes
the apply lock and merges (every ring, as the merger thread would), a query
merges whatever is pending first, and a thread that exits takes one merge
step itself (fasttracemalloc.h, ``no_merger_thread``).  The answers are the
same either way; only where the CPU time goes differs.

The trade-off, measured on 3.13t on this project's 2-core machine
(bench/results/2026-12-08-ftscale-3.13t-inline.md, nframe 25, medians of
5): with one allocating thread the merger thread is faster (342k against
275k iterations/s: it merges on the otherwise idle core); with 2, 4 or 8
threads filling both cores the two are equal within the noise (353k/362k,
362k/363k, 366k/363k).  What having no merger thread buys for certain: the
process keeps exactly the threads it had -- a single-threaded program stays
single-threaded (glibc then keeps its uncontended-mutex fast path, and
nothing wakes up to poll), which is why sampled sessions never run one.

The setting applies to the next ``start()`` (a running session keeps what
it started with) and survives ``stop()``.

Threads: callable from any thread.
"""

from ._backend import engine as _engine

__all__ = ["set_merger_thread", "get_merger_thread"]


def _require_engine():
    if not hasattr(_engine, "_set_merger_thread"):
        raise RuntimeError("the merger setting needs the fasttracemalloc "
                           "engine, not the builtin")


def set_merger_thread(enabled=True):
    """Whether exact sessions started from now on run a merger thread
    (True, the default) or none (False: an allocating thread whose ring is
    full merges every ring, as do exiting threads and queries).  Takes
    effect at the next start()."""
    _require_engine()
    _engine._set_merger_thread(bool(enabled))


def get_merger_thread():
    """True if exact sessions started from now on run a merger thread."""
    return (not hasattr(_engine, "_get_merger_thread")
            or _engine._get_merger_thread())
