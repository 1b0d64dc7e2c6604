"""Cost of the C API (PyTraceMalloc_Track + Untrack) and of the GOT rebind.

    python bench/capi_track.py [--pairs N] [--repeat R]

Needs a C compiler (builds tests/python/capi_caller.c, full-RELRO variant)
and, for the start() figures, numpy.  Prints numbers; asserts nothing.

Pairs: the library's pairs() makes N Track+Untrack calls on distinct
pointers in one C loop, through its GOT, as an extension does.  Called
through ctypes.PyDLL (the GIL held, like numpy's allocations) and
ctypes.CDLL (the GIL released: the builtin then takes it for every Track).
Rows:
  untraced, original slot   nothing traces, the slot not yet rewritten
  untraced, our wrapper     after a start()/stop(): the wrapper forwards
  builtin tracing           _tracemalloc.start(nframe), original slot
  builtin via our wrapper   the same after our start()/stop()
  fasttracemalloc           fasttracemalloc.start(nframe)
Each time is the median of R runs of N pairs, ending with a query
(get_traced_memory) so the engine's queued events are applied inside it.

start(): with numpy imported, the time of a full scan of every loaded
object (what the first start() pays; forced by loading and unloading a copy
of the library, after which every object is scanned again), of a scan
after loading one new object (what an extension import while tracing pays)
of start()+stop() when nothing new was loaded (the scan is skipped), and
the first start() of a fresh process that imported numpy, with rebinding
and with it refused (_FASTTRACEMALLOC_REFUSE_REBIND=1).
"""

import argparse
import ctypes
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import _tracemalloc

import fasttracemalloc
from fasttracemalloc import _backend

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "tests", "python", "capi_caller.c")


def build(tmp):
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        sys.exit("capi_track.py: no C compiler (cc)")
    out = os.path.join(tmp, "capi_caller.so")
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-Wl,-z,relro,-z,now",
                    "-o", out, SOURCE, "-lpthread"], check=True)
    return out


def load(path, cls):
    lib = cls(path)
    lib.pairs.argtypes = (ctypes.c_uint, ctypes.c_size_t, ctypes.c_long)
    lib.pairs.restype = ctypes.c_long
    return lib


def ns_per_pair(lib, query, n, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        lib.pairs(7, 1 << 20, n)
        query()
        times.append((time.perf_counter_ns() - t0) / n)
    return statistics.median(times)


def pair_rows(libs, n, repeat, nframe):
    rows = []

    def measure(label, query=lambda: None):
        rows.append((label, [ns_per_pair(libs[k], query, n, repeat)
                             for k in ("gil", "nogil")]))

    measure("untraced, original slot")
    _tracemalloc.start(nframe)
    measure("builtin tracing", _tracemalloc.get_traced_memory)
    _tracemalloc.stop()
    fasttracemalloc.start(nframe)
    fasttracemalloc.stop()
    measure("untraced, our wrapper")
    _tracemalloc.start(nframe)
    measure("builtin via our wrapper", _tracemalloc.get_traced_memory)
    _tracemalloc.stop()
    fasttracemalloc.start(nframe)
    measure("fasttracemalloc", fasttracemalloc.get_traced_memory)
    fasttracemalloc.stop()
    return rows


def start_rows(path, tmp, repeat):
    try:
        import numpy  # noqa: F401  (what is loaded is what is scanned)
    except ImportError as exc:
        return [("numpy not importable (%s): start() figures skipped" % exc,
                 None)]
    engine = _backend.engine
    with open("/proc/self/maps") as f:
        objects = {line.split()[-1] for line in f
                   if ".so" in line.split()[-1]}
    import _ctypes
    full, incremental = [], []
    for i in range(repeat):
        # load and unload a copy: dlpi_subs moves, the next scan is full
        copy = os.path.join(tmp, "gone%d.so" % i)
        shutil.copy(path, copy)
        _ctypes.dlclose(ctypes.CDLL(copy)._handle)
        t0 = time.perf_counter_ns()
        engine._capi_rebind()
        full.append(time.perf_counter_ns() - t0)
        # load a copy: only that new object is scanned (an extension import)
        copy = os.path.join(tmp, "copy%d.so" % i)
        shutil.copy(path, copy)
        ctypes.CDLL(copy)
        t0 = time.perf_counter_ns()
        engine._capi_rebind()
        incremental.append(time.perf_counter_ns() - t0)
    cycles = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fasttracemalloc.start()
        fasttracemalloc.stop()
        cycles.append(time.perf_counter_ns() - t0)
    first = {}
    probe = ("import time, numpy, fasttracemalloc\n"
             "t0 = time.perf_counter_ns(); fasttracemalloc.start()\n"
             "print(time.perf_counter_ns() - t0)")
    for label, extra in (("rebinding", {}),
                         ("refused", {"_FASTTRACEMALLOC_REFUSE_REBIND": "1"})):
        env = dict(os.environ, **extra)
        first[label] = [int(subprocess.run(
            [sys.executable, "-W", "ignore", "-c", probe], env=env,
            capture_output=True, text=True, check=True).stdout)
            for _ in range(repeat)]

    def us(samples):
        return (statistics.median(samples) / 1000, min(samples) / 1000)

    return [("shared objects loaded (numpy imported)", len(objects)),
            ("full scan of them (us)", us(full)),
            ("scan after loading one object (us)", us(incremental)),
            ("start()+stop(), nothing new loaded (us)", us(cycles)),
            ("first start() in a fresh process (us)", us(first["rebinding"])),
            ("  the same, rebinding refused (us)", us(first["refused"]))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=200000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = build(tmp)
        libs = {"gil": load(path, ctypes.PyDLL),
                "nogil": load(path, ctypes.CDLL)}
        print("CPython %s, %d pairs x %d runs (median), ns per "
              "Track+Untrack pair" % (sys.version.split()[0], args.pairs,
                                      args.repeat))
        for nframe in (1, 25):
            print("\nnframe=%d %28s %12s" % (nframe, "GIL held", "no GIL"))
            for label, (gil, nogil) in pair_rows(libs, args.pairs,
                                                 args.repeat, nframe):
                print("  %-32s %10.1f %12.1f" % (label, gil, nogil))
        print("\nstart() with numpy loaded (%d runs) %17s %8s"
              % (args.repeat, "median", "min"))
        for label, value in start_rows(path, tmp, args.repeat):
            if value is None:
                print("  " + label)
            elif isinstance(value, int):
                print("  %-42s %8d" % (label, value))
            else:
                print("  %-42s %8.1f %8.1f" % (label, *value))
        st = _backend.engine._stats()
        print("\ncapi stats: %s" % {k: v for k, v in st.items()
                                    if k.startswith("capi")})


if __name__ == "__main__":
    main()
