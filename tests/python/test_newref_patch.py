"""The static-3.11 re-stamping patch (python/src/newref_patch.c): on a
static CPython 3.11 on x86-64 (Debian's /usr/bin/python3.11) the engine
patches the entry of _PyTraceMalloc_NewReference and sets the builtin's
`tracing` flag while it traces.  These tests pin down what that flag must
not change: the builtin's own functions, the C API reached without a GOT
(ctypes), the builtin started on top, and interpreter exit while tracing.

Each case runs in a fresh interpreter: the patch is process-wide state.
"""

import pytest

from conftest import needs_engine, newref_patchable, run_json_case

pytestmark = [
    needs_engine,
    pytest.mark.skipif(not newref_patchable(),
                       reason="only a static 3.11 on x86-64 is patched"),
]

PRELUDE = """\
import ctypes, gc, json, sys, _tracemalloc, tracemalloc
import fasttracemalloc as ftm
stats = ftm._fasttracemalloc._stats

def make():
    return []                                   # line 6: the first list

def reuse():
    return []                                   # line 9: from the free list

def case(get):
    gc.collect()
    first = make()
    first = None
    second = reuse()
    tb = get(second)
    return None if tb is None else tb[0].lineno

out = {}
"""


def run_case(tmp_path, body, **env):
    return run_json_case(tmp_path, PRELUDE, body, **env)


def test_builtin_functions_answer_as_when_not_tracing(tmp_path):
    out = run_case(tmp_path, """
        ftm.start(1)
        out["active"] = stats()["newref_patch_active"]
        out["ours"] = case(ftm.get_object_traceback)
        out["is_tracing"] = _tracemalloc.is_tracing()
        out["stop"] = _tracemalloc.stop()      # would crash unpatched
        out["memory"] = list(_tracemalloc.get_traced_memory())
        out["traces"] = _tracemalloc._get_traces()
        out["clear"] = _tracemalloc.clear_traces()
        out["tb"] = _tracemalloc._get_object_traceback(out)
        out["still"] = ftm.is_tracing() and stats()["newref_patch_active"]
        ftm.stop()
        out["after"] = [stats()["newref_patch_active"],
                        _tracemalloc.is_tracing()]
    """)
    assert out == {"active": True, "ours": 9, "is_tracing": False,
                   "stop": None, "memory": [0, 0], "traces": [],
                   "clear": None, "tb": None, "still": True,
                   "after": [False, False]}, out


def test_ctypes_track_reaches_the_engine(tmp_path):
    """PyTraceMalloc_Track through dlsym (no GOT): the builtin's would
    crash with the flag set and no traceback buffer; patched, it records
    in the engine, and returns the builtin's -2 once tracing stopped."""
    out = run_case(tmp_path, """
        track = ctypes.pythonapi.PyTraceMalloc_Track
        untrack = ctypes.pythonapi.PyTraceMalloc_Untrack
        track.argtypes = [ctypes.c_uint, ctypes.c_size_t, ctypes.c_size_t]
        untrack.argtypes = [ctypes.c_uint, ctypes.c_size_t]
        ftm.start(1)
        snap0 = ftm.take_snapshot()
        out["track"] = track(7, 0x1000, 123456)
        snap = ftm.take_snapshot()
        dom = [t.size for t in snap.traces if t.domain == 7]
        out["domain7"] = dom
        out["untrack"] = untrack(7, 0x1000)
        out["gone"] = [t.size for t in ftm.take_snapshot().traces
                       if t.domain == 7]
        ftm.stop()
        out["after"] = [track(7, 0x1000, 10), untrack(7, 0x1000)]
    """)
    assert out == {"track": 0, "domain7": [123456], "untrack": 0,
                   "gone": [], "after": [-2, -2]}, out


def test_builtin_start_on_top_takes_its_flag_back(tmp_path):
    """The builtin started while patched undoes the patch and traces for
    real (re-stamping: its own hook); ours keeps tracing without
    re-stamping; the next session of ours alone is patched again."""
    out = run_case(tmp_path, """
        ftm.start(1)
        _tracemalloc.start(1)
        out["builtin_tracing"] = _tracemalloc.is_tracing()
        out["active"] = stats()["newref_patch_active"]
        out["builtin"] = case(tracemalloc.get_object_traceback)
        out["ours"] = case(ftm.get_object_traceback)
        _tracemalloc.stop()
        ftm.stop()
        ftm.start(1)
        out["again"] = [stats()["newref_patch_active"],
                        case(ftm.get_object_traceback)]
        ftm.stop()
    """)
    assert out == {"builtin_tracing": True, "active": False, "builtin": 9,
                   "ours": 6, "again": [True, 9]}, out


