"""Who merges the per-thread rings in exact mode: a merger thread, or the
allocating threads themselves.

Owns: ``set_merger_thread``/``get_merger_thread`` (new names; no stdlib
name changes behaviour) and the start-up switch's ``merger=`` option
(fasttracemalloc._switch).

The engine records each allocation and free in the calling thread's ring;
someone must fold the rings into the trace map.  By default an exact
session runs one merger thread that polls the rings, so the allocating
threads only append.  With ``set_merger_thread(False)``, exact sessions
started afterwards run none: a thread whose ring is full merges it
itself, a query merges whatever is pending first, and a thread that exits
merges its own ring (fasttracemalloc.h, ``no_merger_thread``).  The answers
are the same either way (the engine's ordering does not depend on who
merges); only where the CPU time goes differs.

When to turn it off: when the program keeps as many threads allocating as
there are cores (a free-threaded build), the merger thread competes with
them for CPU and the tracer stops scaling with threads; merging in the
producers scales (README, "Free-threaded CPython", measured on 3.13t).
With spare cores, or one allocating thread, the merger thread is faster:
it takes the merge off the allocating thread.

Sampled sessions never run a merger thread (too few events to poll for).
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
    (True, the default) or let the allocating threads merge their own
    rings (False).  Takes effect at the next start()."""
    _require_engine()
    _engine._set_merger_thread(bool(enabled))


def get_merger_thread():
    """True if exact sessions started from now on run a merger thread."""
    return (not hasattr(_engine, "_get_merger_thread")
            or _engine._get_merger_thread())
