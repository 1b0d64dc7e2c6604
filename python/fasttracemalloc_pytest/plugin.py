"""pytest plugin: per-test memory figures and limits from fasttracemalloc.

Owns: the ``pytest11`` entry point ``fasttracemalloc`` (pyproject.toml),
its command-line options, the ``limit_memory`` and ``limit_leaks`` markers
and the end-of-session report.  pytest-memray's behaviour is the reference;
the code is our own.

Usage::

    pytest --fasttracemalloc              # measure every test, print a report
    @pytest.mark.limit_memory("24 MB")    # fail if the test's peak is over
    @pytest.mark.limit_leaks("1 MB")      # fail if one traceback keeps more

Design decisions:

* Activation.  Nothing happens unless ``--fasttracemalloc`` is given or a
  test carries one of the two markers; a marked test is measured and its
  limit enforced even without the flag.  That is what pytest-memray 1.11's
  code does (its pytest_pyfunc_call measures a test when it has a marker or
  ``--memray`` is given), although its documentation says the markers do
  nothing without ``--memray``: we follow the code, because a limit that
  silently stops being checked when a flag is forgotten protects nothing.
  The flag (or ``fasttracemalloc = true`` in the ini file, as
  pytest-memray's ``memray = true``) adds: every test measured, and the
  report.  When pytest-memray is
  also installed and ``--fasttracemalloc`` is not given, the markers (same
  names) are left to pytest-memray, so that one test is never traced by two
  tools.  The options are prefixed (``--fasttracemalloc-most-allocations``,
  not pytest-memray's ``--most-allocations``) because pytest refuses to
  start when two plugins add the same option, and this plugin is loaded
  wherever fasttracemalloc is installed.
* No eager import.  This module imports only the standard library and
  pytest; fasttracemalloc (and its C extension) is imported by the first
  measured test.  A run without the flag and without markers never loads
  the engine.
* What is measured: the test function's call only (like pytest-memray),
  not its fixtures' setup or teardown.  The plugin owns the tracer for that
  window: ``start(nframe)`` just before the call, and after it a garbage
  collection, ``get_traced_memory()`` and ``take_snapshot()``, then
  ``stop()``.  Starting per test means every trace in the final snapshot is
  a block the test allocated and still holds: no before/after diff is
  needed, and nothing allocated before the test (pytest's bookkeeping,
  earlier tests) is counted.
    - "allocated most" = the peak of traced memory during the call
      (pytest-memray reports the high-water mark too), i.e. the most memory
      the test's allocations held at one time, not the sum of every
      allocation;
    - "leaked most" = traced memory still held after the call and a
      garbage collection.  Blocks a test leaves in caches it filled
      (imports, interned strings, lru_cache) count: they are held after
      it.  The collection is ``gc.collect(1)`` (young generations), then a
      full ``gc.collect()`` only when the test still holds more than 64
      KiB, or more than its limit_leaks limit (always, for a limit_leaks
      test on a tracer the plugin does not own): a full collection walks
      every object of the process, tens of ms per test under pytest.  So
      a test holding under 64 KiB may be listed with cyclic garbage that
      had reached the oldest generation; no limit fails on such garbage.
  Traces whose most recent frame is in this plugin, in the fasttracemalloc
  package or in the stdlib tracemalloc module (the measuring itself) are
  filtered out.  Allocations by other threads during the call are counted:
  the tracer is process-wide.
* When the tracer is already running at the start of a test (started by a
  previous test, by ``FASTTRACEMALLOC=1``, or the whole run is traced), the
  plugin does not take it over: it takes a snapshot before the call, calls
  ``reset_peak()`` (which resets the owner's peak too), and diffs the
  snapshot after the call against it, by traceback, keeping what grew; the
  tracer is left running with its own traceback limit.
* A test that stops the tracer (``fasttracemalloc.stop()``, or
  ``tracemalloc.stop()`` after ``fasttracemalloc.install()``) cannot be
  measured: it gets a ``PytestWarning`` saying so, is left out of the
  report and its limits are not checked (nothing is known to check).  A
  test that stops and restarts it is measured from the restart.  The
  builtin tracemalloc (not installed over) is a separate tracer: a test
  may start and stop it freely.  A test that leaves the tracer running
  after it was started by the plugin has it stopped by the plugin.
* ``--fasttracemalloc-nframe`` (default 16): frames kept per traceback.  The
  most recent frames are kept, so 16 reaches from an allocation inside a
  library back through several layers to the test function itself (pytest's
  own frames are older and never needed); deeper costs more per allocation
  for little more information.
* Limits: ``limit_memory(size)`` fails the test when its peak is over
  *size*; ``limit_leaks(size)`` fails it when one traceback (one allocation
  site with its call path, as pytest-memray's "per location") keeps more
  than *size* after the test.  Both may be on one test.  Sizes are "<number>
  <unit>", unit one of B, KB, MB, GB, TB, KiB, MiB, GiB, TiB, any case,
  space optional; KB and KiB both mean 1024 bytes, as in pytest-memray, so
  a marker means the same under both plugins.  A malformed size or marker
  call is an error of that test at setup (``ValueError``), before it runs.
  Only a test that passed is checked (a failure stays the test's own).
* Failure report: the limit, the measured amount and the biggest
  tracebacks (``--fasttracemalloc-stacks`` frames each, default 5, most
  recent first, from the allocation back to the test function: pytest's
  frames older than the test are cut) with their sizes.  The tracer keeps
  no snapshot of the moment of the peak, so for limit_memory the blocks
  shown are those the test held when its function returned, its locals
  still alive: on 3.12+ a snapshot is taken then (sys.monitoring's
  PY_RETURN, enabled for the test's code object only, tool id 3 or 4,
  only for limit_memory tests); on 3.11, or when both tool ids are taken,
  the blocks still held after the call (globals, caches), and the
  message says which.  Blocks the test freed before returning are in the
  peak but in no list.
* Sizes are printed as the package's progress lines print them
  (fasttracemalloc._progress): one decimal in the largest binary unit that
  keeps the number >= 1 ("10.0 MiB", "117.2 KiB", "512 B"), the units the
  markers accept.  Not the stdlib's tracemalloc._format_size (the text
  reports'): it prints 5 MiB as "5120 KiB", hard to hold against a
  "5 MB" limit.  Only called once a test was measured, when the package
  is imported anyway.
* pytest-xdist: not tested.  Each worker would measure and check its own
  tests; the end-of-run report is printed by the controlling process,
  which measured nothing ("no test was measured").

Threads: pytest calls the hooks, and the test function, from its main
thread; a measurement (_Call) is per test and touched by that thread only,
the sys.monitoring callback included (it fires in the thread returning
from the test function).
"""

