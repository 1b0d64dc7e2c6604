"""A faster stdlib Snapshot: same data, same answers, grouped by identity.

Owns: ``Snapshot``, a subclass of ``tracemalloc.Snapshot`` holding traces in
the stdlib's internal format (a list of ``(domain, size, traceback,
total_nframe)``, traceback most recent frame first), and the
``take_snapshot`` functions that build it.

Why it is faster: the stdlib's ``_group_by`` hashes every trace's traceback
tuple (a tuple hash is recomputed on every lookup) and runs Python code per
trace.  Within one ``_get_traces()`` answer equal tracebacks are the *same*
tuple object, so this class first folds traces by ``id(traceback)`` (cheap
int keys; by value when the limit is <= 3 frames, whose hash costs less than
an id), then runs the stdlib's own grouping rules once per distinct
traceback.  Distinct tuple objects that happen to be equal (user-built or
unpickled snapshots) still land in the same Statistic, because the second
step keys by equality exactly as the stdlib does.  Filters that are exactly
``tracemalloc.Filter``/``DomainFilter`` depend only on (domain, traceback),
so ``filter_traces`` evaluates them once per distinct pair; any other
``BaseFilter`` subclass is evaluated per trace, as the stdlib does.

Invariants:
  * every public answer (statistics, compare_to, filter_traces, traces,
    dump) equals the stdlib's for the same traces, element by element and
    in the same order;
  * ``dump()`` pickles as a plain ``tracemalloc.Snapshot`` so the builtin's
    ``Snapshot.load()`` reads it without fasttracemalloc installed, and
    ``Snapshot.load()`` reads the builtin's dumps.
Threads: a Snapshot is immutable data; like the stdlib's it may be read
from any thread (no shared mutable state here).
"""

import copyreg
from collections import defaultdict
from operator import itemgetter
import tracemalloc as _tm
from collections.abc import Iterable

from . import _backend

__all__ = ["Snapshot", "take_snapshot_from"]

_NOT_TRACING = ("the tracemalloc module must be tracing memory "
                "allocations to take a snapshot")


# Up to this many frames, hashing a traceback tuple costs less than the
# int that id() allocates (which is itself traced while tracing is on).
_HASH_KEY_MAX_FRAMES = 3


def _group_sizes(traces, traceback_limit):
    """Return [(traceback, [size, ...])] per distinct traceback, in order of
    first appearance.

    Short tracebacks are keyed by value (tuple hash), long ones by identity
    (equal tracebacks are one object within one _get_traces() answer); the
    caller's second step keys by equality either way, so both give the
    stdlib's answer.  Unpacks every trace like the stdlib does, so malformed
    traces raise the same errors.  Appending to per-group lists (summed in
    C at the end) allocates almost nothing per trace."""
    groups = defaultdict(list)
    by_value = (isinstance(traceback_limit, int)
                and traceback_limit <= _HASH_KEY_MAX_FRAMES)
    if by_value:
        for _domain, size, traceback, _total in traces:
            groups[traceback].append(size)
        return list(groups.items())
    for _domain, size, traceback, _total in traces:
        groups[id(traceback)].append(size)
    if not groups:
        return []
    tracebacks = list(map(itemgetter(2), traces))
    objs = dict(zip(map(id, tracebacks), tracebacks))
    return [(objs[key], sizes) for key, sizes in groups.items()]


def _fold(traces, traceback_limit):
    """Return [(traceback, size_sum, count)] per distinct traceback, in
    order of first appearance, or None if the sums are not plain ints.

    The per-trace scratch (about 16 bytes a trace, which the stdlib's
    algorithm does not need) is built untraced, so statistics() does not
    raise the traced peak beyond the builtin's; the sums and counts, which
    end up in the caller's Statistic objects, are made traced, as the
    stdlib's are."""
    _backend.suspend()
    try:
        items = _group_sizes(traces, traceback_limit)
    finally:
        _backend.resume()
    folded = []
    for traceback, sizes in items:
        total = sum(sizes)
        if type(total) is not int:
            # non-int sizes (hand-made snapshots): summation order could
            # matter; let the stdlib's algorithm answer (or raise).
            return None
        folded.append((traceback, total, len(sizes)))
    return folded


