"""The overhead suite's driver: runs every workload in every mode, interleaved.

Owns: the suite's sizes (--quick / full), the list of cases (one per
workload configuration), running each (case, mode) in a fresh process with
modes interleaved A B C .. A B C .. within a case so machine drift hits all
alike, the wrk load of the served workloads (server, flask, httpserver200)
with the CPU time of the server's threads and of wrk, the pyperformance
benchmarks (one pyperf run per case and mode, through pyperf_suite), the
start-up timing, one progress line per step, and the raw results file
(JSON) that report.py renders.
Nothing here asserts a timing: a failed or mis-configured run is recorded
as an error next to its mode and shown in the table.

Run by bench/run_overhead.sh with the interpreter under test (a venv that
has fasttracemalloc, memray, matplotlib, pyperformance, flask and waitress
installed):

    python bench/overhead/runner.py [--quick] [--out DIR] [--only churn,raw]
                                    [--benchmarks chaos,go]

Single-threaded except for the pipe reader of a running server.
"""

import argparse
import datetime
import json
import os
import platform
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import modes as modes_mod
import pyperf_suite
import report

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

SIZES = {
    "quick": dict(runs=2, churn_iters=20000, classic_scale=0.1,
                  raw_threads=4, raw_seconds=0.25, server_runs=1,
                  server_seconds=2, wrk_connections=8, scale_runs=1,
                  scale_objects=100000, startup_runs=2, startup_per_round=3,
                  timeout=120,
                  # issue 12: pyperformance through pyperf, web servers
                  pyperf_runs=1, pyperf_timeout=120,
                  pyperf_benchmarks=("richards", "json_loads",
                                     "pickle_pure_python"),
                  pyperf_opts=("--processes", "1", "--values", "1",
                               "--warmups", "0", "--loops", "1"),
                  web_runs=1, web_seconds=1, web_warmup_seconds=0,
                  web_connections=16,
                  # issue 8: thread scaling (meant for 3.13t)
                  ftscale_threads=(1, 2), ftscale_seconds=0.5,
                  ftscale_runs=1),
    "full": dict(runs=5, churn_iters=200000, classic_scale=1.0,
                 raw_threads=4, raw_seconds=2.0, server_runs=3,
                 server_seconds=10, wrk_connections=8, scale_runs=3,
                 scale_objects=1000000, startup_runs=5, startup_per_round=6,
                 timeout=300,
                 # One pyperf run per benchmark and mode (builtin@25 is
                 # 30-150x slower per loop: with these options it alone
                 # takes ~13 of the ~18 min the 20 benchmarks take here).
                 pyperf_runs=1, pyperf_timeout=1200,
                 pyperf_benchmarks=pyperf_suite.ISSUE12,
                 pyperf_opts=("--processes", "1", "--values", "3",
                              "--warmups", "1"),
                 web_runs=5, web_seconds=5, web_warmup_seconds=1,
                 web_connections=16,
                 # N = 1, 2 on 2 cores; 4 and 8 oversubscribed, for the
                 # record (issue 8's "Measure").
                 ftscale_threads=(1, 2, 4, 8), ftscale_seconds=3.0,
                 ftscale_runs=3),
}

WORKLOADS = ("churn", "classic", "raw", "server", "scale", "startup",
             "pyperformance", "flask", "httpserver200", "ftscale")
# Workloads served over HTTP and loaded by wrk.
SERVED = ("server", "flask", "httpserver200")


class Case:
    """One workload configuration, measured in every mode."""

    def __init__(self, workload, name, metric, unit, runs, args=None,
                 kinds=None, higher_is_better=False, options=None):
        self.workload = workload
        self.name = name
        self.metric = metric          # key read from the BENCH_RESULT line
        self.unit = unit
        self.runs = runs
        self.args = args              # mode -> [script, arg...]
        self.kinds = kinds            # mode kinds that apply (None = all)
        self.higher_is_better = higher_is_better
        self.options = options or {}  # workload-specific (wrk load, ...)
        self.results = {}             # mode key -> {samples, errors, extras}

    def applies(self, mode):
        return self.kinds is None or mode.kind in self.kinds

    def slot(self, mode):
        return self.results.setdefault(
            mode.key, {"samples": [], "errors": [], "extras": []})

    def to_json(self):
        return {"workload": self.workload, "name": self.name,
                "metric": self.metric, "unit": self.unit,
                "higher_is_better": self.higher_is_better,
                "options": self.options, "results": self.results}


