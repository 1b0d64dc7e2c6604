"""Tests of the pytest plugin (python/fasttracemalloc_pytest/plugin.py).

Each test writes inner test files and runs pytest on them in a child
interpreter (pytester.runpytest_subprocess): the plugin starts and stops
the process-wide tracer, which must not collide with this run's own
tracer, if any.  Sizes asserted are computed here from the objects the
inner tests allocate (conftest.bytearray_block), within a tolerance for
the report's rounding and the interpreter's own small allocations.  The
plugin measures with whichever engine fasttracemalloc has, so these tests
also run with FASTTRACEMALLOC_BACKEND=builtin, all but the one that needs
the builtin tracer to be a separate one.
"""

import re
import sys
import textwrap
from importlib import metadata

import pytest

from conftest import bytearray_block, needs_engine
from fasttracemalloc_pytest.plugin import format_size, parse_size

pytest_plugins = ["pytester"]

MIB = 1 << 20
# "8.0 MiB" is rounded to 0.05 MiB; the interpreter allocates a little
# besides the bytearray (frames, the list slot, gc).
TOLERANCE = MIB // 20 + 64 * 1024

_UNIT = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


def _entry_point_installed():
    return any(ep.name == "fasttracemalloc" and
               ep.value == "fasttracemalloc_pytest.plugin"
               for ep in metadata.entry_points(group="pytest11"))


@pytest.fixture
def run(pytester, monkeypatch):
    """Run pytest in a child on the files made with pytester; the plugin
    is loaded through its entry point when installed, else by -p."""
    for name in ("PYTHONTRACEMALLOC", "FASTTRACEMALLOC", "PYTEST_ADDOPTS"):
        monkeypatch.delenv(name, raising=False)
    extra = [] if _entry_point_installed() else [
        "-p", "fasttracemalloc_pytest.plugin"]

    def run(*args):
        return pytester.runpytest_subprocess(*extra, "-p", "no:cacheprovider",
                                             *args)
    return run


def make(pytester, name, source):
    """Write test file *name*; return (path, {marker: line number}) for
    the lines that end with '# <marker>'."""
    source = textwrap.dedent(source)
    lines = {}
    for number, line in enumerate(source.splitlines(), 1):
        found = re.search(r"# (\w+)$", line)
        if found:
            lines[found.group(1)] = number
    path = pytester.path / (name + ".py")
    path.write_text(source)
    return path, lines


def bytes_of(text):
    number, unit = text.split()
    return float(number) * _UNIT[unit]


def report_part(output, title):
    """{nodeid: size in bytes} of one part of the end-of-run report, in
    the order listed."""
    start = output.index(title)
    part = {}
    for line in output[start:].splitlines()[1:]:
        found = re.match(r"\s+([\d.]+ (?:B|KiB|MiB|GiB))\s+(\S+)", line)
        if found is None:
            break
        part[found.group(2)] = bytes_of(found.group(1))
    return part


ALLOCATED = "Tests that allocated most"
LEAKED = "Tests that leaked most"


def test_parse_size():
    assert parse_size("24 MB") == 24 * MIB
    assert parse_size("24MiB") == 24 * MIB
    assert parse_size("1 kb") == 1024
    assert parse_size(" 1.5 GiB ") == 3 << 29
    assert parse_size("512 b") == 512
    assert parse_size("2 TB") == 2 << 40
    for bad in ("", "MB", "10", "10 XB", "-1 MB", "1 MB extra", "1e3 MB",
                10, None):
        with pytest.raises(ValueError, match="invalid memory size"):
            parse_size(bad)


def test_format_size():
    assert format_size(0) == "0 B"
    assert format_size(1023) == "1023 B"
    assert format_size(1024) == "1.0 KiB"
    assert format_size(5 * MIB) == "5.0 MiB"
    assert format_size(10 * MIB + 60 * 1024) == "10.1 MiB"
    assert format_size(3 << 30) == "3.0 GiB"


