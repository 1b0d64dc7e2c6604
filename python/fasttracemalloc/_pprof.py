"""A snapshot as a pprof heap profile (gzipped profile.proto).

Owns: the mapping from a tracemalloc snapshot to pprof's ``Profile`` message
(github.com/google/pprof/proto/profile.proto) and its gzipped bytes.

The mapping:
  * sample types ``inuse_space``/``bytes`` then ``inuse_objects``/``count``
    (the default, index 0, is inuse_space); period type ``space``/``bytes``
    with period 1 (every block is recorded, nothing is sampled) unless the
    snapshot is sampled (below).  A
    snapshot holds live blocks only, so there are no ``alloc_*`` values;
  * one Sample per distinct traceback (``statistics('traceback')``): values
    are the summed sizes and the number of traces; location ids leaf first
    (the most recent frame first, as pprof wants);
  * one Function and one Location per distinct (filename, lineno): the
    function's name is ``"filename:lineno"`` (a snapshot has no function
    names), its filename the file, its start line and the Location's Line
    the line number.  The system name stays empty: pprof treats a function
    whose name equals its system name as not demangled yet and strips what
    looks like C++ template arguments, which mangles ``<frozen ...>``;
  * one Mapping (id 1) that declares functions, file names and line numbers
    present, so pprof never tries to symbolize; each Location's address is
    its id, inside the mapping's range;
  * string table with "" at index 0, strings in order of first use;
  * a comment naming the exporter and the snapshot's traceback limit.

A sampled snapshot (``sample_mean_bytes`` = P > 0) gives period P (type
still ``space``/``bytes``: pprof's convention for heap profiles sampled by
bytes) and values that are already scaled: inuse_space is the sum of the
estimated sizes, inuse_objects the estimated blocks (rounded), as Go's heap
profiles store them; the comment says the values are estimates.

Invariants: sum of inuse_space values == sum of the snapshot's trace sizes;
sum of inuse_objects == number of traces (exact snapshots; for a sampled
one, the rounded per-traceback block estimates).  The gzip header carries no time
or name, so equal snapshots give equal files.

Threads: builds local data only.
"""

import gzip

from ._protowire import field_bytes, field_packed, field_varint

__all__ = ["profile_message", "profile_gzip", "traceback_statistics"]


class _Strings:
    """The profile's string table: index of each string, "" at 0."""

    def __init__(self):
        self.table = [""]
        self.index = {"": 0}

    def __call__(self, text):
        i = self.index.get(text)
        if i is None:
            i = self.index[text] = len(self.table)
            self.table.append(text)
        return i


def _value_type(strings, type_name, unit):
    return (field_varint(1, strings(type_name))
            + field_varint(2, strings(unit)))


def profile_message(snapshot, comment=None):
    """The uncompressed Profile message bytes for *snapshot* (any
    tracemalloc.Snapshot, ours or the builtin's)."""
    strings = _Strings()
    out = []
    # Profile fields may come in any order; write sample types first.
    for type_name, unit in (("inuse_space", "bytes"),
                            ("inuse_objects", "count")):
        out.append(field_bytes(1, _value_type(strings, type_name, unit),
                               keep_empty=True))
    locations = {}          # (filename, lineno) -> location/function id
    mean = getattr(snapshot, "sample_mean_bytes", 0) or 0
    for stat in traceback_statistics(snapshot):
        ids = []
        # Traceback iterates oldest first; pprof wants the leaf first.
        for frame in reversed(list(stat.traceback)):
            key = (frame.filename, frame.lineno)
            loc = locations.get(key)
            if loc is None:
                loc = locations[key] = len(locations) + 1
            ids.append(loc)
        sample = (field_packed(1, ids)
                  + field_packed(2, [stat.size, stat.count]))
        out.append(field_bytes(2, sample, keep_empty=True))
    mapping = (field_varint(1, 1)                  # id
               + field_varint(2, 0)                # memory_start
               + field_varint(3, len(locations) + 1)   # memory_limit
               + field_varint(5, strings("python"))    # filename
               + field_varint(7, 1)                # has_functions
               + field_varint(8, 1)                # has_filenames
               + field_varint(9, 1))               # has_line_numbers
    out.append(field_bytes(3, mapping))
    functions = []
    for (filename, lineno), loc in locations.items():
        line = field_varint(1, loc) + field_varint(2, lineno)
        out.append(field_bytes(4, field_varint(1, loc)       # id
                               + field_varint(2, 1)          # mapping_id
                               + field_varint(3, loc)        # address
                               + field_bytes(4, line, keep_empty=True)))
        name = strings("%s:%s" % (filename, lineno))
        functions.append(field_bytes(5, field_varint(1, loc)     # id
                                     + field_varint(2, name)     # name
                                     + field_varint(4, strings(filename))
                                     + field_varint(5, lineno)))  # start_line
    out.extend(functions)
    if comment is None:
        from . import __version__
        comment = ("fasttracemalloc %s: tracemalloc snapshot, traceback "
                   "limit %s" % (__version__, snapshot.traceback_limit))
        if mean:
            comment += (", sampled: one sample per %d bytes on average, "
                        "values are estimates" % mean)
    comment_index = strings(comment)
    period_type = _value_type(strings, "space", "bytes")
    for text in strings.table:
        out.append(field_bytes(6, text, keep_empty=True))
    out.append(field_bytes(11, period_type, keep_empty=True))
    out.append(field_varint(12, mean or 1))          # period
    out.append(field_packed(13, [comment_index]))    # comment
    out.append(field_varint(14, strings.index["inuse_space"]))
    return b"".join(out)


def traceback_statistics(snapshot):
    """The snapshot folded by traceback, as the exports use it: objects
    with ``traceback`` (iterates oldest frame first), ``size`` and
    ``count`` (ints).  ``statistics('traceback')`` for an exact snapshot;
    for a sampled one, its estimates rounded to ints."""
    if getattr(snapshot, "sample_mean_bytes", 0):
        from ._sampling import sampled_statistics
        return [_Scaled(st) for st in
                sampled_statistics(snapshot, "traceback")]
    return snapshot.statistics("traceback")


class _Scaled:
    """A SampledStatistic as the integer values pprof stores."""

    def __init__(self, st):
        self.traceback = st.traceback
        self.size = int(round(st.size))
        self.count = int(round(st.count))


def profile_gzip(snapshot):
    """The gzipped Profile message, as ``go tool pprof`` reads it."""
    return gzip.compress(profile_message(snapshot), mtime=0)