def script(name):
    return os.path.join(HERE, name)


def build_cases(size, only):
    from classic import PROGRAMS
    cases = []
    runs = size["runs"]
    if "churn" in only:
        for threads in (1, 8):
            cases.append(Case(
                "churn", f"churn, {threads} thread{'s' * (threads > 1)}, "
                "30-deep", "seconds", "s", runs,
                args=lambda m, t=threads: [script("wl_churn.py"),
                                           f"iters={size['churn_iters']}",
                                           f"threads={t}", "depth=30"]))
    if "classic" in only:
        for prog in PROGRAMS:
            cases.append(Case(
                "classic", prog, "seconds", "s", runs,
                args=lambda m, p=prog: [script("wl_classic.py"),
                                        f"program={p}",
                                        f"scale={size['classic_scale']}"]))
    if "raw" in only:
        cases.append(Case(
            "raw", f"RAW domain, {size['raw_threads']} threads without the "
            "GIL", "rate", "alloc/s", runs, higher_is_better=True,
            args=lambda m: [script("wl_raw.py"),
                            f"threads={size['raw_threads']}",
                            f"seconds={size['raw_seconds']}"]))
    if "server" in only:
        cases.append(Case(
            "server", "threaded HTTP server (wrk, loopback)", "rate",
            "req/s", size["server_runs"], higher_is_better=True,
            args=lambda m: [script("wl_server.py"), "depth=20"],
            options=dict(path="/items", key="items",
                         connections=size["wrk_connections"],
                         seconds=size["server_seconds"],
                         warmup_seconds=0)))
    if "scale" in only:
        engine = {"none": "none", "builtin": "builtin", "ftm": "ftm"}
        cases.append(Case(
            "scale", f"take_snapshot + statistics('lineno'), "
            f"{size['scale_objects']:,} live objects", "seconds", "s",
            size["scale_runs"], kinds=("none", "builtin", "ftm"),
            args=lambda m: [script("wl_scale.py"), f"engine={engine[m.kind]}",
                            f"objects={size['scale_objects']}"]))
    web = dict(connections=size["web_connections"],
               seconds=size["web_seconds"],
               warmup_seconds=size["web_warmup_seconds"])
    if "flask" in only:
        cases.append(Case(
            "flask", "Flask on waitress, 8 threads, 200 rows (wrk, "
            "loopback)", "rate", "req/s", size["web_runs"],
            higher_is_better=True,
            args=lambda m: [script("wl_flask.py"), "rows=200", "threads=8"],
            options=dict(web, path="/rows", key="rows")))
    if "httpserver200" in only:
        cases.append(Case(
            "httpserver200", "ThreadingHTTPServer, 200 rows (wrk, "
            "loopback)", "rate", "req/s", size["web_runs"],
            higher_is_better=True,
            args=lambda m: [script("wl_server.py"), "depth=20", "rows=200"],
            options=dict(web, path="/items", key="items")))
    if "pyperformance" in only:
        for name in size["pyperf_benchmarks"]:
            cases.append(Case(
                "pyperformance", name, "seconds", "s", size["pyperf_runs"],
                options=dict(benchmark=name,
                             pyperf_opts=list(size["pyperf_opts"]))))
    if "ftscale" in only:
        for threads in size["ftscale_threads"]:
            cases.append(Case(
                "ftscale", f"allocation loop, {threads} thread"
                f"{'s' * (threads > 1)}, 30-deep", "rate", "iter/s",
                size["ftscale_runs"], higher_is_better=True,
                options=dict(threads=threads),
                args=lambda m, t=threads: [
                    script("wl_ftscale.py"), f"threads={t}", "depth=30",
                    f"seconds={size['ftscale_seconds']}"]))
    if "startup" in only:
        cases.append(Case("startup", "python -c pass", "seconds", "ms",
                          size["startup_runs"],
                          args=lambda m: ["-c", "pass"]))
    return cases


def parse_result(stdout):
    for line in reversed(stdout.splitlines()):
        if line.startswith("BENCH_RESULT "):
            return json.loads(line[len("BENCH_RESULT "):])
    return None


