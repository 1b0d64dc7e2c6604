#!/usr/bin/env python3
"""mutate.py -- mutation testing of the engine (core/) and of the Python
extension and package (python/): does the suite catch a deliberately broken
tracer?

For every fault of the catalogue (faults.txt, format described there) it
applies the fault to a COPY of the repository (the real checkout is never
written to), rebuilds the engine's tests in Release, runs the tests the
catalogue names for that fault under a timeout, and reports the fault
KILLED (some test failed, crashed or timed out) or SURVIVED (every test
passed: the suite cannot tell this wrong engine from the real one).

  tests/mutation/run.sh                 the CI subset (faults marked subset)
  tests/mutation/run.sh --all           every fault
  tests/mutation/run.sh --fault NAME    one fault (repeatable)
  tests/mutation/run.sh --worktree      copy the working tree instead of
                                        HEAD (to try uncommitted tests)
  tests/mutation/run.sh --rev REV --catalogue FILE
                                        another commit's suite (e.g. did the
                                        suite before a change kill a fault?)

How: the copy is `git archive HEAD` (or the working tree's core/, include/,
tests/ and top-level CMake files) in a temporary directory, configured once
(Release, no benchmarks).  Before anything is built, every fault's search
text must occur EXACTLY ONCE in the pristine file, or the run stops: a
catalogue entry whose code has moved must fail loudly, not silently test
nothing.  Then the named tests are built and run once unmutated (they must
pass, or a "kill" would mean nothing), and for each fault: apply, rebuild
(incremental), run with ctest --timeout, restore the pristine file.

Faults in python/ (the extension's C in python/src, the package's Python
in python/fasttracemalloc) name pytest tests (paths relative to
tests/python, node ids allowed) instead of ctest tests.  For them the copy
also gets a venv of the interpreter running this script (pytest from the
package index), the extension is built with CMake straight from the copy
(FTM_BUILD_PYTHON=ON, incremental like the engine's tests) and linked into
the copy's package directory, and pytest runs with PYTHONPATH pointing
there (tests that need the installed .pth skip themselves with a reason,
which is why the catalogue names tests that do not).  A fault is killed
when pytest reports a failure, an error, a crash or a timeout.

Exit status: 0 if every fault was killed, 1 if any survived or could not
be built, 2 on a usage or catalogue error.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
COPY_PATHS = ["core", "include", "tests", "python", "CMakeLists.txt",
              "CMakePresets.json"]


class Fault:
    def __init__(self, name):
        self.name = name
        self.file = None
        self.tests = []
        self.subset = False
        self.why = ""
        self.edits = []  # (find, replace)

    @property
    def python(self):
        """A fault in python/: its tests are pytest tests."""
        return self.file.startswith("python/")


def parse_catalogue(path):
    """Blocks: '== NAME', then 'key: value' lines (file, tests, subset,
    why), then one or more '--- find' / '+++ replace' pairs whose bodies
    are taken verbatim up to the next marker line."""
    faults = []
    cur = None
    mode = None  # None, 'find', 'replace'
    body = []

    def close_body():
        nonlocal body, mode
        if mode == "find":
            cur.edits.append(["".join(body), None])
        elif mode == "replace":
            cur.edits[-1][1] = "".join(body)
        body = []

    with open(path) as f:
        for line in f:
            if line.startswith("== "):
                if cur is not None:
                    close_body()
                    faults.append(cur)
                cur = Fault(line[3:].strip())
                mode = None
            elif cur is not None and line.rstrip("\n") == "--- find":
                close_body()
                mode = "find"
            elif cur is not None and line.rstrip("\n") == "+++ replace":
                if mode != "find":
                    sys.exit(f"catalogue: '+++ replace' without '--- find' in {cur.name}")
                close_body()
                mode = "replace"
            elif mode is not None:
                body.append(line)
            elif cur is None or line.startswith("#") or not line.strip():
                continue
            else:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "file":
                    cur.file = value
                elif key == "tests":
                    cur.tests = value.split()
                elif key == "subset":
                    cur.subset = value == "yes"
                elif key == "why":
                    cur.why = (cur.why + " " + value).strip()
                else:
                    sys.exit(f"catalogue: unknown key {key!r} in {cur.name}")
    if cur is not None:
        close_body()
        faults.append(cur)
    for ft in faults:
        if not ft.file or not ft.tests or not ft.edits:
            sys.exit(f"catalogue: fault {ft.name} needs file, tests and an edit")
        for e in ft.edits:
            if e[1] is None:
                sys.exit(f"catalogue: fault {ft.name}: find without replace")
    return faults


def run(cmd, cwd, log, timeout=None, env=None):
    with open(log, "a") as out:
        out.write("\n$ " + " ".join(cmd) + "\n")
        out.flush()
        try:
            p = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                               timeout=timeout, env=env)
            return p.returncode
        except subprocess.TimeoutExpired:
            out.write("(timed out)\n")
            return -1


def make_copy(dest, worktree, rev):
    if worktree:
        for p in COPY_PATHS:
            src = os.path.join(ROOT, p)
            if os.path.isdir(src):
                shutil.copytree(src, os.path.join(dest, p),
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, os.path.join(dest, p))
    else:
        arch = subprocess.run(["git", "-C", ROOT, "archive", rev] + COPY_PATHS,
                              check=True, stdout=subprocess.PIPE).stdout
        subprocess.run(["tar", "-x", "-C", dest], input=arch, check=True)


def apply(copy, ft, pristine):
    text = pristine
    for find, repl in ft.edits:
        text = text.replace(find, repl, 1)
    with open(os.path.join(copy, ft.file), "w") as f:
        f.write(text)


def failed_tests(log_text):
    """What killed the fault: the ctest tests listed under 'The following
    tests FAILED:', each with the cmocka subtests that failed in it (or
    'watchdog' when the engine hung and the test's watchdog fired)."""
    lines = log_text.splitlines()
    subtests = {}  # ctest test -> [cmocka subtests]
    current = None
    for line in lines:
        m = re.search(r"Test\s+#\d+: (\S+)", line) or re.search(r"Start\s+\d+: (\S+)", line)
        if m:
            current = m.group(1)
            continue
        m = re.match(r"\[\s+FAILED\s+\] (test_\w+)$", line.strip())
        if m and current:
            subtests.setdefault(current, []).append(m.group(1))
        if "[ WATCHDOG ]" in line and current:
            subtests.setdefault(current, []).append("watchdog")
    names = []
    grab = False
    for line in lines:
        if "The following tests FAILED" in line:
            grab = True
            continue
        if grab:
            m = re.match(r"\s*\d+ - (\S+) \((.*)\)", line)
            if not m:
                break
            name, how = m.group(1), m.group(2)
            detail = subtests.get(name) or [how]
            names.append(f"{name}: {'+'.join(dict.fromkeys(detail))}")
    return names


