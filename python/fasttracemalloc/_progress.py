"""A one-line progress display for the report commands (issue 9, item 7).

Owns: ``Progress`` -- what the CLI shows on stderr while a step that may
take long runs (loading a snapshot file, checking it, grouping its traces,
building a flame graph).

Why our own and not a library (tqdm, rich): one line on stderr is all
that is needed, the package has no runtime dependency, and the display
must stay out of every output that is not a terminal.

Rules:
  * Nothing is written unless the stream is a terminal (so pipes, files,
    CI logs and tests that read stderr see nothing), or
    ``FASTTRACEMALLOC_PROGRESS`` says ``always`` (``never`` turns it off).
  * Nothing is written before the step has run for ``delay`` seconds
    (default 1, ``_FASTTRACEMALLOC_PROGRESS_DELAY`` for tests): a report
    that is quick stays silent.
  * The line is drawn by a daemon thread of the Progress, 10 times a
    second, so a step that is one long call (grouping a million traces)
    still shows its elapsed time; ``update()`` only stores a number, so
    callers may call it as often as they like.
  * ``close()`` (or leaving the ``with`` block) stops that thread and
    erases the line if one was drawn, so what follows starts clean.

Threads: one Progress per step; its owner calls update()/close(), its
own drawing thread only reads ``done`` (one attribute, replaced whole) and
writes the stream until close() has stopped and joined it.
"""

import os
import sys
import threading
import time

__all__ = ["Progress"]

_REDRAW = 0.1  # seconds between redraws


def _size(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return ("%d %s" % (n, unit)) if unit == "B" else (
                "%.1f %s" % (n, unit))
        n /= 1024
    return "%.1f GiB" % n


def _enabled(stream):
    how = os.environ.get("FASTTRACEMALLOC_PROGRESS", "auto").lower()
    if how == "never":
        return False
    if how == "always":
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """Progress of one step: ``label`` (e.g. ``loading x.snapshot``),
    ``total`` work units or None (then only the elapsed time is shown),
    ``unit`` ``"bytes"`` (shown as sizes) or a plural noun."""

    def __init__(self, label, total=None, unit="bytes", stream=None,
                 delay=None):
        self.label = label
        self.total = total
        self.unit = unit
        self.stream = sys.stderr if stream is None else stream
        if delay is None:
            delay = float(os.environ.get("_FASTTRACEMALLOC_PROGRESS_DELAY",
                                         "1.0"))
        self.delay = delay
        self.done = 0
        self.drawn = False
        self.start = time.monotonic()
        self._stop = threading.Event()
        self._thread = None
        if _enabled(self.stream):
            self._thread = threading.Thread(
                target=self._run, name="fasttracemalloc-progress",
                daemon=True)
            self._thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def update(self, done):
        """``done`` units are finished (absolute, not an increment)."""
        self.done = done

    def _run(self):
        if self._stop.wait(self.delay):
            return
        while True:
            if not self._draw():
                return
            if self._stop.wait(_REDRAW):
                return

    def _amount(self, n):
        return _size(n) if self.unit == "bytes" else "{:,}".format(n)

    def _draw(self):
        done = self.done
        text = "%s: " % self.label
        if self.total:
            pct = 100.0 * min(done, self.total) / self.total
            text += "%s of %s%s (%d%%)" % (
                self._amount(done), self._amount(self.total),
                "" if self.unit == "bytes" else " " + self.unit, pct)
        else:
            text += "working"
        text += ", %.1f s" % (time.monotonic() - self.start)
        try:
            self.stream.write("\r\x1b[K" + text)
            self.stream.flush()
        except (OSError, ValueError):
            return False
        self.drawn = True
        return True

    def close(self):
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        if self.drawn:
            try:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            except (OSError, ValueError):
                pass
            self.drawn = False
