"""The C API on the engine: PyTraceMalloc_Track/Untrack and
_PyTraceMalloc_GetTraceback, called by C code, record into and answer from
fasttracemalloc while it traces, and behave as the originals while it does
not (python/src/capi_rebind.c rewrites the callers' GOT slots).

Callers used here:
  * capi_caller.c, a plain shared library built with cc in three link
    variants (lazy binding, -z now with full RELRO, -fno-plt), loaded with
    ctypes.CDLL (its calls run without the GIL) and ctypes.PyDLL (with it):
    it returns Track/Untrack's exact return values;
  * numpy from PyPI (its array buffers are tracked in domain 389047);
  * _testcapi / _testinternalcapi for _PyTraceMalloc_GetTraceback;
  * ctypes.pythonapi, which looks the functions up with dlsym instead of
    calling through a GOT: it reaches the builtin, whatever is tracing.
Tests that need numpy or a C compiler are skipped with the reason shown.
"""

import ctypes
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import _tracemalloc
import tracemalloc

import fasttracemalloc
from fasttracemalloc import _backend

from conftest import HERE, needs_engine, newref_patchable, run_python

pytestmark = needs_engine

try:
    import numpy
    NUMPY_SKIP = None
except ImportError as exc:  # shown in the skip reason
    numpy = None
    NUMPY_SKIP = "numpy cannot be imported (%s): pip install numpy" % exc

needs_numpy = pytest.mark.skipif(numpy is None, reason=str(NUMPY_SKIP))
NUMPY_DOMAIN = 389047  # numpy's NPY_TRACE_DOMAIN
ARRAY_BYTES = 8 * 10**6  # np.ones(10**6) of float64

VARIANTS = {
    "lazy": ["-Wl,-z,lazy"],
    "relro_now": ["-Wl,-z,relro,-z,now"],
    "noplt": ["-fno-plt", "-Wl,-z,relro,-z,now"],
}


def stats():
    return _backend.engine._stats()


def build_caller(directory, variant):
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc) to build tests/python/capi_caller.c")
    out = os.path.join(str(directory), "capi_caller_%s.so" % variant)
    subprocess.run([cc, "-O2", "-shared", "-fPIC", *VARIANTS[variant], "-o",
                    out, os.path.join(HERE, "capi_caller.c"), "-lpthread"],
                   check=True, capture_output=True, text=True)
    return out


def load(path, cls):
    lib = cls(path)
    for fn in (lib.call_track, lib.call_track_in_new_thread):
        fn.argtypes = (ctypes.c_uint, ctypes.c_size_t, ctypes.c_size_t)
        fn.restype = ctypes.c_int
    lib.call_untrack.argtypes = (ctypes.c_uint, ctypes.c_size_t)
    lib.call_untrack.restype = ctypes.c_int
    return lib


@pytest.fixture(scope="module")
def caller_paths(tmp_path_factory):
    d = tmp_path_factory.mktemp("capi")
    return {v: build_caller(d, v) for v in VARIANTS}


@pytest.fixture(scope="module")
def callers(caller_paths):
    """(variant, "gil"/"nogil") -> the library, loaded before any test of
    this module starts tracing (start() rebinds it)."""
    return {(v, kind): load(path, cls)
            for v, path in caller_paths.items()
            for kind, cls in (("nogil", ctypes.CDLL), ("gil", ctypes.PyDLL))}


def pythonapi():
    api = ctypes.pythonapi
    api.PyTraceMalloc_Track.argtypes = (ctypes.c_uint, ctypes.c_size_t,
                                        ctypes.c_size_t)
    api.PyTraceMalloc_Track.restype = ctypes.c_int
    api.PyTraceMalloc_Untrack.argtypes = (ctypes.c_uint, ctypes.c_size_t)
    api.PyTraceMalloc_Untrack.restype = ctypes.c_int
    return api


def line_of(marker):
    """Line number of the line of this file that contains `marker`."""
    with open(__file__, encoding="utf-8") as f:
        for n, text in enumerate(f, 1):
            if marker in text and "line_of(" not in text:
                return n
    raise AssertionError(marker)


def domain_traces(mod, domain):
    snap = mod.take_snapshot()
    return snap.filter_traces([tracemalloc.DomainFilter(True, domain)]).traces


