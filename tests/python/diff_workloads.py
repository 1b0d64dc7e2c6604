"""Deterministic workloads for the differential test (test_differential.py,
run by diff_harness.py).  Each ``w_NAME`` function returns what it keeps
alive.

Free lists: CPython re-stamps an object popped from a free list (list,
dict, tuple, float, ...) with a new traceback through the builtin's
private hook on 3.11/3.12; the engine does the same from 3.13
(PyRefTracer) and on 3.11/3.12 where it can wrap _Py_NewReference (a
shared libpython), and cannot on a static 3.11/3.12 executable.  So the
workloads other than w_freelists build what they keep without freeing
objects of those types in between (or keep only types without a free
list), so the comparison is exact everywhere; w_freelists reuses free
lists on purpose and runs only where the engine re-stamps (see
test_differential.py).
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


def _make_floats(n, scale):
    return [i * scale for i in range(n)]            # floats: free list


def _make_rows(n):
    return [(i, i + 1) for i in range(n)]           # small tuples: free list


def _make_dicts(n):
    return [{"k": i} for i in range(n)]             # dicts: free list


def _make_lists(n):
    return [[i] for i in range(n)]                  # lists: free list


def w_freelists():
    # Free-list reuse on purpose (issue 10 item 1): each round builds
    # objects of the free-list types, drops most of them (they go back to
    # their free lists with their blocks still traced) and keeps a few made
    # by the NEXT round from those free lists, on other lines.  Only an
    # engine that re-stamps objects on creation, as the builtin does,
    # attributes the kept ones to the lines that made them
    # (test_differential runs it only there).
    keep = []
    for r in range(40):
        floats = _make_floats(50, r + 0.5)
        rows = _make_rows(50)
        dicts = _make_dicts(20)
        lists = _make_lists(20)
        del floats, rows, dicts, lists
        keep.append([x * 2.0 for x in range(r, r + 10)])
        keep.append([(x, -x) for x in range(10)])
        keep.append([{"v": x} for x in range(5)])
        keep.append([[x, x] for x in range(5)])
        keep.append(tuple(i * 0.25 for i in range(3)))
    return keep


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