import functools
import gc
import inspect
import os
import re
import sys
import warnings

import pytest

MARKERS = ("limit_memory", "limit_leaks")
DEFAULT_NFRAME = 16
DEFAULT_MOST = 5
DEFAULT_STACKS = 5
SHOWN_TRACEBACKS = 10  # biggest tracebacks listed in a failure report
FULL_GC_ABOVE = 64 << 10  # held after a young collection: collect all

_UNITS = {"B": 1, "KB": 1 << 10, "KIB": 1 << 10, "MB": 1 << 20,
          "MIB": 1 << 20, "GB": 1 << 30, "GIB": 1 << 30, "TB": 1 << 40,
          "TIB": 1 << 40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]+)\s*\Z")


def parse_size(text):
    """Bytes in a size such as "24 MB", "1.5GiB", "512 b" (KB = KiB = 1024
    bytes, as pytest-memray); ValueError for anything else."""
    match = _SIZE.match(text) if isinstance(text, str) else None
    if match is None or match.group(2).upper() not in _UNITS:
        raise ValueError(
            "invalid memory size %r: expected a number and a unit, e.g. "
            "'24 MB' (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB, any case; "
            "KB = KiB = 1024 bytes)" % (text,))
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def format_size(size):
    """A size as people read it: the package's progress-line convention,
    one decimal in the largest binary unit that keeps the number >= 1
    ("10.0 MiB", "117.2 KiB"), whole bytes under 1 KiB ("512 B")."""
    from fasttracemalloc._progress import _size
    return _size(size)


MAX_NFRAME = 65535  # tracemalloc's (and the engine's) start() limit


def _int_in(low, high=None):
    def convert(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and
                                            value > high):
            import argparse
            raise argparse.ArgumentTypeError(
                "expected an integer >= %d%s, got %r"
                % (low, "" if high is None else " and <= %d" % high, text))
        return value
    return convert