def parse_wrk(stdout):
    """wrk's summary -> {rate, requests, socket_errors, non_2xx} (only the
    fields it printed)."""
    out = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", stdout)
    if m:
        out["rate"] = float(m.group(1))
    m = re.search(r"(\d+) requests in", stdout)
    if m:
        out["requests"] = int(m.group(1))
    m = re.search(r"Socket errors: (.*)", stdout)
    if m:
        out["socket_errors"] = m.group(1).strip()
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", stdout)
    if m:
        out["non_2xx"] = int(m.group(1))
    return out


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def stat_cpu_seconds(text):
    """utime + stime, in seconds, of a /proc/.../stat line (the command
    name in parentheses may itself contain spaces and parentheses)."""
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _read_stat(path):
    try:
        with open(path) as f:
            return stat_cpu_seconds(f.read())
    except (OSError, ValueError):
        return None


def task_cpu(pid):
    """{thread id: CPU seconds} of the live threads of a process."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        value = _read_stat(f"/proc/{pid}/task/{tid}/stat")
        if value is not None:
            out[int(tid)] = value
    return out


def process_cpu(pid):
    """CPU seconds of a whole process, its exited threads included."""
    return _read_stat(f"/proc/{pid}/stat") or 0.0


def children_cpu():
    """CPU seconds of this process's reaped children (wrk, here)."""
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def machine_cpu():
    """(busy, steal) CPU seconds of the whole machine so far (/proc/stat:
    user+nice+system+irq+softirq; steal = time the hypervisor ran
    something else while this VM wanted the CPU)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0.0, 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return ((user + nice + system + irq + softirq) / CLOCK_TICKS,
            steal / CLOCK_TICKS)


def cpu_split(before, after, tracer_tids):
    """Where the CPU went during the timed load: the server process in
    total, the part of it spent in the tracer's own threads (those that
    were not Python threads when the server started listening:
    fasttracemalloc's merger, memray's), wrk, every other process on the
    machine, and the hypervisor's steal; with the wall time."""
    (tasks0, proc0, kids0, t0, mach0), (tasks1, proc1, kids1, t1, mach1) = \
        before, after
    tracer = [tid for tid in tracer_tids if tid in tasks0]
    tracer_s = sum(tasks1.get(tid, tasks0[tid]) - tasks0[tid]
                   for tid in tracer)
    server, wrk = proc1 - proc0, kids1 - kids0
    return {"server_s": round(server, 3),
            "tracer_threads_s": round(tracer_s, 3),
            "tracer_threads": len(tracer),
            "wrk_s": round(wrk, 3),
            "others_s": round(max(0.0, mach1[0] - mach0[0] - server - wrk),
                              3),
            "steal_s": round(mach1[1] - mach0[1], 3),
            "wall_s": round(t1 - t0, 3)}


def parse_cpus(text):
    """taskset-style CPU list ("0", "0,1", "0-1") -> set of ints."""
    cpus = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def fmt_seconds(value):
    if value >= 1:
        return f"{value:.3f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.2f} ms"
    return f"{value * 1e6:.1f} us"


def exit_text(returncode):
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit {returncode}"


def last_line(text):
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


