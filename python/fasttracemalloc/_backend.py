"""Selects the engine module behind fasttracemalloc.

Owns: the single place that decides which C module implements the
``_tracemalloc`` function set (start, stop, is_tracing, clear_traces,
get_traceback_limit, get_traced_memory, reset_peak, get_tracemalloc_memory,
_get_traces, _get_object_traceback).

The engine is ``fasttracemalloc._fasttracemalloc`` (python/src/*.c).  For
the project's own tests only, ``FASTTRACEMALLOC_BACKEND=builtin`` selects
CPython's builtin ``_tracemalloc`` instead, so the Python layer (install(),
the switch, ``run``, the fast Snapshot) can be exercised and compared
against a reference engine.  Any other value is an error: a misspelt
backend must never silently fall back to something else.

Also owns ``suspend``/``resume``: the calling thread's "do not trace"
scope for the package's own work (see below).

Invariant: ``engine`` is chosen once, at first import, and never changes.
Threads: import-time only; nothing here is mutable afterwards.
"""

import os
import sys

BACKEND_ENV = "FASTTRACEMALLOC_BACKEND"

_FUNCTIONS = (
    "start", "stop", "is_tracing", "clear_traces", "get_traceback_limit",
    "get_traced_memory", "reset_peak", "get_tracemalloc_memory",
    "_get_traces", "_get_object_traceback",
)


def _select():
    choice = os.environ.get(BACKEND_ENV, "") if not sys.flags.ignore_environment else ""
    if choice in ("", "engine"):
        try:
            from . import _fasttracemalloc as mod
        except ImportError as exc:
            raise ImportError(
                "fasttracemalloc: the engine extension "
                "'fasttracemalloc._fasttracemalloc' cannot be imported (%s); "
                "reinstall the package with 'pip install .'" % exc) from exc
        return mod, "engine"
    if choice == "builtin":
        import _tracemalloc as mod
        return mod, "builtin"
    raise ImportError("fasttracemalloc: %s=%r is not valid: use 'engine' "
                      "(the default) or 'builtin' (tests only)"
                      % (BACKEND_ENV, choice))


engine, name = _select()
missing = [f for f in _FUNCTIONS if not hasattr(engine, f)]
if missing:
    raise ImportError("fasttracemalloc: engine module %r lacks %s"
                      % (engine.__name__, ", ".join(missing)))
del missing

# True when the engine IS the builtin (test stand-in): install() then has
# nothing to swap and no builtin to take over from.
is_builtin = engine.__name__ == "_tracemalloc"

# Extensions imported while the engine traces get their C API calls
# (PyTraceMalloc_Track/Untrack) routed to it before their init runs: the
# engine wraps importlib's ExtensionFileLoader.create_module, in C so that
# no frame of ours shows in the tracebacks of what an init allocates
# (python/src/capi_rebind.c).  The frozen importlib is always loaded:
# nothing is imported here.
if not is_builtin:
    _external = sys.modules.get("_frozen_importlib_external")
    if _external is not None and hasattr(_external, "ExtensionFileLoader"):
        engine._capi_hook_loader(_external.ExtensionFileLoader)
    del _external


def _nothing():
    pass


# The calling thread's "do not trace" scope (the engine's private
# _suspend/_resume; they nest, other threads keep being traced), around the
# package's own work: lazy imports (tracemalloc, pickle, ...), install(),
# the start-up switch's import hooks.  A builtin user has those modules
# imported before tracing starts, so none of it is in the builtin's
# answers; it must not be in ours.  Use as
#     suspend()
#     try: ...
#     finally: resume()
# The builtin stand-in has no such scope: there the work stays traced.
suspend = getattr(engine, "_suspend", _nothing)
resume = getattr(engine, "_resume", _nothing)
