#!/usr/bin/env python3
"""ordering_compare.py -- the counter and the clock event orders side by
side (issue 8), in one run.

Runs <build>/bench/ftm_bench (default order) and <build>/bench/ftm_bench_clock
(core/order_clock.h) alternately, ROUNDS times each, on the producer and
merger benchmarks (1, 2, 4, 8 producers), and prints a Markdown table of the
medians over rounds:

  ns/record     BM_ProducerRecord: median ns per ftm_record_alloc/free on
                each producer thread (batches of 512 events, flushed between
                batches; the benchmark's own median over batches and
                repetitions).
  sustained     BM_ProducerSustained: events/s of all producers together,
                recording flat out with the merger running.
  merger        BM_MergerApply: events/s the merger applies from N pre-filled
                rings (1M events).

Usage: bench/ordering_compare.py BUILD_DIR [ROUNDS] [--out FILE]
Nothing is asserted: figures on a shared machine are noisy; the two orders
are interleaved so that load drifts hit both.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

FILTER = "BM_ProducerRecord/|BM_ProducerRecordIsolated|BM_ProducerSustained|BM_MergerApply"


def run(binary):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run(
            [binary, "--benchmark_filter=" + FILTER,
             "--benchmark_out=" + f.name, "--benchmark_out_format=json"],
            check=True, capture_output=True, text=True)
        data = json.load(open(f.name))
    order = data["context"].get("ftm_order", "?")
    res = {}
    for b in data["benchmarks"]:
        name = b["name"]
        if name.startswith("BM_ProducerRecord/"):
            if b.get("aggregate_name") != "median":
                continue
            th = int(name.split("threads:")[1].split("_")[0])
            res[("record", th)] = b["ns_per_event_median"]
        elif name.startswith("BM_ProducerRecordIsolated"):
            if b.get("aggregate_name") != "median":
                continue
            res[("isolated", 1)] = b["ns_per_event_median"]
        elif name.startswith("BM_ProducerSustained"):
            th = int(name.split("threads:")[1].split("/")[0].split("_")[0])
            res[("sustained", th)] = b["items_per_second"]
        elif name.startswith("BM_MergerApply"):
            th = int(name.split("/")[1])
            res[("merger", th)] = b["items_per_second"]
    return order, res


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--out")]
    out_file = None
    for i, a in enumerate(sys.argv):
        if a == "--out":
            out_file = sys.argv[i + 1]
            args = [x for x in args if x != out_file]
    build = args[0]
    rounds = int(args[1]) if len(args) > 1 else 3
    bins = {"counter": os.path.join(build, "bench", "ftm_bench"),
            "clock": os.path.join(build, "bench", "ftm_bench_clock")}
    runs = {k: [] for k in bins}
    names = {}
    for r in range(rounds):
        for k, b in (bins.items() if r % 2 == 0 else reversed(bins.items())):
            print(f"round {r + 1}/{rounds}: {k}", file=sys.stderr, flush=True)
            order, res = run(b)
            names[k] = order
            runs[k].append(res)

    def med(k, key):
        vals = [r[key] for r in runs[k] if key in r]
        return statistics.median(vals) if vals else float("nan")

    lines = []
    lines.append(f"Orders: counter = `{names['counter']}`, clock = "
                 f"`{names['clock']}`; median of {rounds} interleaved rounds "
                 f"(nproc = {os.cpu_count()}).")
    lines.append("")
    lines.append("| producers | ns/record counter | ns/record clock | clock/counter "
                 "| sustained Mev/s counter | sustained Mev/s clock "
                 "| merger Mev/s counter | merger Mev/s clock |")
    lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for th in (1, 2, 4, 8):
        rc, rk = med("counter", ("record", th)), med("clock", ("record", th))
        sc, sk = med("counter", ("sustained", th)), med("clock", ("sustained", th))
        mc, mk = med("counter", ("merger", th)), med("clock", ("merger", th))
        lines.append(f"| {th} | {rc:.1f} | {rk:.1f} | {rk / rc:.2f} | "
                     f"{sc / 1e6:.1f} | {sk / 1e6:.1f} | {mc / 1e6:.1f} | "
                     f"{mk / 1e6:.1f} |")
    ic, ik = med("counter", ("isolated", 1)), med("clock", ("isolated", 1))
    lines.append("")
    lines.append(f"Producer alone (apply lock held, no consumer touching its "
                 f"ring): counter {ic:.1f} ns/record, clock {ik:.1f} "
                 f"ns/record ({ik / ic:.2f}x).")
    lines.append("")
    lines.append("Per-round figures (ns/record at 1, 2, 4, 8 producers):")
    for k in bins:
        for i, r in enumerate(runs[k]):
            vals = ", ".join(f"{r.get(('record', t), float('nan')):.1f}"
                             for t in (1, 2, 4, 8))
            lines.append(f"- {k} round {i + 1}: {vals}")
    text = "\n".join(lines) + "\n"
    print(text)
    if out_file:
        with open(out_file, "a") as f:
            f.write(text)


if __name__ == "__main__":
    main()
