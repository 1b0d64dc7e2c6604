"""Render the overhead suite's raw results (JSON) as Markdown tables and a chart.

Owns: the statistics shown (median, min, max over the runs; ratio of medians
against the untraced mode -- a slowdown, so higher is worse, for both
durations and throughputs; "% kept" for throughputs), the figures from
issues 4 and 12 shown beside them (the builtin's cost measured before the
project, and fasttracemalloc's targets -- the exact modes', and issue 12
part 2's for the sampled mode at nframe 25 with a 512 KiB mean: <= 1.05x
geomean on pyperformance, >= 95% of untraced req/s on the servers -- with
"met"/"missed by": a reading of the numbers, never an assertion), and the PNG chart of the ratios (matplotlib,
log scale).  Pure functions of the JSON written by runner.py, so a results
file can be re-rendered:

    python bench/overhead/report.py bench/results/2026-11-24-host.json
"""

import json
import math
import statistics
import sys

# Issue 4's figures.  "ref": the builtin measured on this 2-core machine
# before the project began; "target": fasttracemalloc's, as (text, op, value)
# where op/value let the report say met / missed.
ISSUE = {
    "churn8": {"builtin@1": "≈14x", "builtin@25": "≈60x",
               "ftm@1": ("≤1.3x", "<=", 1.3), "ftm@25": ("≤1.5x", "<=", 1.5)},
    "classic": {"builtin@1": "≈4x", "builtin@25": "≈33x",
                "ftm@1": ("≤1.15x", "<=", 1.15),
                "ftm@25": ("≤1.25x", "<=", 1.25),
                "memray": "≈2.3x (memray docs, pyperformance)"},
    "server": {"builtin@1": "≈11% kept", "builtin@25": "≈3% kept",
               "ftm@1": ("≥90% kept", ">=", 90.0),
               "ftm@25": ("≥85% kept", ">=", 85.0),
               "ftm-sampled@25": ("≥95% kept (issue 12)", ">=", 95.0)},
    "scale": {"builtin@1": "≈3 s", "builtin@25": "≈6 s",
              "ftm@1": ("≥5x faster than builtin", ">=", 5.0),
              "ftm@25": ("≥5x faster than builtin", ">=", 5.0)},
    "bytes": {"builtin@1": "≈55", "builtin@25": "≈55",
              "ftm@1": ("≤32", "<=", 32.0), "ftm@25": ("≤32", "<=", 32.0)},
    # Issue 12 (exact mode on real programs): the figures it reports from
    # before the suite measured them, and its targets.
    "pyperformance": {"builtin@1": "≈4.1x", "builtin@25": "≈33x",
                      "ftm@1": ("≤1.15x", "<=", 1.15),
                      "ftm@25": ("≤1.25x", "<=", 1.25),
                      # issue 12 part 2: the sampled production mode
                      # (nframe 25, a 512 KiB mean)
                      "ftm-sampled@25": ("≤1.05x", "<=", 1.05)},
    "pyperformance_worst": {"ftm@25": ("≤2x", "<=", 2.0)},
    "flask": {"builtin@1": "≈2–3% kept", "builtin@25": "≈2–3% kept",
              "ftm@25": ("≥85% kept", ">=", 85.0),
              "ftm-sampled@25": ("≥95% kept", ">=", 95.0),
              "memray": "≈32–44% kept (before)"},
    "httpserver200": {"builtin@1": "≈2–3% kept",
                      "builtin@25": "≈2–3% kept",
                      "ftm@25": ("≥85% kept", ">=", 85.0),
                      "ftm-sampled@25": ("≥95% kept", ">=", 95.0),
                      "memray": "≈32–44% kept (before)"},
}

# The sampled mode's chart targets, as slowdowns (issue 12 part 2).
SAMPLED_PYPERF_GOAL = 1.05
SAMPLED_SERVER_GOAL = 1 / 0.95


# -- numbers -----------------------------------------------------------------

def med(values):
    return statistics.median(values) if values else None


def lo(values):
    return min(values) if values else None


def hi(values):
    return max(values) if values else None


def geomean(values):
    values = [v for v in values if v and v > 0]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def fmt(value, digits=3):
    if value is None:
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.{digits}f}"


def fmt_ratio(ratio):
    if ratio is None:
        return "—"
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.1f}x"


def issue_cell(kind, mode_key, measured):
    """The issue's figure for this row, with met/missed for a target."""
    entry = ISSUE.get(kind, {}).get(mode_key)
    if entry is None:
        return ""
    if isinstance(entry, str):
        return entry + (" (before)" if mode_key.startswith("builtin") else "")
    text, op, goal = entry
    if measured is None:
        return f"target {text}"
    met = measured <= goal if op == "<=" else measured >= goal
    if met:
        return f"target {text}: **met**"
    by = measured / goal if op == "<=" else goal / measured
    return f"target {text}: **missed** ({by:.2f}x off)"


