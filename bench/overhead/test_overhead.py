"""Tests of the overhead suite's own logic (not of any timing).

Owns: checks that the report orients ratios correctly, reads targets right,
flags differing checksums; that modes build the right command lines and
reject runs whose tracer does not match; that the helpers give exact stack
depths; the pyperformance plumbing (pyperf JSON, the worker launcher per
mode, the per-worker tracer check) and the served workloads' parsing (wrk,
/proc CPU times); and, end to end on tiny sizes, that a run in the wrong
tracer is recorded as an error rather than a number (for pyperf too, when
an interpreter with pyperf is at hand).  Run with the interpreter under
test (pytest needed):

    python -m pytest bench/overhead/test_overhead.py -q
"""

import argparse
import importlib
import os
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import benchlib  # noqa: E402
import modes  # noqa: E402
import pyperf_suite  # noqa: E402
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
    argv, env = by_key[modes.SAMPLED_KEY].command("py", ["s.py"], "/tmp")
    assert argv == ["py", "s.py"]
    assert env[modes.FTM_ENV] == "25,sample=512k"
    odd = modes.Mode("s", "s", "ftm-sampled", 3, sample=1000)
    assert odd.switch_value() == "3,sample=1000"
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


def test_mode_check_tells_sampled_from_exact_tracing():
    by_key = {m.key: m for m in modes.all_modes()}
    sampled = by_key[modes.SAMPLED_KEY]
    assert (sampled.kind, sampled.nframe, sampled.sample) == \
        ("ftm-sampled", 25, 524288)
    off = {"builtin": False, "ftm": False, "memray": False}
    exact25 = dict(off, ftm=True, ftm_nframe=25, ftm_sampling=0)
    sampled25 = dict(exact25, ftm_sampling=524288)
    assert sampled.check(sampled25) is None
    assert "sampling 0, expected 524288" in sampled.check(exact25)
    assert sampled.check(dict(sampled25, ftm_sampling=4096)) is not None
    assert sampled.check(dict(sampled25, ftm_nframe=1)) is not None
    assert sampled.check(off) is not None
    # a report that does not say whether it samples is no sampled run ...
    unsaid = {k: v for k, v in sampled25.items() if k != "ftm_sampling"}
    assert sampled.check(unsaid) is not None
    # ... and the exact modes reject a sampling tracer
    assert by_key["ftm@25"].check(exact25) is None
    assert "expected 0" in by_key["ftm@25"].check(sampled25)


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


# -- pyperformance through pyperf (issue 12) ---------------------------------

def test_pyperf_json_single_benchmark_named_at_top_level():
    data = {"metadata": {"name": "chaos", "loops": 4},
            "benchmarks": [{"runs": [{"warmups": [[1, 0.5]]},  # calibration
                                     {"values": [0.1, 0.3]},
                                     {"values": [0.2]}]}]}
    values, workers = pyperf_suite.parse_suite(data)
    assert values == {"chaos": [0.1, 0.3, 0.2]}
    assert workers == 3  # the calibration run was a worker process too
    sample, medians = pyperf_suite.summarize(values)
    assert sample == pytest.approx(0.2) and medians == {"chaos": 0.2}


def test_pyperf_json_several_benchmarks_geomean():
    data = {"metadata": {},
            "benchmarks": [{"metadata": {"name": "a"},
                            "runs": [{"values": [2.0]}]},
                           {"metadata": {"name": "b"},
                            "runs": [{"values": [8.0]}]}]}
    values, workers = pyperf_suite.parse_suite(data)
    assert workers == 2
    sample, medians = pyperf_suite.summarize(values)
    assert sample == pytest.approx(4.0) and medians == {"a": 2.0, "b": 8.0}
    with pytest.raises(ValueError):
        pyperf_suite.parse_suite({"benchmarks": [{"runs": [{}]}],
                                  "metadata": {"name": "x"}})


def launcher(key):
    mode = {m.key: m for m in modes.all_modes()}[key]
    return pyperf_suite.launcher_text(mode, "/v/bin/python", "/tmp/t", 3,
                                      "/tmp/t/w/workers")


