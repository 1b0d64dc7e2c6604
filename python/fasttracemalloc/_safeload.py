"""Loading snapshot files that may come from anyone (issue 11, item 4).

Owns: ``load(path)``, which reads a snapshot file -- the stdlib's
``Snapshot.dump()`` format, which is also what fasttracemalloc writes -- and
returns a plain ``tracemalloc.Snapshot`` or raises ``UnsafeSnapshotError``
(a ``ValueError``) with a one-line reason.  The CLI and every report
function load files through it (``report.load_snapshot``).

Why not ``pickle.load``: a snapshot file is a pickle, and unpickling runs
whatever callable the file names (``os.system``, ``builtins.eval``, ...).
The stdlib's ``Snapshot.load`` and fasttracemalloc's do exactly that, so
they are for trusted files only, in the builtin as here.

What this loader allows, and why that is enough to read every real file:
  * Globals: only ``tracemalloc.Snapshot`` and ``tracemalloc._Traces``
    (all that ``Snapshot.dump()`` names on 3.11-3.15), and
    ``copyreg._reconstructor`` (what ``pickle.dumps`` of a fasttracemalloc
    Snapshot writes) replaced by a checked version that accepts only those
    two classes over ``object``.  Any other global is refused by name
    before anything is called.  Building those two classes calls no code
    of the file's choosing: ``__new__``/``__init__`` store attributes, and
    neither class defines ``__setstate__``/``__setattr__``.
  * Contents, checked after loading and before anything else touches
    them: exactly the attributes the stdlib reads (plus, optionally, a
    sampled snapshot's ``sample_mean_bytes``: an int in [1; 2**40], and
    a thread snapshot's ``threads``, a tuple of (int, int, int, str)
    rows, with ``thread_tags``, a list of one int tag per trace);
    ``traceback_limit`` an int; traces a list of 4-tuples (domain:
    0..2**32-1, size: 0..2**64-1, frames: a non-empty tuple of
    (str, int >= 0) pairs, total_nframe: an int >= 0 or
    None).  A file that passes is one the stdlib's own code can process
    without tripping over a wrong type.
  * Damaged files (truncated, bit flips, not a pickle at all) end as
    ``UnsafeSnapshotError`` too: every exception the unpickler raises on
    bad bytes is turned into one, never leaked as a traceback.
  * Two unpicklers, one verdict.  The C accelerator keeps its memo in an
    array that a 6-byte LONG_BINPUT with a large index resizes to
    gigabytes (the fuzzer found a 2 GB allocation from a file of a few
    dozen bytes), so the bytes first go through the extension's opcode
    check (python/src/pickle_scan.c: allowed opcodes only, arguments
    inside the data, memo indices no larger than the stores before them),
    and only then through ``_pickle.Unpickler`` with the same
    ``find_class``.  Where the extension is not importable, pickle's
    pure-Python unpickler with a filtered dispatch table does the same
    work about 15 times slower (8 s against 0.5 s for a 1,000,000-trace
    file, 12.6 MB).  Both refuse the same files; tests/python/
    test_safeload.py runs every case through both.
Not defended against: a huge but well-formed file uses memory in
proportion to its size, as any loader would.

Threads: no shared state; each call has its own unpickler.
"""

import io
import pickle

__all__ = ["UnsafeSnapshotError", "load", "loads"]

_U32 = 2 ** 32
_U64 = 2 ** 64


class UnsafeSnapshotError(ValueError):
    """The file is not a snapshot this loader can vouch for."""


def _checked_reconstructor(cls, base, state):
    import tracemalloc
    if cls not in (tracemalloc.Snapshot, tracemalloc._Traces) or (
            base is not object) or state is not None:
        raise UnsafeSnapshotError(
            "copyreg._reconstructor(%r, %r, ...) is not a snapshot part"
            % (getattr(cls, "__qualname__", cls),
               getattr(base, "__qualname__", base)))
    return object.__new__(cls)


