"""Per-thread attribution: which thread allocated each traced block.

Owns: the public extension API (new names only; no stdlib name changes
behaviour): ``set_thread_attribution``/``get_thread_attribution``,
``thread_statistics``, ``take_thread_snapshot``, ``split_by_thread``, the
``ThreadInfo``/``ThreadStatistic`` records, and the thread names.

How it works.  While attribution is on, the extension gives each OS thread
a tag on its first traced allocation (python/src/threads.h) and the engine
interns the tag with the frames (core/tb_pool.h), so every trace knows its
thread through its traceback id while the trace map is unchanged.  The
stdlib queries (take_snapshot, get_object_traceback, statistics, dump) never
see tags: ids differing only by thread resolve to one traceback tuple.

Names.  The engine knows a tag's ``threading.get_ident()`` and OS native id
(idents are reused by later threads, the pair is what tells them apart).
Every query here names the live threads from ``threading.enumerate()``
(the newest tag of an (ident, native_id) pair is the live thread's; the
main thread is "MainThread") and keeps the last name it saw for each tag,
so a thread that dies keeps its name.  A thread that ended before any
query saw it alive is named from its Thread object if that object is
still referenced (threading's registry of Thread objects, a WeakSet, is
read); otherwise it is named ``"<thread IDENT>"``: there is no hook
in 3.11/3.12 that reports a thread's start or end to Python without
changing threading's behaviour (``_thread.start_new_thread`` has no audit
event before 3.13), and the allocator hooks cannot run Python code.  A
program that wants every name queries (``thread_statistics()``) while its
threads run, as a live view does.

Snapshot files.  ``take_thread_snapshot()`` returns the same snapshot as
``take_snapshot()`` (same traces, same order) with two more instance
attributes: ``threads``, a tuple of ``(tag, ident, native_id, name)``, and
``thread_tags``, a list of one int tag per trace (equal tags share one int
object).  ``dump()`` pickles them as plain data (ints, str, tuples, a
list) in the ``tracemalloc.Snapshot``'s state, so the builtin's
``Snapshot.load()`` reads the file (it keeps and ignores them) and the safe
loader accepts them (checked, no new global or opcode).
``filter_traces()`` and ``compare_to()`` give snapshots without thread
information (the tags would no longer match the traces).

Threads: any thread may call these; the name bookkeeping is guarded by a
lock.
"""

import threading
from collections import namedtuple

from . import _backend
from ._snapshot import Snapshot, _NOT_TRACING

__all__ = [
    "set_thread_attribution", "get_thread_attribution", "thread_statistics",
    "take_thread_snapshot", "split_by_thread", "ThreadInfo",
    "ThreadStatistic",
]

_engine = _backend.engine

#: tag 0: traced while attribution was off; OTHER: past the tag table
UNATTRIBUTED = 0
OTHER = 0xFFFFFFFF
_SPECIAL_NAMES = {UNATTRIBUTED: "<not attributed>", OTHER: "<other threads>"}

ThreadInfo = namedtuple("ThreadInfo", "tag ident native_id name alive")
ThreadInfo.__doc__ = """A thread as attribution knows it: its tag (0 for
memory traced while attribution was off), threading.get_ident() and OS
native id (None for the special tags), its last known name, and whether it
was alive at the query."""

class ThreadStatistic(namedtuple("ThreadStatistic", "thread size count")):
    """Live traced memory of one thread: a ThreadInfo, the total size in
    bytes and the number of blocks; ``name``, ``ident``, ``tag`` and
    ``alive`` are the thread's (what the live view reads)."""

    __slots__ = ()

    name = property(lambda self: self.thread.name)
    ident = property(lambda self: self.thread.ident)
    tag = property(lambda self: self.thread.tag)
    alive = property(lambda self: self.thread.alive)

_lock = threading.Lock()  # guards _names
_names = {}           # tag -> last known name


def _require_engine():
    if not hasattr(_engine, "_set_thread_attribution"):
        raise RuntimeError("per-thread attribution needs the "
                           "fasttracemalloc engine, not the builtin")


def set_thread_attribution(enabled=True):
    """Attribute the allocations traced from now on to their thread (or
    stop doing so).  Allocations already traced keep their attribution;
    memory traced while it was off counts under tag 0.  Works in exact and
    sampled mode, tracing or not (the setting survives stop/start)."""
    _require_engine()
    _engine._set_thread_attribution(bool(enabled))


def get_thread_attribution():
    """True while new allocations are attributed to their thread."""
    return (hasattr(_engine, "_get_thread_attribution")
            and _engine._get_thread_attribution())


