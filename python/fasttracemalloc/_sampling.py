"""Sampled mode: starting it, asking for it, and reading its estimates.

Owns: ``start_sampled()``/``get_sampling()`` (the public entry points; the
engine side is python/src/sampled.c), the estimator arithmetic (the
inclusion probability q(s) = 1 - exp(-s/P), the scaled size
e(s) = s / q(s) and its inverse) and ``SampledStatistic``, the estimates
with standard errors that ``Snapshot.sampled_statistics()`` returns.

The model (see python/src/sampled.h): every allocation of s bytes is
sampled independently with probability q(s); a sampled block is stored
with size e(s).  For a group of live blocks (one line, one traceback):
  * size estimate   S = sum of e over its samples      (unbiased)
  * count estimate  N = sum of 1/q over its samples    (unbiased)
  * Var(S) is estimated by sum (1 - q) e**2, Var(N) by sum (1 - q) / q**2
    (Horvitz-Thompson with independent inclusions).
Blocks reported through the C API (PyTraceMalloc_Track, any domain but 0)
are not sampled: they are recorded with their exact size and count here
with q = 1 (a Track in domain 0 cannot be told apart and is read as a
sampled block).
A snapshot stores only e (an int), so q is recovered from it by inverting
e(s): exact for blocks above ~2 P, within one byte of s below that (e has
slope ~1/2 there), which can move a small block's count weight by up to
1/s (3% for a 33-byte block); sizes are unaffected.

Threads: pure functions and immutable results.
"""

import math

from . import _backend

__all__ = ["start_sampled", "get_sampling", "SampledStatistic",
           "DEFAULT_MEAN_BYTES"]

DEFAULT_MEAN_BYTES = 512 * 1024
MAX_MEAN_BYTES = 1 << 40


def start_sampled(nframe=1, *, mean_bytes=DEFAULT_MEAN_BYTES, seed=None,
                  restamp=False):
    """Start tracing a sample of Python memory allocations.

    Allocations are sampled by bytes as a Poisson process: on average one
    sample per *mean_bytes* bytes allocated, so a block of s bytes is
    traced with probability 1 - exp(-s/mean_bytes) (blocks of 10x the mean
    and more are nearly always seen) and stands for s/(1 - exp(-s/mean))
    bytes.  Snapshots, get_traced_memory() and statistics are then unbiased
    estimates in bytes.  *seed* (an int) makes the choice reproducible for
    a single thread.  Tracebacks keep at most *nframe* frames, as with
    start().  Does nothing if already tracing (as start() does).

    *restamp* (3.13+): give a sampled object that CPython hands out again
    from a free list the traceback of its new creation, as exact mode
    does.  Off by default: it makes CPython call the tracer on every
    object creation and destruction, which costs more than the rest of
    sampled mode; without it such a block keeps its first traceback (as
    on 3.11 and 3.12), its bytes are counted all the same."""
    if type(nframe) is bool or not isinstance(nframe, int):
        raise TypeError("nframe must be an int, not %s"
                        % type(nframe).__name__)
    if type(mean_bytes) is bool or not isinstance(mean_bytes, int):
        raise TypeError("mean_bytes must be an int, not %s"
                        % type(mean_bytes).__name__)
    if not 1 <= mean_bytes <= MAX_MEAN_BYTES:
        raise ValueError("mean_bytes must be in range [1; %d]"
                         % MAX_MEAN_BYTES)
    if seed is not None and (type(seed) is bool
                             or not isinstance(seed, int)):
        raise TypeError("seed must be None or an int, not %s"
                        % type(seed).__name__)
    start = getattr(_backend.engine, "_start_sampled", None)
    if start is None:
        raise RuntimeError("sampled mode needs the fasttracemalloc engine "
                           "(FASTTRACEMALLOC_BACKEND=builtin has none)")
    start(nframe, mean_bytes, seed, False, bool(restamp))


def get_sampling():
    """Return the mean bytes between samples while sampled tracing runs,
    else 0 (exact tracing, or not tracing)."""
    get = getattr(_backend.engine, "_get_sampling", None)
    return get() if get is not None else 0


def inclusion(size, mean):
    """q(s): the probability that a block of *size* bytes is sampled."""
    if size <= 0:
        return 0.0
    return -math.expm1(-size / mean)


