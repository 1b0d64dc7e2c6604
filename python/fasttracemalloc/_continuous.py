"""Continuous mode: a profile written to a directory every T seconds.

Owns: the one background writer thread of the process, its settings and
its counters (``start_continuous``/``stop_continuous``/
``continuous_stats``).

Every *interval* seconds the thread takes a snapshot (if tracing is on;
otherwise it waits for the next tick), writes it to *directory* as
``fasttracemalloc-PID-SEQ.pb.gz`` (format "pprof", see _pprof) or
``fasttracemalloc-PID-SEQ.snapshot`` (format "snapshot", Snapshot.dump's
format), and deletes this process's oldest files beyond the last *keep*.
A file appears complete or not at all (written under a temporary name,
then renamed).  The thread's own work is not traced (the package's
per-thread "do not trace" scope), so the profiles do not see it.

The pause: the only part that holds the interpreter (the GIL, or the
module lock on free-threaded builds, which allocating threads never take)
for longer than one switch interval is the engine's _get_traces() call: a
flush of the rings and a copy of the live traces, then one tuple per trace.
Its duration is recorded per tick (``continuous_stats()``: ``last_pause``,
``max_pause``, in seconds).  In sampled mode the trace map holds a few
thousand entries and the pause is well under a millisecond (bench/
sampled_bench.py measures it); in exact mode it grows with the number of
live blocks.  The rest (grouping, encoding, writing) runs as ordinary
Python code that other threads interleave with.

Fork: the child has no writer (see _forget_in_child).

Threads: start/stop from any thread (a lock serialises them); the writer
thread touches only its own state and the counters, which it replaces
under the lock.
"""

import os
import time
import _thread

from . import _backend

__all__ = ["start_continuous", "stop_continuous", "continuous_stats"]

FORMATS = ("pprof", "snapshot")
_SUFFIX = {"pprof": ".pb.gz", "snapshot": ".snapshot"}

_lock = _thread.allocate_lock()
_state = None   # the running writer's _Writer, or None
_previous = None  # the last writer stopped, for continuous_stats()


class _Writer:
    def __init__(self, directory, interval, keep, fmt):
        self.directory = directory
        self.interval = interval
        self.keep = keep
        self.format = fmt
        self.stop = _thread.allocate_lock()
        self.stop.acquire()          # released to ask the thread to end
        self.done = _thread.allocate_lock()
        self.done.acquire()          # released by the thread when it ends
        self.prefix = "fasttracemalloc-%d-" % os.getpid()
        self.seq = 0
        self.stats = {"written": 0, "errors": 0, "last_error": None,
                      "last_pause": 0.0, "max_pause": 0.0, "last_file": None}

    def run(self):
        try:
            while not self.stop.acquire(True, self.interval):
                _backend.suspend()
                try:
                    self.tick()
                finally:
                    _backend.resume()
        finally:
            self.done.release()

    def tick(self):
        engine = _backend.engine
        if not engine.is_tracing():
            return
        try:
            path = self.write(engine)
            self.rotate()
        except Exception as exc:  # a full disk must not kill the thread
            with _lock:
                self.stats["errors"] += 1
                self.stats["last_error"] = "%s: %s" % (type(exc).__name__,
                                                       exc)
            return
        with _lock:
            self.stats["written"] += 1
            self.stats["last_file"] = path

    def write(self, engine):
        # tracemalloc first: under the switch, its import runs install(),
        # which imports _snapshot; importing _snapshot first would make
        # that a circular import
        import tracemalloc  # noqa: F401
        from ._snapshot import Snapshot
        from ._sampling import get_sampling
        mean = get_sampling()
        t0 = time.perf_counter()
        traces = engine._get_traces()
        pause = time.perf_counter() - t0
        with _lock:
            self.stats["last_pause"] = pause
            if pause > self.stats["max_pause"]:
                self.stats["max_pause"] = pause
        snapshot = Snapshot(traces, engine.get_traceback_limit())
        if mean:
            snapshot.sample_mean_bytes = mean
        self.seq += 1
        name = "%s%06d%s" % (self.prefix, self.seq, _SUFFIX[self.format])
        path = os.path.join(self.directory, name)
        tmp = os.path.join(self.directory, "." + name + ".tmp")
        if self.format == "pprof":
            from ._pprof import profile_gzip
            data = profile_gzip(snapshot)
            with open(tmp, "wb") as fp:
                fp.write(data)
        else:
            snapshot.dump(tmp)
        os.replace(tmp, path)
        return path

    def rotate(self):
        suffix = _SUFFIX[self.format]
        ours = sorted(n for n in os.listdir(self.directory)
                      if n.startswith(self.prefix) and n.endswith(suffix))
        for name in ours[:max(0, len(ours) - self.keep)]:
            try:
                os.unlink(os.path.join(self.directory, name))
            except FileNotFoundError:
                pass


def start_continuous(directory, *, interval=60.0, keep=10, format="pprof"):
    """Write a profile of the traced memory to *directory* every *interval*
    seconds, keeping this process's last *keep* files; *format* is
    "pprof" (gzipped profile.proto) or "snapshot" (Snapshot.dump()).
    Tracing itself is started separately (start(), start_sampled() or the
    switch); ticks while not tracing write nothing.  Raises RuntimeError
    if the writer is already running."""
    global _state
    if not isinstance(directory, (str, bytes, os.PathLike)):
        raise TypeError("directory must be a path, not %s"
                        % type(directory).__name__)
    directory = os.fsdecode(os.fspath(directory))
    if isinstance(interval, bool) or not isinstance(interval, (int, float)):
        raise TypeError("interval must be a number of seconds, not %s"
                        % type(interval).__name__)
    if not interval > 0 or interval != interval or interval > 1e7:
        raise ValueError("interval must be in range (0; 1e7] seconds")
    if isinstance(keep, bool) or not isinstance(keep, int):
        raise TypeError("keep must be an int, not %s" % type(keep).__name__)
    if keep < 1:
        raise ValueError("keep must be >= 1")
    if format not in FORMATS:
        raise ValueError("format must be 'pprof' or 'snapshot', not %r"
                         % (format,))
    os.makedirs(directory, exist_ok=True)
    with _lock:
        if _state is not None:
            raise RuntimeError("continuous mode is already running "
                               "(stop_continuous() first)")
        writer = _Writer(directory, float(interval), keep, format)
        _thread.start_new_thread(writer.run, ())
        _state = writer


def stop_continuous():
    """Stop the writer thread (waiting for a write in progress); nothing
    happens if it is not running.  Files already written stay."""
    global _state, _previous
    with _lock:
        writer, _state = _state, None
        if writer is not None:
            _previous = writer
    if writer is None:
        return
    writer.stop.release()
    writer.done.acquire()


def continuous_stats():
    """The running (or last) writer's counters: written, errors,
    last_error, last_pause and max_pause (seconds the engine's trace copy
    held the interpreter), last_file; None if it never ran."""
    with _lock:
        writer = _state if _state is not None else _previous
        return dict(writer.stats) if writer is not None else None


def _forget_in_child():
    """A fork child has no writer thread: it is not running there (a
    program that wants profiles from its children starts one in each;
    children started by the switch's environment do so themselves)."""
    global _state, _lock
    _lock = _thread.allocate_lock()
    _state = None


os.register_at_fork(after_in_child=_forget_in_child)
