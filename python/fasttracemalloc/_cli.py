"""``python -m fasttracemalloc run``: run a program traced from its first line.

Owns: the command line (``run``, and ``report`` which prints a saved
snapshot's top entries, ``compare``, ``export`` and ``flamegraph``, whose
work is in ``fasttracemalloc.report``).  ``run`` installs the engine under
the stdlib ``tracemalloc`` module, starts tracing, runs the target like the
interpreter would (``script.py`` or ``-m module``; ``sys.argv`` and
``sys.path[0]`` set as ``python script.py`` / ``python -m module`` set
them), and when the target's main code ends -- normally, through
``sys.exit()`` or by an exception -- takes a snapshot, writes it with
``Snapshot.dump`` (the stdlib pickle format), prints the top N entries to
stderr, and exits with the target's status.

Children that multiprocessing starts with ``spawn`` or ``forkserver`` are
traced with the same nframe (``-X fasttracemalloc=N`` is passed on, see
``_switch.pass_to_children``); ``fork`` children inherit tracing.  Only the
``run`` process writes a snapshot and a report.

Not covered: a target that ends with ``os._exit()`` or a fatal signal leaves
no snapshot.  The snapshot is taken when the main code ends, so threads still
running then are captured as of that moment.

Threads: main thread only.
"""

import argparse
import linecache
import os
import pkgutil  # noqa: F401 -- runpy imports it lazily; do it before tracing
import runpy
import sys

DEFAULT_SNAPSHOT = "fasttracemalloc.snapshot"
MAX_NFRAME = 65535

USAGE = """\
python -m fasttracemalloc run [-n NFRAME] [-o SNAPSHOT] [--top N]
       [--key-type {lineno,filename,traceback}] [--threads]
       (script.py | -m module) [args ...]"""


