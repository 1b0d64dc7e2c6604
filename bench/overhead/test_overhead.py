"""Tests of the overhead suite's own logic (not of any timing).

Owns: checks that the report orients ratios correctly, reads targets right,
flags differing checksums; that modes build the right command lines and
reject runs whose tracer does not match; that the helpers give exact stack
depths; and, end to end on tiny sizes, that a run in the wrong tracer is
recorded as an error rather than a number.  Run with the interpreter under
test (pytest needed):

    python -m pytest bench/overhead/test_overhead.py -q
"""

import importlib
import os
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import benchlib  # noqa: E402
import modes  # noqa: E402
import report  # noqa: E402
import runner  # noqa: E402


def fake_data(workload, metric_higher_is_better, samples_by_mode,
              checksums=None):
    ms = modes.all_modes()
    results = {}
    for key, samples in samples_by_mode.items():
        extras = [{"checksum": (checksums or {}).get(key, 1)}
                  for _ in samples]
        results[key] = {"samples": samples, "errors": [], "extras": extras}
    case = {"workload": workload, "name": "churn, 8 threads, 30-deep",
            "metric": "rate" if metric_higher_is_better else "seconds",
            "unit": "x", "higher_is_better": metric_higher_is_better,
            "results": results}
    return {"meta": {"date": "d", "host": "h", "size": "quick"},
            "modes": [vars(m) for m in ms], "cases": [case]}


def test_slowdown_of_durations_is_mode_over_untraced():
    data = fake_data("churn", False, {"untraced": [1.0, 2.0, 3.0],
                                      "builtin@1": [20.0, 40.0, 60.0]})
    view = report.View(data)
    case = view.cases[0]
    assert view.slowdown(case, "builtin@1") == pytest.approx(20.0)
    assert view.slowdown(case, "ftm@1") is None


def test_slowdown_of_throughputs_is_untraced_over_mode_and_kept_percent():
    data = fake_data("server", True, {"untraced": [1000.0],
                                      "builtin@1": [100.0]})
    view = report.View(data)
    case = view.cases[0]
    assert view.slowdown(case, "builtin@1") == pytest.approx(10.0)
    assert view.kept(case, "builtin@1") == pytest.approx(10.0)


def test_geomean():
    assert report.geomean([2.0, 8.0]) == pytest.approx(4.0)
    assert report.geomean([]) is None


def test_issue_cell_reads_targets_both_ways():
    assert "met" in report.issue_cell("churn8", "ftm@1", 1.2)
    missed = report.issue_cell("churn8", "ftm@1", 2.6)
    assert "missed" in missed and "2.00x off" in missed
    assert "met" in report.issue_cell("server", "ftm@1", 95.0)
    assert "missed" in report.issue_cell("server", "ftm@1", 45.0)
    assert report.issue_cell("churn8", "builtin@1", 10.0).startswith("≈14x")


def test_checksum_mismatch_is_flagged():
    same = report.View(fake_data("churn", False, {"untraced": [1.0],
                                                  "ftm@1": [1.1]}))
    assert not report.checksums_differ(same, same.cases[0])
    differ = report.View(fake_data("churn", False,
                                   {"untraced": [1.0], "ftm@1": [1.1]},
                                   checksums={"ftm@1": 2}))
    assert report.checksums_differ(differ, differ.cases[0])
    assert "checksums differ" in report.render(differ)


def test_render_shows_unavailable_modes_as_na():
    data = fake_data("churn", False, {"untraced": [1.0]})
    for m in data["modes"]:
        if m["kind"] == "ftm":
            m["available"], m["why"] = False, "n/a (not installed)"
    text = report.render(report.View(data))
    assert "n/a (not installed)" in text


