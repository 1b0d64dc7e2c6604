"""Traced memory over time (issue 9, item 4): a recorder in the traced
process and a chart of what it recorded, like memray's temporal view.

Owns:
  * ``Recorder(path, interval)`` -- in the traced process: a daemon thread
    (in the package's "do not trace" scope, started before tracing) that
    appends one line per ``interval`` seconds to ``path``:
    ``elapsed current peak`` (seconds, bytes, bytes), from
    get_traced_memory() -- an engine flush, a few microseconds: at the
    default 0.1 s well under 0.1% of one core.  With per-thread
    attribution on (``run --threads``), it also writes, per thread,
    ``t elapsed size name`` lines from thread_statistics(), whose cost
    grows with the heap: those are taken only when the time since the last
    ones is at least 50 times what they took (at most 2% of one core), as
    the live view does.  The file is line-buffered text, so a run that
    crashes keeps what it recorded.
  * ``load(path)`` -- the samples of such a file (bad lines are an error,
    ``TimelineError``, naming the line); ``load_threads(path)`` -- the
    per-thread series, {name: [(elapsed, size), ...]}.
  * ``chart(samples, title)`` -- one self-contained HTML page with an
    inline SVG chart: current traced memory as a filled area, peak as a
    line, size and time axes with readable ticks, and the maximum marked.
    With per-thread series, one line per thread (the 8 largest), in a
    legend.  No script at all (a strict CSP forbids any), no network.

Threads: Recorder's thread writes its file only; the rest is the caller's.
"""

import html
import os
import threading
import time

__all__ = ["Recorder", "TimelineError", "load", "chart"]


class TimelineError(Exception):
    """A timeline file that cannot be read."""


class Recorder:
    """Record (elapsed, current, peak) every ``interval`` seconds."""

    def __init__(self, path, interval=0.1):
        if not interval > 0:
            raise ValueError("interval must be > 0")
        self.interval = interval
        self._fp = open(path, "w", buffering=1, encoding="ascii")
        self._fp.write("# fasttracemalloc timeline: elapsed_s current_bytes "
                       "peak_bytes\n")
        self._stop = threading.Event()
        self._start = time.monotonic()
        self._threads_at = None  # monotonic time of the last thread sample
        self._threads_cost = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="fasttracemalloc-timeline")
        self._thread.start()

    def _sample(self, last=False):
        import fasttracemalloc
        if not fasttracemalloc.is_tracing():
            return
        now = time.monotonic()
        current, peak = fasttracemalloc.get_traced_memory()
        self._fp.write("%.4f %d %d\n" % (now - self._start, current, peak))
        if not fasttracemalloc.get_thread_attribution():
            return
        if not last and self._threads_at is not None and (
                now - self._threads_at < self._threads_cost / 0.02):
            return
        t0 = time.monotonic()
        rows = fasttracemalloc.thread_statistics()
        self._threads_cost = time.monotonic() - t0
        self._threads_at = t0
        for row in rows:
            name = " ".join(str(row.thread.name).split()) or "?"
            self._fp.write("t %.4f %d %s\n" % (t0 - self._start, row.size,
                                                name))

    def _run(self):
        from ._backend import suspend
        suspend()
        while not self._stop.wait(self.interval):
            try:
                self._sample()
            except (OSError, ValueError):
                return  # the file went away: stop recording, not the program

    def close(self):
        """Take a last sample (the state at the end) and close the file."""
        self._stop.set()
        self._thread.join()
        try:
            self._sample(last=True)
        except (OSError, ValueError):
            pass
        self._fp.close()


def load(path):
    return _read(path)[0]


def load_threads(path):
    return _read(path)[1]


def _read(path):
    samples = []
    threads = {}
    with open(path, encoding="ascii", errors="replace") as fp:
        for number, line in enumerate(fp, 1):
            if line.startswith("#") or not line.strip():
                continue
            if line.startswith("t "):
                parts = line.split(None, 3)
                try:
                    t, size = float(parts[1]), int(parts[2])
                    name = parts[3].strip()
                    if not 0 <= t < 1e12 or size < 0 or not name:
                        raise ValueError
                except (ValueError, IndexError):
                    raise TimelineError("%s, line %d: not 't elapsed size "
                                        "name'" % (path, number))
                threads.setdefault(name, []).append((t, size))
                continue
            parts = line.split()
            try:
                t, cur, peak = float(parts[0]), int(parts[1]), int(parts[2])
                # 0 <= t < 1e12 also refuses nan and inf
                if len(parts) != 3 or not 0 <= t < 1e12 or cur < 0 or (
                        peak < 0):
                    raise ValueError
            except (ValueError, IndexError):
                raise TimelineError("%s, line %d: not 'elapsed current "
                                    "peak'" % (path, number))
            samples.append((t, cur, peak))
    if not samples:
        raise TimelineError("%s holds no samples" % (path,))
    return samples, threads


