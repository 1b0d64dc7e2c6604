"""Reports on saved snapshots: text differences and exports.

Owns: the public Python entry points behind ``python -m fasttracemalloc
compare`` and ``export``:

  * ``load_snapshot(path)`` -- a snapshot file (ours or the builtin's
    ``Snapshot.dump()``) as a fasttracemalloc ``Snapshot``; raises
    ``SnapshotFileError`` with a one-line reason;
  * ``compare_text(old, new, top=10, key_type='lineno', cumulative=False)``
    -- the stdlib docs' "compute differences" report
    (``new.compare_to(old, ...)`` printed as StatisticDiff lines);
  * ``to_pprof(snapshot, path)`` / ``to_speedscope(snapshot, path)`` -- write
    a gzipped pprof profile (see ``_pprof``) or a speedscope JSON file (see
    ``_speedscope``);
  * ``to_flamegraph(snapshot, path, old=None)`` -- write a self-contained
    HTML flame graph of a snapshot, or of the change from *old* to it (see
    ``_flamegraph``).

Every function takes a snapshot object (any ``tracemalloc.Snapshot``) or a
path to a snapshot file.  Snapshot files are pickles; paths given here are
read with the safe loader (``_safeload``): a file from anyone gives a
snapshot or ``SnapshotFileError``, never runs code.  ``Snapshot.load`` (ours
and the stdlib's) unpickles: trusted files only.

``compare_text`` leaves out the same start-up noise as ``run``/``report``
(importlib's and runpy's frozen frames, ``<unknown>``); the exports keep
every trace, so their totals are the snapshot's.

Threads: no shared state; a call reads its snapshots only.
"""

import os

__all__ = ["SnapshotFileError", "load_snapshot", "noise_filters",
           "compare_text", "to_pprof", "to_speedscope", "to_flamegraph"]


class SnapshotFileError(Exception):
    """A snapshot file cannot be read or does not hold a snapshot."""


def noise_filters():
    """Filters that hide the interpreter's start-up work (importlib's and
    runpy's frozen modules, frames without a file) from the text reports."""
    import tracemalloc
    return (
        tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
        # runpy compiling the target (the interpreter's own start-up work
        # under plain `python script.py`, where it is not attributed to a
        # Python line); it stays in the snapshot file
        tracemalloc.Filter(False, "<frozen runpy>"),
        tracemalloc.Filter(False, "<unknown>"),
    )


def load_snapshot(path, progress=False):
    """Load a snapshot file written by ``run`` or by ``Snapshot.dump()`` of
    either module, safely: the file may come from anyone (``_safeload``
    refuses every pickle that names anything but tracemalloc's own classes,
    and checks the contents), unlike ``Snapshot.load``, which unpickles.
    ``progress=True`` shows the read's progress on stderr if it is a
    terminal and the read takes more than a second (``_progress``)."""
    from . import _safeload
    from ._snapshot import Snapshot
    steps = None
    if progress:
        from ._progress import Progress
        name = os.path.basename(str(path))

        def steps(step, total, unit):
            return Progress("%s %s" % (step, name), total, unit)
    try:
        plain = _safeload.load(path, steps)
    except OSError as exc:
        raise SnapshotFileError("cannot read %r: %s" % (str(path), exc))
    except _safeload.UnsafeSnapshotError as exc:
        why = str(exc)
        if why.startswith("holds "):  # "'x' holds a list, not a snapshot"
            raise SnapshotFileError("%r %s" % (str(path), why))
        raise SnapshotFileError("%r is not a snapshot: %s" % (str(path), why))
    plain.__class__ = Snapshot  # the fast one, same attributes
    return plain


def _snapshot(obj):
    if isinstance(obj, (str, bytes, os.PathLike)):
        return load_snapshot(obj)
    return obj


def compare_text(old, new, top=10, key_type="lineno", cumulative=False):
    """The stdlib docs' "compute differences" report of *new* against *old*
    (snapshots or snapshot files), as text: a header, the *top* largest
    differences as ``str(StatisticDiff)`` lines (with the whole traceback
    under each for key_type 'traceback'), how many others, and the totals."""
    import tracemalloc
    old = _snapshot(old).filter_traces(noise_filters())
    new = _snapshot(new).filter_traces(noise_filters())
    diffs = new.compare_to(old, key_type, cumulative)
    fmt = tracemalloc._format_size
    lines = ["[ Top %d differences ]" % top]
    for diff in diffs[:top]:
        lines.append(str(diff))
        if key_type == "traceback":
            lines.extend(diff.traceback.format())
    rest = diffs[top:]
    if rest:
        lines.append("%d other: size=%s (%s), count=%d (%+d)" % (
            len(rest), fmt(sum(d.size for d in rest), False),
            fmt(sum(d.size_diff for d in rest), True),
            sum(d.count for d in rest), sum(d.count_diff for d in rest)))
    # cumulative statistics count a block once per frame: total by file
    totals = new.compare_to(old, "filename") if cumulative else diffs
    new_size = sum(d.size for d in totals)
    size_diff = sum(d.size_diff for d in totals)
    new_count = sum(d.count for d in totals)
    count_diff = sum(d.count_diff for d in totals)
    lines.append("Total: size=%s (%s), count=%d (%+d)" % (
        fmt(new_size, False), fmt(size_diff, True), new_count, count_diff))
    return "\n".join(lines) + "\n"


def _write(path, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as f:
        f.write(data)


def to_pprof(snapshot, path):
    """Write *snapshot* (object or file) to *path* as a gzipped pprof
    profile (sample types inuse_space/bytes, inuse_objects/count)."""
    from ._pprof import profile_gzip
    _write(path, profile_gzip(_snapshot(snapshot)))


def to_speedscope(snapshot, path, name=None):
    """Write *snapshot* (object or file) to *path* as speedscope JSON (one
    sampled profile, unit bytes)."""
    from ._speedscope import profile_json
    if name is None:
        name = (os.path.basename(os.fspath(snapshot))
                if isinstance(snapshot, (str, os.PathLike))
                else "tracemalloc snapshot")
    _write(path, profile_json(_snapshot(snapshot), name))


def to_flamegraph(snapshot, path, old=None, title=None,
                  max_nodes=None, min_percent=0.0):
    """Write *snapshot* (object or file) to *path* as one self-contained
    HTML flame graph; with *old* (object or file), a diff view of the
    change from *old* to *snapshot* (widths by *snapshot*'s sizes, growth
    red, shrink blue).  At most *max_nodes* call-path nodes (default
    20,000) and none under *min_percent* of the total are kept, the rest
    merged into "(other)" nodes.  Returns the data drawn (a dict)."""
    from . import _flamegraph
    if max_nodes is None:
        max_nodes = _flamegraph.DEFAULT_MAX_NODES

    def name(obj):
        return (os.path.basename(os.fsdecode(obj))
                if isinstance(obj, (str, bytes, os.PathLike)) else None)
    if old is None:
        data = _flamegraph.tree(
            _snapshot(snapshot), max_nodes, min_percent,
            title=title or name(snapshot) or "tracemalloc snapshot")
    else:
        if title is None and name(snapshot) and name(old):
            title = "%s -> %s" % (name(old), name(snapshot))
        data = _flamegraph.diff_tree(
            _snapshot(old), _snapshot(snapshot), max_nodes, min_percent,
            title=title or "tracemalloc snapshots compared")
    _write(path, _flamegraph.page(data).encode("utf-8"))
    return data