class View:
    """Convenience access to one results file."""

    def __init__(self, data):
        self.data = data
        self.meta = data["meta"]
        self.modes = data["modes"]
        self.mode_by_key = {m["key"]: m for m in self.modes}
        self.cases = data["cases"]

    def cases_of(self, workload):
        return [c for c in self.cases if c["workload"] == workload]

    def samples(self, case, key):
        return case["results"].get(key, {}).get("samples", [])

    def errors(self, case, key):
        return case["results"].get(key, {}).get("errors", [])

    def extras(self, case, key):
        return case["results"].get(key, {}).get("extras", [])

    def median(self, case, key):
        return med(self.samples(case, key))

    def slowdown(self, case, key):
        """Ratio of medians vs untraced, oriented so that >1 means slower."""
        base, value = self.median(case, "untraced"), self.median(case, key)
        if not base or not value:
            return None
        return base / value if case["higher_is_better"] else value / base

    def kept(self, case, key):
        base, value = self.median(case, "untraced"), self.median(case, key)
        if not base or value is None:
            return None
        return 100.0 * value / base

    def status(self, case, key):
        """Text for a row that has no numbers (n/a, or every run failed)."""
        mode = self.mode_by_key[key]
        if not mode["available"]:
            return mode["why"]
        errs = self.errors(case, key)
        if errs and not self.extras(case, key):
            return f"FAILED: {errs[0]}"
        return None

    def failure_note(self, case, key):
        errs = self.errors(case, key)
        runs = len(errs) + len(self.extras(case, key))
        if errs and self.extras(case, key):
            return f" ({len(errs)}/{runs} runs failed: {errs[0]})"
        return ""


# -- tables ------------------------------------------------------------------

def table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(out)


def checksums_differ(view, case):
    """True when the modes' runs of a case did not all compute the same."""
    sums = {json.dumps(e.get("checksum")) for m in view.modes
            for e in view.extras(case, m["key"]) if "checksum" in e}
    return len(sums) > 1


def timing_table(view, case, issue_kind=None, scale=1.0, unit="s",
                 source="issue 4"):
    rows = []
    for mode in view.modes:
        key = mode["key"]
        status = view.status(case, key)
        if status:
            rows.append([mode["label"], status, "", "", "", ""])
            continue
        samples = [s * scale for s in view.samples(case, key)]
        ratio = view.slowdown(case, key)
        rows.append([mode["label"], fmt(med(samples)), fmt(lo(samples)),
                     fmt(hi(samples)), fmt_ratio(ratio),
                     issue_cell(issue_kind, key, ratio)
                     + view.failure_note(case, key)])
    warn = ("\n\n⚠ the modes' checksums differ: some mode did different "
            "work" if checksums_differ(view, case) else "")
    return table(["mode", f"median ({unit})", "min", "max",
                  "ratio vs untraced", source], rows) + warn


def throughput_table(view, case, issue_kind=None, source="issue 4"):
    rows = []
    unit = case["unit"]
    for mode in view.modes:
        key = mode["key"]
        status = view.status(case, key)
        if status:
            rows.append([mode["label"], status, "", "", "", "", ""])
            continue
        samples = view.samples(case, key)
        kept = view.kept(case, key)
        warn = ""
        for extra in view.extras(case, key):
            if extra.get("warning"):
                warn = (f" ⚠ {extra['warning']}: "
                        f"{extra.get('socket_errors', '')} "
                        f"non-2xx {extra.get('non_2xx', 0)}")
                break
        rows.append([mode["label"], fmt(med(samples)), fmt(lo(samples)),
                     fmt(hi(samples)), fmt_ratio(view.slowdown(case, key)),
                     f"{kept:.1f}%" if kept is not None else "—",
                     issue_cell(issue_kind, key, kept)
                     + view.failure_note(case, key) + warn])
    return table(["mode", f"median ({unit})", "min", "max",
                  "slowdown vs untraced", "% kept", source], rows)


def ftscale_section(view):
    """Issue 8's table: throughput at each thread count, % of untraced at
    the same count, and each mode's N-thread/1-thread scaling, also as a
    fraction of untraced's scaling (the issue's ">= 90% of untraced's")."""
    cases = sorted(view.cases_of("ftscale"),
                   key=lambda c: c.get("options", {}).get("threads", 0))
    if not cases:
        return ""
    counts = [c.get("options", {}).get("threads") for c in cases]
    one = next((c for c, n in zip(cases, counts) if n == 1), None)
    header = ["mode"] + [f"N={n} ({cases[0]['unit']})" for n in counts]
    header += [f"% of untraced, N={n}" for n in counts]
    if one is not None:
        header += [f"scaling {n}/1 (of untraced's)" for n in counts if n != 1]
    base_scaling = {}
    if one is not None:
        base1 = view.median(one, "untraced")
        for case, n in zip(cases, counts):
            value = view.median(case, "untraced")
            if n != 1 and base1 and value:
                base_scaling[n] = value / base1
    rows = []
    for mode in view.modes:
        key = mode["key"]
        status = next((view.status(c, key) for c in cases
                       if view.status(c, key)), None)
        if status:
            rows.append([mode["label"], status]
                        + [""] * (len(header) - 2))
            continue
        row = [mode["label"]]
        row += [fmt(view.median(c, key)) for c in cases]
        for case in cases:
            kept = view.kept(case, key)
            row.append(f"{kept:.1f}%" if kept is not None else "—")
        if one is not None:
            m1 = view.median(one, key)
            for case, n in zip(cases, counts):
                if n == 1:
                    continue
                mn = view.median(case, key)
                if not m1 or mn is None:
                    row.append("—")
                    continue
                sc = mn / m1
                rel = (f" ({100.0 * sc / base_scaling[n]:.0f}%)"
                       if base_scaling.get(n) else "")
                row.append(f"{sc:.2f}{rel}")
        rows.append(row)
    return table(header, rows)


