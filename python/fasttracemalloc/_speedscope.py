"""A snapshot as a speedscope profile (JSON).

Owns: the mapping from a tracemalloc snapshot to speedscope's file format
(https://www.speedscope.app/file-format-schema.json).

The mapping: one "sampled" profile with unit "bytes"; ``shared.frames`` has
one frame per distinct (filename, lineno), named ``"filename:lineno"`` with
``file`` and ``line`` set; one sample per distinct traceback
(``statistics('traceback')``), its frame indices oldest frame first (the
root first, as speedscope's sampled profiles want), weighted by the
traceback's summed size.  ``startValue`` is 0 and ``endValue`` the total
size, so the profile's span is the snapshot's traced memory.

Invariants: sum(weights) == sum of the snapshot's trace sizes; every frame
index is in range; len(samples) == len(weights).

Threads: builds local data only.
"""

import json

__all__ = ["SCHEMA", "profile_dict", "profile_json"]

SCHEMA = "https://www.speedscope.app/file-format-schema.json"


def profile_dict(snapshot, name="tracemalloc snapshot"):
    """The speedscope document for *snapshot* as a dict."""
    from . import __version__
    frames = []
    index = {}
    samples = []
    weights = []
    for stat in snapshot.statistics("traceback"):
        stack = []
        for frame in stat.traceback:          # oldest frame first
            key = (frame.filename, frame.lineno)
            i = index.get(key)
            if i is None:
                i = index[key] = len(frames)
                frames.append({"name": "%s:%s" % key,
                               "file": frame.filename,
                               "line": frame.lineno})
            stack.append(i)
        samples.append(stack)
        weights.append(stat.size)
    return {
        "$schema": SCHEMA,
        "shared": {"frames": frames},
        "profiles": [{
            "type": "sampled",
            "name": name,
            "unit": "bytes",
            "startValue": 0,
            "endValue": sum(weights),
            "samples": samples,
            "weights": weights,
        }],
        "name": name,
        "activeProfileIndex": 0,
        "exporter": "fasttracemalloc %s" % __version__,
    }


def profile_json(snapshot, name="tracemalloc snapshot"):
    """The speedscope document for *snapshot* as JSON text."""
    return json.dumps(profile_dict(snapshot, name), separators=(",", ":"))