class EngineRunner:
    """Faults in core/ (or include/): the engine's ctest tests, Release."""

    def __init__(self, copy, log, args):
        self.copy, self.log, self.args = copy, log, args
        self.build = os.path.join(copy, "build")

    def setup(self, targets):
        a = self.args
        if run(["cmake", "-S", self.copy, "-B", self.build,
                "-DCMAKE_BUILD_TYPE=Release", "-DFTM_BUILD_BENCH=OFF",
                f"-DFTM_TEST_TIMEOUT={a.timeout}"], self.copy, self.log) != 0:
            print(f"configure failed; see {self.log}", file=sys.stderr)
            return False
        if not self.rebuild(targets):
            print(f"baseline build failed; see {self.log}", file=sys.stderr)
            return False
        return True

    def rebuild(self, targets):
        return run(["cmake", "--build", self.build, "-j", str(self.args.jobs),
                    "--target"] + targets, self.copy, self.log) == 0

    def test(self, tests):
        """(status, what failed)"""
        size0 = os.path.getsize(self.log)
        rc = run(["ctest", "--test-dir", self.build, "-j1", "--output-on-failure",
                  "--timeout", str(self.args.timeout),
                  "-R", "^(" + "|".join(tests) + ")$"], self.copy, self.log)
        with open(self.log) as f:
            f.seek(size0)
            out = f.read()
        return rc, ", ".join(failed_tests(out)) or f"ctest status {rc}"