def get_traceback_fn():
    """The C API's _PyTraceMalloc_GetTraceback as the test modules expose
    it (3.11/3.12: _testcapi, 3.13+: _testinternalcapi), or None."""
    try:
        import _testcapi
    except ImportError:
        return None
    fn = getattr(_testcapi, "tracemalloc_get_traceback", None)
    if fn is None:
        try:
            import _testinternalcapi
        except ImportError:
            return None
        fn = getattr(_testinternalcapi, "_PyTraceMalloc_GetTraceback", None)
    return fn


# --- exact return values through a GOT, with and without the GIL ----------

def test_untraced_calls_reach_the_originals(callers, stopped):
    api = pythonapi()
    for lib in callers.values():
        assert (lib.call_track(7, 4096, 10), lib.call_untrack(7, 4096)) == \
            (-2, -2)
    fasttracemalloc.start()
    assert stats()["capi_rebound"] is True
    # three objects, two slots each (CDLL and PyDLL share one handle)
    assert stats()["capi_slots"] >= 6
    fasttracemalloc.stop()
    # the slots stay rewritten; the wrappers forward: the builtin's -2
    for lib in callers.values():
        assert (lib.call_track(7, 4096, 10), lib.call_untrack(7, 4096)) == \
            (-2, -2)
    assert api.PyTraceMalloc_Track(7, 4096, 10) == -2