def test_limit_memory(run, pytester):
    path, lines = make(pytester, "test_limit", """
        import pytest
        HELD = []

        @pytest.mark.limit_memory("5 MB")
        def test_over():
            HELD.append(bytearray(10 * 1024 * 1024))  # over

        @pytest.mark.limit_memory("50 MB")
        def test_under():
            HELD.append(bytearray(10 * 1024 * 1024))
    """)
    for flag in (["--fasttracemalloc"], []):  # markers work without it
        result = run(*flag)
        result.assert_outcomes(passed=1, failed=1)
        out = result.stdout.str()
        assert "FAILED test_limit.py::test_over" in out
        found = re.search(r"test was limited to 5.0 MiB but its traced "
                          r"memory peaked at ([\d.]+ \w+)", out)
        assert found, out
        peak = bytes_of(found.group(1))
        assert abs(peak - bytearray_block(10 * MIB)) <= TOLERANCE, out
        # the offending traceback: the test's own line, with its size
        assert '%s", line %d' % (path.name, lines["over"]) in out, out
        assert re.search(r"\n10.0 MiB in \d+ blocks?, allocated at", out), out
        # pytest's frames older than the test are not shown
        shown = re.findall(r'File "([^"]+)"', out)
        assert shown and set(shown) == {str(path)}, out


def test_stacks_and_nframe(run, pytester):
    path, lines = make(pytester, "test_deep", """
        import pytest
        HELD = []

        def allocate():
            HELD.append(bytearray(3 * 1024 * 1024))  # inner

        def middle():
            allocate()  # middle

        @pytest.mark.limit_leaks("1 MB")
        def test_deep():
            middle()  # test
    """)

    def shown(out):
        # the FAILURES section only: pytest repeats the whole message in
        # its short summary when it thinks it runs on CI ($CI set)
        out = out.split("short test summary info")[0]
        return [int(n) for n in re.findall(
            r'File "%s", line (\d+)' % re.escape(str(path)), out)]
    every = [lines["inner"], lines["middle"], lines["test"]]
    out = run().stdout.str()
    assert shown(out) == every, out
    out = run("--fasttracemalloc-stacks=1").stdout.str()
    assert shown(out) == every[:1], out
    assert "... 2 older frames" in out, out
    # frames not kept at all: the test's own line is not known
    out = run("--fasttracemalloc-nframe=2").stdout.str()
    assert shown(out) == every[:2], out
    assert "older frame" not in out, out


def test_limit_memory_shows_locals(run, pytester):
    path, lines = make(pytester, "test_local", """
        import pytest

        @pytest.mark.limit_memory("5 MB")
        def test_over():
            data = bytearray(10 * 1024 * 1024)  # local
            assert len(data) == 10 * 1024 * 1024
    """)
    result = run()
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "test was limited to 5.0 MiB" in out, out
    if sys.version_info >= (3, 12):
        # a snapshot taken when the test function returned shows its locals
        assert ("Biggest blocks the test held when its function returned"
                in out), out
        assert '%s", line %d' % (path.name, lines["local"]) in out, out
    else:
        assert ("The test held no block after its call: its peak was made "
                "of blocks it freed before.") in out, out


def test_limit_leaks(run, pytester):
    path, lines = make(pytester, "test_leak", """
        import gc
        import pytest
        LEAKED = []

        @pytest.mark.limit_leaks("1 MB")
        def test_leaks():
            LEAKED.append(bytearray(3 * 1024 * 1024))  # leak

        @pytest.mark.limit_leaks("1 MB")
        def test_frees():
            data = bytearray(3 * 1024 * 1024)
            del data

        @pytest.mark.limit_leaks("1 MB")
        def test_leaks_less():
            LEAKED.append(bytearray(512 * 1024))

        @pytest.mark.limit_leaks("1 MB")
        def test_cycle():
            # garbage in a reference cycle is collected before measuring
            cycle = {"data": bytearray(3 * 1024 * 1024)}
            cycle["self"] = cycle
            del cycle

        @pytest.mark.limit_leaks("1 MB")
        def test_old_cycle():
            cycle = {"data": bytearray(3 * 1024 * 1024)}
            cycle["self"] = cycle
            gc.collect()  # it survives into the oldest generation
            del cycle
    """)
    result = run()
    result.assert_outcomes(passed=4, failed=1)
    out = result.stdout.str()
    assert "FAILED test_leak.py::test_leaks" in out
    assert ("test was allowed to leak 1.0 MiB per traceback but 1 "
            "traceback kept more") in out, out
    assert '%s", line %d' % (path.name, lines["leak"]) in out, out
    assert re.search(r"\n3.0 MiB in \d+ blocks?, allocated at", out), out


