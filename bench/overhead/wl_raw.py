"""Workload 3: RAW-domain allocations from threads that released the GIL.

Owns: calling PyMem_RawMalloc / PyMem_RawFree through ctypes.CDLL -- a CDLL
(unlike ctypes.pythonapi, a PyDLL) releases the GIL around every foreign
call, so each allocation reaches the RAW-domain hook without the GIL, which
is where the builtin tracemalloc takes it back (PyGILState_Ensure) per
allocation.  ``threads`` threads each keep a window of 16 live blocks of
varying sizes and replace one block per iteration, until ``seconds`` have
passed.  Prints BENCH_RESULT with ``rate`` (allocations per second, all
threads together) and the count.

The ctypes call itself (argument conversion, result object) runs under the
GIL and costs ~1 us, so the absolute rate is bounded by ctypes, not by the
allocator; the ratio between modes is what this workload shows.

Symbol lookup: on a shared-library build (pyenv: libpython3.11.so) and on a
static one (Debian's /usr/bin/python3: symbols in the executable)
CDLL(None) -- the process's global scope -- finds them; if it does not, the
library named by sysconfig's LDLIBRARY in LIBDIR is tried.
"""

import ctypes
import os
import sys
import sysconfig
import threading
import time

import benchlib


def load_raw_api():
    candidates = [None]
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    ldlib = sysconfig.get_config_var("LDLIBRARY") or ""
    if ldlib.endswith(".so") or ".so." in ldlib:
        candidates.append(os.path.join(libdir, ldlib))
    errors = []
    for name in candidates:
        try:
            lib = ctypes.CDLL(name)
            malloc = lib.PyMem_RawMalloc
            free = lib.PyMem_RawFree
        except (OSError, AttributeError) as exc:
            errors.append(f"{name or '<process>'}: {exc}")
            continue
        malloc.argtypes = [ctypes.c_size_t]
        malloc.restype = ctypes.c_void_p
        free.argtypes = [ctypes.c_void_p]
        free.restype = None
        return malloc, free, name or "<process>"
    raise SystemExit("PyMem_RawMalloc not found: " + "; ".join(errors))


def worker(malloc, free, barrier, deadline_box, counts, slot):
    window = [None] * 16
    sizes = (24, 40, 64, 100, 256, 520, 1024, 4000)
    done = 0
    barrier.wait()
    deadline = deadline_box[0]
    while True:
        for k in range(64):
            i = (done + k) & 15
            old = window[i]
            if old is not None:
                free(old)
            p = malloc(sizes[(done + k) & 7])
            if not p:
                raise MemoryError("PyMem_RawMalloc returned NULL")
            window[i] = p
        done += 64
        if time.perf_counter() >= deadline:
            break
    for p in window:
        if p is not None:
            free(p)
    counts[slot] = done


def main():
    args = benchlib.parse_args(sys.argv[1:], threads=4, seconds=1.0)
    malloc, free, where = load_raw_api()
    nthreads = args["threads"]
    counts = [0] * nthreads
    deadline_box = [0.0]
    barrier = threading.Barrier(nthreads + 1)
    threads = [threading.Thread(target=worker,
                                args=(malloc, free, barrier, deadline_box,
                                      counts, n))
               for n in range(nthreads)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    deadline_box[0] = t0 + args["seconds"]
    barrier.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    total = sum(counts)
    benchlib.emit(rate=total / elapsed, allocations=total, seconds=elapsed,
                  threads=nthreads, symbols_from=where)


if __name__ == "__main__":
    main()