def pytest_addoption(parser):
    group = parser.getgroup("fasttracemalloc")
    group.addoption("--fasttracemalloc", action="store_true", default=False,
                    help="measure every test's memory with fasttracemalloc "
                         "and report the tests that allocated and leaked "
                         "most")
    parser.addini("fasttracemalloc", type="bool", default=False,
                  help="as --fasttracemalloc (for a project's CI)")
    group.addoption("--fasttracemalloc-nframe",
                    type=_int_in(1, MAX_NFRAME),
                    default=DEFAULT_NFRAME, metavar="N",
                    help="frames kept per traceback (default %d)"
                         % DEFAULT_NFRAME)
    group.addoption("--fasttracemalloc-most-allocations",
                    type=_int_in(0), default=DEFAULT_MOST, metavar="N",
                    help="tests listed in each part of the report "
                         "(default %d, 0 for all)" % DEFAULT_MOST)
    group.addoption("--fasttracemalloc-stacks", type=_int_in(1),
                    default=DEFAULT_STACKS, metavar="N",
                    help="frames shown per traceback in a limit failure "
                         "(default %d)" % DEFAULT_STACKS)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "limit_memory(size): fail the test if its traced memory "
                   "peaks over size, e.g. '24 MB' (fasttracemalloc)")
    config.addinivalue_line(
        "markers", "limit_leaks(size): fail the test if one traceback still "
                   "holds more than size after it (fasttracemalloc)")
    measure_all = (config.getoption("fasttracemalloc")
                   or config.getini("fasttracemalloc"))
    if not measure_all and config.pluginmanager.hasplugin("memray"):
        return  # the markers are pytest-memray's; see the top comment
    config.pluginmanager.register(_Measurer(config, measure_all),
                                  "fasttracemalloc-measurer")


def _limits(item):
    """{marker name: limit in bytes} of the item's markers; ValueError for a
    malformed marker."""
    limits = {}
    for name in MARKERS:
        marker = item.get_closest_marker(name)
        if marker is None:
            continue
        if len(marker.args) != 1 or marker.kwargs:
            raise ValueError("%s takes one size, e.g. %s('24 MB'); got %s"
                             % (name, name, marker))
        limits[name] = parse_size(marker.args[0])
    return limits


class _Result:
    """One measured test call."""

    def __init__(self, peak, leaks, held, held_when):
        self.peak = peak        # bytes, peak over the start of the call
        self.leaks = leaks      # [(size, count, Traceback)], biggest first
        self.held = held        # the same, shown by a limit_memory failure
        self.held_when = held_when  # when *held* was taken, for the report

    @property
    def leaked(self):
        return sum(size for size, _, _ in self.leaks)


def _watch_return(code, callback):
    """Call callback() whenever a frame of *code* returns, its locals still
    alive (3.12+: sys.monitoring's PY_RETURN, enabled for *code* only, so
    nothing else is slowed down).  Returns the function that stops it, or
    None where sys.monitoring is missing or its two unnamed tool ids (3
    and 4; debuggers, coverage and profilers use 0-2) are both taken."""
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is None:
        return None
    for tool in (3, 4):
        if monitoring.get_tool(tool) is None:
            break
    else:
        return None
    event = monitoring.events.PY_RETURN
    monitoring.use_tool_id(tool, "fasttracemalloc pytest plugin")
    monitoring.register_callback(tool, event,
                                 lambda code, offset, value: callback())
    monitoring.set_local_events(tool, code, event)

    def stop():
        monitoring.set_local_events(tool, code, 0)
        monitoring.register_callback(tool, event, None)
        monitoring.free_tool_id(tool)
    return stop


