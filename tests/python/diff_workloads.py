"""Deterministic workloads for the differential test (test_differential.py,
run by diff_harness.py).  Each ``w_NAME`` function returns what it keeps
alive.

Free lists: CPython 3.11 re-stamps an object popped from a free list
(list, dict, tuple, float, ...) with a new traceback only through the
builtin's private hook (see run_cpython_suite.py), so an object reusing a
*traced* free-list entry is attributed differently by the builtin and by
any third-party engine.  The workloads build what they keep without
freeing objects of those types in between (or keep only types without a
free list), so the comparison is exact; see test_differential.py.
"""

import sys
import threading


# --- workloads: each returns what it keeps alive -------------------------

def w_containers():
    keep = []
    for i in range(300):
        keep.append(list(range(i % 40)))
    keep.append({i: str(i) * 3 for i in range(2000)})
    keep.append(set(range(1000, 1500)))
    keep.append(bytearray(b"abc" * 1000))
    keep.append(tuple(range(25)) * 4)        # > 20 items: no free list
    return keep


class Plain:
    def __init__(self, i):
        self.a = i * 1000003
        self.b = "name-%d" % i
        self.c = [i] * 3


class Slotted:
    __slots__ = ("x", "y")

    def __init__(self, i):
        self.x = i * 7919 + 10 ** 12
        self.y = b"%d" % i


def w_classes():
    return [Plain(i) for i in range(1500)] + [Slotted(i) for i in range(1500)]


def w_strings():
    keep = []
    # First: join() below frees temporary lists into the list free list,
    # and a list made after it would reuse one (see diff_harness.py).
    keep.append([("x" * (i % 100)) + str(i) for i in range(2000)])
    text = ""
    for i in range(400):
        text += "line %d of text\n" % i          # realloc growth
    keep.append(text)
    keep.append("-".join("s%05d" % i for i in range(3000)))
    keep.append(b"".join(b"%d," % i for i in range(3000)))
    keep.append("%s|%r|%x" % ("fmt", [1, 2], 255) * 100)
    return keep


def _recurse(level, out):
    out.append("level-%d" % level * 2)
    out.append(bytes(64 + level))
    if level:
        _recurse(level - 1, out)


def w_recursion():
    out = []
    _recurse(60, out)            # deeper than nframe=25
    return out


def _thread_work(seed, box):
    # Keeps only tuples of > 20 items, str and bytes (types without a free
    # list) and builds them without temporary small tuples (f-strings, str
    # keys), so no kept object can reuse a traced free-list entry whatever
    # the interleaving (see diff_harness.py).
    def deep(level):
        if level:
            return deep(level - 1)
        box[f"s{seed}"] = tuple(f"t{seed}-{i}" * 2 for i in range(1500))
        box[f"b{seed}"] = tuple(bytes(100 + seed) for _ in range(200))
    deep(20 + seed)


def w_threads():
    # A long switch interval: threads still run concurrently with the main
    # thread's start()/join(), but the rare forced GIL hand-offs (whose
    # timing allocates a stray object now and then) become unlikely.
    sys.setswitchinterval(5.0)
    # Every key exists before the threads start, so no thread's store
    # resizes the shared dict (without a GIL, which thread resizes it --
    # at which stack depth -- depends on timing).
    box = {f"{kind}{seed}": None for seed in range(4) for kind in "sb"}
    threads = [threading.Thread(target=_thread_work, args=(seed, box))
               for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return box


_CODEGEN_SRC = """\
def inner(n):
    return bytearray(n)
def outer(n):
    first = inner(n)
    return [first, bytearray(n + 1)]
def gen(n):
    yield bytearray(n + 2)
    yield inner(n + 3)
"""


def w_codegen():
    # Generated code, dropped as soon as it ran (issue 10 item 4): what it
    # allocated and kept must name the generated file and line after the
    # code objects died and their addresses were reused by other code
    # objects (the junk compiled in between).  17 file names shared by
    # sources shifted by 0..4 lines: equal file names with different line
    # tables.  Only bytearrays are kept (no free list).
    keep = []
    for i in range(240):
        ns = {}
        src = "\n" * (i % 5) + _CODEGEN_SRC
        exec(compile(src, "<codegen-%d>" % (i % 17), "exec"), ns)
        keep.extend(ns["outer"](100 + i))
        keep.extend(ns["gen"](100 + i))
        del ns
        if i % 10 == 0:
            junk = [compile("x = %d" % j, "<junk>", "exec") for j in range(20)]
            del junk
    return keep


WORKLOADS = {name[2:]: fn for name, fn in globals().items()
             if name.startswith("w_")}


