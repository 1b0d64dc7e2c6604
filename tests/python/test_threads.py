"""Threads: allocators in many threads while another thread snapshots,
clears, stops and restarts the engine; RAW-domain allocations made without
the GIL.  Nothing may crash, and every answer must be self-consistent."""

import ctypes
import inspect
import sys
import threading


import fasttracemalloc


def churn(stop_event, seed, errors):
    """Allocate and free a steady mix of objects at a modest depth."""
    try:
        def deep(level):
            if level:
                return deep(level - 1)
            keep = []
            i = 0
            while not stop_event.is_set():
                keep.append(["%d-%d" % (seed, i)] * (i % 7) + [bytes(i % 300)])
                if len(keep) > 500:
                    del keep[:250]
                i += 1
        deep(10 + seed)
    except BaseException as exc:  # reported by the test
        errors.append(exc)


def check_snapshot(snapshot, nframe):
    interned = {}
    for trace in snapshot.traces._traces:
        assert isinstance(trace, tuple) and len(trace) == 4
        domain, size, traceback, total_nframe = trace
        assert isinstance(domain, int) and isinstance(size, int) and size >= 0
        assert isinstance(traceback, tuple) and 1 <= len(traceback) <= nframe
        assert total_nframe >= len(traceback)
        for frame in traceback:
            assert isinstance(frame[0], str) and isinstance(frame[1], int)
        # equal tracebacks (with equal total_nframe, which the builtin's
        # interning also keys on) are one object within one answer
        key = (traceback, total_nframe)
        assert interned.setdefault(key, traceback) is traceback


def controller(rounds, errors):
    try:
        for r in range(rounds):
            nframe = (1, 5, 25)[r % 3]
            fasttracemalloc.start(nframe)
            for _ in range(3):
                snapshot = fasttracemalloc.take_snapshot()
                total = sum(t[1] for t in snapshot.traces._traces)
                current, peak = fasttracemalloc.get_traced_memory()
                # peak never falls below what was traced at the snapshot
                assert peak >= total, (peak, total)
                assert peak >= current
                check_snapshot(snapshot, nframe)
                snapshot.statistics("lineno")
                if r % 2:
                    fasttracemalloc.clear_traces()
                else:
                    fasttracemalloc.reset_peak()
                    current, peak = fasttracemalloc.get_traced_memory()
                    assert peak >= current
            fasttracemalloc.stop()
            assert not fasttracemalloc.is_tracing()
            assert fasttracemalloc.get_traced_memory() == (0, 0)
            assert fasttracemalloc._get_traces() == []
    except BaseException as exc:
        errors.append(exc)


def test_churn_with_concurrent_snapshot_clear_stop_restart(stopped):
    stop_event = threading.Event()
    errors = []
    workers = [threading.Thread(target=churn, args=(stop_event, seed, errors))
               for seed in range(4)]
    for t in workers:
        t.start()
    ctl = threading.Thread(target=controller, args=(12, errors))
    ctl.start()
    ctl.join()
    stop_event.set()
    for t in workers:
        t.join()
    assert errors == []
    # the engine still works normally afterwards
    fasttracemalloc.start(3)
    obj = bytes(10000)
    line = inspect.currentframe().f_lineno - 1
    tb = fasttracemalloc.get_object_traceback(obj)
    fasttracemalloc.stop()
    assert tb is not None and (tb[-1].filename, tb[-1].lineno) == (__file__, line)


def test_start_stop_race_from_many_threads(stopped):
    """Lifecycle calls from several threads at once never crash or leave
    the engine in a state that answers inconsistently."""
    errors = []

    def flip(n):
        try:
            for i in range(200):
                if i % 2:
                    fasttracemalloc.stop()
                else:
                    fasttracemalloc.start(1 + n)
                fasttracemalloc.is_tracing()
                fasttracemalloc.get_traced_memory()
                fasttracemalloc._get_traces()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=flip, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fasttracemalloc.stop()
    assert errors == []
    assert fasttracemalloc.get_traced_memory() == (0, 0)


def _raw_api():
    # CDLL (not PyDLL) releases the GIL around each call.
    lib = ctypes.CDLL(None)
    try:
        malloc, free = lib.PyMem_RawMalloc, lib.PyMem_RawFree
    except AttributeError:
        lib = ctypes.CDLL(sys.executable if sys.platform != "linux"
                          else ctypes.pythonapi._name)
        malloc, free = lib.PyMem_RawMalloc, lib.PyMem_RawFree
    malloc.restype = ctypes.c_void_p
    malloc.argtypes = [ctypes.c_size_t]
    free.restype = None
    free.argtypes = [ctypes.c_void_p]
    return malloc, free


def test_raw_allocations_without_gil_are_traced(stopped):
    malloc, free = _raw_api()
    size = 123457
    pointers = []
    lines = {}

    def allocate(n):
        line = inspect.currentframe().f_lineno + 1
        ptr = malloc(size + n)          # runs without the GIL
        lines[n] = line
        pointers.append(ptr)

    fasttracemalloc.start(4)
    threads = [threading.Thread(target=allocate, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snapshot = fasttracemalloc.take_snapshot()
    for ptr in pointers:
        free(ptr)
    after = fasttracemalloc.take_snapshot()
    fasttracemalloc.stop()
    found = {t[1] - size: t for t in snapshot.traces._traces
             if size <= t[1] < size + 4}
    assert sorted(found) == [0, 1, 2, 3]
    for n, (domain, _, traceback, _) in found.items():
        assert domain == 0
        assert traceback[0] == (__file__, lines[n])
    assert not [t for t in after.traces._traces if size <= t[1] < size + 4]


def test_answers_are_exact_across_threads(stopped):
    """An object allocated by another thread is known the moment that
    thread hands it over, while other threads keep allocating: queries
    drain every thread's pending events first."""
    import queue
    handoff = queue.Queue()
    stop_event = threading.Event()
    errors = []
    noise = [threading.Thread(target=churn, args=(stop_event, seed, errors))
             for seed in range(2)]

    def producer():
        for i in range(300):
            obj = bytes(5000 + i)
            handoff.put((obj, inspect.currentframe().f_lineno - 1))

    fasttracemalloc.start(2)
    for t in noise:
        t.start()
    prod = threading.Thread(target=producer)
    prod.start()
    missing = []
    for i in range(300):
        obj, line = handoff.get()
        tb = fasttracemalloc.get_object_traceback(obj)
        if tb is None or (tb[-1].filename, tb[-1].lineno) != (__file__, line):
            missing.append((i, tb))
        if i % 50 == 0:
            sizes = {t[1] for t in fasttracemalloc._get_traces()}
            # a bytes object's block is exactly its getsizeof (header +
            # data + trailing NUL; no GC pre-header): n + 33 with the GIL,
            # more on a free-threaded build's larger object header
            if sys.getsizeof(obj) not in sizes:
                missing.append((i, "not in _get_traces"))
    prod.join()
    stop_event.set()
    for t in noise:
        t.join()
    fasttracemalloc.stop()
    assert errors == []
    assert missing == []