def classic_geomeans(view):
    cases = view.cases_of("classic")
    out = {}
    for mode in view.modes:
        ratios = [view.slowdown(c, mode["key"]) for c in cases]
        have = [r for r in ratios if r]
        out[mode["key"]] = (geomean(have), len(have), len(cases))
    return out


def classic_section(view):
    cases = view.cases_of("classic")
    if not cases:
        return ""
    means = classic_geomeans(view)
    header = ["program", "untraced (s)"] + [m["label"] for m in view.modes
                                            if m["key"] != "untraced"]
    rows = []
    for case in cases:
        row = [case["name"], fmt(view.median(case, "untraced"))]
        for mode in view.modes:
            if mode["key"] == "untraced":
                continue
            status = view.status(case, mode["key"])
            row.append(status if status
                       else fmt_ratio(view.slowdown(case, mode["key"])))
        if checksums_differ(view, case):
            row[0] += " ⚠ checksums differ between modes"
        rows.append(row)
    row = ["**geometric mean**", ""]
    targets = ["**issue 4**", ""]
    for mode in view.modes:
        if mode["key"] == "untraced":
            continue
        value, have, total = means[mode["key"]]
        if value is None:
            row.append(view.mode_by_key[mode["key"]]["why"] or "—")
        else:
            row.append(f"**{fmt_ratio(value)}**"
                       + (f" ({have} of {total})" if have != total else ""))
        targets.append(issue_cell("classic", mode["key"], value))
    rows.append(row)
    rows.append(targets)
    parts = ["Ratio of medians vs untraced, per program:", "",
             table(header, rows), "", "Per program and mode:", ""]
    detail = []
    for case in cases:
        for mode in view.modes:
            key = mode["key"]
            status = view.status(case, key)
            if status:
                detail.append([case["name"], mode["label"], status, "", "",
                               ""])
                continue
            s = view.samples(case, key)
            detail.append([case["name"], mode["label"], fmt(med(s)),
                           fmt(lo(s)), fmt(hi(s)),
                           fmt_ratio(view.slowdown(case, key))
                           + view.failure_note(case, key)])
    parts.append(table(["program", "mode", "median (s)", "min", "max",
                        "ratio"], detail))
    return "\n".join(parts)


def fmt_time(seconds):
    """A per-loop time, in the unit that suits it."""
    if seconds is None:
        return "—"
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def pyperformance_geomeans(view):
    """Per mode: (geomean of the benchmarks' ratios, benchmarks with a
    ratio, benchmarks, (worst ratio, its benchmark))."""
    cases = view.cases_of("pyperformance")
    out = {}
    for mode in view.modes:
        ratios = [(view.slowdown(c, mode["key"]), c["name"]) for c in cases]
        have = [(r, n) for r, n in ratios if r]
        out[mode["key"]] = (geomean([r for r, _ in have]), len(have),
                            len(cases), max(have) if have else None)
    return out


def sub_benchmarks(view, case):
    """{sub-benchmark: {mode key: median over the runs}} of one case (a
    pyperformance script may report several benchmarks, e.g. xml_etree)."""
    out = {}
    for mode in view.modes:
        per = {}
        for extra in view.extras(case, mode["key"]):
            for name, value in extra.get("benchmarks", {}).items():
                per.setdefault(name, []).append(value)
        for name, values in per.items():
            out.setdefault(name, {})[mode["key"]] = med(values)
    return out