# The opcodes a snapshot file can need (every protocol 0-5 spelling of
# ints, str, None, tuples, lists, dicts, the memo, globals and object
# building).  Every other opcode is refused before it runs: bytes and
# bytearrays (BYTEARRAY8 allocates its declared length, up to 2**64,
# before reading a byte: found by the fuzzer), out-of-band buffers,
# extension codes, persistent ids, sets, floats, Python 2 strings.
_ALLOWED_OPCODES = frozenset(
    getattr(pickle, name)[0] for name in (
        "PROTO", "FRAME", "STOP", "MARK", "POP", "POP_MARK", "DUP",
        "NONE", "NEWTRUE", "NEWFALSE", "INT", "BININT", "BININT1",
        "BININT2", "LONG", "LONG1", "LONG4", "UNICODE", "SHORT_BINUNICODE",
        "BINUNICODE", "BINUNICODE8", "EMPTY_TUPLE", "TUPLE", "TUPLE1",
        "TUPLE2", "TUPLE3", "EMPTY_LIST", "LIST", "APPEND", "APPENDS",
        "EMPTY_DICT", "DICT", "SETITEM", "SETITEMS", "GET", "BINGET",
        "LONG_BINGET", "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "GLOBAL",
        "STACK_GLOBAL", "REDUCE", "NEWOBJ", "BUILD"))


def _refuse_opcode(unpickler):
    raise UnsafeSnapshotError("the file uses a pickle opcode a snapshot "
                              "never needs (refused before running it)")


class _Restricted:
    """find_class and persistent_load of both unpicklers."""

    def find_class(self, module, name):
        import tracemalloc
        if module == "tracemalloc" and name == "Snapshot":
            return tracemalloc.Snapshot
        if module == "tracemalloc" and name == "_Traces":
            return tracemalloc._Traces
        # protocols 0 and 1 write the Python 2 names (pickle's fix_imports)
        if module in ("copyreg", "copy_reg") and name == "_reconstructor":
            return _checked_reconstructor
        if module in ("builtins", "__builtin__") and name == "object":
            return object  # the reconstructor's base; calling it is inert
        named = repr("%s.%s" % (module, name))  # one line, whatever it holds
        if len(named) > 80:
            named = named[:76] + "...'"
        raise UnsafeSnapshotError(
            "the file names %s, which a snapshot never does (refused "
            "without calling it)" % named)

    def persistent_load(self, pid):
        raise UnsafeSnapshotError("persistent references are not allowed")


class _Unpickler(_Restricted, pickle._Unpickler):
    """The pure-Python unpickler, refusing opcodes through its table."""
    dispatch = {code: (func if code in _ALLOWED_OPCODES else _refuse_opcode)
                for code, func in pickle._Unpickler.dispatch.items()}


class _FastUnpickler(_Restricted, pickle.Unpickler):
    """The C unpickler, for bytes that passed _pickle_scan."""


def _scanner():
    """The extension's opcode check, or None (pure-Python fallback)."""
    try:
        from ._fasttracemalloc import _pickle_scan
    except ImportError:
        return None
    return _pickle_scan


def _is_int(value):
    return type(value) is int


def _check_threads(threads, tags):
    # per-thread attribution (fasttracemalloc._threads): plain data
    if type(tags) is not list or not all(
            _is_int(tag) and 0 <= tag < _U32 for tag in tags):
        raise UnsafeSnapshotError("thread_tags is not a list of tags")
    if type(threads) is not tuple:
        raise UnsafeSnapshotError("threads is not a tuple")
    for row in threads:
        if (type(row) is not tuple or len(row) != 4
                or not _is_int(row[0]) or not 0 <= row[0] < _U32
                or not _is_int(row[1]) or not _is_int(row[2])
                or type(row[3]) is not str):
            raise UnsafeSnapshotError("threads holds a row that is not "
                                      "(tag, ident, native_id, name)")


