"""Run CPython's own Lib/test/test_tracemalloc.py against fasttracemalloc.

    python tests/python/run_cpython_suite.py [extra regrtest options]

Imports fasttracemalloc, calls install() (so the stdlib ``tracemalloc``
module the suite imports runs on the engine), then runs the interpreter's
own copy of test.test_tracemalloc (Debian: libpython3.11-testsuite; pyenv
ships it) with CPython's own runner, regrtest: every test of TestTraceback,
TestTracemallocEnabled, TestSnapshot, TestFilters and TestCAPI (the C API,
PyTraceMalloc_Track/Untrack and _PyTraceMalloc_GetTraceback, called by
_testcapi/_testinternalcapi, which the engine rebinds: capi_rebind.c),
except:

  * TestTracemallocEnabled.test_new_reference, on 3.11 and 3.12, when the
    engine could neither rebind the interpreter's own _Py_NewReference
    calls nor patch them (_stats()["newref_rebound"] and
    ["newref_patched"] false after a start(): a static executable calls it
    directly; Debian's /usr/bin/python3.11 is patched, newref_patch.c) -- an
    object taken from a free list (e.g. an empty list reused after
    ``obj = []; obj = None``) is then re-stamped with a new traceback only
    by the builtin's private hook, and keeps the traceback of its block's
    first allocation.  With a shared libpython (pyenv) the engine wraps
    _Py_NewReference through the GOT (capi_rebind.c) and the test runs;
    from 3.13 the engine re-stamps through the public
    PyRefTracer_SetTracer, and the test runs.

TestCommandLine runs too: it tests the builtin's own -X tracemalloc /
PYTHONTRACEMALLOC switch in child processes (so the builtin there), which
install() in this process must not disturb; each of its cases is also
ported to fasttracemalloc's switch in tests/python/test_switch.py.  With
it, the selection is the whole file, as CPython runs it (48 tests on
3.11).  TestCAPI's tests may not be
skipped: the runner fails if _testcapi cannot be imported (a test skipped
for "need _testcapi" would count as passed).

Exit status 0 only if every selected test passed (regrtest's verdict).
"""

import sys

import fasttracemalloc
from fasttracemalloc import _backend

CLASSES = ("TestTraceback", "TestTracemallocEnabled", "TestSnapshot",
           "TestFilters", "TestCommandLine", "TestCAPI")


def excluded():
    """{test name: reason} of the tests this interpreter cannot pass."""
    out = {}
    if sys.version_info < (3, 13) and not newref_rebound():
        out["test_new_reference"] = (
            "free-list reuse is only visible to the builtin's private hook "
            "here: this interpreter calls _Py_NewReference directly, not "
            "through a GOT slot the engine can rebind")
    return out


def newref_rebound():
    """Whether a start() routed the interpreter's own _Py_NewReference
    calls to the engine (3.11/3.12; capi_rebind.c)."""
    stats = getattr(_backend.engine, "_stats", None)
    if stats is None:
        return False
    was_tracing = fasttracemalloc.is_tracing()
    if not was_tracing:
        fasttracemalloc.start()
    try:
        st = stats()
        return bool(st.get("newref_rebound") or st.get("newref_patched"))
    finally:
        if not was_tracing:
            fasttracemalloc.stop()
NOT_RUN = {}


def expected_test_count():
    """How many tests the selection holds (for callers that check it)."""
    import unittest
    from test import test_tracemalloc
    loader = unittest.TestLoader()
    return sum(1 for cls in CLASSES
               for name in loader.getTestCaseNames(getattr(test_tracemalloc, cls))
               if name not in excluded())


def main(argv):
    fasttracemalloc.install()
    import tracemalloc
    assert tracemalloc.start is fasttracemalloc.start
    from test import test_tracemalloc
    if getattr(test_tracemalloc, "_testcapi", None) is None:
        print("run_cpython_suite: _testcapi cannot be imported: TestCAPI "
              "would be skipped")
        return 1
    print("CPython %s, %s, engine: %s (%s), expecting %d tests"
          % (sys.version.split()[0], test_tracemalloc.__file__, _backend.name,
             _backend.engine.__name__, expected_test_count()))
    skipped = excluded()
    for test, reason in skipped.items():
        print("excluded: %s -- %s" % (test, reason))
    for cls, reason in NOT_RUN.items():
        print("not run:  %s -- %s" % (cls, reason))
    sys.stdout.flush()
    # CPython's own runner (regrtest), as `python -m test test_tracemalloc`
    # runs it: some checks depend on its stack depth (test_snapshot expects
    # total_nframe > 10 for an allocation made under the harness).
    from test.libregrtest.main import main as regrtest_main
    args = ["test_tracemalloc", "-v"]
    for name in list(skipped) + list(NOT_RUN):
        args += ["--ignore", name]
    sys.argv[1:] = args + list(argv)
    try:
        regrtest_main()
    except SystemExit as exc:  # regrtest's verdict: 0 = every test passed
        status = exc.code
    else:
        status = 1
    # Proof the tests ran here, on the installed engine (regrtest could
    # re-exec the interpreter, which would silently test the builtin).
    still_installed = (fasttracemalloc.is_installed()
                       and tracemalloc.start is fasttracemalloc.start)
    print("run_cpython_suite: in-process, engine still installed: %s, "
          "regrtest status %r" % (still_installed, status))
    return status if still_installed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