def test_mode_commands():
    by_key = {m.key: m for m in modes.all_modes()}
    argv, env = by_key["builtin@25"].command("py", ["s.py", "a=1"], "/tmp")
    assert argv == ["py", "-X", "tracemalloc=25", "s.py", "a=1"]
    argv, env = by_key["ftm@1"].command("py", ["s.py"], "/tmp")
    assert argv == ["py", "s.py"] and env[modes.FTM_ENV] == "1"
    argv, env = by_key["memray"].command("py", ["-c", "pass"], "/tmp", 7)
    assert argv[:5] == ["py", "-m", "memray", "run",
                        "--trace-python-allocators"]
    assert argv[-2:] == ["-c", "pass"]


def test_child_env_scrubs_tracing_switches(monkeypatch):
    monkeypatch.setenv("PYTHONTRACEMALLOC", "5")
    monkeypatch.setenv(modes.FTM_ENV, "5")
    env = modes.child_env()
    assert "PYTHONTRACEMALLOC" not in env and modes.FTM_ENV not in env
    argv, env = modes.all_modes()[0].command("py", ["s.py"], "/tmp")
    assert modes.FTM_ENV not in env


def test_mode_check_rejects_the_wrong_tracer():
    by_key = {m.key: m for m in modes.all_modes()}
    off = {"builtin": False, "ftm": False, "memray": False}
    assert by_key["untraced"].check(off) is None
    assert by_key["builtin@1"].check(off) is not None
    assert by_key["builtin@1"].check(
        dict(off, builtin=True, builtin_nframe=25)) is not None
    assert by_key["ftm@25"].check(
        dict(off, ftm=True, ftm_nframe=25)) is None
    assert by_key["ftm@25"].check(
        dict(off, ftm=True, ftm_nframe=25, builtin=True,
             builtin_nframe=25)) is not None
    assert by_key["memray"].check(off) is not None


def test_at_depth_is_exact():
    import threading
    seen = []

    def probe():
        seen.append(benchlib.stack_depth())  # counts probe's frame and up

    def shallow():  # a new thread's stack is a few frames deep
        benchlib.at_depth(30, probe)
        benchlib.at_depth(2, probe)  # already deeper: called directly

    t = threading.Thread(target=shallow)
    t.start()
    t.join()
    assert seen[0] == 30
    assert 2 < seen[1] < 30


def test_parse_args():
    assert benchlib.parse_args(["iters=5"], iters=1, name="x") == {
        "iters": 5, "name": "x"}
    with pytest.raises(SystemExit):
        benchlib.parse_args(["bogus=1"], iters=1)


@pytest.mark.parametrize("name", importlib.import_module(
    "classic").PROGRAMS)
def test_classic_programs_are_deterministic(name):
    module = importlib.import_module("classic." + name)
    assert module.run(0.02) == module.run(0.02)


def test_a_run_in_the_wrong_tracer_is_an_error_not_a_number():
    size = dict(runner.SIZES["quick"], churn_iters=200, runs=1)
    cases = [c for c in runner.build_cases(size, ["churn"])
             if "1 thread" in c.name]
    honest = modes.Mode("builtin@1", "builtin", "builtin", 1)
    liar = modes.Mode("ftm@1", "claims ftm", "ftm", 1)
    liar.command = lambda py, target, tmp, serial=0: (  # runs untraced
        [py, *target], modes.child_env())
    with tempfile.TemporaryDirectory() as tmp:
        suite = runner.Suite(sys.executable, size, [honest, liar], cases,
                             tmp)
        suite.run()
    results = cases[0].results
    assert len(results["builtin@1"]["samples"]) == 1
    assert results["builtin@1"]["errors"] == []
    assert results["ftm@1"]["samples"] == []
    assert "invalid run" in results["ftm@1"]["errors"][0]


def test_failed_runs_show_as_failed_everywhere():
    data = fake_data("churn", False, {"untraced": [1.0]})
    data["cases"][0]["results"]["ftm@25"] = {
        "samples": [], "errors": ["killed by SIGSEGV: "], "extras": []}
    text = report.render(report.View(data))
    assert "FAILED: killed by SIGSEGV" in text       # the case's table
    assert "| FAILED |" in text                      # the summary
    assert "1 of 1 runs: killed by SIGSEGV" in text  # the failures list