def test_pyperf_launcher_puts_the_workers_in_the_mode():
    text = launcher("builtin@25")
    assert "exec /v/bin/python -X tracemalloc=25 \"$@\"" in text
    assert "unset FASTTRACEMALLOC" in text
    text = launcher("ftm@1")
    assert "export FASTTRACEMALLOC=1" in text
    assert "unset PYTHONTRACEMALLOC" in text
    assert "exec /v/bin/python \"$@\"" in text
    text = launcher("memray")
    assert "-m memray run --trace-python-allocators" in text
    text = launcher(modes.SAMPLED_KEY)
    assert "export FASTTRACEMALLOC=25,sample=512k" in text
    assert "exec /v/bin/python \"$@\"" in text
    text = launcher("untraced")
    assert "unset FASTTRACEMALLOC" in text and "-X" not in text
    for key in ("untraced", "ftm@25", "memray"):
        text = launcher(key)
        assert f"export {pyperf_suite.PROBE_ENV}=/tmp/t/w/workers" in text
        assert "export PYTHONHASHSEED=0" in text
        assert (f"export PYTHONPATH={pyperf_suite.PROBE_DIR}"
                "${PYTHONPATH:+:$PYTHONPATH}") in text


def test_pyperf_workers_are_checked_one_by_one():
    ftm25 = {m.key: m for m in modes.all_modes()}["ftm@25"]
    good = {"pid": 1, "tracer": {"builtin": False, "ftm": True,
                                 "ftm_nframe": 25, "memray": False}}
    untraced = {"pid": 2, "tracer": {"builtin": False, "ftm": False,
                                     "memray": False}}
    assert pyperf_suite.check_workers(ftm25, [good, good], 2) is None
    assert "1 reported" in pyperf_suite.check_workers(ftm25, [good], 2)
    bad = pyperf_suite.check_workers(ftm25, [good, untraced], 2)
    assert "worker pid 2" in bad and "not tracing" in bad


def test_pyperf_failure_names_the_workers_error():
    stderr = ("Traceback (most recent call last):\n"
              "RuntimeError: Unexpected C accelerators for pickle\n"
              "Traceback (most recent call last):\n"
              "RuntimeError: /x/python-worker failed with exit code 1\n")
    text = pyperf_suite.failure_text(stderr)
    assert text.startswith("RuntimeError: Unexpected C accelerators")
    assert "failed with exit code 1" in text
    assert pyperf_suite.failure_text("just this\n") == "just this"


def test_new_cases_are_registered_for_only_and_quick():
    for name in ("pyperformance", "flask", "httpserver200"):
        assert name in runner.WORKLOADS
    size = runner.SIZES["quick"]
    cases = runner.build_cases(size, ["pyperformance", "flask",
                                      "httpserver200"])
    names = [c.name for c in cases if c.workload == "pyperformance"]
    assert names == list(size["pyperf_benchmarks"])
    assert set(names) <= set(pyperf_suite.ISSUE12)
    assert set(runner.SIZES["full"]["pyperf_benchmarks"]) == set(
        pyperf_suite.ISSUE12) and len(pyperf_suite.ISSUE12) == 20
    web = [c for c in cases if c.workload in runner.SERVED]
    assert [c.options["connections"] for c in web] == [16, 16]
    assert "rows=200" in web[1].args(None)