def test_report_order_and_sizes(run, pytester):
    make(pytester, "test_sizes", """
        HELD = []

        def test_big():
            HELD.append(bytearray(8 * 1024 * 1024))

        def test_temporary():
            data = bytearray(4 * 1024 * 1024)
            del data

        def test_small():
            HELD.append(bytearray(1024 * 1024))

        def test_nothing():
            pass
    """)
    result = run("--fasttracemalloc")
    result.assert_outcomes(passed=4)
    out = result.stdout.str()
    allocated = report_part(out, ALLOCATED)
    names = ["test_sizes.py::test_" + n
             for n in ("big", "temporary", "small", "nothing")]
    assert list(allocated) == names, out
    for name, size in zip(names, (8 * MIB, 4 * MIB, MIB)):
        assert abs(allocated[name] - bytearray_block(size)) <= TOLERANCE, out
    assert allocated[names[3]] < TOLERANCE, out
    leaked = report_part(out, LEAKED)
    assert list(leaked)[:2] == [names[0], names[2]], out
    assert abs(leaked[names[0]] - bytearray_block(8 * MIB)) <= TOLERANCE, out
    assert abs(leaked[names[2]] - bytearray_block(MIB)) <= TOLERANCE, out
    assert leaked.get(names[1], 0) < TOLERANCE, out
    # the plugin's own allocations (snapshot, filters) are not a leak
    assert names[3] not in leaked, out

    result = run("--fasttracemalloc", "--fasttracemalloc-most-allocations=2")
    out = result.stdout.str()
    assert list(report_part(out, ALLOCATED)) == names[:2], out


def test_bad_marker_is_a_setup_error(run, pytester):
    make(pytester, "test_bad", """
        import pytest

        @pytest.mark.limit_memory("lots")
        def test_words():
            raise AssertionError("the body ran")

        @pytest.mark.limit_leaks(5)
        def test_number():
            raise AssertionError("the body ran")

        @pytest.mark.limit_memory("1 MB", "2 MB")
        def test_two():
            raise AssertionError("the body ran")
    """)
    result = run()
    result.assert_outcomes(errors=3)
    out = result.stdout.str()
    assert "the body ran" not in out
    assert "ValueError: invalid memory size 'lots'" in out, out
    assert "ValueError: invalid memory size 5" in out, out
    assert "ValueError: limit_memory takes one size" in out, out


def test_bad_option(run, pytester):
    make(pytester, "test_x", "def test_x():\n    pass\n")
    for option, message in (
            ("--fasttracemalloc-nframe=0", "expected an integer >= 1 and "
                                           "<= 65535, got '0'"),
            ("--fasttracemalloc-nframe=65536", "got '65536'"),
            ("--fasttracemalloc-most-allocations=-1",
             "expected an integer >= 0, got '-1'"),
            ("--fasttracemalloc-stacks=many",
             "expected an integer >= 1, got 'many'")):
        result = run(option)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, option
        assert message in result.stderr.str(), result.stderr.str()


def test_nothing_traced_without_flag(run, pytester):
    make(pytester, "test_plain", """
        import sys

        def test_engine_not_loaded():
            assert "fasttracemalloc" not in sys.modules
    """)
    result = run()
    result.assert_outcomes(passed=1)
    assert "fasttracemalloc report" not in result.stdout.str()
    # the same test sees the engine when the plugin measures it
    result = run("--fasttracemalloc")
    result.assert_outcomes(failed=1)
    assert "fasttracemalloc report" in result.stdout.str()
    # or when the ini file asks for it
    pytester.makeini("[pytest]\nfasttracemalloc = true\n")
    result = run()
    result.assert_outcomes(failed=1)
    assert "fasttracemalloc report" in result.stdout.str()


# the builtin stand-in (FASTTRACEMALLOC_BACKEND=builtin) IS the builtin
# tracer this test starts and stops besides the engine
@needs_engine
def test_tests_that_use_the_tracers(run, pytester):
    make(pytester, "test_uses", """
        import tracemalloc
        import fasttracemalloc
        import pytest
        HELD = []

        @pytest.mark.limit_memory("1 KB")
        def test_stops_ours():
            fasttracemalloc.stop()
            HELD.append(bytearray(1024 * 1024))

        def test_uses_builtin():
            tracemalloc.start(3)
            HELD.append(bytearray(2 * 1024 * 1024))
            assert tracemalloc.get_traced_memory()[0] >= 2 * 1024 * 1024
            tracemalloc.stop()

        @pytest.mark.limit_memory("1 MB")
        def test_restarts_ours():
            fasttracemalloc.stop()
            fasttracemalloc.start(2)
            HELD.append(bytearray(2 * 1024 * 1024))

        def test_next():
            # measured with a tracer of the plugin's own (default limit),
            # not the one the previous test left running with limit 2
            assert fasttracemalloc.get_traceback_limit() == 16
    """)
    result = run("--fasttracemalloc", "-p", "no:randomly")
    # the first is not measured (warning); the restarted one is measured
    # from its restart and goes over its limit; the plugin stops the
    # tracer that test left running
    result.assert_outcomes(passed=3, failed=1, warnings=1)
    out = result.stdout.str()
    assert "FAILED test_uses.py::test_restarts_ours" in out, out
    assert "the test stopped the tracer" in out, out
    allocated = report_part(out, ALLOCATED)
    assert "test_uses.py::test_stops_ours" not in allocated, out
    assert abs(allocated["test_uses.py::test_uses_builtin"]
               - bytearray_block(2 * MIB)) <= TOLERANCE, out