def pyperformance_section(view):
    cases = view.cases_of("pyperformance")
    if not cases:
        return ""
    means = pyperformance_geomeans(view)
    traced = [m for m in view.modes if m["key"] != "untraced"]
    header = ["benchmark", "untraced (per loop)"] + [m["label"]
                                                     for m in traced]
    rows = []
    for case in cases:
        row = [case["name"], fmt_time(view.median(case, "untraced"))]
        for mode in traced:
            status = view.status(case, mode["key"])
            row.append(status if status else
                       fmt_ratio(view.slowdown(case, mode["key"]))
                       + view.failure_note(case, mode["key"]))
        rows.append(row)
    mean_row, worst_row = ["**geometric mean**", ""], ["**worst**", ""]
    targets = ["**issue 12**", ""]
    for mode in traced:
        value, have, total, worst = means[mode["key"]]
        if value is None:
            mean_row.append(view.mode_by_key[mode["key"]]["why"] or "—")
            worst_row.append("—")
        else:
            mean_row.append(f"**{fmt_ratio(value)}**"
                            + (f" ({have} of {total})" if have != total
                               else ""))
            worst_row.append(f"{fmt_ratio(worst[0])} ({worst[1]})")
        cell = issue_cell("pyperformance", mode["key"], value)
        extra = issue_cell("pyperformance_worst", mode["key"],
                           worst[0] if worst else None)
        targets.append("; ".join(c for c in (cell, extra and
                                             "worst " + extra) if c))
    rows += [mean_row, worst_row, targets]
    parts = ["Ratio of medians vs untraced, per benchmark (a benchmark "
             "that reports several, e.g. xml_etree, counts once: the "
             "geometric mean of its own):", "", table(header, rows)]
    detail = []
    for case in cases:
        subs = sub_benchmarks(view, case)
        if len(subs) < 2:
            continue
        for name, per in subs.items():
            base = per.get("untraced")
            detail.append([f"{case['name']}: {name}", fmt_time(base)]
                          + [fmt_ratio(per[m["key"]] / base)
                             if base and per.get(m["key"]) else "—"
                             for m in traced])
    if detail:
        parts += ["", "Benchmarks reporting several:", "",
                  table(header, detail)]
    return "\n".join(parts)


def web_cpu_table(view, case):
    """Where the CPU went in the served runs: per request, the server
    process (of it, the tracer's own threads) and wrk, the machine's
    busy share, and the spread of the runs."""
    rows = []
    cpus = view.meta.get("cpus") or 2

    def request_side(key):
        """Median CPU µs per request of the request-serving threads (the
        server less its tracer's threads): under the GIL they run one at
        a time, so its inverse bounds req/s whatever else runs."""
        ex = [e for e in view.extras(case, key) if e.get("cpu")
              and e.get("requests")]
        return med([(e["cpu"]["server_s"] - e["cpu"]["tracer_threads_s"])
                    / e["requests"] * 1e6 for e in ex])

    base = request_side("untraced")
    for mode in view.modes:
        ex = [e for e in view.extras(case, mode["key"]) if e.get("cpu")]
        if not ex:
            continue

        def per_request(key):
            return med([e["cpu"][key] / e["requests"] * 1e6 for e in ex
                        if e.get("requests")])

        busy = med([(e["cpu"]["server_s"] + e["cpu"]["wrk_s"])
                    / (e["cpu"]["wall_s"] * cpus) * 100 for e in ex
                    if e["cpu"].get("wall_s")])
        others = med([(e["cpu"].get("others_s", 0)
                       + e["cpu"].get("steal_s", 0))
                      / (e["cpu"]["wall_s"] * cpus) * 100 for e in ex
                      if e["cpu"].get("wall_s")])
        rates = view.samples(case, mode["key"])
        spread = max(rates) / min(rates) if rates and min(rates) else None
        side = request_side(mode["key"])
        kept = 100.0 * base / side if base and side else None
        rows.append([mode["label"], fmt(per_request("server_s"), 1),
                     fmt(per_request("tracer_threads_s"), 1),
                     f"{kept:.0f}%" if kept is not None else "—",
                     fmt(per_request("wrk_s"), 1),
                     f"{busy:.0f}%" if busy is not None else "—",
                     f"{others:.0f}%" if others is not None else "—",
                     f"{spread:.2f}x ({len(rates)} runs)"
                     if spread else "—"])
    if not rows:
        return ""
    return table(["mode", "server CPU µs/request", "of which tracer "
                  "threads", "% kept by request-thread CPU/request",
                  "wrk CPU µs/request",
                  f"CPU busy (server+wrk, of {cpus})",
                  "other processes + steal", "spread of req/s (max/min)"],
                 rows)


def scale_numbers(view, case):
    """Per mode: dict of medians the scale table and headline need."""
    out = {}
    base_rss = med([e["rss_growth"] for e in view.extras(case, "untraced")])
    base_build = med([e["build_seconds"]
                      for e in view.extras(case, "untraced")])
    for mode in view.modes:
        ex = view.extras(case, mode["key"])
        if not ex:
            continue
        objects = ex[0]["objects"]
        row = {"objects": objects,
               "build": med([e["build_seconds"] for e in ex]),
               "rss_growth": med([e["rss_growth"] for e in ex])}
        row["build_ratio"] = (row["build"] / base_build
                              if base_build else None)
        if "seconds" in ex[0]:
            row.update(
                live=med([e["live_traces"] for e in ex]),
                snapshot=med([e["snapshot_seconds"] for e in ex]),
                stats=med([e["statistics_seconds"] for e in ex]),
                total=med([e["seconds"] for e in ex]),
                total_min=min(e["seconds"] for e in ex),
                total_max=max(e["seconds"] for e in ex),
                bytes_per_trace=med([e["bytes_per_trace"] for e in ex
                                     if e.get("bytes_per_trace")]),
                marginal=med([e["tracer_memory_growth"] / objects
                              for e in ex]),
                snapshot_type=ex[0].get("snapshot_type", "?"))
            row["rss_per_trace"] = (
                (row["rss_growth"] - base_rss) / objects
                if base_rss is not None else None)
        out[mode["key"]] = row
    return out


