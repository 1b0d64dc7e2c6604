"""Workload 2: run one classic program (bench/overhead/classic/) and time it.

Owns: importing the program module (untimed), one untimed warm-up call at
a tiny scale (so first-call costs such as regex compilation are not counted),
then the timed ``run(scale)``.  Prints BENCH_RESULT with ``seconds`` and the
program's checksum (the runner checks that every mode computed the same).

    python wl_classic.py program=nbody scale=1.0
"""

import importlib
import sys
import time

import benchlib


def main():
    args = benchlib.parse_args(sys.argv[1:], program="", scale=1.0)
    from classic import PROGRAMS
    if args["program"] not in PROGRAMS:
        raise SystemExit(f"unknown program {args['program']!r}; "
                         f"choose from {', '.join(PROGRAMS)}")
    module = importlib.import_module("classic." + args["program"])
    module.run(0.01)
    t0 = time.perf_counter()
    checksum = module.run(args["scale"])
    seconds = time.perf_counter() - t0
    benchlib.emit(seconds=seconds, checksum=checksum,
                  program=args["program"], scale=args["scale"])


if __name__ == "__main__":
    main()