class Snapshot(_tm.Snapshot):
    """Snapshot of traces of memory blocks allocated by Python.

    A ``tracemalloc.Snapshot`` whose statistics(), compare_to() and
    filter_traces() are computed per distinct traceback instead of per
    trace.  Results are identical to the stdlib's.

    ``sample_mean_bytes`` is 0 for an exact snapshot.  A snapshot taken in
    sampled mode (``start_sampled()``) holds the sampling period there:
    its trace sizes are then estimates (each sampled block stands for
    s / (1 - exp(-s/P)) bytes), so ``statistics()`` sizes are unbiased
    estimates in bytes while ``Statistic.count`` counts samples;
    ``sampled_statistics()`` gives the estimated block counts and the
    standard errors.
    """

    sample_mean_bytes = 0

    def sampled_statistics(self, key_type, cumulative=False):
        """Like statistics(), but as ``SampledStatistic`` estimates: size
        and count (estimated blocks) with their standard errors under the
        Poisson model, and the number of samples behind them.  For an
        exact snapshot: the exact numbers, errors 0."""
        from ._sampling import sampled_statistics
        _backend.suspend()
        try:
            return sampled_statistics(self, key_type, cumulative)
        finally:
            _backend.resume()

    def _same_kind(self, new):
        """*new* (derived from this snapshot) with this one's period."""
        if self.sample_mean_bytes:
            new.sample_mean_bytes = self.sample_mean_bytes
        return new

    def _group_by(self, key_type, cumulative):
        if key_type not in ('traceback', 'filename', 'lineno'):
            raise ValueError("unknown key_type: %r" % (key_type,))
        if cumulative and key_type not in ('lineno', 'filename'):
            raise ValueError("cumulative mode cannot by used "
                             "with key type %r" % key_type)
        Traceback = _tm.Traceback
        Statistic = _tm.Statistic
        stats = {}
        keys = {}
        try:
            groups = _fold(self.traces._traces, self.traceback_limit)
        except Exception:
            groups = None
        if groups is None:
            # malformed traces: the stdlib's code raises its own error
            return super()._group_by(key_type, cumulative)
        if not cumulative:
            for trace_traceback, size, count in groups:
                try:
                    traceback = keys[trace_traceback]
                except KeyError:
                    if key_type == 'traceback':
                        frames = trace_traceback
                    elif key_type == 'lineno':
                        frames = trace_traceback[:1]
                    else:
                        frames = ((trace_traceback[0][0], 0),)
                    traceback = Traceback(frames)
                    keys[trace_traceback] = traceback
                stat = stats.get(traceback)
                if stat is None:
                    stats[traceback] = Statistic(traceback, size, count)
                else:
                    stat.size += size
                    stat.count += count
        else:
            for trace_traceback, size, count in groups:
                for frame in trace_traceback:
                    try:
                        traceback = keys[frame]
                    except KeyError:
                        if key_type == 'lineno':
                            frames = (frame,)
                        else:
                            frames = ((frame[0], 0),)
                        traceback = Traceback(frames)
                        keys[frame] = traceback
                    stat = stats.get(traceback)
                    if stat is None:
                        stats[traceback] = Statistic(traceback, size, count)
                    else:
                        stat.size += size
                        stat.count += count
        return stats

    def filter_traces(self, filters):
        """
        Create a new Snapshot instance with a filtered traces sequence, filters
        is a list of Filter or DomainFilter instances.  If filters is an empty
        list, return a new Snapshot instance with a copy of the traces.
        """
        if not isinstance(filters, Iterable):
            raise TypeError("filters must be a list of filters, not %s"
                            % type(filters).__name__)
        traces = self.traces._traces
        if not filters:
            return self._same_kind(Snapshot(traces.copy(),
                                            self.traceback_limit))
        include_filters = []
        exclude_filters = []
        pure = True
        for trace_filter in filters:
            if trace_filter.inclusive:
                include_filters.append(trace_filter)
            else:
                exclude_filters.append(trace_filter)
            if type(trace_filter) not in (_tm.Filter, _tm.DomainFilter):
                pure = False
        keep = self._filter_trace
        if not pure:
            new_traces = [trace for trace in traces
                          if keep(include_filters, exclude_filters, trace)]
            return self._same_kind(Snapshot(new_traces,
                                            self.traceback_limit))
        # Filter/DomainFilter._match reads only the domain and traceback.
        memo = {}
        new_traces = []
        append = new_traces.append
        for trace in traces:
            key = (trace[0], id(trace[2]))
            verdict = memo.get(key)
            if verdict is None:
                verdict = memo[key] = keep(include_filters, exclude_filters,
                                           trace)
            if verdict:
                append(trace)
        return self._same_kind(Snapshot(new_traces, self.traceback_limit))

    @staticmethod
    def load(filename):
        """
        Load a snapshot from a file (written by this class or by the stdlib).
        """
        snapshot = _tm.Snapshot.load(filename)
        if type(snapshot) is _tm.Snapshot:
            snapshot.__class__ = Snapshot
        return snapshot

    def _as_stdlib(self):
        """A plain tracemalloc.Snapshot sharing this one's attributes."""
        plain = _tm.Snapshot.__new__(_tm.Snapshot)
        plain.__dict__.update(self.__dict__)
        return plain

    def dump(self, filename):
        """
        Write the snapshot into a file, in exactly the format the stdlib's
        Snapshot.dump() writes (a pickled plain tracemalloc.Snapshot).
        A sampled snapshot's ``sample_mean_bytes`` travels as one more
        instance attribute: the builtin's Snapshot.load() reads the file
        (its statistics are the estimates in bytes; the attribute is kept
        on the plain object and ignored) and ours gets the flag back.
        """
        _tm.Snapshot.dump(self._as_stdlib(), filename)

    def __copy__(self):
        new = Snapshot.__new__(Snapshot)
        new.__dict__.update(self.__dict__)
        return new

    def __reduce_ex__(self, protocol):
        # Any other pickling (pickle.dumps, copy, multiprocessing) also
        # rebuilds a plain tracemalloc.Snapshot, so the bytes load where
        # fasttracemalloc is not installed.
        return (copyreg._reconstructor, (_tm.Snapshot, object, None),
                dict(self.__dict__))


def take_snapshot_from(module):
    """take_snapshot() reading the engine functions from *module* (the
    engine itself, or the stdlib ``tracemalloc`` module once installed, so
    that code patching ``tracemalloc._get_traces`` still works)."""
    if not module.is_tracing():
        raise RuntimeError(_NOT_TRACING)
    get_sampling = getattr(_backend.engine, "_get_sampling", None)
    mean = get_sampling() if get_sampling is not None else 0
    traces = module._get_traces()
    traceback_limit = module.get_traceback_limit()
    snapshot = Snapshot(traces, traceback_limit)
    if mean:
        # an instance attribute only in sampled mode: exact snapshots
        # pickle exactly as before (see dump())
        snapshot.sample_mean_bytes = mean
    return snapshot