def _check(snapshot, progress=None):
    import tracemalloc
    if type(snapshot) is not tracemalloc.Snapshot:
        raise UnsafeSnapshotError("holds a %s, not a snapshot"
                                  % type(snapshot).__name__)
    attrs = getattr(snapshot, "__dict__", None)
    if type(attrs) is not dict or set(attrs) - {
            "sample_mean_bytes", "threads", "thread_tags"} != {
            "traces", "traceback_limit"}:
        raise UnsafeSnapshotError("the snapshot has attributes %s"
                                  % sorted(map(str, attrs or ())))
    if "sample_mean_bytes" in attrs and (
            not _is_int(attrs["sample_mean_bytes"])
            or not 1 <= attrs["sample_mean_bytes"] <= 1 << 40):
        raise UnsafeSnapshotError("sample_mean_bytes is not an int in "
                                  "[1; 2**40]")
    if not _is_int(attrs["traceback_limit"]) or not (
            0 <= attrs["traceback_limit"] < _U32):
        raise UnsafeSnapshotError("traceback_limit is not a small int")
    if ("threads" in attrs) != ("thread_tags" in attrs):
        raise UnsafeSnapshotError("threads and thread_tags come together")
    if "threads" in attrs:
        _check_threads(attrs["threads"], attrs["thread_tags"])
    traces = attrs["traces"]
    if type(traces) is not tracemalloc._Traces:
        raise UnsafeSnapshotError("snapshot.traces is a %s"
                                  % type(traces).__name__)
    inner = getattr(traces, "__dict__", None)
    if type(inner) is not dict or set(inner) != {"_traces"} or (
            type(inner["_traces"]) is not list):
        raise UnsafeSnapshotError("snapshot.traces does not hold a list")
    if "thread_tags" in attrs and (
            len(attrs["thread_tags"]) != len(inner["_traces"])):
        raise UnsafeSnapshotError("thread_tags does not have one tag per "
                                  "trace")
    seen = set()  # tracebacks are shared tuples: check each one once
    for i, trace in enumerate(inner["_traces"]):
        if progress is not None:
            progress.update(i)
        if type(trace) is not tuple or len(trace) != 4:
            raise UnsafeSnapshotError("trace %d is not a 4-tuple" % i)
        domain, size, frames, total = trace
        if not _is_int(domain) or not 0 <= domain < _U32:
            raise UnsafeSnapshotError("trace %d: bad domain" % i)
        if not _is_int(size) or not 0 <= size < _U64:
            raise UnsafeSnapshotError("trace %d: bad size" % i)
        if total is not None and (not _is_int(total) or total < 0):
            raise UnsafeSnapshotError("trace %d: bad total_nframe" % i)
        if type(frames) is not tuple or not frames:
            # Never empty in a real file: an allocation with no Python
            # frame gets ("<unknown>", 0), and the stdlib's grouping by
            # filename reads frames[0] (the fuzzer found an empty one).
            raise UnsafeSnapshotError("trace %d: frames are not a non-empty "
                                      "tuple" % i)
        if id(frames) in seen:
            continue
        for frame in frames:
            if (type(frame) is not tuple or len(frame) != 2
                    or type(frame[0]) is not str or not _is_int(frame[1])
                    or frame[1] < 0):
                raise UnsafeSnapshotError(
                    "trace %d: a frame is not a (filename, lineno) pair" % i)
        seen.add(id(frames))
    return snapshot


class _CountingReader(io.BytesIO):
    """The file's bytes, telling a Progress how far the unpickler read
    (it reads 64 KiB frames from protocol 4 on: one call per frame)."""

    def __init__(self, data, progress):
        super().__init__(data)
        self._progress = progress

    def read(self, *args):
        chunk = super().read(*args)
        self._progress.update(self.tell())
        return chunk

    def readline(self, *args):
        line = super().readline(*args)
        self._progress.update(self.tell())
        return line


def loads(data, progress=None, fast=True):
    """A plain ``tracemalloc.Snapshot`` from the bytes of a snapshot file.
    ``progress``: None, or a callable ``progress(step, total, unit)``
    returning a context manager with ``update(done)`` (``_progress.Progress``
    fits), told of the read and of the check.  ``fast=False`` uses the
    pure-Python unpickler even where the C check is available (tests)."""
    scan = _scanner() if fast else None
    if scan is not None:
        try:
            scan(data)
        except ValueError as exc:
            raise UnsafeSnapshotError("refused before unpickling (%s)" % exc)
        unpickler = _FastUnpickler
    else:
        unpickler = _Unpickler
    try:
        if progress is None:
            obj = unpickler(io.BytesIO(data)).load()
        else:
            with progress("reading", len(data), "bytes") as p:
                obj = unpickler(_CountingReader(data, p)).load()
    except UnsafeSnapshotError:
        raise
    except RecursionError:
        raise UnsafeSnapshotError("nested too deeply to be a snapshot")
    except MemoryError:
        raise UnsafeSnapshotError("does not fit in memory")
    except Exception as exc:  # any damage the unpickler reports
        raise UnsafeSnapshotError("not a snapshot file (%s: %s)"
                                  % (type(exc).__name__, exc))
    if progress is None:
        return _check(obj)
    traces = getattr(getattr(obj, "traces", None), "_traces", None)
    with progress("checking", len(traces) if type(traces) is list else None,
                  "traces") as p:
        return _check(obj, p)


def load(path, progress=None):
    """A plain ``tracemalloc.Snapshot`` from the snapshot file *path*
    (OSError if it cannot be read); ``progress`` as for loads()."""
    with open(path, "rb") as fp:
        data = fp.read()
    return loads(data, progress)
