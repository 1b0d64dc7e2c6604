"""Fuzz target: the command line of ``python -m fasttracemalloc`` for the
commands that read files (report, compare, export, flamegraph, timeline).

Property: for any argument list -- options and values from the fuzzer,
file arguments drawn from a real snapshot, a file of fuzzed bytes and a
missing path -- ``_cli.main`` returns an exit status or raises SystemExit
(argparse's usage errors, status 2); any other exception is a finding.
Outputs go to a scratch directory (any fuzzed string with a '/' is
replaced by a plain name), stdout/stderr to memory.  ``run`` is left out:
it executes the program it is given.
"""

import contextlib
import io
import os
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    from fasttracemalloc import _cli

SCRATCH = tempfile.mkdtemp(prefix="ftm-fuzz-cli-")
GOOD = os.environ["FTM_FUZZ_GOOD_SNAPSHOT"]  # written by run.sh
FUZZED = os.path.join(SCRATCH, "fuzzed.snap")
COMMANDS = ["report", "compare", "export", "flamegraph", "timeline"]
OPTIONS = ["--top", "--key-type", "--cumulative", "-f", "--format", "-o",
           "--output", "--diff", "--title", "--max-nodes", "--min-percent",
           "-h", "lineno", "filename",
           "traceback", "pprof", "speedscope", "-1", "0", "5"]


def TestOneInput(data):
    fdp = atheris.FuzzedDataProvider(data)
    argv = [COMMANDS[fdp.ConsumeIntInRange(0, len(COMMANDS) - 1)]]
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        kind = fdp.ConsumeIntInRange(0, 4)
        if kind == 0:
            argv.append(GOOD)
        elif kind == 1:
            argv.append(FUZZED)
        elif kind == 2:
            argv.append(os.path.join(SCRATCH, "missing.snap"))
        elif kind == 3:
            argv.append(OPTIONS[fdp.ConsumeIntInRange(0, len(OPTIONS) - 1)])
        else:
            text = fdp.ConsumeUnicodeNoSurrogates(12)
            argv.append(text if "/" not in text and "\0" not in text
                        else "x.out")
    with open(FUZZED, "wb") as fp:
        fp.write(fdp.ConsumeBytes(fdp.remaining_bytes()))
    sink = io.StringIO()
    cwd = os.getcwd()
    os.chdir(SCRATCH)
    try:
        with contextlib.redirect_stdout(sink), \
                contextlib.redirect_stderr(sink):
            try:
                status = _cli.main(argv)
            except SystemExit as exc:
                status = exc.code
        assert status in (0, 1, 2, None), (argv, status)
        assert "Traceback (most recent call last)" not in sink.getvalue()
    finally:
        os.chdir(cwd)


atheris.Setup(sys.argv, TestOneInput)
atheris.Fuzz()
