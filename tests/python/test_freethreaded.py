"""Parallel allocators racing with every lifecycle call (issue 8).

Runs on every interpreter; on a free-threaded build (3.13t) the child
process must really run without the GIL after importing fasttracemalloc
(the extension declares Py_MOD_GIL_NOT_USED), so the MEM/OBJ wrappers are
entered by several threads at once.  Each case runs in a child with a
timeout, so a crash or a hang fails the test instead of the suite.

Checked exactly where an answer is defined:
  - during the races: a traceback returned for a live object names the
    line that allocated it (a cleared/stopped trace gives None, never a
    wrong traceback); peak >= current;
  - after all workers joined (no other Python thread running): every
    surviving object's traceback names its allocation line, current equals
    the sum of the traced sizes, and the traces at the allocation line are
    exactly the surviving objects' blocks.
"""

import json
import os
import sysconfig
import textwrap

import pytest

from conftest import needs_engine, run_python

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))

CHILD = textwrap.dedent(r'''
    import ctypes, inspect, json, sys, sysconfig, threading, time
    import fasttracemalloc
    from fasttracemalloc import _backend
    m = _backend.engine
    FT = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    if FT:
        assert not sys._is_gil_enabled(), "importing fasttracemalloc enabled the GIL"

    NWORKERS = int(sys.argv[1])
    ROUNDS = int(sys.argv[2])
    CTL_ROUNDS = int(sys.argv[3])
    HERE = __file__

    def line_of(marker):
        for n, text in enumerate(open(HERE), 1):
            if text.rstrip().endswith("# " + marker):
                return n
        raise LookupError(marker)

    LINE_A = line_of("ALLOC-A")
    LINE_B = line_of("ALLOC-B")
    errors = []
    windows = [[] for _ in range(NWORKERS)]

    def work(w, rounds, keep, out, stop=None):
        try:
            window = []
            i = 0
            while (i < rounds) if stop is None else not stop.is_set():
                i += 1
                if i & 1:
                    o = bytes(100 + (w * 37 + i) % 900)  # ALLOC-A
                else:
                    o = bytes(2000 + (w * 53 + i) % 3000)  # ALLOC-B
                window.append(o)
                if len(window) > keep:
                    del window[:keep // 2]
                if i % 64 == 0:
                    windows[w] = list(window)
            out[w] = window
        except BaseException as exc:
            errors.append(repr(exc))

    def check_tb(o, tb):
        if tb is None:
            return
        top = tb[0]
        if top[0] != HERE or top[1] not in (LINE_A, LINE_B):
            errors.append("wrong traceback %r for a %d-byte object" % (tb, len(o)))

    ctl_rounds = [0]

    def controller(stop, nrounds):
        try:
            for r in range(1, nrounds + 1):
                ctl_rounds[0] = r
                snap = fasttracemalloc.take_snapshot()
                total = sum(t[1] for t in snap.traces._traces)
                cur, peak = fasttracemalloc.get_traced_memory()
                if peak < cur:
                    errors.append("peak %d < current %d" % (peak, cur))
                for win in list(windows):
                    for o in win[-8:]:
                        check_tb(o, m._get_object_traceback(o))
                fasttracemalloc.reset_peak()
                if r % 3 == 0:
                    fasttracemalloc.clear_traces()
                if r % 5 == 0:
                    fasttracemalloc.stop()
                    if fasttracemalloc.get_traced_memory() != (0, 0):
                        errors.append("stopped but memory is not (0, 0)")
                    fasttracemalloc.start((1, 5, 25)[r % 3])
                fasttracemalloc.get_tracemalloc_memory()
        except BaseException as exc:
            errors.append(repr(exc))
        finally:
            stop.set()

    def raw_worker(stop):
        lib = ctypes.CDLL(None)   # releases the GIL / detaches around calls
        try:
            malloc, free = lib.PyMem_RawMalloc, lib.PyMem_RawFree
        except AttributeError:
            lib = ctypes.CDLL(ctypes.pythonapi._name)
            malloc, free = lib.PyMem_RawMalloc, lib.PyMem_RawFree
        malloc.restype = ctypes.c_void_p
        malloc.argtypes = [ctypes.c_size_t]
        free.argtypes = [ctypes.c_void_p]
        while not stop.is_set():
            free(malloc(333))

    def run_workers(rounds, keep, extra=(), stop=None):
        out = [None] * NWORKERS
        ts = [threading.Thread(target=work, args=(w, rounds, keep, out, stop))
              for w in range(NWORKERS)]
        for t in list(ts) + list(extra):
            t.start()
        for t in ts:
            t.join()
        return out

    # Phase 1: workers race with every lifecycle call and query until the
    # controller has done CTL_ROUNDS rounds (a stop/start every 5th).
    fasttracemalloc.start(5)
    stop = threading.Event()
    extra = [threading.Thread(target=controller, args=(stop, CTL_ROUNDS)),
             threading.Thread(target=raw_worker, args=(stop,))]
    run_workers(None, 256, extra, stop)
    for t in extra:
        t.join()

    # Phase 2: workers allocate and free in parallel, then answers are exact.
    fasttracemalloc.stop()
    fasttracemalloc.start(5)
    out = run_workers(ROUNDS, 200)
    survivors = [o for win in out for o in win]
    for o in survivors:
        tb = m._get_object_traceback(o)
        if tb is None:
            errors.append("a surviving %d-byte object is not traced" % len(o))
        else:
            check_tb(o, tb)
    # current == the sum of the traced sizes, read with no allocation in
    # between; free-threaded builds free some blocks late (QSBR delayed
    # frees, processed at the next safe point), so retry until one reading
    # is bracketed by two equal ones.
    for attempt in range(20):
        before = m.get_traced_memory()[0]
        traces = m._get_traces()
        cur, peak = m.get_traced_memory()
        total = sum(t[1] for t in traces)
        if before == cur == total:
            break
    at_lines = sorted(t[1] for t in traces
                      if t[2][0][0] == HERE and t[2][0][1] in (LINE_A, LINE_B))
    expected = sorted(sys.getsizeof(o) for o in survivors)
    fasttracemalloc.stop()
    print(json.dumps({
        "gil": sys._is_gil_enabled() if FT else None,
        "errors": errors[:5],
        "nerrors": len(errors),
        "current_is_sum": cur == total,
        "diff": [before, cur, total, attempt],
        "peak_ge": peak >= cur,
        "line_blocks_exact": at_lines == expected,
        "survivors": len(survivors),
        "ctl_rounds": ctl_rounds[0],
    }))
''')