class Suite:
    def __init__(self, python, size, modes, cases, tmpdir):
        self.python = python
        self.size = size
        self.modes = modes
        self.cases = cases
        self.tmpdir = tmpdir
        self.serial = 0
        self.step = 0
        self.total_steps = 0
        self.wrk = shutil.which("wrk")
        # CPU lists (taskset syntax) for the served workloads' server
        # process, wrk, and the server's non-Python threads; empty: none.
        self.placement = {}
        self.hyperfine = shutil.which("hyperfine")

    # -- progress -------------------------------------------------------
    def progress(self, case, mode, round_no, outcome):
        self.step += 1
        print(f"[{self.step:3d}/{self.total_steps}] {case.name:<45.45} "
              f"{mode.key:<11} run {round_no + 1}/{case.runs}  {outcome}",
              flush=True)

    def count_steps(self):
        n = 0
        for case in self.cases:
            live = [m for m in self.modes if m.available and case.applies(m)]
            n += case.runs * len(live)
        self.total_steps = n

    def cleanup_tmp(self):
        for name in os.listdir(self.tmpdir):
            try:
                os.unlink(os.path.join(self.tmpdir, name))
            except OSError:
                pass

    # -- one process, result on stdout ------------------------------------
    def run_process(self, case, mode):
        self.serial += 1
        argv, env = mode.command(self.python, case.args(mode), self.tmpdir,
                                 self.serial)
        timeout = self.size["timeout"]
        try:
            proc = subprocess.run(argv, env=env, cwd=HERE, text=True,
                                  capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, f"timeout after {timeout} s"
        finally:
            self.cleanup_tmp()
        if proc.returncode != 0:
            return None, (f"{exit_text(proc.returncode)}: "
                          f"{last_line(proc.stderr) or last_line(proc.stdout)}")
        result = parse_result(proc.stdout)
        if result is None:
            return None, "no BENCH_RESULT line: " + last_line(proc.stderr)
        bad = mode.check(result.get("tracer", {}))
        if bad:
            return None, "invalid run: " + bad
        return result, None

    # -- a server under wrk -------------------------------------------------
    def run_server(self, case, mode):
        """One server process in this mode: start it, check its answer, an
        optional wrk warm-up, then the timed wrk run, with the CPU time of
        the server's threads and of wrk over the timed run."""
        if not self.wrk:
            return None, "wrk not installed"
        opts = case.options
        self.serial += 1
        argv, env = mode.command(self.python, case.args(mode), self.tmpdir,
                                 self.serial)
        pin = self.placement
        if pin.get("server"):
            argv = ["taskset", "-c", pin["server"], *argv]
        proc = subprocess.Popen(argv, env=env, cwd=HERE, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        lines = queue.Queue()
        err_lines = []

        def pump(stream, sink):
            for line in stream:
                sink(line)

        threading.Thread(target=pump, args=(proc.stdout, lines.put),
                         daemon=True).start()
        threading.Thread(target=pump, args=(proc.stderr, err_lines.append),
                         daemon=True).start()
        out_lines = []
        try:
            port, py_threads, tracer_tids = None, None, set()
            deadline = time.monotonic() + 60
            while py_threads is None and time.monotonic() < deadline:
                try:
                    line = lines.get(timeout=0.5)
                except queue.Empty:
                    if proc.poll() is not None:
                        break
                    continue
                out_lines.append(line)
                m = re.match(r"PORT (\d+)", line)
                if m:
                    port = int(m.group(1))
                m = re.match(r"THREADS ([\d,]*)", line)
                if m:
                    py_threads = {int(t) for t in m.group(1).split(",") if t}
                    # No request has been made yet: every other thread now
                    # is the tracer's own.
                    tracer_tids = set(task_cpu(proc.pid)) - py_threads
            if port is None or py_threads is None:
                return None, ("server did not start: "
                              + last_line("".join(err_lines)))
            url = f"http://127.0.0.1:{port}{opts['path']}"
            for _ in range(20):  # warm-up, and a check of the answer
                with urllib.request.urlopen(url, timeout=30) as resp:
                    doc = json.loads(resp.read())
                    if resp.status != 200 or opts["key"] not in doc:
                        return None, f"bad response {resp.status}"
            if pin.get("tracer"):
                for tid in tracer_tids:
                    os.sched_setaffinity(tid, parse_cpus(pin["tracer"]))
            conns = opts["connections"]
            wrk = [self.wrk, "-t1", f"-c{conns}", "--timeout", "10s", url]
            if pin.get("wrk"):
                wrk = ["taskset", "-c", pin["wrk"], *wrk]
            if opts.get("warmup_seconds"):
                warm = subprocess.run(
                    wrk[:-1] + [f"-d{opts['warmup_seconds']}s", url],
                    capture_output=True, text=True, timeout=300)
                if warm.returncode != 0:
                    return None, "wrk warm-up failed: " + last_line(
                        warm.stderr or warm.stdout)
            seconds = opts["seconds"]
            before = task_cpu(proc.pid), process_cpu(proc.pid), \
                children_cpu(), time.perf_counter(), machine_cpu()
            run = subprocess.run(wrk[:-1] + [f"-d{seconds}s", url],
                                 capture_output=True, text=True,
                                 timeout=seconds + 120)
            after = task_cpu(proc.pid), process_cpu(proc.pid), \
                children_cpu(), time.perf_counter(), machine_cpu()
            extra = parse_wrk(run.stdout)
            if run.returncode != 0 or "rate" not in extra:
                return None, "wrk failed: " + last_line(run.stderr
                                                        or run.stdout)
            extra.update(wrk_seconds=seconds, connections=conns,
                         warmup_seconds=opts.get("warmup_seconds", 0))
            extra["cpu"] = cpu_split(before, after, tracer_tids)
            if pin:
                extra["placement"] = dict(pin)
        except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
            return None, f"load failed: {exc!r}"[:300]
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            time.sleep(0.1)  # let the pump threads drain
            while not lines.empty():
                out_lines.append(lines.get())
            self.cleanup_tmp()
        result = parse_result("".join(out_lines))
        if result is None:
            return None, ("server printed no BENCH_RESULT ("
                          f"{exit_text(proc.returncode)}): "
                          + last_line("".join(err_lines)))
        bad = mode.check(result.get("tracer", {}))
        if bad:
            return None, "invalid run: " + bad
        extra["served"] = result.get("requests")
        extra["tracer"] = result["tracer"]
        if extra.get("socket_errors") or extra.get("non_2xx"):
            extra["warning"] = "errors under load"
        return extra, None

    # -- pyperformance through pyperf ---------------------------------------
    def run_pyperf(self, case, mode):
        """One pyperf run of a pyperformance benchmark (its manager
        untraced, every worker in the mode, each worker's tracer checked)."""
        opts = case.options
        try:
            script_path, extra_opts = pyperf_suite.locate(opts["benchmark"])
        except LookupError as exc:
            return None, str(exc)
        self.serial += 1
        workdir = tempfile.mkdtemp(prefix=f"pyperf-{self.serial}-",
                                   dir=self.tmpdir)
        try:
            launcher, probe_out = pyperf_suite.write_launcher(
                mode, self.python, workdir, self.tmpdir, self.serial)
            output = os.path.join(workdir, "result.json")
            argv = pyperf_suite.command(self.python, script_path, extra_opts,
                                        launcher, opts["pyperf_opts"],
                                        output)
            timeout = self.size["pyperf_timeout"]
            try:
                proc = subprocess.run(argv, env=modes_mod.child_env(),
                                      cwd=workdir, text=True,
                                      capture_output=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                return None, f"timeout after {timeout} s"
            if proc.returncode != 0 or not os.path.exists(output):
                return None, (f"pyperf {exit_text(proc.returncode)}: "
                              + pyperf_suite.failure_text(
                                  proc.stderr or proc.stdout))
            with open(output) as f:
                values, workers = pyperf_suite.parse_suite(json.load(f))
            reports = pyperf_suite.read_worker_reports(probe_out)
            bad = pyperf_suite.check_workers(mode, reports, workers)
            if bad:
                return None, "invalid run: " + bad
            sample, medians = pyperf_suite.summarize(values)
            return {"seconds": sample, "benchmarks": medians,
                    "values": sum(len(v) for v in values.values()),
                    "workers": workers,
                    "tracer": reports[0]["tracer"]}, None
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            self.cleanup_tmp()

    # -- start-up: python -c pass ------------------------------------------
    def run_startup(self, case, mode):
        self.serial += 1
        argv, env = mode.command(self.python, case.args(mode), self.tmpdir,
                                 self.serial)
        k = self.size["startup_per_round"]
        times = []
        try:
            if self.hyperfine:
                out = os.path.join(self.tmpdir, f"hf-{self.serial}.json")
                cmd = shlex.join(argv)
                proc = subprocess.run(
                    [self.hyperfine, "-N", "--warmup", "1", "--runs", str(k),
                     "--style", "none", "--export-json", out, "--", cmd],
                    env=env, capture_output=True, text=True,
                    timeout=self.size["timeout"])
                if proc.returncode != 0:
                    return None, "hyperfine: " + last_line(proc.stderr)
                with open(out) as f:
                    times = json.load(f)["results"][0]["times"]
                tool = "hyperfine"
            else:
                subprocess.run(argv, env=env, check=True,
                               stdout=subprocess.DEVNULL)
                for _ in range(k):
                    t0 = time.perf_counter()
                    subprocess.run(argv, env=env, check=True,
                                   stdout=subprocess.DEVNULL)
                    times.append(time.perf_counter() - t0)
                tool = "subprocess loop"
        except (OSError, subprocess.SubprocessError) as exc:
            return None, f"start-up run failed: {exc!r}"[:300]
        finally:
            self.cleanup_tmp()
        return {"times": times, "tool": tool}, None

    # -- driver ----------------------------------------------------------
    def run(self):
        self.count_steps()
        for case in self.cases:
            live = [m for m in self.modes if m.available and case.applies(m)]
            for round_no in range(case.runs):
                for mode in live:
                    slot = case.slot(mode)
                    t0 = time.perf_counter()
                    try:
                        if case.workload in SERVED:
                            result, error = self.run_server(case, mode)
                        elif case.workload == "pyperformance":
                            result, error = self.run_pyperf(case, mode)
                        elif case.workload == "startup":
                            result, error = self.run_startup(case, mode)
                        else:
                            result, error = self.run_process(case, mode)
                    except Exception as exc:  # record it, go on with the rest
                        result, error = None, f"runner error: {exc!r}"[:300]
                    wall = time.perf_counter() - t0
                    if error:
                        slot["errors"].append(error)
                        self.progress(case, mode, round_no,
                                      f"ERROR {error}")
                        continue
                    if case.workload == "startup":
                        slot["samples"].extend(result["times"])
                        value = min(result["times"])
                        shown = f"min {value * 1000:.1f} ms"
                    elif case.metric not in result:
                        # scale, untraced: a baseline (RSS, build time) only
                        shown = (f"baseline: build "
                                 f"{result.get('build_seconds', 0):.3f} s")
                    else:
                        value = result[case.metric]
                        slot["samples"].append(value)
                        shown = (f"{value:,.0f} {case.unit}"
                                 if case.higher_is_better
                                 else fmt_seconds(value))
                    slot["extras"].append(result)
                    self.progress(case, mode, round_no,
                                  f"{shown}  (process {wall:.1f} s)")


def machine_info(python):
    info = {"host": socket.gethostname(), "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "date": datetime.datetime.now(datetime.timezone.utc)
            .strftime("%Y-%m-%d %H:%M UTC")}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        info["loadavg_start"] = " ".join(
            open("/proc/loadavg").read().split()[:3])
    except OSError:
        pass
    proc = subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0], "
         "sys.executable)"], capture_output=True, text=True)
    info["python"] = proc.stdout.strip()
    proc = subprocess.run(
        [python, "-c", "import sys, importlib.metadata as m\n"
         "for name in ('fasttracemalloc', 'memray', 'pyperformance',\n"
         "             'pyperf', 'flask', 'waitress'):\n"
         "    try: print(name, m.version(name))\n"
         "    except Exception: print(name, 'not installed')"],
        capture_output=True, text=True)
    info["packages"] = proc.stdout.strip().splitlines()
    git = shutil.which("git")
    if git:
        proc = subprocess.run([git, "-C", ROOT, "describe", "--always",
                               "--dirty"], capture_output=True, text=True)
        info["commit"] = proc.stdout.strip()
    return info