def test_wrk_output_and_proc_stat_parsing():
    out = ("Running 1s test @ http://127.0.0.1:1/rows\n"
           "  1098 requests in 2.10s, 47.80MB read\n"
           "  Socket errors: connect 0, read 2, write 0, timeout 0\n"
           "Requests/sec:    522.11\n")
    assert runner.parse_wrk(out) == {
        "rate": 522.11, "requests": 1098,
        "socket_errors": "connect 0, read 2, write 0, timeout 0"}
    tick = runner.CLOCK_TICKS
    line = (f"42 (we (ird) name) S 1 2 3 4 5 6 7 8 9 10 {3 * tick} "
            f"{tick} 0 0 20 0")
    assert runner.stat_cpu_seconds(line) == pytest.approx(4.0)
    assert runner.parse_cpus("0,2-3") == {0, 2, 3}
    split = runner.cpu_split(
        ({10: 1.0, 11: 2.0}, 5.0, 1.0, 100.0, (50.0, 1.0)),
        ({10: 1.5, 11: 2.5}, 7.0, 1.25, 102.0, (53.0, 1.5)), {11})
    assert split == {"server_s": 2.0, "tracer_threads_s": 0.5,
                     "tracer_threads": 1, "wrk_s": 0.25, "others_s": 0.75,
                     "steal_s": 0.5, "wall_s": 2.0}


def pyperf_data(samples_by_case):
    ms = modes.all_modes()
    cases = []
    for name, by_mode in samples_by_case.items():
        results = {k: {"samples": v, "errors": [],
                       "extras": [{"seconds": x, "benchmarks": {name: x}}
                                  for x in v]}
                   for k, v in by_mode.items()}
        cases.append({"workload": "pyperformance", "name": name,
                      "metric": "seconds", "unit": "s",
                      "higher_is_better": False, "results": results,
                      "options": {"pyperf_opts": ["--processes", "1"]}})
    return {"meta": {"date": "d", "host": "h", "size": "quick"},
            "modes": [vars(m) for m in ms], "cases": cases}


def test_pyperformance_geomean_worst_and_targets():
    data = pyperf_data({"a": {"untraced": [1.0], "ftm@25": [1.1]},
                        "b": {"untraced": [1.0], "ftm@25": [4.4]}})
    view = report.View(data)
    mean, have, total, worst = report.pyperformance_geomeans(view)["ftm@25"]
    assert mean == pytest.approx(2.2) and (have, total) == (2, 2)
    assert worst == (pytest.approx(4.4), "b")
    text = report.render(view)
    assert "## 7. pyperformance" in text
    assert "pyperformance, geomean of 2" in text
    assert "worst target ≤2x: **missed**" in text


def test_sampled_mode_targets_in_the_report():
    key = modes.SAMPLED_KEY
    data = pyperf_data({"a": {"untraced": [1.0], key: [1.02]},
                        "b": {"untraced": [1.0], key: [1.10]}})
    view = report.View(data)
    mean = report.pyperformance_geomeans(view)[key][0]
    assert mean == pytest.approx((1.02 * 1.10) ** 0.5)  # 1.059
    assert "target ≤1.05x: **missed** (1.01x off)" in report.render(view)
    assert "met" in report.issue_cell("pyperformance", key, 1.04)
    for wl in ("flask", "httpserver200", "server"):
        assert "**met**" in report.issue_cell(wl, key, 96.0)
        assert "**missed**" in report.issue_cell(wl, key, 94.0)
    data = fake_data("flask", True, {"untraced": [1000.0], key: [970.0]})
    text = report.render(report.View(data))
    label = report.View(data).mode_by_key[key]["label"]
    assert f"| {label} | 970 |" in text and "97.0%" in text
    assert "target ≥95% kept: **met**" in text


def test_report_of_a_subset_of_modes():  # runner.py --modes untraced,ftm@25
    data = pyperf_data({"a": {"untraced": [1.0], "ftm@25": [1.1]}})
    data["modes"] = [m for m in data["modes"]
                     if m["key"] in ("untraced", "ftm@25")]
    text = report.render(report.View(data))
    assert "pyperformance, geomean of 1" in text and "1.10x" in text


