"""``python -m fasttracemalloc run``: status, snapshot file, report, -m mode."""

import os
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT, child_env, run_python


def run_cli(*args, cwd):
    return run_python("-m", "fasttracemalloc", "run", *args, cwd=str(cwd))


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def load_in_bare_interpreter(path):
    """Load a snapshot with the stdlib only (-I -S: no fasttracemalloc)."""
    code = ("import sys, tracemalloc\n"
            "s = tracemalloc.Snapshot.load(sys.argv[1])\n"
            "print(type(s).__module__, s.traceback_limit, len(s.traces))\n"
            "for st in s.statistics('lineno'):\n"
            "    print(st.traceback[0].filename, st.traceback[0].lineno,"
            " st.size, st.count)\n")
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(path)],
                          capture_output=True, text=True, env=child_env())
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


PROGRAM = """\
import sys
KEEP = [bytes(100_000) for _ in range(20)]
print("argv", sys.argv[1:])
print("name", __name__)
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
"""


@pytest.mark.parametrize("status", [0, 3, 42])
def test_exit_status_and_snapshot(tmp_path, status):
    script = write(tmp_path / "prog.py", PROGRAM)
    proc = run_cli("-n", "4", "-o", "out.snap", str(script), str(status),
                   cwd=tmp_path)
    assert proc.returncode == status, proc.stderr
    assert "argv ['%d']" % status in proc.stdout
    assert "name __main__" in proc.stdout
    lines = load_in_bare_interpreter(tmp_path / "out.snap")
    module, limit, count = lines[0].split()
    assert module == "tracemalloc" and limit == "4" and int(count) > 0
    # the 20 x 100 kB kept by line 2 are the top line of the snapshot
    top = lines[1].split()
    assert top[0] == str(script) and top[1] == "2"
    # 20 bytes objects + the list holding them
    assert int(top[2]) >= 2_000_000 and int(top[3]) in (20, 21)


