"""Differential test: the builtin tracemalloc and fasttracemalloc, each in
its own fresh process, trace the same deterministic workloads
(diff_workloads.py) and must report identical statistics('traceback'):
the same tracebacks with the same sizes and counts, at nframe 1 and 25.
The harness (diff_harness.py) removes the tracers' and its own traces.
"""

import json
import os

import pytest

from conftest import HERE, needs_engine, run_python

import diff_harness

HARNESS = os.path.join(HERE, "diff_harness.py")


def traced(tracer, nframe, workload):
    proc = run_python(HARNESS, tracer, str(nframe), workload,
                      PYTHONHASHSEED="0")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def describe(stats):
    return ["%s size=%d count=%d" % (" <- ".join("%s:%s" % (os.path.basename(f), l)
                                               for f, l in reversed(frames)),
                                     size, count)
            for frames, size, count in stats]


@needs_engine
@pytest.mark.parametrize("nframe", [1, 25])
@pytest.mark.parametrize("workload", sorted(diff_harness.WORKLOADS))
def test_same_statistics_as_builtin(workload, nframe):
    expected = traced("builtin", nframe, workload)
    got = traced("fasttracemalloc", nframe, workload)
    assert expected["limit"] == got["limit"] == nframe
    # the workload's own allocations are there (the test can fail)
    assert any(frames[-1][0] == os.path.join(HERE, "diff_workloads.py")
               for frames, _, _ in expected["stats"])
    if got["stats"] != expected["stats"]:
        again = traced("builtin", nframe, workload)
        assert again["stats"] == expected["stats"], \
            "the builtin itself is not deterministic on this workload"
        only_builtin = [s for s in expected["stats"] if s not in got["stats"]]
        only_ours = [s for s in got["stats"] if s not in expected["stats"]]
        pytest.fail("statistics differ\nbuiltin only:\n  %s\n"
                    "fasttracemalloc only:\n  %s"
                    % ("\n  ".join(describe(only_builtin)),
                       "\n  ".join(describe(only_ours))))


@pytest.mark.parametrize("workload", sorted(diff_harness.WORKLOADS))
def test_workloads_are_deterministic_under_builtin(workload):
    """The reference itself must be reproducible, or the comparison above
    would be meaningless."""
    assert traced("builtin", 25, workload) == traced("builtin", 25, workload)
