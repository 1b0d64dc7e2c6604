"""Workload 5: queries at scale -- 1M live traces.

Owns: building ``objects`` live small objects (bytes of 8..71 bytes: one
allocation, so one trace, each) from 64 call sites at 16 stack depths (about
a thousand distinct tracebacks at nframe 25, 64 distinct lines at nframe 1),
then timing ``take_snapshot()`` and ``Snapshot.statistics('lineno')`` (and
checking that the statistics count every trace of the snapshot once), and
measuring tracer memory: ``get_tracemalloc_memory()`` divided by the live
traces in the snapshot, and the process's RSS growth across the build (the
runner subtracts the untraced process's growth to get the tracer's share).

``engine`` selects the API: ``builtin`` -> the stdlib ``tracemalloc``;
``ftm`` -> the ``fasttracemalloc`` module (started by its start-up switch);
``none`` -> untraced: only the RSS growth is measured.  The process must
already be tracing (the runner starts it with the mode's switch); the
workload does not start or stop tracing itself.

    python wl_scale.py engine=builtin objects=1000000
"""

import gc
import sys
import time

import benchlib

SITES = 64
DEPTHS = 16


def rss_bytes():
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    import resource
    return resident_pages * resource.getpagesize()


def _make_site(index):
    # Each site is its own code object, so each has its own line/traceback.
    source = (f"def site_{index}(out, count, base):\n"
              f"    for i in range(count):\n"
              f"        out.append(bytes(8 + (base + i) % 64))\n")
    namespace = {}
    exec(compile(source, f"<bench-site-{index}>", "exec"), namespace)
    return namespace[f"site_{index}"]


def _nest(levels, fn, out, count, base):
    if levels > 0:
        return _nest(levels - 1, fn, out, count, base)
    return fn(out, count, base)


def build(objects):
    sites = [_make_site(i) for i in range(SITES)]
    out = []
    chunks = SITES * DEPTHS
    per_chunk = max(1, objects // chunks)
    made = 0
    k = 0
    while made < objects:
        count = min(per_chunk, objects - made)
        _nest(k % DEPTHS, sites[k % SITES], out, count, made)
        made += count
        k += 1
    return out


def main():
    args = benchlib.parse_args(sys.argv[1:], engine="none", objects=1000000)
    engine = args["engine"]
    if engine == "builtin":
        import tracemalloc as api
    elif engine == "ftm":
        import fasttracemalloc as api
    elif engine == "none":
        api = None
    else:
        raise SystemExit(f"engine must be builtin, ftm or none, not {engine!r}")
    if api is not None and not api.is_tracing():
        raise SystemExit(f"{engine}: the process is not tracing; start it "
                         f"with the mode's switch")

    gc.collect()
    gc.disable()  # no collection pauses in the timed regions
    rss0 = rss_bytes()
    mem0 = api.get_tracemalloc_memory() if api else 0
    t0 = time.perf_counter()
    keep = build(args["objects"])
    build_seconds = time.perf_counter() - t0
    rss1 = rss_bytes()
    result = {"objects": len(keep), "build_seconds": build_seconds,
              "rss_growth": rss1 - rss0}
    if api is not None:
        mem1 = api.get_tracemalloc_memory()
        t0 = time.perf_counter()
        snapshot = api.take_snapshot()
        snapshot_seconds = time.perf_counter() - t0
        live = len(snapshot.traces)
        t0 = time.perf_counter()
        stats = snapshot.statistics("lineno")
        statistics_seconds = time.perf_counter() - t0
        counted = sum(stat.count for stat in stats)
        if counted != live:
            # statistics() must account for every trace exactly once
            raise SystemExit(f"statistics('lineno') counts {counted} traces, "
                             f"the snapshot holds {live}")
        result.update(
            snapshot_type=f"{type(snapshot).__module__}."
                          f"{type(snapshot).__qualname__}",
            snapshot_seconds=snapshot_seconds,
            statistics_seconds=statistics_seconds,
            seconds=snapshot_seconds + statistics_seconds,
            live_traces=live,
            statistics_entries=len(stats),
            tracer_memory=mem1,
            tracer_memory_growth=mem1 - mem0,
            bytes_per_trace=mem1 / live if live else None,
            nframe=api.get_traceback_limit())
    benchlib.emit(**result)
    del keep


if __name__ == "__main__":
    main()