def _thread_infos():
    """{tag: ThreadInfo} for every tag given so far, names refreshed."""
    table = _engine._thread_table()
    live = {(t.ident, t.native_id): t.name for t in threading.enumerate()}
    # Thread objects of ended threads that are still referenced somewhere
    # (joined, kept in a list): threading's own registry of every Thread
    # made, a WeakSet (private: read only, absent -> nothing)
    ended = {}
    for t in list(getattr(threading, "_dangling", ())):
        if t.ident is not None and not t.is_alive():
            ended[(t.ident, t.native_id)] = t.name
    newest = {}
    by_ident = {}
    for tag, ident, native in table:
        newest[(ident, native)] = tag
        by_ident[ident] = tag
    # A live thread whose (ident, native_id) has no tag takes the newest
    # tag of its ident: after fork() the child's thread keeps its tag
    # while threading may give it the child's native id (3.13) or keep
    # the parent's (3.11).  (A live thread that has not allocated yet
    # would take a dead thread's tag of the same ident: not guarded.)
    live_tags = {newest[key]: name for key, name in live.items()
                 if key in newest}
    for (ident, native), name in live.items():
        if (ident, native) not in newest and ident in by_ident:
            live_tags.setdefault(by_ident[ident], name)
    infos = {}
    with _lock:
        for tag, ident, native in table:
            key = (ident, native)
            alive = tag in live_tags
            if alive:
                _names[tag] = live_tags[tag]
            elif tag not in _names and newest[key] == tag and key in ended:
                _names[tag] = ended[key]
            name = _names.get(tag, "<thread %d>" % ident)
            infos[tag] = ThreadInfo(tag, ident, native, name, alive)
    for tag, name in _SPECIAL_NAMES.items():
        infos[tag] = ThreadInfo(tag, None, None, name, False)
    return infos


def _sorted_stats(totals, infos):
    stats = [ThreadStatistic(infos.get(tag) or ThreadInfo(
                 tag, None, None, "<thread tag %d>" % tag, False),
                 size, count)
             for tag, (size, count) in totals.items()]
    stats.sort(key=lambda s: (-s.size, -s.count, s.thread.tag))
    return stats


def _tags_of(snapshot):
    tags = getattr(snapshot, "thread_tags", None)
    threads = getattr(snapshot, "threads", None)
    if type(tags) is not list or threads is None:
        raise ValueError("the snapshot has no thread information: take it "
                         "with take_thread_snapshot() or 'run --threads'")
    if len(tags) != len(snapshot.traces._traces):
        raise ValueError("the snapshot's thread tags do not match its traces")
    infos = {tag: ThreadInfo(tag, ident, native, name, False)
             for tag, ident, native, name in threads}
    for tag, name in _SPECIAL_NAMES.items():
        infos.setdefault(tag, ThreadInfo(tag, None, None, name, False))
    return tags, infos


def thread_statistics(snapshot=None):
    """Live traced memory per thread, largest first, as ThreadStatistic
    (thread, size, count).  Without *snapshot*: now, exactly (every block
    allocated before the call is counted, as by get_traced_memory()).
    With a snapshot from take_thread_snapshot() (or a file it was dumped
    to, loaded by either module): that snapshot's traces."""
    if snapshot is None:
        _require_engine()
        _backend.suspend()
        try:
            infos = _thread_infos()
        finally:
            _backend.resume()
        return _sorted_stats(_engine._thread_totals(), infos)
    tags, infos = _tags_of(snapshot)
    totals = {}
    for tag, trace in zip(tags, snapshot.traces._traces):
        acc = totals.get(tag)
        if acc is None:
            totals[tag] = [trace[1], 1]
        else:
            acc[0] += trace[1]
            acc[1] += 1
    return _sorted_stats(totals, infos)


def take_thread_snapshot():
    """take_snapshot() with thread information: the same Snapshot (same
    traces in the same order, statistics and dump() as the stdlib's) plus
    ``threads`` ((tag, ident, native_id, name) tuples) and ``thread_tags``
    (one int per trace).  See split_by_thread()."""
    _require_engine()
    if not _engine.is_tracing():
        raise RuntimeError(_NOT_TRACING)
    get_sampling = getattr(_engine, "_get_sampling", None)
    mean = get_sampling() if get_sampling is not None else 0
    traces, tags = _engine._get_thread_traces()
    snapshot = Snapshot(traces, _engine.get_traceback_limit())
    if mean:
        snapshot.sample_mean_bytes = mean
    _backend.suspend()  # scratch: untraced, as in statistics()
    try:
        used = set(tags)
        infos = _thread_infos()
    finally:
        _backend.resume()
    snapshot.threads = tuple((i.tag, i.ident, i.native_id, i.name)
                             for tag, i in sorted(infos.items())
                             if tag in used and i.ident is not None)
    snapshot.thread_tags = tags
    return snapshot


def split_by_thread(snapshot):
    """{ThreadInfo: Snapshot} of a snapshot from take_thread_snapshot() (or
    a file it was dumped to): each thread's traces, in their order."""
    tags, infos = _tags_of(snapshot)
    parts = {}
    for tag, trace in zip(tags, snapshot.traces._traces):
        lst = parts.get(tag)
        if lst is None:
            parts[tag] = lst = []
        lst.append(trace)
    out = {}
    mean = getattr(snapshot, "sample_mean_bytes", 0)
    for tag, lst in sorted(parts.items()):
        part = Snapshot(lst, snapshot.traceback_limit)
        if mean:
            part.sample_mean_bytes = mean
        info = infos.get(tag) or ThreadInfo(tag, None, None,
                                            "<thread tag %d>" % tag, False)
        out[info] = part
    return out