@pytest.mark.parametrize("gil", ["gil", "nogil"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_track_untrack_record_into_the_engine(callers, stopped, variant,
                                              gil):
    lib = callers[variant, gil]
    fasttracemalloc.start(5)
    cur0 = fasttracemalloc.get_traced_memory()[0]
    assert lib.call_track(7, 8192, 1234) == 0  # marker: track-here
    traces = domain_traces(fasttracemalloc, 7)
    assert [t.size for t in traces] == [1234]
    frame = traces[0].traceback[-1]
    assert (frame.filename, frame.lineno) == (__file__,
                                              line_of("marker: track-here"))
    assert fasttracemalloc.get_traced_memory()[0] - cur0 >= 1234
    assert not _tracemalloc.is_tracing()
    assert lib.call_untrack(7, 8192) == 0
    assert len(domain_traces(fasttracemalloc, 7)) == 0
    assert lib.call_untrack(7, 8192) == 0  # not traced: still 0
    fasttracemalloc.stop()
    assert lib.call_track(7, 8192, 1234) == -2


def test_track_replaces_a_tracked_block(callers, stopped):
    lib = callers["relro_now", "gil"]
    fasttracemalloc.start(5)
    assert lib.call_track(9, 8192, 100) == 0
    assert lib.call_track(9, 8192, 200) == 0  # marker: second-track
    traces = domain_traces(fasttracemalloc, 9)
    assert [t.size for t in traces] == [200]
    assert traces[0].traceback[-1].lineno == line_of("marker: second-track")
    # the same pointer in another domain is another block
    assert lib.call_track(10, 8192, 300) == 0
    assert [t.size for t in domain_traces(fasttracemalloc, 9)] == [200]
    assert [t.size for t in domain_traces(fasttracemalloc, 10)] == [300]


def thread_track_traces(lib, start, stop, get_traces):
    start(5)
    try:
        assert lib.call_track_in_new_thread(8, 12288, 55) == 0
        return [t for t in get_traces() if t[0] == 8]
    finally:
        stop()


def test_track_from_a_thread_without_python_state(callers, stopped):
    """A C thread with no thread state: the builtin takes the GIL and
    records the empty stack; the engine records the same, without the
    GIL."""
    lib = callers["lazy", "nogil"]
    ours = thread_track_traces(lib, fasttracemalloc.start,
                               fasttracemalloc.stop,
                               fasttracemalloc._get_traces)
    theirs = thread_track_traces(lib, _tracemalloc.start, _tracemalloc.stop,
                                 _tracemalloc._get_traces)
    assert ours == theirs == [(8, 55, (("<unknown>", 0),), 1)]


def test_builtin_gets_the_calls_while_the_engine_is_stopped(callers,
                                                            stopped):
    lib = callers["relro_now", "gil"]
    fasttracemalloc.start()  # rewrites the slots
    fasttracemalloc.stop()
    _tracemalloc.start()
    try:
        assert lib.call_track(11, 16384, 77) == 0
        assert [t[1] for t in _tracemalloc._get_traces() if t[0] == 11] == \
            [77]
        assert lib.call_untrack(11, 16384) == 0
        assert [t for t in _tracemalloc._get_traces() if t[0] == 11] == []
    finally:
        _tracemalloc.stop()


def test_pythonapi_reaches_the_builtin(callers, stopped):
    """ctypes.pythonapi looks the functions up with dlsym, not through a
    GOT: it calls the builtin's functions, so while the engine traces (and
    the builtin does not) it gets -2 and nothing is recorded (README) --
    except on a static 3.11 on x86-64, where the engine patches the
    builtin's entries while it traces (newref_patch.c): there the calls
    reach the engine."""
    api = pythonapi()
    fasttracemalloc.start()
    if newref_patchable():
        assert api.PyTraceMalloc_Track(12, 20480, 10) == 0
        assert [t.size for t in domain_traces(fasttracemalloc, 12)] == [10]
        assert api.PyTraceMalloc_Untrack(12, 20480) == 0
    else:
        assert api.PyTraceMalloc_Track(12, 20480, 10) == -2
        assert api.PyTraceMalloc_Untrack(12, 20480) == -2
    assert len(domain_traces(fasttracemalloc, 12)) == 0
    fasttracemalloc.stop()
    assert api.PyTraceMalloc_Track(12, 20480, 10) == -2
    _tracemalloc.start()
    try:
        assert api.PyTraceMalloc_Track(12, 20480, 10) == 0
        assert api.PyTraceMalloc_Untrack(12, 20480) == 0
    finally:
        _tracemalloc.stop()


def test_get_traceback_answers_from_the_engine(callers, stopped):
    get_tb = get_traceback_fn()
    if get_tb is None:
        pytest.skip("_testcapi/_testinternalcapi with "
                    "_PyTraceMalloc_GetTraceback not available")
    lib = callers["lazy", "gil"]
    fasttracemalloc.start()  # rebinds _testcapi/_testinternalcapi too
    assert lib.call_track(13, 24576, 10) == 0  # marker: gettb-track
    assert get_tb(13, 24576) == ((__file__, line_of("marker: gettb-track")),)
    assert get_tb(13, 24577) is None
    assert lib.call_untrack(13, 24576) == 0
    assert get_tb(13, 24576) is None
    fasttracemalloc.stop()
    assert get_tb(13, 24576) is None  # the builtin's answer: not tracing
    _tracemalloc.start()
    try:
        assert lib.call_track(13, 24576, 10) == 0
        assert get_tb(13, 24576) is not None  # the builtin's trace
    finally:
        _tracemalloc.stop()


# --- numpy ----------------------------------------------------------------

def ones_trace(mod):
    """Start `mod`, make np.ones(10**6), return the traceback of its
    domain-389047 trace, whether DomainFilter(False) excludes it, and
    whether it is gone after the array is deleted."""
    mod.start(25)
    try:
        a = numpy.ones(10**6)  # marker: np-ones
        snap = mod.take_snapshot()
        found = [t for t in snap.filter_traces(
            [tracemalloc.DomainFilter(True, NUMPY_DOMAIN)]).traces
            if t.size == ARRAY_BYTES]
        excluded = not [t for t in snap.filter_traces(
            [tracemalloc.DomainFilter(False, NUMPY_DOMAIN)]).traces
            if t.domain == NUMPY_DOMAIN]
        del a
        gone = not [t for t in domain_traces(mod, NUMPY_DOMAIN)
                    if t.size == ARRAY_BYTES]
        return found, excluded, gone
    finally:
        mod.stop()


@needs_numpy
def test_numpy_array_in_its_domain_at_its_line(stopped):
    results = {}
    for name, mod in (("builtin", tracemalloc), ("engine", fasttracemalloc)):
        results[name] = ones_trace(mod)
    found, excluded, gone = results["engine"]
    assert len(found) == 1
    frames = [(f.filename, f.lineno) for f in found[0].traceback]
    assert (__file__, line_of("marker: np-ones")) in frames
    assert excluded and gone
    # the builtin saw the same block with the same traceback
    b_found, b_excluded, b_gone = results["builtin"]
    assert [tuple(t.traceback) for t in b_found] == \
        [tuple(found[0].traceback)]
    assert b_excluded and b_gone


NUMPY_AFTER_START = r"""
import json, sys
import tracemalloc
import fasttracemalloc
from fasttracemalloc import _backend
assert "numpy" not in sys.modules
fasttracemalloc.start(10)
before = _backend.engine._stats()["capi_slots"]
import numpy as np
after = _backend.engine._stats()["capi_slots"]
a = np.ones(10**6)  # the line
snap = fasttracemalloc.take_snapshot().filter_traces(
    [tracemalloc.DomainFilter(True, 389047)])
print(json.dumps({
    "before": before, "after": after,
    "traces": [[t.size, [[f.filename, f.lineno] for f in t.traceback]]
               for t in snap.traces if t.size == 8 * 10**6],
}))
"""


@needs_numpy
def test_numpy_imported_after_start_is_rebound(tmp_path):
    script = tmp_path / "after_start.py"
    script.write_text(NUMPY_AFTER_START)
    proc = run_python(str(script))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["after"] > out["before"], out
    line = NUMPY_AFTER_START.splitlines().index(
        "a = np.ones(10**6)  # the line") + 1
    assert len(out["traces"]) == 1, out
    assert [str(script), line] in out["traces"][0][1], out


SWITCH_NUMPY = r"""
import json
import numpy as np
a = np.ones(10**6)  # the line
import tracemalloc
snap = tracemalloc.take_snapshot().filter_traces(
    [tracemalloc.DomainFilter(True, 389047)])
print(json.dumps([[t.size, [[f.filename, f.lineno] for f in t.traceback]]
                  for t in snap.traces if t.size == 8 * 10**6]))
"""


@needs_numpy
def test_numpy_under_the_startup_switch(tmp_path):
    """FASTTRACEMALLOC=5: tracing starts before the program imports numpy
    (the loader hook rebinds it), and the program's own `import
    tracemalloc` reads the engine's answer."""
    script = tmp_path / "switch_numpy.py"
    script.write_text(SWITCH_NUMPY)
    proc = run_python(str(script), FASTTRACEMALLOC="5")
    assert proc.returncode == 0, proc.stderr
    traces = json.loads(proc.stdout)
    line = SWITCH_NUMPY.splitlines().index(
        "a = np.ones(10**6)  # the line") + 1
    assert len(traces) == 1, traces
    assert [str(script), line] in traces[0][1], traces


# --- refusal --------------------------------------------------------------

REFUSED = r"""
import ctypes, json, sys, warnings
import fasttracemalloc
from fasttracemalloc import _backend
lib = ctypes.PyDLL(sys.argv[1])
lib.call_track.argtypes = (ctypes.c_uint, ctypes.c_size_t, ctypes.c_size_t)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    fasttracemalloc.start()
    fasttracemalloc.stop()
    fasttracemalloc.start()
x = bytearray(100000)
st = _backend.engine._stats()
print(json.dumps({
    "warnings": [[w.category.__name__, str(w.message)] for w in caught],
    "refusals": st["capi_refusals"], "reason": st["capi_reason"],
    "rebound": st["capi_rebound"], "slots": st["capi_slots"],
    "tracing": fasttracemalloc.is_tracing(),
    "traced": fasttracemalloc.get_traced_memory()[0] >= 100000,
    "track": lib.call_track(7, 4096, 10),
}))
"""


def test_refusal_warns_once_and_keeps_tracing(tmp_path, caller_paths):
    script = tmp_path / "refused.py"
    script.write_text(REFUSED)
    proc = run_python(str(script), caller_paths["relro_now"],
                      _FASTTRACEMALLOC_REFUSE_REBIND="1")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert len(out["warnings"]) == 1, out
    category, message = out["warnings"][0]
    assert category == "RuntimeWarning"
    assert "_FASTTRACEMALLOC_REFUSE_REBIND=1" in message
    assert out["refusals"] == 2
    assert "_FASTTRACEMALLOC_REFUSE_REBIND=1" in out["reason"]
    assert out["rebound"] is False and out["slots"] == 0
    assert out["tracing"] and out["traced"]
    assert out["track"] == -2  # the C API still goes to the builtin


def test_refusal_warning_as_error_starts_nothing(tmp_path):
    proc = run_python("-W", "error::RuntimeWarning", "-c",
                      textwrap.dedent("""
                          import fasttracemalloc
                          try:
                              fasttracemalloc.start()
                          except RuntimeWarning as exc:
                              print("raised", fasttracemalloc.is_tracing())
                      """), _FASTTRACEMALLOC_REFUSE_REBIND="1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "raised False"