class _Call:
    """The measurement of one test call: begun just before it, ended just
    after it (see the top comment)."""

    def __init__(self, measurer, code, leak_limit):
        import fasttracemalloc as ftm
        self.leak_limit = leak_limit
        self.ftm = ftm
        self.measurer = measurer
        # import what the end needs now, untraced: fasttracemalloc's lazy
        # names and tracemalloc (the builtin stand-in traces imports)
        ftm.take_snapshot
        measurer.noise()
        self.before = None
        self.returned = None    # snapshot when the test function returned
        self.stop_watching = None
        if ftm.is_tracing():    # someone else's tracer: diff, leave it on
            self.owned = False
            self.before = ftm.take_snapshot()
            self.base = ftm.get_traced_memory()[0]
            ftm.reset_peak()
        else:
            self.owned = True
            ftm.start(measurer.nframe)
            self.base = ftm.get_traced_memory()[0]
        if code is not None:
            self.stop_watching = _watch_return(code, self._on_return)

    def _on_return(self):
        if self.ftm.is_tracing():
            self.returned = self.ftm.take_snapshot()

    def _grown(self, snapshot):
        """[(size, count, Traceback)] of what *snapshot* holds that the test
        allocated, biggest first."""
        snapshot = snapshot.filter_traces(self.measurer.noise())
        if self.owned:
            return [(s.size, s.count, s.traceback)
                    for s in snapshot.statistics("traceback")]
        # the measuring's own traces in *before* only shrink: dropped
        grown = [(d.size_diff, d.count_diff, d.traceback)
                 for d in snapshot.compare_to(self.before, "traceback")
                 if d.size_diff > 0]
        grown.sort(key=lambda g: g[0], reverse=True)
        return grown

    def end(self):
        """The _Result, or None (with a warning) if the test stopped the
        tracer."""
        ftm = self.ftm
        if self.stop_watching is not None:
            self.stop_watching()
        gc.collect(1)   # the young generations: cheap, most of the test's
        if not ftm.is_tracing():
            warnings.warn(pytest.PytestWarning(
                "fasttracemalloc: the test stopped the tracer, so its memory "
                "was not measured and its limits were not checked"))
            return None
        # a full collection walks every object of the process (tens of ms
        # under pytest): only when what is held could matter
        threshold = FULL_GC_ABOVE
        if self.leak_limit is not None:
            threshold = min(threshold, self.leak_limit)
            if not self.owned:  # a net change can hide one traceback's
                threshold = -1
        if ftm.get_traced_memory()[0] - self.base > threshold:
            gc.collect()
        peak = ftm.get_traced_memory()[1]
        after = ftm.take_snapshot()
        if self.owned:
            ftm.stop()
        leaks = self._grown(after)
        if self.returned is not None:
            held = self._grown(self.returned)
            when = "when its function returned"
        else:
            held = leaks
            when = "after its call"
        return _Result(max(peak - self.base, 0), leaks, held, when)