def _size(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return ("%d %s" % (n, unit)) if unit == "B" else (
                "%.1f %s" % (n, unit))
        n /= 1024.0


def _ticks(top, count=5):
    """Round tick values from 0 to at least ``top``."""
    if top <= 0:
        return [0, 1]
    raw = top / count
    mag = 10 ** (len(str(int(raw))) - 1) if raw >= 1 else 1
    for step in (1, 2, 2.5, 5, 10):
        if raw <= step * mag:
            break
    step = step * mag
    ticks = [0]
    while ticks[-1] < top:
        ticks.append(ticks[-1] + step)
    return ticks


def _size_ticks(top, count=5):
    """Tick values on binary units (KiB, MiB, ...) so labels are round."""
    unit = 1
    while top / unit >= 1024 * 4 and unit < 1024 ** 4:
        unit *= 1024
    return [t * unit for t in _ticks(top / unit, count)]


W, H = 900, 360
LEFT, RIGHT, TOP, BOTTOM = 90, 20, 30, 50


THREAD_COLOURS = ("#2a9d55", "#8e44ad", "#e08e0b", "#16a0b8", "#c0392b",
                  "#7f8c8d", "#b5651d", "#34495e")


def chart(samples, title="traced memory", threads=None):
    """The page, as a string of HTML; ``threads``: {name: [(t, size)]}."""
    threads = threads or {}
    t_end = max(s[0] for s in samples) or 1.0
    y_top = max(max(s[2] for s in samples), 1)
    yt = _size_ticks(y_top)
    xt = _ticks(t_end)
    y_max, x_max = yt[-1], xt[-1] or 1.0
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def x(t):
        return LEFT + pw * t / x_max

    def y(v):
        return TOP + ph * (1 - v / y_max)

    cur = " ".join("%.1f,%.1f" % (x(t), y(c)) for t, c, _p in samples)
    area = "%.1f,%.1f %s %.1f,%.1f" % (x(samples[0][0]), y(0), cur,
                                      x(samples[-1][0]), y(0))
    peak = " ".join("%.1f,%.1f" % (x(t), y(p)) for t, _c, p in samples)
    out = []
    for v in yt:
        out.append('<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>'
                   '<text class="yl" x="%d" y="%.1f">%s</text>'
                   % (LEFT, W - RIGHT, y(v), y(v), LEFT - 6, y(v) + 4,
                      _size(v)))
    for t in xt:
        out.append('<text class="xl" x="%.1f" y="%d">%g s</text>'
                   % (x(t), H - BOTTOM + 18, t))
    shown = sorted(threads.items(), key=lambda kv: -max(v for _t, v in
                                                         kv[1]))[:8]
    key = []
    for i, (name, series) in enumerate(shown):
        colour = THREAD_COLOURS[i % len(THREAD_COLOURS)]
        pts = " ".join("%.1f,%.1f" % (x(t), y(v)) for t, v in series)
        out.append('<polyline class="thread" id="thread-%d" stroke="%s" '
                   'points="%s"><title>%s</title></polyline>'
                   % (i, colour, pts, html.escape(name)))
        key.append('<span style="border-top:2px solid %s;height:0"></span>%s'
                   % (colour, html.escape(name)))
    hi = max(samples, key=lambda s: s[1])
    out.append('<circle class="max" cx="%.1f" cy="%.1f" r="4"/>'
               '<text class="ml" x="%.1f" y="%.1f">max current %s at %.1f s'
               '</text>' % (x(hi[0]), y(hi[1]), x(hi[0]) + 6, y(hi[1]) - 6,
                            _size(hi[1]), hi[0]))
    last = samples[-1]
    summary = ("%d samples over %.1f s; max current %s, final peak %s, "
               "final current %s" % (len(samples), t_end, _size(hi[1]),
                                     _size(last[2]), _size(last[1])))
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'viewBox="0 0 %d %d" role="img" aria-label="%s">'
           '%s<polygon id="current" class="cur" points="%s"/>'
           '<polyline id="peak" class="peak" points="%s"/>'
           '<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>'
           '<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>'
           '<text class="xl" x="%d" y="%d">time</text></svg>'
           % (W, H, W, H, html.escape(summary), "".join(out), area, peak,
              LEFT, LEFT, TOP, H - BOTTOM, LEFT, W - RIGHT, H - BOTTOM,
              H - BOTTOM, W - RIGHT, H - 12))
    style = (
        "body{font:14px sans-serif;margin:16px;color:#222}"
        ".cur{fill:#4a90d9;fill-opacity:.35;stroke:#2c6fb7;stroke-width:1.5}"
        ".peak{fill:none;stroke:#d0431f;stroke-width:1.5;"
        "stroke-dasharray:5 3}"
        ".grid{stroke:#ddd}.axis{stroke:#444}"
        ".yl{text-anchor:end;font-size:11px}"
        ".xl{text-anchor:middle;font-size:11px}"
        ".max{fill:#2c6fb7}.ml{font-size:11px}"
        ".thread{fill:none;stroke-width:1.5}"
        ".key span{display:inline-block;width:18px;height:10px;"
        "margin:0 4px 0 12px}")
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\""
            "default-src 'none'; style-src 'unsafe-inline'\">"
            "<title>%s</title><style>%s</style></head><body>"
            "<h1 style=\"font-size:18px\">%s</h1>"
            "<p class=\"key\"><span style=\"background:#4a90d9\"></span>"
            "current traced memory<span style=\"border-top:2px dashed "
            "#d0431f;height:0\"></span>peak%s</p>%s<p id=\"summary\">%s</p>"
            "</body></html>\n"
            % (html.escape(title), style, html.escape(title),
               ("<br>per thread:" + "".join(key)) if key else "", svg,
               html.escape(summary)))


def write_chart(timeline_path, output, title=None):
    samples, threads = _read(timeline_path)
    page = chart(samples, title or os.path.basename(timeline_path), threads)
    with open(output, "w", encoding="utf-8") as fp:
        fp.write(page)
    return samples
