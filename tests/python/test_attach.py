"""Attach to a running process: attach / snapshot / detach PID (issue 9,
item 4; python/fasttracemalloc/_attach.py).

On 3.14+ a real target process is started untraced, attached to from
another process, made to allocate on a known line, snapshotted from
outside, and detached; the snapshot must hold the target's line with what
it allocated after the attach and nothing it allocated before.  Before
3.14 (no sys.remote_exec) the commands must say so in one line.
"""

import os
import subprocess
import sys
import time
import tracemalloc

import pytest

from conftest import child_env, needs_engine, run_python

pytestmark = needs_engine

TARGET = """\
import os, sys, time
before = [bytearray(5000) for _ in range(100)]          # line 2
after = []
go = sys.argv[1]
print("READY", flush=True)
while not os.path.exists(go):
    time.sleep(0.02)
after.extend(bytearray(7000) for _ in range(50))        # line 8
print("GREW", flush=True)
deadline = time.time() + 60
while time.time() < deadline and not os.path.exists(go + ".stop"):
    time.sleep(0.02)
import fasttracemalloc
print("TRACING", fasttracemalloc.is_tracing(), flush=True)
"""

needs_314 = pytest.mark.skipif(
    sys.version_info < (3, 14), reason="sys.remote_exec is new in 3.14")


def cli(*args):
    return run_python("-m", "fasttracemalloc", *args)


@needs_314
def test_attach_snapshot_detach_a_running_process(tmp_path):
    script = tmp_path / "target.py"
    script.write_text(TARGET)
    go = tmp_path / "go"
    target = subprocess.Popen([sys.executable, str(script), str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=child_env())
    try:
        assert target.stdout.readline().strip() == "READY"
        att = cli("attach", str(target.pid), "-n", "3")
        if att.returncode != 0 and "ptrace" in att.stderr.lower():
            pytest.skip("no ptrace permission here: %s" % att.stderr.strip())
        assert att.returncode == 0, att.stderr
        assert "is tracing with nframe=3" in att.stdout
        go.write_text("")
        assert target.stdout.readline().strip() == "GREW"
        snap_path = tmp_path / "t.snapshot"
        snap = cli("snapshot", str(target.pid), "-o", str(snap_path))
        assert snap.returncode == 0, snap.stderr
        det = cli("detach", str(target.pid))
        assert det.returncode == 0, det.stderr
        (tmp_path / "go.stop").write_text("")
        out, err = target.communicate(timeout=60)
    finally:
        if target.poll() is None:
            target.kill()
            target.wait()
    assert target.returncode == 0, err
    assert "TRACING False" in out  # detached
    snapshot = tracemalloc.Snapshot.load(str(snap_path))
    assert snapshot.traceback_limit == 3
    by_line = {s.traceback[0].lineno: s for s in
               snapshot.filter_traces([tracemalloc.Filter(
                   True, str(script))]).statistics("lineno")}
    assert 8 in by_line, by_line
    assert 50 * 7000 <= by_line[8].size < 50 * 7000 + 50 * 200
    assert 2 not in by_line  # allocated before the attach: not traced


@pytest.mark.skipif(sys.version_info >= (3, 14),
                    reason="the pre-3.14 message")
def test_attach_before_314_says_why():
    proc = cli("attach", str(os.getppid()))
    assert proc.returncode == 2
    assert "needs Python 3.14 or later (sys.remote_exec)" in proc.stderr
    assert proc.stderr.count("\n") <= 3  # usage + one-line error


def test_attach_errors():
    for args in (["attach", "x"], ["attach", "0"], ["snapshot", "-3"],
                 ["detach"]):
        proc = cli(*args)
        assert proc.returncode == 2, args
        assert "Traceback" not in proc.stderr
    if sys.version_info >= (3, 14):
        # a process that does not exist
        proc = cli("attach", "999999999", "--timeout", "2")
        assert proc.returncode == 2
        assert "cannot run code in process 999999999" in proc.stderr
        assert "Traceback" not in proc.stderr


@needs_314
def test_snapshot_of_an_untraced_process_is_refused(tmp_path):
    target = subprocess.Popen(
        [sys.executable, "-c",
         "import time, sys\nprint('R', flush=True)\n"
         "for _ in range(3000): time.sleep(0.01)"],
        stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        assert target.stdout.readline().strip() == "R"
        proc = cli("snapshot", str(target.pid), "-o",
                   str(tmp_path / "x.snapshot"), "--timeout", "20")
    finally:
        target.kill()
        target.wait()
    if "ptrace" in proc.stderr.lower():
        pytest.skip("no ptrace permission here")
    assert proc.returncode == 2
    assert "not tracing: attach first" in proc.stderr
