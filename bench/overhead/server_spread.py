"""Why a served workload's req/s varies between runs: CPU placement trials.

Owns: running one served case of the suite (httpserver200 by default, as
runner.py runs it) in a few modes under several CPU placements of the
server process, wrk and the server's non-Python (tracer) threads, all
interleaved (every placement and mode, then again, ...), and printing per
placement and mode: req/s median (min-max), the spread max/min, and the
CPU per request of the server, of its tracer threads and of wrk, with the
share of the machine they kept busy and the share other processes and the
hypervisor (steal) took meanwhile.  Placements (CPU lists as taskset):

    free     no pinning (the suite's way)
    split    server on cpu0, wrk on cpu1 (tracer threads follow the server)
    split-t  server on cpu0, wrk and the tracer threads on cpu1
    one      server and wrk both on cpu0 (one core for everything)

Uses the venv bench/run_overhead.sh made:

    bench/.venv-*/bin/python bench/overhead/server_spread.py \\
        [--case httpserver200] [--modes untraced,ftm@25] [--rounds 3] \\
        [--seconds 4] [--placements free,split,split-t,one] [--json OUT]
"""

import argparse
import json
import os
import statistics
import sys
import tempfile

import modes as modes_mod
import runner

PLACEMENTS = {
    "free": {},
    "split": {"server": "0", "wrk": "1"},
    "split-t": {"server": "0", "wrk": "1", "tracer": "1"},
    "one": {"server": "0", "wrk": "0"},
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", default="httpserver200",
                        choices=runner.SERVED)
    parser.add_argument("--modes", default="untraced,ftm@25")
    parser.add_argument("--placements", default="free,split,split-t,one")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--json", help="also write every run here")
    args = parser.parse_args(argv)

    size = dict(runner.SIZES["full"], web_seconds=args.seconds,
                web_warmup_seconds=1, server_seconds=args.seconds)
    case = runner.build_cases(size, [args.case])[0]
    wanted = args.modes.split(",")
    modes = [m for m in modes_mod.all_modes() if m.key in wanted]
    modes_mod.detect(modes, args.python)
    modes = [m for m in modes if m.available]
    places = args.placements.split(",")
    runs = {}  # (placement, mode) -> [extra]
    with tempfile.TemporaryDirectory(prefix="ftm-spread-") as tmp:
        suite = runner.Suite(args.python, size, modes, [case], tmp)
        for rnd in range(args.rounds):
            for place in places:
                suite.placement = PLACEMENTS[place]
                for mode in modes:
                    extra, error = suite.run_server(case, mode)
                    shown = error or (f"{extra['rate']:,.0f} req/s, "
                                      f"cpu {extra['cpu']}")
                    print(f"[round {rnd + 1}] {place:<8} {mode.key:<10} "
                          f"{shown}", flush=True)
                    if extra:
                        runs.setdefault((place, mode.key), []).append(extra)
    print()
    print(f"{case.name}: {args.rounds} rounds x {args.seconds} s, "
          f"loadavg {open('/proc/loadavg').read().split()[:3]}")
    print("| placement | mode | req/s median (min–max) | max/min | "
          "server µs/req | tracer thr µs/req | wrk µs/req | busy of 2 | "
          "others+steal of 2 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for place in places:
        for mode in modes:
            ex = runs.get((place, mode.key), [])
            if not ex:
                continue
            rates = [e["rate"] for e in ex]

            def per_req(key):
                return statistics.median(e["cpu"][key] / e["requests"] * 1e6
                                         for e in ex)

            busy = statistics.median(
                (e["cpu"]["server_s"] + e["cpu"]["wrk_s"])
                / e["cpu"]["wall_s"] / 2 * 100 for e in ex)
            others = statistics.median(
                (e["cpu"]["others_s"] + e["cpu"]["steal_s"])
                / e["cpu"]["wall_s"] / 2 * 100 for e in ex)
            print(f"| {place} | {mode.key} | {statistics.median(rates):,.0f} "
                  f"({min(rates):,.0f}–{max(rates):,.0f}) | "
                  f"{max(rates) / min(rates):.2f}x | "
                  f"{per_req('server_s'):,.0f} | "
                  f"{per_req('tracer_threads_s'):,.0f} | "
                  f"{per_req('wrk_s'):,.0f} | {busy:.0f}% | "
                  f"{others:.0f}% |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({f"{p}|{m}": v for (p, m), v in runs.items()}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    os.chdir(runner.HERE)
    sys.exit(main())
