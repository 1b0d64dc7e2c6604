"""The start-up switch: FASTTRACEMALLOC=N / -X fasttracemalloc[=N].

Each case of CPython's TestCommandLine (Lib/test/test_tracemalloc.py),
which tests the builtin's PYTHONTRACEMALLOC / -X tracemalloc, is ported here
to fasttracemalloc's switch (same name, same expectation), followed by the
cases specific to a .pth-based switch.  The switch lives in
fasttracemalloc_switch.pth, so these tests need the package pip-installed.
"""

import os
import resource
import subprocess
import sys
import sysconfig

import pytest

from conftest import child_env, needs_engine, needs_pth, run_python

pytestmark = needs_pth

INVALID_NFRAME = (-1, 2 ** 30)
CODE_IS_TRACING = "import tracemalloc; print(tracemalloc.is_tracing())"
CODE_LIMIT = "import tracemalloc; print(tracemalloc.get_traceback_limit())"


def ok(*args, **env):
    proc = run_python(*args, **env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.rstrip()


def failure(*args, **env):
    proc = run_python(*args, **env)
    assert proc.returncode != 0
    return proc


# --- TestCommandLine, ported ---------------------------------------------

def test_env_var_disabled_by_default():
    code = CODE_IS_TRACING + "; import sys; print('fasttracemalloc' in sys.modules)"
    # not tracing, and the package was not even imported
    assert ok("-c", code) == "False\nFalse"


@pytest.mark.parametrize("flag", ["-E", "-I"])
def test_env_var_ignored_with_E(flag):
    assert ok(flag, "-c", CODE_IS_TRACING, FASTTRACEMALLOC="1") == "False"


def test_env_var_disabled():
    assert ok("-c", CODE_IS_TRACING, FASTTRACEMALLOC="0") == "False"


def test_env_var_enabled_at_startup():
    assert ok("-c", CODE_IS_TRACING, FASTTRACEMALLOC="1") == "True"


def test_env_limit():
    assert ok("-c", CODE_LIMIT, FASTTRACEMALLOC="10") == "10"


def check_env_var_invalid(nframe):
    proc = failure("-c", "pass", FASTTRACEMALLOC=str(nframe))
    assert proc.returncode == 1
    assert "FASTTRACEMALLOC: invalid number of frames" in proc.stderr
    assert "[1; 65535]" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.parametrize("nframe", INVALID_NFRAME + ("x", "65536", "1.5",
                                                     "5 ", "--1", "1" * 5000,
                                                     "-" + "0" * 5000 + "7"))
def test_env_var_invalid(nframe):
    check_env_var_invalid(nframe)


@pytest.mark.parametrize("xoption,nframe", [
    ("fasttracemalloc", 1), ("fasttracemalloc=1", 1),
    ("fasttracemalloc=15", 15)])
def test_sys_xoptions(xoption, nframe):
    assert ok("-X", xoption, "-c", CODE_LIMIT) == str(nframe)
    assert ok("-X", xoption, "-c", CODE_IS_TRACING) == "True"


def check_sys_xoptions_invalid(nframe):
    proc = failure("-X", "fasttracemalloc=%s" % nframe, "-c", "pass")
    assert proc.returncode == 1
    assert "-X fasttracemalloc=NFRAME: invalid number of frames" in proc.stderr
    assert "[1; 65535]" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.parametrize("nframe", INVALID_NFRAME + ("x", "65536"))
def test_sys_xoptions_invalid(nframe):
    check_sys_xoptions_invalid(nframe)


def test_pymem_alloc0():
    """Issue #21639: PyMem_Malloc(0) with tracing enabled must not crash."""
    pytest.importorskip("_testcapi")
    ok("-X", "fasttracemalloc", "-c",
       "import _testcapi; _testcapi.test_pymem_alloc0(); 1")


# --- specific to fasttracemalloc's switch ---------------------------------

def test_switch_installs_the_engine():
    code = ("import tracemalloc, fasttracemalloc, _tracemalloc\n"
            "print(fasttracemalloc.is_installed(), fasttracemalloc.is_tracing(),"
            " tracemalloc.start is fasttracemalloc.start,"
            " tracemalloc._get_traces is fasttracemalloc._get_traces)")
    assert ok("-c", code, FASTTRACEMALLOC="3") == "True True True True"


@needs_engine
def test_switch_leaves_builtin_off():
    code = "import _tracemalloc; print(_tracemalloc.is_tracing())"
    assert ok("-c", code, FASTTRACEMALLOC="3") == "False"


def test_traced_from_first_line():
    """An object allocated by the program's first statement has a traceback
    pointing at it (tracing started before the program)."""
    code = ("data = [b'x' * 10000]\n"
            "import tracemalloc\n"
            "tb = tracemalloc.get_object_traceback(data[0])\n"
            "print(tb[-1].filename, tb[-1].lineno)\n")
    assert ok("-c", code, FASTTRACEMALLOC="5") == "<string> 1"


def test_xoption_wins_over_env():
    assert ok("-X", "fasttracemalloc=7", "-c", CODE_LIMIT,
              FASTTRACEMALLOC="3") == "7"
    assert ok("-X", "fasttracemalloc=0", "-c", CODE_IS_TRACING,
              FASTTRACEMALLOC="3") == "False"


def test_invalid_env_reported_even_with_xoption():
    proc = failure("-X", "fasttracemalloc=4", "-c", "pass",
                   FASTTRACEMALLOC="bad")
    assert "FASTTRACEMALLOC: invalid number of frames" in proc.stderr


def test_empty_values_mean_off():
    assert ok("-c", CODE_IS_TRACING, FASTTRACEMALLOC="") == "False"
    assert ok("-X", "fasttracemalloc=", "-c", CODE_IS_TRACING) == "False"


def test_leading_blanks_and_sign_accepted_like_builtin():
    assert ok("-c", CODE_LIMIT, FASTTRACEMALLOC=" +12") == "12"
    # leading zeros beyond int()'s 4300-digit limit, as the builtin's wcstol
    assert ok("-c", CODE_LIMIT, FASTTRACEMALLOC="0" * 5000 + "7") == "7"


def test_S_disables_the_switch():
    assert ok("-S", "-c", CODE_IS_TRACING, FASTTRACEMALLOC="3") == "False"


@needs_engine  # -I also hides FASTTRACEMALLOC_BACKEND from the child
def test_I_keeps_the_xoption():
    assert ok("-I", "-X", "fasttracemalloc=4", "-c", CODE_LIMIT) == "4"


@needs_engine
def test_takes_over_from_builtin_switch():
    """-X tracemalloc and -X fasttracemalloc together: the user asked for
    fasttracemalloc, so the builtin is stopped and the engine traces."""
    code = ("import _tracemalloc, tracemalloc\n"
            "print(_tracemalloc.is_tracing(), tracemalloc.is_tracing(),"
            " tracemalloc.get_traceback_limit())")
    assert ok("-X", "tracemalloc=5", "-X", "fasttracemalloc=3", "-c",
              code) == "False True 3"
    assert ok("-c", code, PYTHONTRACEMALLOC="5",
              FASTTRACEMALLOC="2") == "False True 2"


def test_children_inherit_env_switch():
    code = ("import subprocess, sys\n"
            "print(subprocess.run([sys.executable, '-c', %r],"
            " capture_output=True, text=True).stdout.strip())" % CODE_LIMIT)
    assert ok("-c", code, FASTTRACEMALLOC="6") == "6"


# --- the switch imports nothing but the engine ----------------------------

CODE_MODULES = "import sys, json; print(json.dumps(sorted(sys.modules)))"
# What the switch itself may add at start-up: the engine and the package
# modules that load it (the builtin's -X tracemalloc imports nothing).
SWITCH_MODULES = {"_tracemalloc", "fasttracemalloc", "fasttracemalloc._backend",
                  "fasttracemalloc._fasttracemalloc", "fasttracemalloc._switch"}


@needs_engine
@pytest.mark.parametrize("switch", ["env", "xoption"])
def test_switch_imports_only_the_engine(switch):
    import json
    plain = set(json.loads(ok("-c", CODE_MODULES)))
    if switch == "env":
        traced = set(json.loads(ok("-c", CODE_MODULES, FASTTRACEMALLOC="5")))
    else:
        # -X also waits for subprocess (children): it must import nothing
        traced = set(json.loads(ok("-X", "fasttracemalloc=5", "-c",
                                   CODE_MODULES)))
    # json is imported by the probe itself in both runs
    assert traced - plain <= SWITCH_MODULES, sorted(traced - plain)
    for name in ("tracemalloc", "pickle", "linecache", "fnmatch", "threading"):
        assert name not in traced - plain


@needs_engine
def test_switch_installs_on_first_import_of_tracemalloc():
    code = ("import sys, importlib.machinery as m\n"
            "assert 'tracemalloc' not in sys.modules\n"
            "import tracemalloc, fasttracemalloc\n"
            "print(tracemalloc.start is fasttracemalloc.start,"
            " tracemalloc.is_tracing(), tracemalloc.get_traceback_limit(),"
            " isinstance(tracemalloc.__loader__, m.SourceFileLoader),"
            " tracemalloc.__spec__.loader is tracemalloc.__loader__,"
            " any(getattr(f, 'name', None) == 'tracemalloc'"
            " for f in sys.meta_path))\n"
            "x = [bytearray(4321) for _ in range(3)]\n"
            "print(tracemalloc.get_object_traceback(x[0])[0].lineno)\n")
    assert ok("-c", code, FASTTRACEMALLOC="7") == "True True 7 True True False\n5"


@needs_engine
def test_switch_leaves_pickle_accelerator_choice_to_the_program():
    """pyperformance's pickle_pure_python blocks the C accelerator before it
    imports pickle; a switch that imported pickle at start-up broke it."""
    code = ("import sys\n"
            "sys.modules['_pickle'] = None\n"
            "import pickle\n"
            "print(pickle.Pickler is pickle._Pickler)\n"
            "import tracemalloc; print(tracemalloc.is_tracing())\n")
    assert ok("-c", code, FASTTRACEMALLOC="1") == "True\nTrue"


# --- children: -X fasttracemalloc travels like -X tracemalloc ---------------
# (the children themselves are in test_children.py)

CODE_FLAGS = ("import subprocess, multiprocessing.util as u, json\n"
              "print(json.dumps([subprocess._args_from_interpreter_flags(),"
              " u._args_from_interpreter_flags()]))")


def xoptions_in(args):
    return [b for a, b in zip(args, args[1:]) if a == "-X"]


def flags(*args, **env):
    import json
    return json.loads(ok(*args, "-c", CODE_FLAGS, **env))


@pytest.mark.parametrize("xoption", ["fasttracemalloc=4", "fasttracemalloc",
                                     "fasttracemalloc=0"])
def test_xoption_is_in_the_interpreter_flags(xoption):
    """As -X tracemalloc[=N] is: once, as given (3.15 lists every -X
    option itself; ours replaces it)."""
    builtin = flags("-X", xoption[4:])  # the builtin's -X tracemalloc...
    for args in flags("-X", xoption):
        opts = xoptions_in(args)
        assert [o for o in opts if o.startswith("fasttracemalloc")] == \
            [xoption], args
    for args in builtin:
        assert xoption[4:] in xoptions_in(args), args


def test_env_is_not_in_the_interpreter_flags():
    """FASTTRACEMALLOC reaches children through the environment, as
    PYTHONTRACEMALLOC does: neither is turned into a -X option."""
    for args in flags(FASTTRACEMALLOC="4") + flags(PYTHONTRACEMALLOC="4"):
        assert not [o for o in xoptions_in(args) if "tracemalloc" in o], args


@pytest.mark.parametrize("switch", [(), ("-X", "fasttracemalloc=3")])
def test_pass_to_children_after_subprocess_was_imported(switch):
    """run calls it once subprocess and multiprocessing.util may already
    be imported (and wrapped by the switch, or not): both bindings carry
    the latest value, once."""
    code = ("import subprocess, multiprocessing.util as u, json\n"
            "from fasttracemalloc._switch import pass_to_children\n"
            "pass_to_children('fasttracemalloc=9')\n"
            "pass_to_children('fasttracemalloc=8')\n"
            "print(json.dumps([subprocess._args_from_interpreter_flags(),"
            " u._args_from_interpreter_flags()]))")
    import json
    for args in json.loads(ok(*switch, "-c", code)):
        assert [o for o in xoptions_in(args)
                if o.startswith("fasttracemalloc")] == ["fasttracemalloc=8"]


# --- under an address-space limit (ulimit -v) -------------------------------
#
# The switch must never end start-up: where the untraced program runs, the
# traced one runs too, traced or (with one line on stderr) untraced.  And
# the engine must not need much more address space than the program: its
# merger thread used to get the default 8 MiB stack, so under a limit a few
# MiB above the program's own peak it could not start (issue 11).

# What the child reports: "ran", whether it is traced, whether the merger
# thread runs.  WORKLOAD: 20,000 live strings in a list, 2,000 dicts made
# and dropped; when traced, every trace is read back once.
REPORT = (
    "import sys\n"
    "m = sys.modules.get('fasttracemalloc._fasttracemalloc')\n"
    "tracing = m is not None and m.is_tracing()\n"
    "print('ran', tracing, m is not None and m._stats()['merger_thread'])")
WORKLOAD = ("keep = [str(i) * 3 for i in range(20000)]\n"
            "for i in range(2000):\n"
            "    d = {'a': [i] * 8}\n"
            "import sys\n"
            "m = sys.modules.get('fasttracemalloc._fasttracemalloc')\n"
            "assert not (m and m.is_tracing()) or len(m._get_traces()) > 2e4\n")
VMPEAK = ("for l in open('/proc/self/status'):\n"
          "    if l.startswith('VmPeak:'): print(int(l.split()[1]))")
START_FAILED = "fasttracemalloc: cannot start tracing ("

needs_plain_address_space = pytest.mark.skipif(
    "asan" in os.environ.get("LD_PRELOAD", "")
    or "jemalloc" in os.environ.get("LD_PRELOAD", "")
    or bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
    reason="address-space limits are meaningless under ASan (terabytes of "
           "shadow) and mimalloc (free-threaded builds reserve large "
           "segments); under a jemalloc preload, jemalloc 5.3 itself "
           "segfaults in mallocx on a new thread once RLIMIT_AS runs out "
           "(see issue 11's note)")


def limited_runs(code, extras, **env):
    """For each extra (KiB): run *code* untraced, then with *env*, both
    with RLIMIT_AS = the untraced program's own peak address space (its
    VmPeak, measured in a first run) + extra.  Yields (extra, untraced,
    traced) CompletedProcesses; traced is None where untraced failed."""
    base = int(ok("-c", code + VMPEAK))

    def run(extra, env):
        limit = (base + extra) * 1024

        def limit_address_space():
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        return subprocess.run([sys.executable, "-c", code + REPORT],
                              env=child_env(**env), capture_output=True,
                              text=True, timeout=120,
                              preexec_fn=limit_address_space)

    for extra in extras:
        untraced = run(extra, {})
        yield extra, untraced, (run(extra, env) if untraced.returncode == 0
                                else None)


def check_traced_or_one_line(extra, traced):
    """A run that ended: traced, or untraced after one line.  Returns
    True for the one-line path, None for a run whose start-up code ran out
    of memory after the switch succeeded (Debian's sitecustomize on 3.15:
    "Error in sitecustomize ... MemoryError"; the callers allow that only
    just above the program's peak)."""
    words = traced.stdout.split()
    assert words[0] == "ran", (extra, traced.stdout)
    if traced.stderr and not traced.stderr.startswith(START_FAILED):
        assert "fasttracemalloc" not in traced.stderr, (extra, traced.stderr)
        assert "MemoryError" in traced.stderr, (extra, traced.stderr)
        return None
    if not traced.stderr:
        assert words[1] == "True", (extra, traced.stdout)
        return False
    lines = traced.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(START_FAILED), \
        (extra, traced.stderr)
    assert lines[0].endswith("the program runs untraced")
    assert words[1] == "False", traced.stdout
    return True


@needs_plain_address_space
def test_switch_never_ends_startup_under_an_address_limit():
    """From the program's own peak upwards: wherever the untraced start-up
    runs, the switch either traces it, or says in one line that it cannot
    (the extension cannot be mapped, the engine gets no memory) and runs it
    untraced, instead of ending in "Fatal Python error: init_import_site"
    with a traceback from its .pth.  Just above the peak a traced start-up
    may still run out of memory after the switch succeeded (in site.py,
    another .pth, a sitecustomize): tracing needs memory, as the builtin's
    does.  That is allowed only below 3 MiB over the peak."""
    failed_once = False
    ran = 0
    for extra, untraced, traced in limited_runs(
            "", range(0, 8192 + 1, 256), FASTTRACEMALLOC="25"):
        if traced is None:
            continue  # too tight for the program itself: not the question
        ran += 1
        if traced.returncode != 0:
            assert extra < 3072, (extra, traced.stderr)
            continue
        result = check_traced_or_one_line(extra, traced)
        if result is None:
            assert extra < 3072, (extra, traced.stderr)
        failed_once |= bool(result)
    assert ran >= 24, ran
    # Just above the program's own peak nothing is left for the engine:
    # the one-line path above really ran.
    assert failed_once


@needs_plain_address_space
def test_workload_traced_a_few_mib_above_the_program():
    """Start-up and a small workload: traced, with the merger thread,
    from 6 MiB over the untraced program's peak (an 8 MiB merger stack did
    not fit).  Measured on pyenv 3.11.7: traced from 4 MiB; the builtin's
    PYTHONTRACEMALLOC=25 still failed or hung at 12 MiB.  Below, the same
    rule as at start-up: traced, one line, or out of memory after the
    switch succeeded."""
    for extra, untraced, traced in limited_runs(
            WORKLOAD, range(0, 8192 + 1, 1024), FASTTRACEMALLOC="25"):
        if extra >= 6144:
            assert untraced.returncode == 0, (extra, untraced.stderr)
            assert traced.returncode == 0, (extra, traced.stderr)
            assert traced.stderr == "", (extra, traced.stderr)
            assert traced.stdout.split() == ["ran", "True", "1"], \
                (extra, traced.stdout)
        elif traced is not None and traced.returncode == 0:
            check_traced_or_one_line(extra, traced)  # None allowed here
