"""fasttracemalloc: a drop-in replacement for CPython's tracemalloc.

Owns: the public namespace.  Every public name of the stdlib ``tracemalloc``
is here with the same signature, exceptions and answers:

  * the engine functions (start, stop, is_tracing, clear_traces,
    get_traceback_limit, get_traced_memory, reset_peak,
    get_tracemalloc_memory, and the private _get_traces and
    _get_object_traceback) are the C engine's own functions;
  * take_snapshot() and get_object_traceback() build the stdlib's objects
    from the engine; take_snapshot() returns a ``tracemalloc.Snapshot``
    subclass whose statistics are computed per distinct traceback;
  * the analysis classes (Statistic, StatisticDiff, Filter, DomainFilter,
    Frame, Traceback, Trace, BaseFilter) ARE the stdlib's classes.

plus install()/uninstall()/is_installed() (make ``import tracemalloc`` use
the engine) -- see fasttracemalloc._install; start_sampled()/get_sampling()
and SampledStatistic (sampled mode, fasttracemalloc._sampling); and
start_continuous()/stop_continuous()/continuous_stats() (profiles written
periodically, fasttracemalloc._continuous); and per-thread attribution
(set_thread_attribution(), thread_statistics(), take_thread_snapshot(),
split_by_thread(): fasttracemalloc._threads); and whether exact sessions
run a merger thread (set_merger_thread()/get_merger_thread():
fasttracemalloc._merger).

Only the engine functions are bound at import: everything that needs the
stdlib ``tracemalloc`` module (and with it pickle, linecache, fnmatch) is
loaded on first use, so the start-up switch can start tracing before those
imports happen.  Those first-use imports are not traced (a builtin user
imported them before tracing started): the first query's answers and
get_traced_memory() are the builtin's.

Threads: importing is not thread-sensitive; the functions may be called
from any thread.

PYTEST_DONT_REWRITE: pytest marks the modules of every distribution with a
pytest11 entry point (ours: the plugin, fasttracemalloc_pytest) for
assertion rewriting and warns about one already imported, as this package
is when the start-up switch ran before pytest; nothing here needs it.
"""

from ._backend import engine as _engine
from ._backend import resume as _resume
from ._backend import suspend as _suspend

__version__ = "0.1.0"

start = _engine.start
stop = _engine.stop
is_tracing = _engine.is_tracing
clear_traces = _engine.clear_traces
get_traceback_limit = _engine.get_traceback_limit
get_traced_memory = _engine.get_traced_memory
reset_peak = _engine.reset_peak
get_tracemalloc_memory = _engine.get_tracemalloc_memory
_get_traces = _engine._get_traces
_get_object_traceback = _engine._get_object_traceback

# name -> (module, attribute) resolved on first access.
_LAZY = {
    "take_snapshot": ("fasttracemalloc._api", "take_snapshot"),
    "get_object_traceback": ("fasttracemalloc._api", "get_object_traceback"),
    "Snapshot": ("fasttracemalloc._snapshot", "Snapshot"),
    "Statistic": ("tracemalloc", "Statistic"),
    "StatisticDiff": ("tracemalloc", "StatisticDiff"),
    "Filter": ("tracemalloc", "Filter"),
    "DomainFilter": ("tracemalloc", "DomainFilter"),
    "BaseFilter": ("tracemalloc", "BaseFilter"),
    "Frame": ("tracemalloc", "Frame"),
    "Traceback": ("tracemalloc", "Traceback"),
    "Trace": ("tracemalloc", "Trace"),
    "install": ("fasttracemalloc._install", "install"),
    "uninstall": ("fasttracemalloc._install", "uninstall"),
    "is_installed": ("fasttracemalloc._install", "is_installed"),
    "start_sampled": ("fasttracemalloc._sampling", "start_sampled"),
    "get_sampling": ("fasttracemalloc._sampling", "get_sampling"),
    "SampledStatistic": ("fasttracemalloc._sampling", "SampledStatistic"),
    "start_continuous": ("fasttracemalloc._continuous", "start_continuous"),
    "stop_continuous": ("fasttracemalloc._continuous", "stop_continuous"),
    "continuous_stats": ("fasttracemalloc._continuous", "continuous_stats"),
    "set_thread_attribution": ("fasttracemalloc._threads",
                               "set_thread_attribution"),
    "get_thread_attribution": ("fasttracemalloc._threads",
                               "get_thread_attribution"),
    "thread_statistics": ("fasttracemalloc._threads", "thread_statistics"),
    "take_thread_snapshot": ("fasttracemalloc._threads",
                             "take_thread_snapshot"),
    "split_by_thread": ("fasttracemalloc._threads", "split_by_thread"),
    "ThreadInfo": ("fasttracemalloc._threads", "ThreadInfo"),
    "ThreadStatistic": ("fasttracemalloc._threads", "ThreadStatistic"),
    "set_merger_thread": ("fasttracemalloc._merger", "set_merger_thread"),
    "get_merger_thread": ("fasttracemalloc._merger", "get_merger_thread"),
}

__all__ = [
    "start", "stop", "is_tracing", "clear_traces", "get_traceback_limit",
    "get_traced_memory", "reset_peak", "get_tracemalloc_memory",
    "take_snapshot", "get_object_traceback",
    "Snapshot", "Statistic", "StatisticDiff", "Filter", "DomainFilter",
    "BaseFilter", "Frame", "Traceback", "Trace",
    "install", "uninstall", "is_installed",
    "start_sampled", "get_sampling", "SampledStatistic",
    "start_continuous", "stop_continuous", "continuous_stats",
    "set_thread_attribution", "get_thread_attribution", "thread_statistics",
    "take_thread_snapshot", "split_by_thread", "ThreadInfo",
    "ThreadStatistic", "set_merger_thread", "get_merger_thread",
]


def __getattr__(name):
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError("module 'fasttracemalloc' has no attribute %r"
                             % (name,)) from None
    # Importing tracemalloc (pickle, linecache, fnmatch ...) and our own
    # modules is work a builtin user did before tracing: not traced.
    _suspend()
    try:
        import importlib
        value = getattr(importlib.import_module(module_name), attr)
        globals()[name] = value
    finally:
        _resume()
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