@needs_engine
@pytest.mark.parametrize("nworkers", [4, 8])
def test_parallel_allocators_race_lifecycle(tmp_path, nworkers):
    script = tmp_path / "ftstress.py"
    script.write_text(CHILD)
    proc = run_python(str(script), str(nworkers), "20000", "60",
                      timeout=240, PYTHON_GIL=None)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if FREE_THREADED:
        assert out["gil"] is False
    assert out["nerrors"] == 0, out["errors"]
    assert out["current_is_sum"], out["diff"]
    assert out["peak_ge"]
    assert out["line_blocks_exact"]
    assert out["survivors"] > 0
    assert out["ctl_rounds"] == 60


@needs_engine
@pytest.mark.skipif(not FREE_THREADED, reason="free-threaded builds only")
def test_import_keeps_gil_disabled():
    proc = run_python("-W", "error::RuntimeWarning", "-c",
                      "import sys, fasttracemalloc; "
                      "fasttracemalloc.start(); "
                      "print(sys._is_gil_enabled())",
                      PYTHON_GIL=None)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


FORK_CHILD = textwrap.dedent(r'''
    import ctypes, os, sys, threading, warnings
    import fasttracemalloc
    warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
    lib = ctypes.CDLL(None)   # releases the GIL / detaches around calls
    try:
        malloc, free = lib.PyMem_RawMalloc, lib.PyMem_RawFree
    except AttributeError:
        lib = ctypes.CDLL(ctypes.pythonapi._name)
        malloc, free = lib.PyMem_RawMalloc, lib.PyMem_RawFree
    malloc.restype = ctypes.c_void_p
    malloc.argtypes = [ctypes.c_size_t]
    free.argtypes = [ctypes.c_void_p]
    stop = threading.Event()

    def raw():
        while not stop.is_set():
            free(malloc(100))

    def objs():
        while not stop.is_set():
            x = [bytes(300) for _ in range(50)]

    fasttracemalloc.start(3)
    ts = [threading.Thread(target=raw) for _ in range(2)]
    ts.append(threading.Thread(target=objs))
    for t in ts:
        t.start()
    for i in range(20):
        pid = os.fork()
        if pid == 0:
            # the vanished threads must not block the child's lifecycle
            fasttracemalloc.clear_traces()
            fasttracemalloc.take_snapshot()
            fasttracemalloc.stop()
            fasttracemalloc.start(2)
            fasttracemalloc.stop()
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert status == 0, status
    stop.set()
    for t in ts:
        t.join()
    fasttracemalloc.stop()
    print("ok")
''')


