"""The live view (issue 9, item 3): a traced process answers "how much
now, where, and which threads" once a second, and a terminal draws it.

Owns:
  * ``LiveServer(path)`` -- in the traced process: a daemon thread that
    listens on a Unix socket at ``path`` (permissions 0600: only the
    user who started the program may read its allocation sites) and
    answers each request line with one JSON line of statistics.  The
    thread runs in the package's "do not trace" scope (its own work is
    never in the traces) and is started before tracing, so its creation
    is not traced either.
  * ``view(path, ...)`` -- in the viewer: connects, asks once a second,
    and redraws the terminal (ANSI, one screen) until the traced process
    goes away or the user presses Ctrl-C.
  * ``run_live(run_argv, ...)`` -- ``python -m fasttracemalloc run --live
    ...``: starts the program under ``run --live-socket`` as a child
    process (its own output goes to a log file, so it never tears the
    screen) and views it; at the end prints the child's report.

Cost in the traced process, and how it is kept under 2%: current/peak
and the trace count are read on every request (an engine flush: a few
microseconds).  The top lines and the per-thread sums need a snapshot of
every trace, whose cost grows with the heap (about 0.5 s at 3 million
live blocks); they are recomputed only when the time since the last
computation is at least 50 times what it took (so at most 2% of one
core; at least once a second when they are cheap) -- the screen shows
their age.  Each answer carries the server thread's own CPU time
(``server_cpu``); bench/live_overhead.py reports it against the run's
length, and the traced program's run time with and without a viewer.

Threads: LiveServer's thread only reads the engine through the public
API (thread-safe); view() and run_live() are single-threaded.
"""

import json
import os
import socket
import sys
import threading
import time

__all__ = ["LiveServer", "view", "run_live"]

DUTY = 0.02  # the share of one core the top-lines snapshots may take
TOP = 15


def _fmt(size):
    import tracemalloc
    return tracemalloc._format_size(size, False)


class _Stats:
    """What one answer holds; owned by the server thread."""

    def __init__(self, top):
        self.top_n = top
        self.top = []
        self.threads = []
        self.top_at = 0.0  # monotonic time of the last top computation
        self.cost = 0.0    # how long it took
        self.start = time.monotonic()
        # the server starts before tracing does (run: the socket is up
        # first): until tracing has been seen on, the view says "waiting"
        self.seen_tracing = False

    def refresh_top(self):
        import fasttracemalloc
        from .report import noise_filters
        t0 = time.monotonic()
        snap = fasttracemalloc.take_snapshot()
        stats = snap.filter_traces(noise_filters()).statistics("lineno")
        self.top = [{"file": s.traceback[0].filename,
                     "line": s.traceback[0].lineno, "size": s.size,
                     "count": s.count} for s in stats[:self.top_n]]
        self.threads = _thread_rows(fasttracemalloc)
        self.cost = time.monotonic() - t0
        self.top_at = time.monotonic()

    def answer(self):
        import fasttracemalloc
        now = time.monotonic()
        tracing = fasttracemalloc.is_tracing()
        self.seen_tracing = self.seen_tracing or tracing
        if tracing and now - self.top_at >= max(1.0, self.cost / DUTY):
            self.refresh_top()
            now = time.monotonic()
        current, peak = (fasttracemalloc.get_traced_memory() if tracing
                         else (0, 0))
        return {"pid": os.getpid(), "elapsed": now - self.start,
                # this thread's own CPU time: what the view has cost so far
                "server_cpu": time.thread_time(),
                "tracing": tracing, "started": self.seen_tracing,
                "current": current, "peak": peak,
                "nframe": fasttracemalloc.get_traceback_limit(),
                "top": self.top, "top_age": now - self.top_at,
                "top_cost": self.cost, "threads": self.threads}


def _thread_rows(ftm):
    """Per-thread live memory where the engine attributes traces to
    threads (fasttracemalloc.thread_statistics); [] where it does not."""
    stats = getattr(ftm, "thread_statistics", None)
    if stats is None:
        return []
    rows = []
    for row in stats():
        rows.append({"name": getattr(row, "name", str(row)),
                     "ident": getattr(row, "ident", 0),
                     "size": getattr(row, "size", 0),
                     "count": getattr(row, "count", 0)})
    return rows