def test_web_cpu_table_per_request():
    data = fake_data("flask", True, {"untraced": [1000.0, 500.0]})
    case = data["cases"][0]
    case["results"]["untraced"]["extras"] = [
        {"rate": r, "requests": 1000, "cpu": {
            "server_s": 1.0, "tracer_threads_s": 0.1, "tracer_threads": 1,
            "wrk_s": 0.1, "wall_s": 1.0}} for r in (1000.0, 500.0)]
    data["meta"]["cpus"] = 2
    text = report.web_cpu_table(report.View(data), case)
    assert ("| untraced | 1,000 | 100 | 100% | 100 | 55% | 0% | "
            "2.00x (2 runs) |" in text)
    case["results"]["ftm@25"] = {"samples": [400.0], "errors": [],
                                 "extras": [{"rate": 400.0, "requests": 1000,
                                             "cpu": {"server_s": 2.1,
                                                     "tracer_threads_s": 0.3,
                                                     "wrk_s": 0.1,
                                                     "wall_s": 1.0}}]}
    text = report.web_cpu_table(report.View(data), case)
    # request threads: 1.8 ms/request against untraced's 0.9: 50% kept
    assert "| 2,100 | 300 | 50% |" in text


def python_with_pyperf():
    """This interpreter if it has pyperf, else a suite venv's."""
    import glob
    import subprocess
    candidates = [sys.executable] + sorted(glob.glob(os.path.join(
        HERE, "..", ".venv-*", "bin", "python")))
    for python in candidates:
        if subprocess.run([python, "-c", "import pyperf"],
                          capture_output=True).returncode == 0:
            return python
    pytest.skip("no interpreter with pyperf (run bench/run_overhead.sh once)")


def test_a_pyperf_worker_in_the_wrong_tracer_is_an_error(monkeypatch):
    python = python_with_pyperf()
    with tempfile.TemporaryDirectory() as tmp:
        os.mkdir(os.path.join(tmp, "bm"))  # the suite empties tmp itself
        script = os.path.join(tmp, "bm", "bm_tiny.py")
        with open(script, "w") as f:
            f.write("import pyperf\n"
                    "pyperf.Runner().bench_func('tiny', lambda: "
                    "[str(i) for i in range(200)])\n")
        monkeypatch.setattr(pyperf_suite, "locate", lambda name: (script,
                                                                  []))
        size = dict(runner.SIZES["quick"], pyperf_benchmarks=("tiny",))
        cases = runner.build_cases(size, ["pyperformance"])
        honest = modes.Mode("builtin@1", "builtin", "builtin", 1)
        liar = modes.Mode("ftm@1", "claims ftm", "ftm", 1)
        liar.command = lambda py, target, tmpdir, serial=0: (
            [py, *target], modes.child_env())  # runs untraced
        suite = runner.Suite(python, size, [honest, liar], cases, tmp)
        suite.run()
    results = cases[0].results
    assert results["builtin@1"]["errors"] == []
    assert len(results["builtin@1"]["samples"]) == 1
    assert results["builtin@1"]["extras"][0]["tracer"]["builtin_nframe"] == 1
    assert results["ftm@1"]["samples"] == []
    assert "invalid run: worker pid" in results["ftm@1"]["errors"][0]


def python_with_fasttracemalloc():
    """This interpreter if it has fasttracemalloc, else a suite venv's."""
    import glob
    import subprocess
    candidates = [sys.executable] + sorted(glob.glob(os.path.join(
        HERE, "..", ".venv-*", "bin", "python")))
    for python in candidates:
        if subprocess.run([python, "-c", "import fasttracemalloc"],
                          capture_output=True, cwd=HERE).returncode == 0:
            return python
    pytest.skip("no interpreter with fasttracemalloc (run "
                "bench/run_overhead.sh once)")


