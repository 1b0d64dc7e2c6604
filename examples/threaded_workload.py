"""A bundled threaded workload for fasttracemalloc's README command:

    python -m fasttracemalloc run -n 25 examples/threaded_workload.py

Several threads each build records (dicts of lists and strings), serialise
them to JSON and parse them back, from inside a deep call stack, keeping a
part of what they build alive so the final snapshot has something to show.
Deterministic (fixed seeds, fixed sizes); takes a second or two untraced.

Options: --threads N (default 4), --records N per thread (default 8000),
--depth N extra stack depth (default 30).
"""

import argparse
import json
import random
import sys
import threading


def make_record(rng, i):
    name = "user-%06d" % i
    return {
        "id": i,
        "name": name,
        "email": name + "@example.invalid",
        "tags": ["tag%d" % rng.randrange(50) for _ in range(rng.randrange(1, 6))],
        "scores": [rng.random() for _ in range(8)],
        "note": "x" * rng.randrange(10, 200),
    }


def build_batch(rng, start, count):
    return [make_record(rng, start + i) for i in range(count)]


def round_trip(batch):
    text = json.dumps(batch)
    return json.loads(text)


def work(rng, records, keep):
    batch_size = 200
    for start in range(0, records, batch_size):
        batch = build_batch(rng, start, batch_size)
        parsed = round_trip(batch)
        # keep one batch in ten alive: the live memory the report shows
        if (start // batch_size) % 10 == 0:
            keep.append(parsed)
        index = {rec["name"]: rec for rec in batch}
        keep.append(len(index))


def deep(level, fn, *args):
    """Run fn(*args) under `level` extra Python frames."""
    if level <= 0:
        return fn(*args)
    return deep(level - 1, fn, *args)


# What the threads keep, alive until the process exits (so a snapshot taken
# at exit shows it).
RESULTS = {}


def worker(seed, records, depth, results):
    rng = random.Random(seed)
    keep = []
    deep(depth, work, rng, records, keep)
    results[seed] = keep


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--records", type=int, default=8000)
    parser.add_argument("--depth", type=int, default=30)
    args = parser.parse_args(argv)
    results = RESULTS
    threads = [threading.Thread(target=worker,
                                args=(seed, args.records, args.depth, results))
               for seed in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    kept = sum(len(v) for v in results.values())
    print("threaded_workload: %d threads x %d records done, %d objects kept"
          % (args.threads, args.records, kept))
    return 0


if __name__ == "__main__":
    sys.exit(main())