def test_report_top_lines(tmp_path):
    script = write(tmp_path / "prog.py", PROGRAM)
    proc = run_cli("--top", "3", str(script), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert "Top 3 lines" in err
    assert "#1: %s:2: " % script in err
    assert "KEEP = [bytes(100_000) for _ in range(20)]" in err
    assert "#3:" in err and "#4:" not in err
    assert "Total allocated size:" in err
    assert os.path.exists(tmp_path / "fasttracemalloc.snapshot")


def test_report_default_is_ten(tmp_path):
    script = write(tmp_path / "prog.py", "KEEP = []\n" + "".join("KEEP.append(bytes(%d))\n" % (1000 * (i + 1))
                      for i in range(15)))
    proc = run_cli(str(script), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Top 10 lines" in proc.stderr
    assert "#10:" in proc.stderr and "#11:" not in proc.stderr
    assert " other: " in proc.stderr


@pytest.mark.parametrize("key_type,expect", [
    ("filename", "#1: %s: "), ("traceback", '  File "%s", line 2')])
def test_report_key_types(tmp_path, key_type, expect):
    script = write(tmp_path / "prog.py", PROGRAM)
    proc = run_cli("--key-type", key_type, str(script), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert expect % script in proc.stderr


def test_exception_gives_traceback_and_status_1(tmp_path):
    script = write(tmp_path / "boom.py", """\
        def fail():
            raise ValueError("boom")
        fail()
        """)
    proc = run_cli(str(script), cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback (most recent call last):" in proc.stderr
    assert 'File "%s", line 3, in <module>' % script in proc.stderr
    assert "ValueError: boom" in proc.stderr
    # the runner's frames are trimmed from the program's traceback
    assert "_cli.py" not in proc.stderr.split("ValueError: boom")[0]
    assert (tmp_path / "fasttracemalloc.snapshot").exists()


def test_sys_exit_with_message(tmp_path):
    script = write(tmp_path / "msg.py", "import sys\nsys.exit('bad input')\n")
    proc = run_cli(str(script), cwd=tmp_path)
    assert proc.returncode == 1
    assert "bad input" in proc.stderr


def test_module_mode(tmp_path):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    write(pkg / "tool.py", PROGRAM)
    proc = run_cli("-n", "2", "-m", "mypkg.tool", "5", "--flag", cwd=tmp_path)
    assert proc.returncode == 5, proc.stderr
    assert "argv ['5', '--flag']" in proc.stdout
    assert "name __main__" in proc.stdout
    lines = load_in_bare_interpreter(tmp_path / "fasttracemalloc.snapshot")
    assert lines[0].split()[1] == "2"
    assert lines[1].split()[:2] == [str(pkg / "tool.py"), "2"]


def test_script_sees_its_directory_on_sys_path(tmp_path):
    sub = tmp_path / "app"
    sub.mkdir()
    (sub / "helper.py").write_text("VALUE = 'helper found'\n")
    script = write(sub / "main.py", "import helper, sys\nprint(helper.VALUE)\n"
                   "print(sys.argv)\n")
    proc = run_cli(str(script), "a", "-b", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "helper found" in proc.stdout
    assert "%r" % [str(script), "a", "-b"] in proc.stdout


def test_program_uses_tracemalloc_itself(tmp_path):
    script = write(tmp_path / "self.py", """\
        import tracemalloc, fasttracemalloc
        assert tracemalloc.is_tracing()
        assert tracemalloc.get_traceback_limit() == 6
        snap = tracemalloc.take_snapshot()
        print(type(snap).__name__, fasttracemalloc.is_installed())
        """)
    proc = run_cli("-n", "6", str(script), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Snapshot True" in proc.stdout


@pytest.mark.parametrize("args,message", [
    (["-n", "0", "x.py"], "range [1; 65535]"),
    (["-n", "65536", "x.py"], "range [1; 65535]"),
    (["-n", "abc", "x.py"], "invalid number of frames"),
    (["--key-type", "bogus", "x.py"], "invalid choice"),
    (["--top", "-1", "x.py"], "must be >= 0"),
    ([], "a script or -m module is required"),
    (["-m"], "expected a module name"),
])
def test_bad_arguments(tmp_path, args, message):
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_missing_script(tmp_path):
    proc = run_cli("nope.py", cwd=tmp_path)
    assert proc.returncode == 2
    assert "can't open file 'nope.py'" in proc.stderr


def test_bundled_example(tmp_path):
    """The README's main command on the bundled threaded workload (small)."""
    example = os.path.join(ROOT, "examples", "threaded_workload.py")
    proc = run_cli("-n", "25", example, "--records", "400", "--threads", "3",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "3 threads x 400 records done" in proc.stdout
    assert "Top 10 lines" in proc.stderr
    lines = load_in_bare_interpreter(tmp_path / "fasttracemalloc.snapshot")
    assert lines[0].split()[1] == "25"
    assert any(example in line or "json" in line for line in lines[1:4])


def test_usage(tmp_path):
    proc = run_python("-m", "fasttracemalloc", cwd=str(tmp_path))
    assert proc.returncode == 2 and "usage:" in proc.stdout
    proc = run_python("-m", "fasttracemalloc", "--help", cwd=str(tmp_path))
    assert proc.returncode == 0 and "run" in proc.stdout
    proc = run_python("-m", "fasttracemalloc", "bogus", cwd=str(tmp_path))
    assert proc.returncode == 2 and "unknown command 'bogus'" in proc.stderr
    proc = run_cli("--help", cwd=tmp_path)
    assert proc.returncode == 0 and "--key-type" in proc.stdout


def test_options_after_script_belong_to_the_program(tmp_path):
    script = write(tmp_path / "args.py", "import sys; print(sys.argv[1:])\n")
    proc = run_cli(str(script), "-n", "3", "-o", "x", "--top", "2",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "['-n', '3', '-o', 'x', '--top', '2']" in proc.stdout
    assert (tmp_path / "fasttracemalloc.snapshot").exists()


def test_report_command(tmp_path):
    script = write(tmp_path / "prog.py", PROGRAM)
    assert run_cli("--top", "0", str(script), cwd=tmp_path).returncode == 0
    proc = run_python("-m", "fasttracemalloc", "report", "--top", "2",
                      "fasttracemalloc.snapshot", cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "Top 2 lines" in proc.stdout
    assert "#1: %s:2: " % script in proc.stdout
    assert "#3:" not in proc.stdout


def test_report_reads_builtin_dump(tmp_path):
    code = ("import tracemalloc\n"
            "tracemalloc.start(3)\n"
            "data = [bytes(50000) for _ in range(10)]\n"
            "tracemalloc.take_snapshot().dump('builtin.snapshot')\n")
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", code],
                          cwd=str(tmp_path), env=child_env())
    assert proc.returncode == 0
    proc = run_python("-m", "fasttracemalloc", "report", "--key-type",
                      "filename", "builtin.snapshot", cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "#1: <string>: " in proc.stdout


@pytest.mark.parametrize("content,message", [
    (None, "cannot read"), (b"garbage", "is not a snapshot"),
])
def test_report_bad_files(tmp_path, content, message):
    if content is not None:
        (tmp_path / "bad.snapshot").write_bytes(content)
    proc = run_python("-m", "fasttracemalloc", "report", "bad.snapshot",
                      cwd=str(tmp_path))
    assert proc.returncode == 2
    assert message in proc.stderr


def test_report_not_a_snapshot(tmp_path):
    import pickle
    (tmp_path / "list.pickle").write_bytes(pickle.dumps([1, 2]))
    proc = run_python("-m", "fasttracemalloc", "report", "list.pickle",
                      cwd=str(tmp_path))
    assert proc.returncode == 2
    assert "holds a list, not a snapshot" in proc.stderr