def scaled(size, mean):
    """e(s) = s / q(s) as the engine rounds it (sampled.c)."""
    if size <= 0:
        return size
    if size // 64 >= mean:
        return size
    return int(size / inclusion(size, mean) + 0.5)


def unscale(estimate, mean):
    """The size s (a float) with e(s) == *estimate*: the inverse of
    ``scaled`` up to its rounding.  e is increasing, e(0+) = mean."""
    if estimate >= 64 * mean:
        return float(estimate)
    if estimate <= mean:
        return 0.5  # below e(1): the smallest block there is
    lo, hi = 0.0, float(estimate)
    for _ in range(64):
        mid = (lo + hi) / 2
        if mid / inclusion(mid, mean) < estimate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


class _Weights:
    """Per-trace (q, e) from stored sizes, cached per distinct size."""

    def __init__(self, mean):
        self.mean = mean
        self.cache = {}

    def __call__(self, stored):
        w = self.cache.get(stored)
        if w is None:
            if self.mean:
                q = inclusion(unscale(stored, self.mean), self.mean)
            else:
                q = 1.0
            w = self.cache[stored] = q
        return w


class SampledStatistic:
    """Estimates for one group of a sampled snapshot.

    size, count: estimated bytes and blocks of the live blocks in the
    group (floats for count); samples: traces behind them;
    size_stderr, count_stderr: their standard errors under the Poisson
    model (0 for an exact snapshot, where size and count are exact)."""

    __slots__ = ("traceback", "size", "count", "samples", "size_stderr",
                 "count_stderr")

    def __init__(self, traceback, size, count, samples, size_stderr,
                 count_stderr):
        self.traceback = traceback
        self.size = size
        self.count = count
        self.samples = samples
        self.size_stderr = size_stderr
        self.count_stderr = count_stderr

    def __repr__(self):
        return ("<SampledStatistic traceback=%r size=%r count=%r "
                "samples=%r size_stderr=%r count_stderr=%r>"
                % (self.traceback, self.size, self.count, self.samples,
                   self.size_stderr, self.count_stderr))

    def __str__(self):
        import tracemalloc
        fmt = tracemalloc._format_size
        return ("%s: size=%s (+- %s), count=%.0f (+- %.0f), samples=%d"
                % (self.traceback, fmt(self.size, False),
                   fmt(int(self.size_stderr), False), self.count,
                   self.count_stderr, self.samples))


def sampled_statistics(snapshot, key_type, cumulative=False):
    """The groups of ``snapshot.statistics(key_type, cumulative)`` as
    SampledStatistic estimates, biggest first (see the module doc)."""
    import tracemalloc
    mean = getattr(snapshot, "sample_mean_bytes", 0) or 0
    weight = _Weights(mean)
    if key_type not in ("traceback", "filename", "lineno"):
        raise ValueError("unknown key_type: %r" % (key_type,))
    if cumulative and key_type not in ("lineno", "filename"):
        raise ValueError("cumulative mode cannot by used "
                         "with key type %r" % key_type)
    acc = {}
    keys = {}
    for domain, size, frames, _total in snapshot.traces._traces:
        # Other domains are the C API's PyTraceMalloc_Track blocks (numpy:
        # 389047), which are recorded exactly even in sampled mode.
        q = weight(size) if domain == 0 else 1.0
        if cumulative:
            groups = {(f,) if key_type == "lineno" else ((f[0], 0),)
                      for f in frames}
        elif key_type == "traceback":
            groups = (frames,)
        elif key_type == "lineno":
            groups = (frames[:1],)
        else:
            groups = (((frames[0][0], 0),),)
        for g in groups:
            a = acc.get(g)
            if a is None:
                a = acc[g] = [0, 0.0, 0, 0.0, 0.0]
                keys[g] = tracemalloc.Traceback(g)
            a[0] += size
            a[1] += 1.0 / q
            a[2] += 1
            a[3] += (1.0 - q) * size * size
            a[4] += (1.0 - q) / (q * q)
    stats = [SampledStatistic(keys[g], a[0], a[1], a[2], math.sqrt(a[3]),
                              math.sqrt(a[4]))
             for g, a in acc.items()]
    stats.sort(reverse=True, key=lambda s: (s.size, s.count, s.traceback))
    return stats