class LiveServer:
    """Answer live-view requests on a Unix socket at ``path``."""

    def __init__(self, path, top=TOP):
        self.path = path
        self._stats = _Stats(top)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self._sock.bind(path)
        finally:
            os.umask(old)
        self._sock.listen(4)
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name="fasttracemalloc-live")
        self._thread.start()

    def _serve(self):
        from ._backend import suspend
        suspend()  # this thread's allocations are never traced
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            with conn:
                self._session(conn)

    def _session(self, conn):
        reader = conn.makefile("rb")
        for _line in reader:
            try:
                data = json.dumps(self._stats.answer()).encode() + b"\n"
                conn.sendall(data)
            except OSError:
                return
            except Exception as exc:  # never take the program down
                conn.sendall(json.dumps({"error": repr(exc)}).encode()
                             + b"\n")

    def close(self):
        try:
            self._sock.close()
        finally:
            try:
                os.unlink(self.path)
            except OSError:
                pass


def _connect(path, deadline, alive=None):
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline or (alive is not None
                                               and not alive()):
                return None
            time.sleep(0.05)


def render(stats, width=100, source=""):
    """The screen for one answer, as a list of lines (no colours: it must
    read the same in a log)."""
    lines = ["fasttracemalloc live%s  pid %d  %.0f s  nframe %d"
             % (source, stats["pid"], stats["elapsed"], stats["nframe"])]
    if not stats["tracing"]:
        # "started" is absent from a server of an older version
        lines.append("not tracing" if stats.get("started", True)
                     else "waiting for tracing to start")
        return lines
    lines.append("traced memory: current %s, peak %s"
                 % (_fmt(stats["current"]), _fmt(stats["peak"])))
    lines.append("")
    lines.append("Top lines (%.1f s old; computing them took %.0f ms)"
                 % (stats["top_age"], stats["top_cost"] * 1000))
    for i, row in enumerate(stats["top"], 1):
        where = "%s:%d" % (row["file"], row["line"])
        room = max(20, width - 34)
        if len(where) > room:
            where = "..." + where[-(room - 3):]
        lines.append("#%-3d %-*s %12s %9d blocks"
                     % (i, room, where, _fmt(row["size"]), row["count"]))
    if stats["threads"]:
        lines.append("")
        lines.append("Threads")
        for row in stats["threads"]:
            lines.append("  %-30s %12s %9d blocks"
                         % (row["name"][:30], _fmt(row["size"]),
                            row["count"]))
    return lines


def view(path, interval=1.0, out=None, alive=None, connect_timeout=10.0,
         max_frames=None):
    """Draw the live view of the process serving ``path`` until it goes
    away (returns the last answer, or None if it never answered)."""
    import shutil
    out = sys.stdout if out is None else out
    sock = _connect(path, time.monotonic() + connect_timeout, alive)
    if sock is None:
        return None
    last = None
    frames = 0
    with sock:
        reader = sock.makefile("rb")
        while max_frames is None or frames < max_frames:
            try:
                sock.sendall(b"stats\n")
                line = reader.readline()
            except OSError:
                break
            if not line:
                break
            stats = json.loads(line)
            if "error" in stats:
                out.write("fasttracemalloc live: the process answered: %s\n"
                          % stats["error"])
                break
            last = stats
            width = shutil.get_terminal_size((100, 24)).columns
            out.write("\x1b[H\x1b[2J" + "\n".join(render(stats, width))
                      + "\n")
            out.flush()
            frames += 1
            time.sleep(interval)
    return last


def run_live(run_options, target_argv, log_path):
    """``run --live``: the program runs in a child ``run`` with its output
    in ``log_path``; this process draws the view, then prints the child's
    report."""
    import subprocess
    import tempfile
    tmp = tempfile.mkdtemp(prefix="fasttracemalloc-live-")
    path = os.path.join(tmp, "live.sock")
    cmd = [sys.executable, "-m", "fasttracemalloc", "run",
           "--live-socket", path] + run_options + target_argv
    with open(log_path, "wb") as log:
        child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        view(path, alive=lambda: child.poll() is None)
        status = child.wait()
    except KeyboardInterrupt:
        child.terminate()
        status = child.wait()
    finally:
        try:
            os.rmdir(tmp)
        except OSError:
            pass
    sys.stdout.write("\nfasttracemalloc: the program exited with status %d;"
                     " its output and the report are in %s\n"
                     % (status, log_path))
    try:
        with open(log_path, encoding="utf-8", errors="replace") as fp:
            text = fp.read()
    except OSError:
        text = ""
    cut = text.find("fasttracemalloc: snapshot of ")
    if cut >= 0:
        sys.stdout.write(text[cut:])
    return status