def test_sampled_and_exact_runs_cannot_pass_for_each_other():
    python = python_with_fasttracemalloc()
    by_key = {m.key: m for m in modes.detect(modes.all_modes(), python)}
    sampled = by_key[modes.SAMPLED_KEY]
    assert sampled.available, sampled.notes  # the probe saw 512 KiB
    size = dict(runner.SIZES["quick"], churn_iters=200, runs=1)
    cases = [c for c in runner.build_cases(size, ["churn"])
             if "1 thread" in c.name]
    # claims sampled, traces exactly
    fake_sampled = modes.Mode("fake-sampled", "x", "ftm-sampled", 25,
                              sample=512 * 1024)
    fake_sampled.switch_value = lambda: "25"
    # claims exact, samples
    fake_exact = modes.Mode("fake-exact", "x", "ftm", 25)
    fake_exact.switch_value = lambda: "25,sample=512k"
    with tempfile.TemporaryDirectory() as tmp:
        suite = runner.Suite(python, size, [sampled, fake_sampled,
                                            fake_exact], cases, tmp)
        suite.run()
    results = cases[0].results
    ok = results[modes.SAMPLED_KEY]
    assert ok["errors"] == [] and len(ok["samples"]) == 1
    assert ok["extras"][0]["tracer"]["ftm_sampling"] == 524288
    for key in ("fake-sampled", "fake-exact"):
        assert results[key]["samples"] == []
        assert "invalid run" in results[key]["errors"][0]


def test_ftscale_cases_and_scaling_table():
    cases = runner.build_cases(runner.SIZES["full"], ["ftscale"])
    assert [c.options["threads"] for c in cases] == [1, 2, 4, 8]
    assert "threads=4" in cases[2].args(None)
    ms = [vars(m) for m in modes.all_modes()]
    rates = {1: {"untraced": 100.0, "ftm@25": 20.0},
             2: {"untraced": 180.0, "ftm@25": 30.0}}
    data = {"meta": {"date": "d", "host": "h", "size": "quick"},
            "modes": ms, "cases": []}
    for n, by_mode in rates.items():
        data["cases"].append({
            "workload": "ftscale", "name": f"loop {n}", "metric": "rate",
            "unit": "iter/s", "higher_is_better": True,
            "options": {"threads": n},
            "results": {k: {"samples": [v], "errors": [],
                            "extras": [{"checksum": 1}]}
                        for k, v in by_mode.items()}})
    text = report.ftscale_section(report.View(data))
    row = next(line for line in text.splitlines()
               if line.startswith("| " + report.View(data)
                                  .mode_by_key["ftm@25"]["label"]))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # 20 and 30 iter/s; 20% and 16.7% of untraced; scaling 1.5, which is
    # 83% of untraced's 1.8
    assert cells[3:5] == ["20.0%", "16.7%"]
    assert cells[5] == "1.50 (83%)"
    assert "## 10. Thread scaling" in report.render(report.View(data))


def test_sized_runs_and_threads_override_the_table():
    def args(**kw):
        base = dict(quick=False, runs=0, threads="", benchmarks="")
        base.update(kw)
        return argparse.Namespace(**base)

    name, size = runner.sized(args())
    assert name == "full"
    assert size["ftscale_threads"] == (1, 2, 4, 8)
    assert size["ftscale_runs"] == runner.SIZES["full"]["ftscale_runs"]
    name, size = runner.sized(args(quick=True, runs=5, threads="1, 2,6"))
    assert name == "quick"
    assert size["ftscale_threads"] == (1, 2, 6)
    assert size["ftscale_runs"] == 5 and size["web_runs"] == 5
    assert runner.SIZES["quick"]["ftscale_runs"] == 1  # the table untouched
    for bad in ("0", "two", ",", "1,-2"):
        with pytest.raises(ValueError, match="--threads"):
            runner.sized(args(threads=bad))


def test_inline_merger_mode_is_opt_in_and_checked():
    assert "ftm-inline@25" not in {m.key for m in modes.all_modes()}
    inline = {m.key: m for m in modes.extra_modes()}["ftm-inline@25"]
    assert inline.switch_value() == "25,merger=inline"
    argv, env = inline.command("py", ["s.py"], "/tmp")
    assert env["FASTTRACEMALLOC"] == "25,merger=inline"
    ok = {"ftm": True, "ftm_nframe": 25, "ftm_sampling": 0,
          "ftm_merger_thread": 0}
    assert inline.check(ok) is None
    assert "merger thread" in inline.check(dict(ok, ftm_merger_thread=1))
    exact = {m.key: m for m in modes.all_modes()}["ftm@25"]
    assert exact.switch_value() == "25"
    assert exact.check(dict(ok, ftm_merger_thread=1)) is None