def scale_section(view):
    cases = view.cases_of("scale")
    if not cases:
        return ""
    case = cases[0]
    nums = scale_numbers(view, case)
    rows = []
    for mode in view.modes:
        key = mode["key"]
        if mode["kind"] == "memray":
            continue
        status = view.status(case, key)
        if status:
            rows.append([mode["label"], status] + [""] * 8)
            continue
        n = nums.get(key, {})
        if key == "untraced":
            rows.append([mode["label"], "—", f"{fmt(n.get('build'))} "
                         f"(1.00x)", "—", "—", "—", "—", "—",
                         f"RSS growth {n.get('rss_growth', 0) / 2**20:.0f} "
                         "MiB (baseline)", ""])
            continue
        speedup = None
        if mode["kind"] == "ftm":
            peer = nums.get(f"builtin@{mode['nframe']}")
            if peer and n.get("total"):
                speedup = peer["total"] / n["total"]
        rpt = n.get("rss_per_trace")
        rows.append([
            mode["label"], f"{n.get('live', 0):,.0f}",
            f"{fmt(n.get('build'))} ({fmt_ratio(n.get('build_ratio'))})",
            fmt(n.get("snapshot")), fmt(n.get("stats")),
            f"{fmt(n.get('total'))} ({fmt(n.get('total_min'))}–"
            f"{fmt(n.get('total_max'))})",
            f"{speedup:.1f}x" if speedup else "—",
            f"{fmt(n.get('bytes_per_trace'), 1)} / "
            f"{fmt(n.get('marginal'), 1)}",
            fmt(rpt, 1) if rpt is not None else "—",
            "; ".join(x for x in (issue_cell("scale", key, speedup if
                                             mode["kind"] == "ftm" else None),
                                  issue_cell("bytes", key,
                                             n.get("bytes_per_trace")))
                      if x) + view.failure_note(case, key)])
    classes = sorted({f"`{n['snapshot_type']}`" for n in nums.values()
                      if n.get("snapshot_type")})
    note = ("\n\nSnapshot classes: " + ", ".join(classes)) if classes else ""
    return table(["mode", "live traces", "build s (vs untraced)",
                  "take_snapshot s", "statistics('lineno') s",
                  "snapshot+statistics s: median (min–max)",
                  "vs builtin, same nframe",
                  "tracer bytes/trace: total / marginal",
                  "RSS bytes/trace over untraced", "issue 4"], rows) + note