def _nframe(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("invalid number of frames: %r" % text)
    if not 1 <= value <= MAX_NFRAME:
        raise argparse.ArgumentTypeError(
            "the number of frames must be in range [1; %d]" % MAX_NFRAME)
    return value


def _nonnegative(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not an integer: %r" % text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0: %r" % text)
    return value


def _run_parser():
    parser = argparse.ArgumentParser(
        prog="python -m fasttracemalloc run", usage=USAGE,
        description="Run a Python program traced by fasttracemalloc from its "
                    "first line; at exit write the snapshot and print the top "
                    "allocation sites.")
    parser.add_argument("-n", "--nframe", type=_nframe, default=1,
                        help="frames stored per traceback (1..65535, default 1)")
    parser.add_argument("-o", "--output", default=DEFAULT_SNAPSHOT,
                        help="snapshot file, readable by tracemalloc.Snapshot."
                             "load (default: %(default)s)")
    parser.add_argument("--top", type=_nonnegative, default=10,
                        help="entries to print (default 10; 0 prints none)")
    parser.add_argument("--key-type", default="lineno",
                        choices=("lineno", "filename", "traceback"),
                        help="how to group the report (default lineno)")
    parser.add_argument("--threads", action="store_true",
                        help="attribute allocations to their thread: the "
                             "snapshot keeps thread information (see "
                             "'report --by-thread')")
    return parser


def _split(argv):
    """Split run's argv into (options, target kind, target, target args):
    options end at the first non-option word (the script) or at -m MODULE."""
    options = []
    i = 0
    with_value = {"-n", "--nframe", "-o", "--output", "--top", "--key-type"}
    while i < len(argv):
        arg = argv[i]
        if arg == "-m":
            if i + 1 >= len(argv):
                return options, "error", "argument -m: expected a module name", []
            return options, "module", argv[i + 1], argv[i + 2:]
        if arg.startswith("-m") and not arg.startswith("--"):
            return options, "module", arg[2:], argv[i + 1:]
        if arg == "--":
            if i + 1 >= len(argv):
                break
            return options, "script", argv[i + 1], argv[i + 2:]
        if arg == "-" or not arg.startswith("-"):
            return options, "script", arg, argv[i + 1:]
        options.append(arg)
        if arg in with_value and i + 1 < len(argv):
            options.append(argv[i + 1])
            i += 1
        i += 1
    return options, "error", "a script or -m module is required", []


def _report(snapshot, key_type, limit, out):
    from .report import noise_filters
    snapshot = snapshot.filter_traces(noise_filters())
    mean = getattr(snapshot, "sample_mean_bytes", 0)
    write = out.write
    if mean:
        # sampled: estimates with one standard error (the Poisson model)
        stats = snapshot.sampled_statistics(key_type)
        write("Sampled snapshot (one sample per %d bytes on average): "
              "sizes and blocks are estimates +- one standard error\n"
              % mean)

        def amount(stat):
            return ("%.1f KiB +- %.1f KiB (~%.0f blocks, %d samples)"
                    % (stat.size / 1024, stat.size_stderr / 1024,
                       stat.count, stat.samples))
    else:
        stats = snapshot.statistics(key_type)

        def amount(stat):
            return "%.1f KiB (%d blocks)" % (stat.size / 1024, stat.count)
    write("Top %d %s\n" % (limit, {"lineno": "lines", "filename": "files",
                                   "traceback": "tracebacks"}[key_type]))
    for rank, stat in enumerate(stats[:limit], 1):
        frame = stat.traceback[0]
        if key_type == "filename":
            write("#%d: %s: %s\n" % (rank, frame.filename, amount(stat)))
            continue
        if key_type == "traceback":
            write("#%d: %s\n" % (rank, amount(stat)))
            for line in stat.traceback.format():
                write(line + "\n")
            continue
        write("#%d: %s:%s: %s\n"
              % (rank, frame.filename, frame.lineno, amount(stat)))
        source = linecache.getline(frame.filename, frame.lineno).strip()
        if source:
            write("    %s\n" % source)
    rest = stats[limit:]
    if rest:
        write("%d other: %.1f KiB\n"
              % (len(rest), sum(s.size for s in rest) / 1024))
    write("Total allocated size: %.1f KiB\n"
          % (sum(s.size for s in stats) / 1024))


def _trim_traceback(tb):
    """Drop this module's and runpy's frames from a traceback's head, so
    the user sees what ``python script.py`` would have shown."""
    ours = {os.path.abspath(__file__), os.path.abspath(runpy.__file__)}
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not (filename.startswith("<frozen runpy")
                or os.path.abspath(filename) in ours):
            break
        tb = tb.tb_next
    return tb


def _finish(args, out):
    import fasttracemalloc
    if not fasttracemalloc.is_tracing():
        out.write("fasttracemalloc: tracing was stopped by the program; "
                  "no snapshot written\n")
        return
    if args.threads:
        snapshot = fasttracemalloc.take_thread_snapshot()
    else:
        snapshot = fasttracemalloc.take_snapshot()
    fasttracemalloc.stop()
    try:
        snapshot.dump(args.output)
    except OSError as exc:
        out.write("fasttracemalloc: cannot write snapshot %r: %s\n"
                  % (args.output, exc))
    else:
        out.write("fasttracemalloc: snapshot of %d traces written to %s\n"
                  % (len(snapshot.traces), args.output))
    if args.top:
        _report(snapshot, args.key_type, args.top, out)
    out.flush()


def cmd_run(argv):
    options, kind, target, target_args = _split(argv)
    parser = _run_parser()
    args = parser.parse_args(options)
    if kind == "error":
        parser.error(target)
    # Resolve the output path now: the program may chdir.
    args.output = os.path.abspath(args.output)
    if kind == "script":
        if not os.path.exists(target):
            sys.stderr.write("python -m fasttracemalloc run: can't open file "
                             "%r: [Errno 2] No such file or directory\n"
                             % target)
            return 2
        sys.argv[:] = [target] + target_args
        sys.path[0] = os.path.dirname(os.path.abspath(target))
    else:
        sys.argv[:] = [target] + target_args  # runpy sets argv[0] to the file

    import fasttracemalloc
    # Load everything _finish() needs now, so none of it is traced.
    fasttracemalloc.take_snapshot, fasttracemalloc.Snapshot
    if args.threads:
        fasttracemalloc.take_thread_snapshot
        fasttracemalloc.set_thread_attribution(True)
    fasttracemalloc.install(takeover=True)
    if fasttracemalloc.is_tracing():
        fasttracemalloc.stop()
    out = sys.stderr
    status = 0
    # Children started with this interpreter's flags (multiprocessing's
    # spawn and forkserver) are traced with the same nframe, as under
    # -X fasttracemalloc=N; they write no snapshot of their own.
    from ._switch import pass_to_children
    pass_to_children("fasttracemalloc=%d" % args.nframe)
    fasttracemalloc.start(args.nframe)
    # The target's globals stay alive until the snapshot, as a script's
    # globals stay alive until interpreter shutdown.
    program_globals = None
    try:
        if kind == "script":
            program_globals = runpy.run_path(target, run_name="__main__")
        else:
            program_globals = runpy.run_module(target, run_name="__main__",
                                               alter_sys=True)
    except SystemExit as exc:
        _finish(args, out)
        raise
    except KeyboardInterrupt:
        _finish(args, out)
        raise
    except BaseException as exc:
        tb = _trim_traceback(exc.__traceback__)
        # the default hook prints exc.__traceback__, so trim it there too
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        status = 1
    _finish(args, out)
    del program_globals
    return status


def _load(parser, path):
    """Load a snapshot file or exit through parser.error (status 2)."""
    from .report import SnapshotFileError, load_snapshot
    try:
        return load_snapshot(path)
    except SnapshotFileError as exc:
        parser.error(str(exc))


def _key_type_options(parser):
    parser.add_argument("--top", type=_nonnegative, default=10,
                        help="entries to print (default 10)")
    parser.add_argument("--key-type", default="lineno",
                        choices=("lineno", "filename", "traceback"),
                        help="how to group the report (default lineno)")


def cmd_report(argv):
    """Print the top entries of a snapshot file (ours or the stdlib's)."""
    parser = argparse.ArgumentParser(
        prog="python -m fasttracemalloc report",
        description="Print the top allocation sites of a snapshot written by "
                    "'run' or by tracemalloc.Snapshot.dump().")
    parser.add_argument("snapshot", help="snapshot file")
    parser.add_argument("--top", type=_nonnegative, default=10,
                        help="entries to print (default 10)")
    parser.add_argument("--key-type", default="lineno",
                        choices=("lineno", "filename", "traceback"),
                        help="how to group the report (default lineno)")
    parser.add_argument("--by-thread", action="store_true",
                        help="per thread: each thread's total, then its top "
                             "entries (a snapshot from 'run --threads' or "
                             "take_thread_snapshot())")
    args = parser.parse_args(argv)
    snapshot = _load(parser, args.snapshot)
    if args.by_thread:
        return _report_by_thread(parser, snapshot, args, sys.stdout)
    _report(snapshot, args.key_type, args.top, sys.stdout)
    return 0


def _report_by_thread(parser, snapshot, args, out):
    from ._threads import split_by_thread, thread_statistics
    try:
        stats = thread_statistics(snapshot)
        parts = split_by_thread(snapshot)
    except ValueError as exc:
        parser.error("%r: %s" % (args.snapshot, exc))
    out.write("Threads by live memory (all traces)\n")
    for st in stats:
        out.write("  %s (tag %d): %.1f KiB (%d blocks)\n"
                  % (st.thread.name, st.thread.tag, st.size / 1024,
                     st.count))
    for st in stats[:args.top]:
        out.write("\n== Thread %s (tag %d)\n" % (st.thread.name,
                                                  st.thread.tag))
        _report(parts[st.thread], args.key_type, args.top, out)
    if len(stats) > args.top:
        out.write("\n%d other threads not shown (--top)\n"
                  % (len(stats) - args.top))
    return 0


def cmd_compare(argv):
    """Print the differences between two snapshot files, like the stdlib
    docs' "compute differences" example."""
    parser = argparse.ArgumentParser(
        prog="python -m fasttracemalloc compare",
        description="Print the largest differences between two snapshot "
                    "files (written by 'run' or tracemalloc.Snapshot.dump(); "
                    "read safely: a file that names anything but "
                    "tracemalloc's classes is refused), like "
                    "Snapshot.compare_to.")
    parser.add_argument("old", help="the earlier snapshot file")
    parser.add_argument("new", help="the later snapshot file")
    _key_type_options(parser)
    parser.add_argument("--cumulative", action="store_true",
                        help="count each block in every frame of its "
                             "traceback (key types lineno and filename)")
    args = parser.parse_args(argv)
    if args.cumulative and args.key_type == "traceback":
        parser.error("--cumulative cannot be used with --key-type traceback")
    old = _load(parser, args.old)
    new = _load(parser, args.new)
    from .report import compare_text
    sys.stdout.write(compare_text(old, new, args.top, args.key_type,
                                  args.cumulative))
    return 0


EXPORT_FORMATS = {"pprof": ".pb.gz", "speedscope": ".speedscope.json"}


def cmd_export(argv):
    """Write a snapshot file as a pprof profile or speedscope JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m fasttracemalloc export",
        description="Convert a snapshot file (written by 'run' or "
                    "tracemalloc.Snapshot.dump(); read safely) to a gzipped "
                    "pprof heap profile or speedscope JSON.")
    parser.add_argument("snapshot", help="snapshot file")
    parser.add_argument("-f", "--format", default="pprof",
                        choices=tuple(EXPORT_FORMATS),
                        help="output format (default pprof)")
    parser.add_argument("-o", "--output",
                        help="output file (default: SNAPSHOT.pb.gz or "
                             "SNAPSHOT.speedscope.json)")
    args = parser.parse_args(argv)
    output = args.output or args.snapshot + EXPORT_FORMATS[args.format]
    snapshot = _load(parser, args.snapshot)
    from . import report
    try:
        if args.format == "pprof":
            report.to_pprof(snapshot, output)
        else:
            report.to_speedscope(snapshot, output,
                                 name=os.path.basename(args.snapshot))
    except OSError as exc:
        parser.error("cannot write %r: %s" % (output, exc))
    sys.stderr.write("fasttracemalloc: %s profile of %d traces written to "
                     "%s\n" % (args.format, len(snapshot.traces), output))
    return 0


def _positive(text):
    value = _nonnegative(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1: %r" % text)
    return value


def _percent(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number: %r" % text)
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError("must be in [0; 100]: %r" % text)
    return value


def cmd_flamegraph(argv):
    """Write a snapshot file (or the change between two) as a flame graph
    in one self-contained HTML file."""
    from . import _flamegraph
    parser = argparse.ArgumentParser(
        prog="python -m fasttracemalloc flamegraph",
        usage="python -m fasttracemalloc flamegraph [options] SNAPSHOT\n"
              "       python -m fasttracemalloc flamegraph --diff [options] "
              "OLD NEW",
        description="Write a snapshot file (written by 'run' or "
                    "tracemalloc.Snapshot.dump(); read safely) as a flame "
                    "graph: one self-contained HTML file, no network needed. "
                    "With --diff, the change from OLD to NEW.")
    parser.add_argument("snapshots", nargs="+", metavar="SNAPSHOT",
                        help="snapshot file (two with --diff: OLD NEW)")
    parser.add_argument("--diff", action="store_true",
                        help="draw the change from OLD to NEW (widths by "
                             "NEW's sizes, growth red, shrink blue)")
    parser.add_argument("-o", "--output",
                        help="output file (default: SNAPSHOT.flamegraph.html"
                             ", or NEW.diff.html with --diff)")
    parser.add_argument("--max-nodes", type=_positive,
                        default=_flamegraph.DEFAULT_MAX_NODES,
                        help="call-path nodes kept, largest first; the "
                             "others are merged into \"(other)\" "
                             "(default %(default)s)")
    parser.add_argument("--min-percent", type=_percent, default=0.0,
                        help="merge nodes under this share of the total "
                             "into \"(other)\" too (default 0)")
    parser.add_argument("--title", help="the page's title")
    args = parser.parse_args(argv)
    want = 2 if args.diff else 1
    if len(args.snapshots) != want:
        parser.error("--diff takes two snapshot files, OLD NEW"
                     if args.diff else
                     "one snapshot file expected (use --diff OLD NEW to "
                     "compare two)")
    suffix = ".diff.html" if args.diff else ".flamegraph.html"
    output = args.output or args.snapshots[-1] + suffix
    snapshots = [_load(parser, path) for path in args.snapshots]
    from . import report
    if args.title is None:
        names = [os.path.basename(p) for p in args.snapshots]
        args.title = " -> ".join(names)
    try:
        data = report.to_flamegraph(
            snapshots[-1], output, old=snapshots[0] if args.diff else None,
            title=args.title, max_nodes=args.max_nodes,
            min_percent=args.min_percent)
    except OSError as exc:
        parser.error("cannot write %r: %s" % (output, exc))
    sys.stderr.write("fasttracemalloc: flame graph%s of %d traces "
                     "(%d nodes) written to %s\n"
                     % (" diff" if args.diff else "",
                        len(snapshots[-1].traces),
                        data["info"]["nodes_kept"], output))
    return 0


USAGE_MAIN = """\
usage: python -m fasttracemalloc COMMAND ...

Commands:
  run      run a program traced from its first line, write the snapshot and
           print the top allocation sites (see 'run --help')
  report   print the top allocation sites of a saved snapshot
           (see 'report --help')
  compare  print the largest differences between two saved snapshots
           (see 'compare --help')
  export   write a saved snapshot as a pprof profile or speedscope JSON
           (see 'export --help')
  flamegraph  write a saved snapshot (or two, --diff) as a flame graph in
           one self-contained HTML file (see 'flamegraph --help')
"""


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(USAGE_MAIN)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "run":
        return cmd_run(rest)
    if command == "report":
        return cmd_report(rest)
    if command == "compare":
        return cmd_compare(rest)
    if command == "export":
        return cmd_export(rest)
    if command == "flamegraph":
        return cmd_flamegraph(rest)
    sys.stderr.write("python -m fasttracemalloc: unknown command %r "
                     "(expected 'run', 'report', 'compare', 'export' or "
                     "'flamegraph')\n"
                     % command)
    return 2