class _Measurer:
    """The plugin object registered when the plugin is active."""

    def __init__(self, config, measure_all):
        self.measure_all = measure_all
        self.nframe = config.getoption("fasttracemalloc_nframe")
        self.most = config.getoption("fasttracemalloc_most_allocations")
        self.stacks = config.getoption("fasttracemalloc_stacks")
        self.rootpath = str(config.rootpath)
        self.results = {}    # nodeid -> _Result
        self._filters = None

    def pytest_runtest_setup(self, item):
        _limits(item)  # a malformed marker is this test's setup error

    @pytest.hookimpl(hookwrapper=True)
    def pytest_pyfunc_call(self, pyfuncitem):
        if not self.measure_all and not any(
                pyfuncitem.get_closest_marker(n) for n in MARKERS):
            yield
            return
        func = pyfuncitem.obj
        nodeid = pyfuncitem.nodeid
        results = self.results
        # the return snapshot is only shown by a limit_memory failure
        code = (getattr(func, "__code__", None)
                if pyfuncitem.get_closest_marker("limit_memory") else None)
        leak_limit = _limits(pyfuncitem).get("limit_leaks")

        def begin():
            return _Call(self, code, leak_limit)

        def end(call):
            result = call.end()
            if result is not None:
                results[nodeid] = result

        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def wrapper(*args, **kwargs):
                call = begin()
                try:
                    return await func(*args, **kwargs)
                finally:
                    end(call)
        else:
            @functools.wraps(func)
            def wrapper(*args, **kwargs):
                call = begin()
                try:
                    return func(*args, **kwargs)
                finally:
                    end(call)

        pyfuncitem.obj = wrapper
        try:
            yield
        finally:
            pyfuncitem.obj = func

    def noise(self):
        """Filters dropping the measuring's own allocations: traces whose
        most recent frame is this plugin, fasttracemalloc or tracemalloc."""
        if self._filters is None:
            import tracemalloc
            import fasttracemalloc
            here = os.path.dirname(os.path.abspath(__file__))
            package = os.path.dirname(
                os.path.abspath(fasttracemalloc.__file__))
            self._filters = [
                tracemalloc.Filter(False, os.path.join(here, "*")),
                tracemalloc.Filter(False, os.path.join(package, "*")),
                tracemalloc.Filter(False, tracemalloc.__file__),
            ]
        return self._filters

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if call.when != "call" or report.outcome != "passed":
            return
        result = self.results.get(item.nodeid)
        if result is None:
            return
        problems = []
        limits = _limits(item)
        limit = limits.get("limit_memory")
        if limit is not None and result.peak > limit:
            problems.append(self._memory_text(limit, result))
        limit = limits.get("limit_leaks")
        if limit is not None:
            over = [leak for leak in result.leaks if leak[0] > limit]
            if over:
                problems.append(self._leaks_text(limit, over))
        if problems:
            report.outcome = "failed"
            report.longrepr = "\n\n".join(problems)

    def _tracebacks(self, leaks):
        lines = []
        for size, count, traceback in leaks[:SHOWN_TRACEBACKS]:
            lines.append("%s in %d block%s, allocated at (most recent call "
                         "first):" % (format_size(size), count,
                                      "" if count == 1 else "s"))
            lines.extend(self._format(traceback))
        if len(leaks) > SHOWN_TRACEBACKS:
            rest = leaks[SHOWN_TRACEBACKS:]
            lines.append("... and %d other tracebacks, %s"
                         % (len(rest), format_size(sum(r[0] for r in rest))))
        return lines

    def _format(self, traceback):
        """Lines of *traceback* (oldest frame first, as tracemalloc's),
        most recent first, without the plugin's wrapper and the pytest
        frames older than it, at most --fasttracemalloc-stacks frames."""
        import linecache
        here = os.path.dirname(os.path.abspath(__file__))
        frames = list(traceback)
        for index in range(len(frames) - 1, -1, -1):
            if os.path.dirname(frames[index].filename) == here:
                frames = frames[index + 1:]
                break
        lines = []
        for frame in frames[::-1][:self.stacks]:
            lines.append('  File "%s", line %d'
                         % (frame.filename, frame.lineno))
            source = linecache.getline(frame.filename, frame.lineno).strip()
            if source:
                lines.append("    " + source)
        if len(frames) > self.stacks:
            older = len(frames) - self.stacks
            lines.append("  ... %d older frame%s"
                         % (older, "" if older == 1 else "s"))
        return lines

    def _memory_text(self, limit, result):
        lines = ["fasttracemalloc: test was limited to %s but its traced "
                 "memory peaked at %s" % (format_size(limit),
                                          format_size(result.peak))]
        if result.held:
            lines.append("Biggest blocks the test held %s (blocks it "
                         "freed before are in the peak, not here):"
                         % result.held_when)
            lines.extend(self._tracebacks(result.held))
        else:
            lines.append("The test held no block %s: its peak was made of "
                         "blocks it freed before." % result.held_when)
        return "\n".join(lines)

    def _leaks_text(self, limit, over):
        lines = ["fasttracemalloc: test was allowed to leak %s per traceback "
                 "but %d traceback%s kept more:"
                 % (format_size(limit), len(over),
                    "" if len(over) == 1 else "s")]
        lines.extend(self._tracebacks(over))
        return "\n".join(lines)

    def pytest_terminal_summary(self, terminalreporter):
        if not self.measure_all:
            return
        write = terminalreporter.write_line
        terminalreporter.write_sep("=", "fasttracemalloc report")
        if not self.results:
            write("no test was measured")
            return
        most = self.most or len(self.results)
        write("Tests that allocated most (peak traced memory during the "
              "test call):")
        ranked = sorted(self.results.items(), key=lambda kv: kv[1].peak,
                        reverse=True)
        for nodeid, result in ranked[:most]:
            write("  %10s  %s" % (format_size(result.peak), nodeid))
        write("Tests that leaked most (traced memory still held after the "
              "test call and a garbage collection):")
        ranked = sorted(((nodeid, result) for nodeid, result
                         in self.results.items() if result.leaked > 0),
                        key=lambda kv: kv[1].leaked, reverse=True)
        if not ranked:
            write("  none")
        for nodeid, result in ranked[:most]:
            size, _, traceback = result.leaks[0]
            frame = traceback[-1]  # the most recent
            write("  %10s  %s  (biggest: %s from %s:%d)"
                  % (format_size(result.leaked), nodeid, format_size(size),
                     self._relative(frame.filename), frame.lineno))

    def _relative(self, filename):
        """*filename* relative to the rootdir when under it, like nodeids."""
        if filename.startswith(self.rootpath + os.sep):
            return filename[len(self.rootpath) + 1:]
        return filename