class PythonRunner:
    """Faults in python/: the extension built from the copy with CMake,
    linked into the copy's package directory, and pytest run from the
    copy's tests/python with PYTHONPATH=<copy>/python."""

    def __init__(self, copy, log, args):
        self.copy, self.log, self.args = copy, log, args
        self.build = os.path.join(copy, "build-py")
        self.venv = os.path.join(copy, "pyvenv")
        self.python = os.path.join(self.venv, "bin", "python")
        self.env = dict(os.environ, PYTHONPATH=os.path.join(copy, "python"))
        for name in ("FASTTRACEMALLOC", "PYTHONTRACEMALLOC",
                     "FASTTRACEMALLOC_BACKEND"):
            self.env.pop(name, None)

    def setup(self, tests):
        steps = [
            [sys.executable, "-m", "venv", self.venv],
            [self.python, "-m", "pip", "install", "-q",
             "--disable-pip-version-check", "pytest"],
            ["cmake", "-S", self.copy, "-B", self.build,
             "-DCMAKE_BUILD_TYPE=Release", "-DFTM_BUILD_PYTHON=ON",
             "-DFTM_BUILD_TESTS=OFF", "-DFTM_BUILD_BENCH=OFF",
             f"-DPython_EXECUTABLE={self.python}"],
        ]
        for cmd in steps:
            if run(cmd, self.copy, self.log) != 0:
                print(f"python set-up failed ({cmd[0]} ...); see {self.log}",
                      file=sys.stderr)
                return False
        if not self.rebuild(None):
            print(f"baseline extension build failed; see {self.log}",
                  file=sys.stderr)
            return False
        built = [n for n in os.listdir(os.path.join(self.build, "python"))
                 if n.startswith("_fasttracemalloc") and n.endswith(".so")]
        if len(built) != 1:
            print(f"expected one built extension, found {built}", file=sys.stderr)
            return False
        os.symlink(os.path.join(self.build, "python", built[0]),
                   os.path.join(self.copy, "python", "fasttracemalloc", built[0]))
        return True

    def rebuild(self, targets):
        return run(["cmake", "--build", self.build, "-j", str(self.args.jobs),
                    "--target", "_fasttracemalloc"], self.copy, self.log) == 0

    def test(self, tests):
        """(status, what failed): pytest stops at the first failure."""
        size0 = os.path.getsize(self.log)
        rc = run([self.python, "-m", "pytest", "-q", "-x", "-rfE",
                  "-p", "no:cacheprovider"] + tests,
                 os.path.join(self.copy, "tests", "python"), self.log,
                 timeout=self.args.py_timeout, env=self.env)
        with open(self.log) as f:
            f.seek(size0)
            out = f.read()
        failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", out, re.M)
        if rc == -1:
            return rc, "timeout"
        if rc < 0:
            return rc, f"crash (signal {-rc})"
        if rc == 5:
            return rc, "no test collected (catalogue error)"
        return rc, ", ".join(dict.fromkeys(failed)) or f"pytest status {rc}"


def baseline(runner, tests):
    """The named tests must pass unmutated, or a "kill" would mean nothing."""
    t0 = time.monotonic()
    rc, what = runner.test(tests)
    if rc != 0:
        print(f"unmutated, {' '.join(tests)} fail ({what}); see {runner.log}",
              file=sys.stderr)
        return False
    print(f"baseline: {' '.join(tests)} pass unmutated "
          f"({time.monotonic() - t0:.0f} s)", flush=True)
    return True


def catalogue_matches(faults, root):
    """Every fault of the WHOLE catalogue must still match exactly once
    (a pattern that no longer matches would silently test nothing)."""
    bad = []
    for ft in faults:
        with open(os.path.join(root, ft.file)) as f:
            text = f.read()
        for find, _ in ft.edits:
            n = text.count(find)
            if n != 1:
                bad.append(f"{ft.name}: pattern found {n} times in {ft.file}:\n{find}")
    if bad:
        print("catalogue out of date (each search text must occur exactly once):",
              file=sys.stderr)
        for b in bad:
            print("  " + b, file=sys.stderr)
    return not bad