def test_refused_while_the_builtin_traces(tmp_path):
    out = run_case(tmp_path, """
        _tracemalloc.start(1)
        ftm.start(1)
        st = stats()
        out["st"] = [st["newref_patch_active"], st["newref_patch_reason"],
                     st["newref_refusals"]]
        ftm.stop()
        _tracemalloc.stop()
    """)
    assert out == {"st": [False, "the builtin tracemalloc is tracing", 1]}, \
        out


@pytest.mark.parametrize("how", ["plain", "builtin_too", "atexit_cleared"])
def test_exit_while_tracing(tmp_path, how):
    """Exit with the patch in effect: the builtin's finalizer runs its
    stop, which with the flag set would restore allocators it never saved
    (a crash); its entry is patched too, and undoes the patch instead.
    Nothing depends on an atexit callback."""
    out = run_case(tmp_path, f"""
        import atexit
        ftm.start(1)
        if {how!r} == "builtin_too":
            _tracemalloc.start(1)
        if {how!r} == "atexit_cleared":
            atexit._clear()
        out["active"] = stats()["newref_patch_active"]
        x = [[] for _ in range(1000)]
    """)
    assert out == {"active": how != "builtin_too"}, out


def test_track_without_the_gil_while_patching(tmp_path):
    """Threads call the builtin's PyTraceMalloc_Track/Untrack through
    dlsym with the GIL released (ctypes.CDLL) while the main thread starts
    and stops the engine, i.e. patches and restores their entries: every
    call returns the builtin's -2 (not patched, or the engine stopped) or
    the engine's 0, and nothing crashes."""
    out = run_case(tmp_path, """
        import threading
        lib = ctypes.CDLL(None)      # releases the GIL around each call
        lib.PyTraceMalloc_Track.argtypes = [ctypes.c_uint, ctypes.c_size_t,
                                            ctypes.c_size_t]
        lib.PyTraceMalloc_Untrack.argtypes = [ctypes.c_uint, ctypes.c_size_t]
        seen = set()
        def hammer(k):
            got = set()
            for i in range(20000):
                got.add(lib.PyTraceMalloc_Track(9, 0x10000 * k + i, 8))
                got.add(lib.PyTraceMalloc_Untrack(9, 0x10000 * k + i))
            seen.update(got)
        threads = [threading.Thread(target=hammer, args=(k,))
                   for k in (1, 2)]
        for t in threads:
            t.start()
        rounds = 0
        while any(t.is_alive() for t in threads):
            ftm.start(1)
            ftm.stop()
            rounds += 1
        for t in threads:
            t.join()
        out["seen"] = sorted(seen)
        out["patched"] = stats()["newref_patched"]
        out["rounds"] = rounds > 0
    """)
    assert out["patched"] is True and out["rounds"] is True, out
    assert set(out["seen"]) <= {0, -2} and -2 in out["seen"], out


def test_install_while_patched(tmp_path):
    """install() asks the builtin whether it traces: patched, it answers
    False, so install() does not refuse nor stop it (which would
    crash)."""
    out = run_case(tmp_path, """
        ftm.start(1)
        ftm.install()
        out["ours"] = case(tracemalloc.get_object_traceback)
        tracemalloc.stop()
        ftm.uninstall()
        out["after"] = [stats()["newref_patch_active"], ftm.is_tracing()]
    """)
    assert out == {"ours": 9, "after": [False, False]}, out


def test_sampled_session_patches_only_to_restamp(tmp_path):
    """A sampled session that does not re-stamp leaves the interpreter
    unpatched and the builtin's flag clear (so object creation does not
    call into the patch at all); restamp=True patches, as exact mode."""
    out = run_case(tmp_path, """
        ftm.start_sampled(1, mean_bytes=1, seed=1)
        out["default"] = [stats()["newref_patch_active"],
                          _tracemalloc.is_tracing(), case(ftm.get_object_traceback)]
        ftm.stop()
        ftm.start_sampled(1, mean_bytes=1, seed=1, restamp=True)
        out["restamp"] = [stats()["newref_patch_active"],
                          _tracemalloc.is_tracing(), case(ftm.get_object_traceback)]
        ftm.stop()
        out["after"] = stats()["newref_patch_active"]
    """)
    assert out == {"default": [False, False, 6], "restamp": [True, False, 9],
                   "after": False}, out