@needs_engine
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_while_threads_allocate(tmp_path):
    """fork() while other threads are inside the allocation hooks: the
    child's clear/stop must not wait for threads that vanished."""
    script = tmp_path / "forkchild.py"
    script.write_text(FORK_CHILD)
    proc = run_python(str(script), timeout=120, PYTHON_GIL=None)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "ok"


LIMIT_CHILD = textwrap.dedent(r'''
    import sys, threading, time
    import fasttracemalloc
    from fasttracemalloc import _backend
    m = _backend.engine
    stop = threading.Event()

    def deep(level):
        if level:
            return deep(level - 1)
        keep = []
        while not stop.is_set():
            keep.append([str(i) for i in range(20)])
            if len(keep) > 64:
                del keep[:32]

    workers = [threading.Thread(target=deep, args=(60,)) for _ in range(3)]
    for t in workers:
        t.start()
    bad = 0
    checked = 0
    empty_rounds = 0
    for r in range(int(sys.argv[1])):
        limit = (1, 40)[r % 2]
        m.start(limit)
        # Look until the workers have allocated in this session: under a
        # GIL the main thread may otherwise stop() before any worker ran.
        # The sleep hands the GIL (or the core) to the workers.
        seen = 0
        deadline = time.monotonic() + 5.0
        while seen < 8 and time.monotonic() < deadline:
            for trace in m._get_traces():
                seen += 1
                if len(trace[2]) > limit:
                    bad += 1
            time.sleep(0.001)
        checked += seen
        empty_rounds += seen == 0
        m.stop()
    stop.set()
    for t in workers:
        t.join()
    print(bad, checked, empty_rounds)
''')


@needs_engine
def test_no_traceback_longer_than_its_session_limit(tmp_path):
    # Workers capture 40 frames at a 60-deep stack while the main thread
    # stops and restarts tracing, alternating nframe 40 and 1.  A capture
    # that began under nframe=40 and was numbered after start(1) would put
    # a 40-frame traceback into the nframe=1 session.  Seen once on 3.13t
    # under ASan (test_threads.py), before start() closed the code-set
    # gate around ftm_start (module.c).  The window is narrow -- a worker
    # preempted between its tracing check and the gate for a whole stop()
    # -- so this test rarely hits it (it did not in 3 runs against the
    # unfixed code, nor with 8 workers): it guards the invariant, the
    # argument in module.c is the proof.
    script = tmp_path / "limit.py"
    script.write_text(LIMIT_CHILD)
    proc = run_python(str(script), "300", timeout=600)
    assert proc.returncode == 0, proc.stderr
    bad, checked, empty_rounds = map(int, proc.stdout.split())
    # Every one of the 300 sessions saw the workers' captures.
    assert empty_rounds == 0, (empty_rounds, checked)
    assert checked >= 300 * 8, checked
    assert bad == 0, (bad, checked)
