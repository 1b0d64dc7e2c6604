"""Render the overhead suite's raw results (JSON) as Markdown tables and a chart.

Owns: the statistics shown (median, min, max over the runs; ratio of medians
against the untraced mode -- a slowdown, so higher is worse, for both
durations and throughputs; "% kept" for throughputs), the figures from
issue 4 shown beside them (the builtin's cost measured before the project,
and fasttracemalloc's targets, with "met"/"missed by" -- a reading of the
numbers, never an assertion), and the PNG chart of the ratios (matplotlib,
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
               "ftm@25": ("≥85% kept", ">=", 85.0)},
    "scale": {"builtin@1": "≈3 s", "builtin@25": "≈6 s",
              "ftm@1": ("≥5x faster than builtin", ">=", 5.0),
              "ftm@25": ("≥5x faster than builtin", ">=", 5.0)},
    "bytes": {"builtin@1": "≈55", "builtin@25": "≈55",
              "ftm@1": ("≤32", "<=", 32.0), "ftm@25": ("≤32", "<=", 32.0)},
}


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


def timing_table(view, case, issue_kind=None, scale=1.0, unit="s"):
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
                  "ratio vs untraced", "issue 4"], rows) + warn


def throughput_table(view, case, issue_kind=None):
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
                  "slowdown vs untraced", "% kept", "issue 4"], rows)


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
    keys = ["builtin@1", "builtin@25", "ftm@1", "ftm@25", "memray"]
    labels = ["builtin @1", "builtin @25", "fasttracemalloc @1",
              "fasttracemalloc @25", "memray"]

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
                    + ["≤1.3x / ≤1.5x"])
    if view.cases_of("classic"):
        means = classic_geomeans(view)
        rows.append(["classic programs, geomean (slowdown)"]
                    + [cell(k, means[k][0], fmt_ratio,
                            view.cases_of("classic")) for k in keys]
                    + ["≤1.15x / ≤1.25x"])
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
                    + ["≥90% / ≥85%"])
    scale = view.cases_of("scale")
    if scale:
        nums = scale_numbers(view, scale[0])
        objects = next((v["objects"] for v in nums.values()), 0)
        rows.append([f"snapshot+statistics at {objects:,} objects (s)"]
                    + [cell(k, nums.get(k, {}).get("total"), fmt, scale)
                       if k != "memray" else "—" for k in keys]
                    + ["≥5x faster"])
        rows.append(["tracer bytes per live trace"]
                    + [cell(k, nums.get(k, {}).get("bytes_per_trace"),
                            lambda v: fmt(v, 1))
                       if k != "memray" else "—" for k in keys] + ["≤32"])
    startup = view.cases_of("startup")
    if startup:
        rows.append(["start-up, python -c pass (slowdown)"]
                    + [cell(k, view.slowdown(startup[0], k), fmt_ratio,
                            startup) for k in keys] + ["—"])
    return table(["workload"] + labels + ["target ftm @1 / @25"], rows)


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
            if wl == "server":  # >= 90% / 85% kept, as a slowdown
                targets[len(groups)] = {"ftm@1": 1 / 0.90, "ftm@25": 1 / 0.85}
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
              "ftm@1": "#92c5de", "ftm@25": "#2166ac", "memray": "#999999"}
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
                  "\ndashed: fasttracemalloc's target (issue 4)", fontsize=9)
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