def mutate_one(copy, log, ft, runner):
    """Apply one fault, rebuild, run its tests, restore: a table row."""
    path = os.path.join(copy, ft.file)
    with open(path) as f:
        pristine = f.read()
    t0 = time.monotonic()
    apply(copy, ft, pristine)
    with open(log, "a") as out:
        out.write(f"\n===== fault {ft.name} =====\n")
    try:
        if not runner.rebuild(ft.tests):
            verdict, by = "BUILD FAILED", ""
        else:
            rc, what = runner.test(ft.tests)
            if rc == 0:
                verdict, by = "SURVIVED", ""
            elif rc == 5:
                verdict, by = "NO TESTS", what
            else:
                verdict, by = "killed", what
    finally:
        with open(path, "w") as f:
            f.write(pristine)
    dt = time.monotonic() - t0
    print(f"  {ft.name}: {verdict} {by} ({dt:.0f} s)", flush=True)
    return (ft.name, " ".join(ft.tests), verdict, by, dt)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--all", action="store_true", help="every fault")
    ap.add_argument("--fault", action="append", default=[], help="one fault by name")
    ap.add_argument("--catalogue", default=os.path.join(HERE, "faults.txt"))
    ap.add_argument("--worktree", action="store_true",
                    help="copy the working tree, not HEAD")
    ap.add_argument("--rev", default="HEAD", help="commit to copy (default HEAD)")
    ap.add_argument("--timeout", type=int, default=60,
                    help="ctest timeout per test, seconds")
    ap.add_argument("--py-timeout", type=int, default=600,
                    help="pytest timeout per python fault, seconds")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the copy")
    ap.add_argument("--check", action="store_true",
                    help="only check that every fault still matches the "
                         "working tree exactly once (no copy, no build)")
    args = ap.parse_args()

    faults = parse_catalogue(args.catalogue)
    names = [f.name for f in faults]
    if len(set(names)) != len(names):
        sys.exit("catalogue: duplicate fault names")
    if args.fault:
        unknown = [n for n in args.fault if n not in names]
        if unknown:
            print(f"unknown fault(s): {unknown}; known: {names}", file=sys.stderr)
            return 2
        chosen = [f for f in faults if f.name in args.fault]
    elif args.all:
        chosen = faults
    else:
        chosen = [f for f in faults if f.subset]

    if args.check:
        if not catalogue_matches(faults, ROOT):
            return 2
        print(f"catalogue: all {len(faults)} faults match {ROOT} exactly once")
        return 0

    t_start = time.monotonic()
    copy = tempfile.mkdtemp(prefix="ftm-mutation-")
    log = os.path.join(copy, "mutation.log")
    try:
        make_copy(copy, args.worktree, args.rev)
        if not catalogue_matches(faults, copy):
            return 2

        print(f"mutation testing {len(chosen)} fault(s) in {copy}", flush=True)
        rows = []
        for kind, runner in (("engine", EngineRunner), ("python", PythonRunner)):
            mine = [ft for ft in chosen if ft.python == (kind == "python")]
            if not mine:
                continue
            r = runner(copy, log, args)
            tests = sorted({t for ft in mine for t in ft.tests})
            if not (r.setup(tests) and baseline(r, tests)):
                args.keep = True
                return 1
            for ft in mine:
                rows.append(mutate_one(copy, log, ft, r))

        w0 = max([len("fault")] + [len(r[0]) for r in rows])
        w1 = max([len("tests run")] + [len(r[1]) for r in rows])
        w2 = max([len("result")] + [len(r[2]) for r in rows])
        print()
        print(f"| {'fault':<{w0}} | {'tests run':<{w1}} | {'result':<{w2}} | {'time':>5} | killed by")
        print(f"|-{'-' * w0}-|-{'-' * w1}-|-{'-' * w2}-|-------|----------")
        for name, tests, verdict, by, dt in rows:
            t = f"{dt:.0f} s"
            print(f"| {name:<{w0}} | {tests:<{w1}} | {verdict:<{w2}} | {t:>5} | {by}")
        killed = sum(1 for r in rows if r[2] == "killed")
        print(f"\n{killed}/{len(rows)} faults killed; total {time.monotonic() - t_start:.0f} s")
        if killed != len(rows):
            args.keep = True
            print(f"log and copy kept: {copy}", file=sys.stderr)
            return 1
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(copy, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