def headline(view):
    """The issue's target table, filled with this run's numbers."""
    keys = ["builtin@1", "builtin@25", "ftm@1", "ftm@25", "ftm-sampled@25",
            "memray"]
    labels = ["builtin @1", "builtin @25", "fasttracemalloc @1",
              "fasttracemalloc @25", "fasttracemalloc sampled @25, 512 KiB",
              "memray"]

    def cell(key, value, text, cases=()):
        mode = view.mode_by_key.get(key)
        if mode and not mode["available"]:
            return "n/a"
        if value is None and any(view.errors(c, key) for c in cases):
            return "FAILED"
        return text(value) if value is not None else "—"

    rows = []
    churn = [c for c in view.cases_of("churn") if "8 threads" in c["name"]]
    if churn:
        c = churn[0]
        rows.append(["churn, 8 threads, 30-deep (slowdown)"]
                    + [cell(k, view.slowdown(c, k), fmt_ratio, [c])
                       for k in keys]
                    + ["≤1.3x / ≤1.5x / —"])
    if view.cases_of("classic"):
        means = classic_geomeans(view)
        rows.append(["classic programs, geomean (slowdown)"]
                    + [cell(k, means.get(k, (None,))[0], fmt_ratio,
                            view.cases_of("classic")) for k in keys]
                    + ["≤1.15x / ≤1.25x / —"])
    raw = view.cases_of("raw")
    if raw:
        rows.append(["RAW allocations without the GIL (slowdown)"]
                    + [cell(k, view.slowdown(raw[0], k), fmt_ratio, raw)
                       for k in keys] + ["—"])
    server = view.cases_of("server")
    if server:
        rows.append(["threaded server, req/s kept"]
                    + [cell(k, view.kept(server[0], k),
                            lambda v: f"{v:.1f}%", server) for k in keys]
                    + ["≥90% / ≥85% / ≥95% (issue 12)"])
    scale = view.cases_of("scale")
    if scale:
        nums = scale_numbers(view, scale[0])
        objects = next((v["objects"] for v in nums.values()), 0)
        rows.append([f"snapshot+statistics at {objects:,} objects (s)"]
                    + [cell(k, nums.get(k, {}).get("total"), fmt, scale)
                       if k != "memray" else "—" for k in keys]
                    + ["≥5x faster / —"])
        rows.append(["tracer bytes per live trace"]
                    + [cell(k, nums.get(k, {}).get("bytes_per_trace"),
                            lambda v: fmt(v, 1))
                       if k != "memray" else "—" for k in keys]
                    + ["≤32 / —"])
    pyperf = view.cases_of("pyperformance")
    if pyperf:
        means = pyperformance_geomeans(view)
        rows.append([f"pyperformance, geomean of {len(pyperf)} (slowdown)"]
                    + [cell(k, means.get(k, (None,))[0], fmt_ratio, pyperf)
                       for k in keys]
                    + ["≤1.15x / ≤1.25x / ≤1.05x (issue 12)"])
        rows.append(["pyperformance, worst benchmark (slowdown)"]
                    + [cell(k, means.get(k, (None,) * 4)[3],
                            lambda w: f"{fmt_ratio(w[0])} ({w[1]})", pyperf)
                       for k in keys]
                    + ["— / ≤2x / — (issue 12)"])
    for wl, label in (("flask", "Flask on waitress, req/s kept"),
                      ("httpserver200", "ThreadingHTTPServer 200 rows, "
                       "req/s kept")):
        for case in view.cases_of(wl):
            rows.append([label] + [cell(k, view.kept(case, k),
                                        lambda v: f"{v:.1f}%", [case])
                                   for k in keys]
                        + ["— / ≥85% / ≥95% (issue 12)"])
    startup = view.cases_of("startup")
    if startup:
        rows.append(["start-up, python -c pass (slowdown)"]
                    + [cell(k, view.slowdown(startup[0], k), fmt_ratio,
                            startup) for k in keys] + ["—"])
    return table(["workload"] + labels
                 + ["target ftm @1 / @25 / sampled @25"], rows)


