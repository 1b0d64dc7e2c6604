"""Traced memory over time: run --timeline and the timeline chart (issue 9,
item 4; python/fasttracemalloc/_timeline.py).

A program that grows to a known size and then frees it is run with
--timeline; the recorded samples must rise and fall with it (current
never above peak, peak never falling, the maximum close to what the
program held), and the chart must draw exactly those samples.  The page
is opened in headless Chromium when it is installed: no console error,
no request, and the SVG's points in the DOM.
"""

import re

import pytest

import headless
from conftest import needs_engine, run_python

pytestmark = needs_engine

APP = """\
import time
keep = []
for i in range(20):
    keep.append(bytearray(200_000))
    time.sleep(0.03)
time.sleep(0.3)
del keep[:]
time.sleep(0.3)
"""

HELD = 20 * 200_000


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("timeline")
    app = tmp / "app.py"
    app.write_text(APP)
    proc = run_python("-m", "fasttracemalloc", "run", "--top", "0",
                      "--timeline", str(tmp / "t.txt"),
                      "--timeline-interval", "0.05", "-o",
                      str(tmp / "s.snap"), str(app), cwd=str(tmp))
    assert proc.returncode == 0, proc.stderr
    return tmp


def samples_of(path):
    from fasttracemalloc._timeline import load
    return load(str(path))


def test_samples_follow_the_program(recorded):
    samples = samples_of(recorded / "t.txt")
    assert len(samples) >= 10, samples   # ~1.2 s at 0.05 s
    times = [s[0] for s in samples]
    assert times == sorted(times)
    for (_t, cur, peak) in samples:
        assert 0 <= cur <= peak
    peaks = [s[2] for s in samples]
    assert peaks == sorted(peaks)         # peak never falls
    top = max(s[1] for s in samples)
    assert HELD <= top < HELD + 512 * 1024, top
    # the rise, then the fall after del keep[:]
    assert samples[-1][1] < HELD // 4, samples[-1]
    assert samples[-1][2] >= top


def test_chart_draws_the_samples(recorded, tmp_path):
    out = tmp_path / "c.html"
    proc = run_python("-m", "fasttracemalloc", "timeline",
                      str(recorded / "t.txt"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    samples = samples_of(recorded / "t.txt")
    peak = re.search(r'<polyline id="peak" class="peak" points="([^"]*)"',
                     page).group(1).split()
    assert len(peak) == len(samples)
    area = re.search(r'<polygon id="current" class="cur" points="([^"]*)"',
                     page).group(1).split()
    assert len(area) == len(samples) + 2   # closed down to the axis
    ys = [float(p.split(",")[1]) for p in peak]
    assert ys == sorted(ys, reverse=True)   # SVG y grows downwards
    assert "<script" not in page
    assert "default-src 'none'" in page
    assert "%d samples over" % len(samples) in page


def test_timeline_errors(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("# header\n0.1 10 20\nnot a sample\n")
    proc = run_python("-m", "fasttracemalloc", "timeline", str(bad))
    assert proc.returncode == 2
    assert "line 3: not 'elapsed current peak'" in proc.stderr
    assert "Traceback" not in proc.stderr
    for line in ("nan 1 2", "inf 1 2", "-1 1 2", "0.5 -1 2", "t nan 5 x",
                 "t 0.1 5"):
        bad.write_text("0.1 10 20\n%s\n" % line)
        proc = run_python("-m", "fasttracemalloc", "timeline", str(bad))
        assert proc.returncode == 2, line
        assert "line 2: not " in proc.stderr, (line, proc.stderr)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    proc = run_python("-m", "fasttracemalloc", "timeline", str(empty))
    assert proc.returncode == 2 and "holds no samples" in proc.stderr
    proc = run_python("-m", "fasttracemalloc", "timeline",
                      str(tmp_path / "missing.txt"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    app = tmp_path / "a.py"
    app.write_text("pass\n")
    proc = run_python("-m", "fasttracemalloc", "run", "--timeline", "t",
                      "--timeline-interval", "0", str(app),
                      cwd=str(tmp_path))
    assert proc.returncode == 2
    assert "--timeline-interval must be > 0" in proc.stderr


CHROMIUM = headless.find_chromium()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                    "(apt-get install chromium)")
def test_chart_in_a_real_browser(recorded, tmp_path):
    out = tmp_path / "c.html"
    proc = run_python("-m", "fasttracemalloc", "timeline",
                      str(recorded / "t.txt"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    samples = samples_of(recorded / "t.txt")
    b = headless.Browser()
    try:
        b.open(str(out))
        n = b.evaluate("document.getElementById('peak')"
                       ".points.numberOfItems")
        width = b.evaluate("document.querySelector('svg')"
                           ".getBoundingClientRect().width")
        b.screenshot(str(tmp_path / "c.png"))
        assert n == len(samples)
        assert width > 800
        assert b.console_errors == [] and b.exceptions == []
        # the page itself and nothing else
        assert {u.split("#")[0] for u in b.requests} <= {
            out.as_uri(), "about:blank"}, b.requests
    finally:
        b.close()


THREADS_APP = """\
import threading, time
keep = {}
def work(name, n):
    keep[name] = [bytearray(100_000) for _ in range(n)]
    time.sleep(0.6)
ts = [threading.Thread(target=work, args=("small", 10), name="small"),
      threading.Thread(target=work, args=("big", 30), name="big")]
for t in ts: t.start()
for t in ts: t.join()
time.sleep(0.2)
"""


def test_per_thread_series(tmp_path):
    """With run --threads, each thread's live memory is recorded and
    drawn: the two workers' series reach what each of them holds."""
    from fasttracemalloc._timeline import load_threads
    app = tmp_path / "app.py"
    app.write_text(THREADS_APP)
    proc = run_python("-m", "fasttracemalloc", "run", "--top", "0",
                      "--threads", "--timeline", str(tmp_path / "t.txt"),
                      "--timeline-interval", "0.05", "-o",
                      str(tmp_path / "s.snap"), str(app), cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    series = load_threads(str(tmp_path / "t.txt"))
    assert {"small", "big"} <= set(series), sorted(series)
    big = max(v for _t, v in series["big"])
    small = max(v for _t, v in series["small"])
    assert 30 * 100_000 <= big < 30 * 100_000 + 256 * 1024, big
    assert 10 * 100_000 <= small < 10 * 100_000 + 256 * 1024, small
    out = tmp_path / "c.html"
    proc = run_python("-m", "fasttracemalloc", "timeline",
                      str(tmp_path / "t.txt"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    # the largest thread first, each named in its line and the legend
    assert re.search(r'<polyline class="thread" id="thread-0" [^>]*>'
                     r'<title>big</title>', page), page[:3000]
    assert re.search(r'id="thread-\d+" [^>]*><title>small</title>', page)
    assert "per thread:" in page
