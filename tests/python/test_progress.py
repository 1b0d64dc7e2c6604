"""Progress of the report commands on a terminal, and human-readable sizes
(issue 9, item 7; python/fasttracemalloc/_progress.py).

The display must appear on a terminal for a step that takes long, never
in a pipe or a file, never for a quick step, and must leave a clean line
behind.  The "long" threshold (1 s) is lowered for the tests through
_FASTTRACEMALLOC_PROGRESS_DELAY, so no test depends on how fast the
machine is.
"""

import os
import pty
import re
import select
import subprocess
import sys
import tracemalloc

import pytest

from conftest import child_env, run_python

ERASE = "\r\x1b[K"


@pytest.fixture(scope="module")
def snap_file(tmp_path_factory):
    """A 60,000-trace snapshot file (the stdlib's format, built directly:
    what is measured here is the reader, not the tracer)."""
    path = tmp_path_factory.mktemp("progress") / "big.snapshot"
    frames = [(("app.py", 10 + i % 50), ("main.py", 3)) for i in range(200)]
    traces = [(0, 64 + i % 7, frames[i % 200], 2) for i in range(60000)]
    tracemalloc.Snapshot(traces, 2).dump(str(path))
    return path


def run_on_pty(args, **env):
    """Run this interpreter with stderr on a pseudo-terminal (stdout a
    pipe); return (returncode, stdout, what the terminal received)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE,
                            stderr=slave, env=child_env(**env), text=False)
    os.close(slave)
    received = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed its side
            break
        if not chunk:
            break
        received += chunk
    out, _ = proc.communicate(timeout=120)
    os.close(master)
    return proc.returncode, out.decode(), received.decode()


def test_terminal_gets_progress_then_a_clean_line(snap_file):
    rc, out, term = run_on_pty(
        ["-m", "fasttracemalloc", "report", str(snap_file), "--top", "1"],
        _FASTTRACEMALLOC_PROGRESS_DELAY="0")
    assert rc == 0, term
    assert out.startswith("Top 1 lines"), out
    # the reader's progress, in bytes of the file, and the grouping step
    size = os.path.getsize(snap_file)
    drawn = [s for s in term.split(ERASE) if s]
    assert any(re.fullmatch(r"reading big\.snapshot: [\d.]+ (B|KiB|MiB) of "
                            r"[\d.]+ KiB \(\d+%\), [\d.]+ s", s)
               for s in drawn), drawn
    assert any(s.startswith("grouping 60,000 traces: working, ")
               for s in drawn), drawn
    assert "%.1f KiB" % (size / 1024) in term
    # every drawn line is erased: the terminal ends on an erase
    assert term.endswith(ERASE), repr(term[-80:])


def test_quick_steps_stay_silent_on_a_terminal(snap_file):
    """With the default 1 s delay, a step shorter than that draws nothing;
    the delay is raised here so that this holds on any machine."""
    rc, out, term = run_on_pty(
        ["-m", "fasttracemalloc", "report", str(snap_file), "--top", "1"],
        _FASTTRACEMALLOC_PROGRESS_DELAY="600")
    assert rc == 0, term
    assert term == "", repr(term)
    assert out.startswith("Top 1 lines")


@pytest.mark.parametrize("command", [
    ["report", "{f}"], ["export", "{f}", "-o", "{o}"],
    ["flamegraph", "{f}", "-o", "{o}"], ["compare", "{f}", "{f}"]])
def test_no_progress_in_a_pipe(snap_file, tmp_path, command):
    args = [a.format(f=snap_file, o=tmp_path / "out") for a in command]
    proc = run_python("-m", "fasttracemalloc", *args,
                      _FASTTRACEMALLOC_PROGRESS_DELAY="0")
    assert proc.returncode == 0, proc.stderr
    assert "\x1b[K" not in proc.stderr and "\r" not in proc.stderr
    assert "\x1b[K" not in proc.stdout


def test_progress_can_be_forced_and_refused(snap_file):
    forced = run_python("-m", "fasttracemalloc", "report", str(snap_file),
                        FASTTRACEMALLOC_PROGRESS="always",
                        _FASTTRACEMALLOC_PROGRESS_DELAY="0")
    assert forced.returncode == 0
    assert "reading big.snapshot: " in forced.stderr
    rc, _out, term = run_on_pty(
        ["-m", "fasttracemalloc", "report", str(snap_file)],
        FASTTRACEMALLOC_PROGRESS="never", _FASTTRACEMALLOC_PROGRESS_DELAY="0")
    assert rc == 0 and term == "", repr(term)


def test_report_sizes_read_like_the_stdlib(snap_file):
    """Sizes in the text report use the stdlib's units (B, KiB, MiB) as
    its own Statistic lines do."""
    proc = run_python("-m", "fasttracemalloc", "report", str(snap_file),
                      "--top", "2")
    assert proc.returncode == 0, proc.stderr
    snap = tracemalloc.Snapshot.load(str(snap_file))
    stats = snap.statistics("lineno")
    total = sum(s.size for s in stats)
    first = stats[0]
    assert ("#1: app.py:%d: %s (%d blocks)"
            % (first.traceback[0].lineno,
               tracemalloc._format_size(first.size, False), first.count)
            in proc.stdout), proc.stdout
    assert ("Total allocated size: %s" % tracemalloc._format_size(
        total, False)) in proc.stdout