def render(view, chart_name=None):
    meta = view.meta
    quick = meta.get("size") == "quick"
    out = [f"# Overhead benchmark: {meta['date']} on {meta['host']}"
           + (" (--quick)" if quick else ""), ""]
    if quick:
        out += ["> **--quick run**: small sizes and few runs -- a smoke test "
                "of the suite, not a measurement to quote.", ""]
    out += [
        f"- Command: `{meta.get('command', 'bench/run_overhead.sh')}`",
        f"- Interpreter under test: {meta.get('python', '?')}",
        f"- Packages: {', '.join(meta.get('packages', []))}",
        f"- Commit: {meta.get('commit', '?')}",
        f"- Machine: {meta.get('cpu', '?')}, {meta.get('cpus')} CPUs, "
        f"{meta.get('platform')}",
        f"- Load average at start / end: {meta.get('loadavg_start', '?')} / "
        f"{meta.get('loadavg_end', '?')} (other work on the machine makes "
        "every figure noisier)",
        f"- Suite wall time: {meta.get('elapsed_seconds')} s",
        "- Method: every run is a fresh process; within each case the modes "
        "run interleaved (all modes, then all modes again, ...) so drift "
        "hits all alike; each figure is the median of the runs, with min "
        "and max; ratios are ratios of medians against the untraced mode "
        "(slowdown: higher is worse). Timed regions exclude interpreter "
        "start-up and imports, except in the start-up case. Nothing here is "
        "asserted; the 'issue 4' column only reads the numbers.",
        "",
        "Modes:", ""]
    for mode in view.modes:
        state = "measured" if mode["available"] else mode["why"]
        note = f" — {'; '.join(mode['notes'])}" if mode["notes"] else ""
        out.append(f"- `{mode['key']}`: {mode['label']}: {state}{note}")
    out += ["", "## Summary", "", headline(view), ""]
    if chart_name:
        out += [f"![overhead ratios]({chart_name})", ""]

    for case in view.cases_of("churn"):
        kind = "churn8" if "8 threads" in case["name"] else None
        title = case["name"].replace("churn, ", "", 1)
        out += [f"## 1. Allocation churn: {title}", "",
                timing_table(view, case, kind), ""]
    classic = classic_section(view)
    if classic:
        out += ["## 2. Classic programs", "", classic, ""]
    for case in view.cases_of("raw"):
        out += [f"## 3. {case['name']} (ctypes PyMem_RawMalloc/RawFree)", "",
                throughput_table(view, case), ""]
    for case in view.cases_of("server"):
        ex = next((e for m in view.modes
                   for e in view.extras(case, m["key"])), {})
        out += [f"## 4. {case['name']}", "",
                f"ThreadingHTTPServer, JSON document built 20 frames below "
                f"the handler; load: wrk -t1 -c{ex.get('connections', '?')} "
                f"for {ex.get('wrk_seconds', '?')} s per run on 127.0.0.1.",
                "", throughput_table(view, case, "server"), ""]
        cpu = web_cpu_table(view, case)
        if cpu:
            out += ["CPU time over the timed runs (medians):", "", cpu, ""]
    scale = scale_section(view)
    if scale:
        case = view.cases_of("scale")[0]
        out += [f"## 5. Scale: {case['name']}", "",
                "Live traces counted in the snapshot (the workload's objects "
                "plus the interpreter's own). Tracer bytes/trace: total = "
                "get_tracemalloc_memory() / live traces (issue 4's measure; "
                "includes fixed costs); marginal = growth of "
                "get_tracemalloc_memory() while building / objects. "
                "RSS bytes/trace = "
                "(RSS growth while building the objects − the untraced "
                "process's growth) / objects. memray has no snapshot API.",
                "", scale, ""]
    pyperf = pyperformance_section(view)
    if pyperf:
        opts = view.cases_of("pyperformance")[0].get("options", {})
        out += ["## 7. pyperformance, through pyperf", "",
                "pyperformance's own benchmark scripts "
                f"({', '.join(p for p in meta.get('packages', []) if p.startswith(('pyperformance', 'pyperf ')))}), "
                "run by pyperf in fresh worker processes with `"
                + " ".join(opts.get("pyperf_opts", [])) + "`; the pyperf "
                "manager runs untraced, every worker in the mode (through a "
                "`--python` launcher), and every worker's tracer is checked "
                "at its exit. A figure is the median of a run's values "
                "(seconds per loop), then the median over the runs.", "",
                pyperf, ""]
    for num, wl, text in (
            (8, "flask", "A Flask app on waitress (8 threads), `GET /rows` "
             "building 200 records per request"),
            (9, "httpserver200", "The stdlib ThreadingHTTPServer of section "
             "4 with 200 rows per response (JSON built 20 frames below the "
             "handler)")):
        for case in view.cases_of(wl):
            ex = next((e for m in view.modes
                       for e in view.extras(case, m["key"])), {})
            out += [f"## {num}. {case['name']}", "",
                    f"{text}; load: wrk -t1 -c{ex.get('connections', '?')}, "
                    f"keep-alive, a {ex.get('warmup_seconds', '?')} s warm-up "
                    f"then {ex.get('wrk_seconds', '?')} s timed per run, on "
                    "127.0.0.1.", "",
                    throughput_table(view, case, wl, source="issue 12"), "",
                    "CPU time over the timed runs (medians; the server "
                    "process's CPU includes its tracer's threads). On a "
                    "busy machine req/s follows the CPU share the server "
                    "gets; the CPU per request of its request threads "
                    "(server less tracer threads, serialised by the GIL) "
                    "does not, so '% kept by CPU/request' is the steadier "
                    "figure there:", "",
                    web_cpu_table(view, case), ""]
    ftscale = ftscale_section(view)
    if ftscale:
        out += ["## 10. Thread scaling: a pure-Python allocation loop "
                "(issue 8)", "",
                "Each thread runs its own allocation loop (dicts, lists, "
                "str, tuples; 64 live rows) 30 frames deep for a fixed time "
                "(bench/overhead/wl_ftscale.py); the figure is iterations "
                "per second over all threads. It is meant for free-threaded "
                "builds (3.13t), where the threads allocate in parallel; on "
                "a GIL build the threads take turns. Targets (3.13t, this "
                "2-core machine): fasttracemalloc@25 keeps >= 70% of "
                "untraced at N=2, and its 2/1 scaling is >= 90% of "
                "untraced's.", "", ftscale, ""]
    for case in view.cases_of("startup"):
        tool = view.meta.get("startup_tool", "")
        out += [f"## 6. Start-up: {case['name']} ({tool})", "",
                timing_table(view, case, scale=1000.0, unit="ms"), ""]
    failures = []
    for case in view.cases:
        for mode in view.modes:
            errs = view.errors(case, mode["key"])
            if errs:
                runs = len(errs) + len(view.extras(case, mode["key"]))
                failures.append(f"- {case['name']} [{mode['key']}]: "
                                f"{len(errs)} of {runs} runs: "
                                + "; ".join(sorted(set(errs))))
    out += ["## Failed runs", ""]
    out += failures or ["None."]
    out.append("")
    return "\n".join(out)


# -- chart -------------------------------------------------------------------