def test_tracer_already_running(run, pytester):
    # the tracer is on before the tests (started by the test module):
    # the plugin diffs snapshots and leaves it running
    make(pytester, "test_shared", """
        import fasttracemalloc
        import pytest
        fasttracemalloc.start(4)
        HELD = [bytearray(20 * 1024 * 1024)]  # traced, held before the tests

        @pytest.mark.limit_memory("5 MB")
        def test_over():
            HELD.append(bytearray(10 * 1024 * 1024))

        def test_temporary():
            data = bytearray(15 * 1024 * 1024)
            del data

        @pytest.mark.limit_memory("5 MB")
        def test_under():
            # its peak is its own, not the previous test's
            HELD.append(bytearray(1024 * 1024))

        @pytest.mark.limit_leaks("1 MB")
        def test_leaks():
            HELD.append(bytearray(3 * 1024 * 1024))  # leak

        def test_still_on():
            assert fasttracemalloc.is_tracing()
            assert fasttracemalloc.get_traceback_limit() == 4

        def test_frees_older():
            # freeing what was there before does not offset its own leak
            HELD[0] = None
            HELD.append(bytearray(2 * 1024 * 1024))
    """)
    result = run("--fasttracemalloc")
    result.assert_outcomes(passed=4, failed=2)
    out = result.stdout.str()
    allocated = report_part(out, ALLOCATED)
    assert abs(allocated["test_shared.py::test_over"]
               - bytearray_block(10 * MIB)) <= TOLERANCE, out
    assert abs(allocated["test_shared.py::test_under"]
               - bytearray_block(MIB)) <= TOLERANCE, out
    leaked = report_part(out, LEAKED)
    assert abs(leaked["test_shared.py::test_over"]
               - bytearray_block(10 * MIB)) <= TOLERANCE, out
    assert abs(leaked["test_shared.py::test_leaks"]
               - bytearray_block(3 * MIB)) <= TOLERANCE, out
    assert "test_shared.py::test_still_on" not in leaked, out
    assert abs(leaked["test_shared.py::test_frees_older"]
               - bytearray_block(2 * MIB)) <= TOLERANCE, out


def test_async_test_is_measured_while_it_runs(run, pytester):
    # a minimal async runner in place of pytest-asyncio (not a dependency):
    # it runs the coroutine function pytest hands it, i.e. the plugin's
    # wrapper, so the measurement must span the awaits
    pytester.makeconftest("""
        import asyncio
        import inspect
        import pytest

        @pytest.hookimpl(tryfirst=True)
        def pytest_pyfunc_call(pyfuncitem):
            if inspect.iscoroutinefunction(pyfuncitem.obj):
                names = pyfuncitem._fixtureinfo.argnames
                asyncio.run(pyfuncitem.obj(
                    **{name: pyfuncitem.funcargs[name] for name in names}))
                return True
    """)
    path, lines = make(pytester, "test_async", """
        import asyncio
        import pytest
        HELD = []

        @pytest.mark.limit_memory("5 MB")
        async def test_over():
            await asyncio.sleep(0)
            HELD.append(bytearray(10 * 1024 * 1024))  # over
            await asyncio.sleep(0)
    """)
    result = run()
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "test was limited to 5.0 MiB" in out, out
    assert '%s", line %d' % (path.name, lines["over"]) in out, out


def test_markers_left_to_pytest_memray(run, pytester):
    # a stand-in registered under pytest-memray's plugin name, "memray"
    pytester.makepyfile(memray="# stands in for pytest-memray's plugin\n")
    make(pytester, "test_marked", """
        import pytest
        HELD = []

        @pytest.mark.limit_memory("5 MB")
        def test_over():
            HELD.append(bytearray(10 * 1024 * 1024))
    """)
    run("-p", "memray").assert_outcomes(passed=1)
    run("-p", "memray", "--fasttracemalloc").assert_outcomes(failed=1)