def sized(args):
    """The size table (SIZES) the parsed arguments ask for: (name, dict).
    ValueError for a --threads that is not a list of counts >= 1."""
    size_name = "quick" if args.quick else "full"
    size = dict(SIZES[size_name])
    if args.runs:
        for key in ("runs", "server_runs", "scale_runs", "startup_runs",
                    "pyperf_runs", "web_runs", "ftscale_runs"):
            size[key] = args.runs
    if args.threads:
        try:
            threads = tuple(int(t) for t in args.threads.split(",")
                            if t.strip())
        except ValueError:
            threads = ()
        if not threads or min(threads) < 1:
            raise ValueError("--threads: expected thread counts >= 1 "
                             f"separated by commas, got {args.threads!r}")
        size["ftscale_threads"] = threads
    if args.benchmarks:
        size["pyperf_benchmarks"] = tuple(
            b.strip() for b in args.benchmarks.split(",") if b.strip())
    return size_name, size


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, fewer runs (CI smoke test)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter under test (default: this one)")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench",
                                                      "results"),
                        help="directory for the .md, .json and .png")
    parser.add_argument("--only", default=",".join(WORKLOADS),
                        help="comma-separated subset of " + ",".join(WORKLOADS))
    parser.add_argument("--runs", type=int, default=0,
                        help="override the number of runs per case")
    parser.add_argument("--modes", default="",
                        help="only these modes (comma-separated keys, e.g. "
                        "untraced,ftm@25; default: all but ftm-inline@25, "
                        "which runs only when named)")
    parser.add_argument("--benchmarks", default="",
                        help="pyperformance benchmarks to run (comma-"
                        "separated; default: 3 with --quick, else issue "
                        "12's 20)")
    parser.add_argument("--threads", default="",
                        help="thread counts of the ftscale case (comma-"
                        "separated; default: 1,2 with --quick, else "
                        "1,2,4,8)")
    args = parser.parse_args(argv)
    only = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = set(only) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workload(s): {', '.join(sorted(unknown))}")
    try:
        size_name, size = sized(args)
    except ValueError as exc:
        parser.error(str(exc))

    started = time.perf_counter()
    print(f"== overhead suite ({size_name}) with {args.python}", flush=True)
    info = machine_info(args.python)
    info["size"] = size_name
    info["command"] = os.environ.get(
        "FTM_BENCH_COMMAND", "python " + " ".join(sys.argv))
    info["sizes"] = size
    chosen = modes_mod.all_modes()
    if args.modes:
        keys = [k.strip() for k in args.modes.split(",") if k.strip()]
        pool = chosen + modes_mod.extra_modes()
        unknown = set(keys) - {m.key for m in pool}
        if unknown or "untraced" not in keys:
            parser.error("--modes: keys among "
                         + ",".join(m.key for m in pool)
                         + ", untraced included (the ratios' base)")
        chosen = [m for m in pool if m.key in keys]
    modes = modes_mod.detect(chosen, args.python)
    for mode in modes:
        state = "ok" if mode.available else mode.why
        print(f"   mode {mode.key:<11} {state}"
              + (f"  [{'; '.join(mode.notes)}]" if mode.notes else ""),
              flush=True)
    cases = build_cases(size, only)
    with tempfile.TemporaryDirectory(prefix="ftm-bench-") as tmpdir:
        suite = Suite(args.python, size, modes, cases, tmpdir)
        if set(only) & set(SERVED) and not suite.wrk:
            print("   wrk not found: the served workloads will show errors",
                  flush=True)
        if "pyperformance" in only:
            print(f"   pyperformance {pyperf_suite.installed_version()}, "
                  f"benchmarks: {', '.join(size['pyperf_benchmarks'])}",
                  flush=True)
        suite.run()
    info["elapsed_seconds"] = round(time.perf_counter() - started, 1)
    try:
        info["loadavg_end"] = " ".join(
            open("/proc/loadavg").read().split()[:3])
    except OSError:
        pass
    info["startup_tool"] = "hyperfine" if shutil.which("hyperfine") \
        else "subprocess loop"
    data = {"meta": info,
            "modes": [vars(m) for m in modes],
            "cases": [c.to_json() for c in cases]}
    os.makedirs(args.out, exist_ok=True)
    day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", info["host"])
    stem = os.path.join(args.out, f"{day}-{host}"
                        + ("-quick" if args.quick else ""))
    with open(stem + ".json", "w") as f:
        json.dump(data, f, indent=1)
    text = report.write(data, stem)
    print()
    print(text)
    print(f"== wrote {stem}.md, {stem}.json"
          + (", " + stem + ".png" if os.path.exists(stem + ".png") else "")
          + f" in {info['elapsed_seconds']} s", flush=True)
    # Exit status: a run that failed in our own modes (untraced, builtin,
    # fasttracemalloc) means a broken workload or a crashing tracer; memray's
    # failures are shown but are not ours to fail on.  Timings never decide.
    failed = [(c.name, key) for c in cases for key, slot in c.results.items()
              if slot["errors"] and key != "memray"]
    if failed:
        print("== FAILED runs: " + "; ".join(f"{n} [{k}]" for n, k in failed),
              flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