def chart(view, path):
    """Grouped bars of the slowdown ratios (log scale); returns False if
    matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    groups = []
    targets = {}  # group index -> {mode key: fasttracemalloc target ratio}
    for case in view.cases_of("churn"):
        if "8 threads" in case["name"]:
            targets[len(groups)] = {"ftm@1": 1.3, "ftm@25": 1.5}
        groups.append((case["name"].replace(", 30-deep", ""),
                       {m["key"]: view.slowdown(case, m["key"])
                        for m in view.modes}))
    if view.cases_of("classic"):
        means = classic_geomeans(view)
        targets[len(groups)] = {"ftm@1": 1.15, "ftm@25": 1.25}
        groups.append(("classic programs\n(geomean)",
                       {k: v[0] for k, v in means.items()}))
    for wl, label in (("raw", "RAW alloc/s\nwithout GIL"),
                      ("server", "HTTP server\nreq/s"),
                      ("startup", "start-up\n-c pass")):
        for case in view.cases_of(wl):
            if wl == "server":  # >= 90% / 85% / 95% kept, as a slowdown
                targets[len(groups)] = {"ftm@1": 1 / 0.90, "ftm@25": 1 / 0.85,
                                        "ftm-sampled@25": SAMPLED_SERVER_GOAL}
            groups.append((label, {m["key"]: view.slowdown(case, m["key"])
                                   for m in view.modes}))
    if view.cases_of("pyperformance"):
        means = pyperformance_geomeans(view)
        targets[len(groups)] = {"ftm@1": 1.15, "ftm@25": 1.25,
                                "ftm-sampled@25": SAMPLED_PYPERF_GOAL}
        groups.append(("pyperformance\n(geomean)",
                       {k: v[0] for k, v in means.items()}))
    for wl, label in (("flask", "Flask/waitress\nreq/s"),
                      ("httpserver200", "HTTP server\n200 rows req/s")):
        for case in view.cases_of(wl):
            targets[len(groups)] = {"ftm@25": 1 / 0.85,
                                    "ftm-sampled@25": SAMPLED_SERVER_GOAL}
            groups.append((label, {m["key"]: view.slowdown(case, m["key"])
                                   for m in view.modes}))
    scale = view.cases_of("scale")
    if scale:
        nums = scale_numbers(view, scale[0])
        groups.append(("snapshot +\nstatistics",
                       {k: (v.get("total") / nums["builtin@1"]["total"]
                            if v.get("total") and nums.get("builtin@1",
                                                           {}).get("total")
                            else None)
                        for k, v in nums.items()}))
    modes = [m for m in view.modes if m["key"] != "untraced"]
    colors = {"builtin@1": "#f4a582", "builtin@25": "#b2182b",
              "ftm@1": "#92c5de", "ftm@25": "#2166ac",
              "ftm-sampled@25": "#1b7837", "memray": "#999999"}
    fig, ax = plt.subplots(figsize=(12, 6.5))
    width = 0.8 / max(1, len(modes))
    for i, mode in enumerate(modes):
        xs, ys = [], []
        for g, (_, values) in enumerate(groups):
            v = values.get(mode["key"])
            if v:
                xs.append(g + (i - (len(modes) - 1) / 2) * width)
                ys.append(v)
        label = mode["label"] + ("" if mode["available"]
                                 else f" — {mode['why']}")
        bars = ax.bar(xs, ys, width, label=label,
                      color=colors.get(mode["key"]))
        for bar, y in zip(bars, ys):
            ax.annotate(f"{y:.2f}" if y < 1 else f"{y:.1f}" if y < 10
                        else f"{y:.0f}",
                        (bar.get_x() + bar.get_width() / 2, y),
                        ha="center", va="bottom", fontsize=7)
        for g, goal in targets.items():
            if mode["key"] in goal and mode["available"]:
                x = g + (i - (len(modes) - 1) / 2) * width
                ax.hlines(goal[mode["key"]], x - width / 2, x + width / 2,
                          colors="black", linestyles="dashed", linewidth=1.5,
                          label="_target")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g[0] for g in groups], fontsize=8)
    ax.set_ylabel("slowdown vs untraced (log scale; lower is better)\n"
                  "snapshot+statistics: seconds relative to builtin nframe=1"
                  "\ndashed: fasttracemalloc's target (issues 4, 12)",
                  fontsize=9)
    quick = " (--quick: smoke-test sizes)" if view.meta.get(
        "size") == "quick" else ""
    ax.set_title(f"tracing overhead, {view.meta['date']}, "
                 f"{view.meta['host']}{quick}")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13),
              ncol=3, frameon=False)
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.set_ylim(top=ax.get_ylim()[1] * 1.6)  # room for the bar labels
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write(data, stem):
    """Write stem.md (and stem.png when matplotlib is there); return the
    Markdown text."""
    import os
    view = View(data)
    png = stem + ".png"
    have_chart = chart(view, png)
    text = render(view, os.path.basename(png) if have_chart else None)
    with open(stem + ".md", "w") as f:
        f.write(text + "\n")
    return text


def main(argv):
    if len(argv) != 1 or not argv[0].endswith(".json"):
        raise SystemExit("usage: report.py RESULTS.json")
    with open(argv[0]) as f:
        data = json.load(f)
    print(write(data, argv[0][:-len(".json")]))


if __name__ == "__main__":
    main(sys.argv[1:])
