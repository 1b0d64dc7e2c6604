"""install()/uninstall(): make the stdlib ``tracemalloc`` module use the engine.

Owns: the swap of the stdlib module's engine-facing globals.  The stdlib's
pure-Python layer (Lib/tracemalloc.py) calls ``start``, ``_get_traces`` ...
through its module globals, so rebinding them swaps the engine while every
class (Snapshot, Filter, Traceback ...) stays the stdlib's own.  Code that
did ``from tracemalloc import start`` *before* install() keeps the builtin
function it copied; the start-up switch installs before user code runs.

Invariants:
  * ``_saved`` is non-empty exactly while installed; it holds the stdlib's
    original bindings, which uninstall() puts back;
  * install() never leaves two tracers half-swapped: it checks the builtin
    first, then rebinds every name at once.
Threads: call from one thread at a time (normally at start-up); guarded by
a lock so concurrent calls serialise rather than interleave.
"""

import _thread

import _tracemalloc as _builtin

from . import _backend
from ._snapshot import take_snapshot_from

# The names the stdlib module imports from _tracemalloc (plus take_snapshot,
# which is replaced by the faster Snapshot builder).
ENGINE_NAMES = (
    "start", "stop", "is_tracing", "clear_traces", "get_traceback_limit",
    "get_traced_memory", "reset_peak", "get_tracemalloc_memory",
    "_get_traces", "_get_object_traceback",
)

_lock = _thread.allocate_lock()  # not threading: nothing more to import
_saved = {}


def _installed_take_snapshot():
    """
    Take a snapshot of traces of memory blocks allocated by Python.
    """
    import tracemalloc
    return take_snapshot_from(tracemalloc)


_installed_take_snapshot.__name__ = "take_snapshot"
_installed_take_snapshot.__qualname__ = "take_snapshot"


def is_installed():
    """Return True if the stdlib tracemalloc module currently uses the engine."""
    return bool(_saved)


def install(takeover=False):
    """Make the stdlib ``tracemalloc`` module use the fasttracemalloc engine.

    If the builtin tracemalloc is already tracing (``-X tracemalloc``,
    ``PYTHONTRACEMALLOC`` or an earlier ``tracemalloc.start()``), raise
    RuntimeError, unless *takeover* is true: then the builtin is stopped
    (its traces are discarded) and the engine is started with the builtin's
    traceback limit.  Calling install() again while installed does nothing.
    """
    # The import (tracemalloc, pickle, fnmatch ...) and the bookkeeping are
    # the package's own work: not traced (see _backend.suspend).
    _backend.suspend()
    try:
        _install(takeover)
    finally:
        _backend.resume()


def _install(takeover):
    import tracemalloc
    engine = _backend.engine
    with _lock:
        if _saved:
            return
        if not _backend.is_builtin and _builtin.is_tracing():
            if not takeover:
                raise RuntimeError(
                    "fasttracemalloc.install(): the builtin tracemalloc is "
                    "already tracing (-X tracemalloc, PYTHONTRACEMALLOC or "
                    "tracemalloc.start()); stop it first or call "
                    "fasttracemalloc.install(takeover=True)")
            nframe = _builtin.get_traceback_limit()
            _builtin.stop()
            if not engine.is_tracing():
                engine.start(nframe)
        new = {name: getattr(engine, name) for name in ENGINE_NAMES}
        new["take_snapshot"] = _installed_take_snapshot
        for name in new:
            _saved[name] = tracemalloc.__dict__[name]
        tracemalloc.__dict__.update(new)


def uninstall():
    """Give the stdlib ``tracemalloc`` module its builtin engine back.

    If the engine is tracing it is stopped first (its traces are discarded),
    so the process never runs two tracers the user did not ask for.  Does
    nothing if not installed.
    """
    import tracemalloc
    with _lock:
        if not _saved:
            return
        if not _backend.is_builtin and _backend.engine.is_tracing():
            _backend.engine.stop()
        tracemalloc.__dict__.update(_saved)
        _saved.clear()
