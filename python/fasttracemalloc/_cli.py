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
       [--key-type {lineno,filename,traceback}] [--live [--live-log FILE]]
       [--live-socket PATH] [--timeline FILE [--timeline-interval S]]
       [--threads]
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
    parser.add_argument("--live", action="store_true",
                        help="show current and peak traced memory, the top "
                             "lines and memory per thread, refreshed every "
                             "second, while the program runs (its output "
                             "goes to --live-log)")
    parser.add_argument("--live-log", default=None,
                        help="with --live: the program's output (default: "
                             "SNAPSHOT.log)")
    parser.add_argument("--timeline", default=None, metavar="FILE",
                        help="record current and peak traced memory over "
                             "the run into FILE (chart it with "
                             "'python -m fasttracemalloc timeline FILE')")
    parser.add_argument("--timeline-interval", type=float, default=0.1,
                        metavar="S", help="seconds between timeline samples "
                                          "(default 0.1)")
    parser.add_argument("--live-socket", default=None, metavar="PATH",
                        help="answer live-view requests on this Unix socket "
                             "(python -m fasttracemalloc live PATH draws "
                             "them, from another terminal)")
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
    with_value = {"-n", "--nframe", "-o", "--output", "--top", "--key-type",
                  "--live-log", "--live-socket", "--timeline",
                  "--timeline-interval"}
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


def _step(label, snapshot):
    """A Progress for one long step over a snapshot's traces."""
    from ._progress import Progress
    return Progress("%s %s traces" % (label, "{:,}".format(
        len(snapshot.traces))), None)


def _report(snapshot, key_type, limit, out):
    from .report import noise_filters
    with _step("grouping", snapshot):
        return _report_grouped(snapshot.filter_traces(noise_filters()),
                               key_type, limit, out)


def _report_grouped(snapshot, key_type, limit, out):
    import tracemalloc
    fmt = tracemalloc._format_size  # the stdlib's "12.3 KiB" style
    mean = getattr(snapshot, "sample_mean_bytes", 0)
    write = out.write
    if mean:
        # sampled: estimates with one standard error (the Poisson model)
        stats = snapshot.sampled_statistics(key_type)
        write("Sampled snapshot (one sample per %d bytes on average): "
              "sizes and blocks are estimates +- one standard error\n"
              % mean)

        def amount(stat):
            return ("%s +- %s (~%.0f blocks, %d samples)"
                    % (fmt(stat.size, False), fmt(stat.size_stderr, False),
                       stat.count, stat.samples))
    else:
        stats = snapshot.statistics(key_type)

        def amount(stat):
            return "%s (%d blocks)" % (fmt(stat.size, False), stat.count)
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
        write("%d other: %s\n"
              % (len(rest), fmt(sum(s.size for s in rest), False)))
    write("Total allocated size: %s\n"
          % fmt(sum(s.size for s in stats), False))


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


def _end_recording(recorder):
    if recorder is not None:
        recorder.close()


def cmd_run(argv):
    options, kind, target, target_args = _split(argv)
    parser = _run_parser()
    args = parser.parse_args(options)
    if kind == "error":
        parser.error(target)
    # Resolve the output path now: the program may chdir.
    args.output = os.path.abspath(args.output)
    if args.live:
        if args.live_socket:
            parser.error("--live and --live-socket cannot be combined")
        from ._live import run_live
        passed = [o for o in options if o != "--live"]
        if args.live_log is not None:
            i = passed.index("--live-log") if "--live-log" in passed else -1
            if i >= 0:
                del passed[i:i + 2]
            else:  # --live-log=FILE
                passed = [o for o in passed if not o.startswith("--live-log")]
        target_argv = (["-m", target] if kind == "module" else
                       ["--", target]) + target_args
        log = os.path.abspath(args.live_log or args.output + ".log")
        return run_live(passed, target_argv, log)
    if args.live_log is not None:
        parser.error("--live-log needs --live")
    if not args.timeline_interval > 0:
        parser.error("--timeline-interval must be > 0")
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
    server = None
    if args.live_socket:
        from ._live import LiveServer
        try:
            server = LiveServer(os.path.abspath(args.live_socket))
        except OSError as exc:
            parser.error("cannot listen on %r: %s" % (args.live_socket, exc))
    recorder = None
    if args.timeline:
        from ._timeline import Recorder
        try:
            recorder = Recorder(os.path.abspath(args.timeline),
                                args.timeline_interval)
        except OSError as exc:
            parser.error("cannot write %r: %s" % (args.timeline, exc))
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
        _end_recording(recorder)
        _finish(args, out)
        raise
    except KeyboardInterrupt:
        _end_recording(recorder)
        _finish(args, out)
        raise
    except BaseException as exc:
        tb = _trim_traceback(exc.__traceback__)
        # the default hook prints exc.__traceback__, so trim it there too
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        status = 1
    _end_recording(recorder)
    _finish(args, out)
    if server is not None:
        server.close()
    del program_globals
    return status


def _load(parser, path):
    """Load a snapshot file or exit through parser.error (status 2)."""
    from .report import SnapshotFileError, load_snapshot
    try:
        return load_snapshot(path, progress=True)
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
    with _step("comparing", new):
        text = compare_text(old, new, args.top, args.key_type,
                            args.cumulative)
    sys.stdout.write(text)
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
        with _step("exporting", snapshot):
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
        with _step("drawing", snapshots[-1]):
            data = report.to_flamegraph(
                snapshots[-1], output,
                old=snapshots[0] if args.diff else None, title=args.title,
                max_nodes=args.max_nodes, min_percent=args.min_percent)
    except OSError as exc:
        parser.error("cannot write %r: %s" % (output, exc))
    sys.stderr.write("fasttracemalloc: flame graph%s of %d traces "
                     "(%d nodes) written to %s\n"
                     % (" diff" if args.diff else "",
                        len(snapshots[-1].traces),
                        data["info"]["nodes_kept"], output))
    return 0


def cmd_live(argv):
    """Draw the live view of a program started with
    ``run --live-socket PATH``."""
    parser = argparse.ArgumentParser(
        prog="python -m fasttracemalloc live",
        description="Show, refreshed every second, the current and peak "
                    "traced memory, the top lines and memory per thread of "
                    "a program started with 'run --live-socket PATH'.")
    parser.add_argument("socket", help="the PATH given to --live-socket")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="seconds between refreshes (default 1)")
    args = parser.parse_args(argv)
    if not args.interval > 0:
        parser.error("--interval must be > 0")
    from ._live import view
    try:
        last = view(args.socket, interval=args.interval, connect_timeout=0)
    except KeyboardInterrupt:
        return 0
    if last is None:
        parser.error("no program answers on %r" % args.socket)
    sys.stdout.write("fasttracemalloc live: the program went away\n")
    return 0


def cmd_timeline(argv):
    """Chart a timeline recorded by ``run --timeline FILE``."""
    parser = argparse.ArgumentParser(
        prog="python -m fasttracemalloc timeline",
        description="Write the current and peak traced memory recorded by "
                    "'run --timeline FILE' as a chart: one self-contained "
                    "HTML page (an SVG, no script, no network).")
    parser.add_argument("timeline", help="the file --timeline wrote")
    parser.add_argument("-o", "--output",
                        help="output file (default: TIMELINE.html)")
    parser.add_argument("--title", help="the page's title")
    args = parser.parse_args(argv)
    from ._timeline import TimelineError, write_chart
    output = args.output or args.timeline + ".html"
    try:
        samples = write_chart(args.timeline, output, args.title)
    except (TimelineError, OSError) as exc:
        parser.error(str(exc))
    sys.stderr.write("fasttracemalloc: chart of %d samples written to %s\n"
                     % (len(samples), output))
    return 0


def _pid(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a process id: %r" % text)
    if value <= 0:
        raise argparse.ArgumentTypeError("not a process id: %r" % text)
    return value


def cmd_attach(argv, action):
    """attach / detach / snapshot PID: tracing in a running process
    (3.14+, sys.remote_exec; see _attach)."""
    parser = argparse.ArgumentParser(
        prog="python -m fasttracemalloc %s" % action,
        description={
            "attach": "Start tracing in a running Python 3.14+ process "
                      "(which must be able to import fasttracemalloc).",
            "detach": "Stop tracing in a process attached to before.",
            "snapshot": "Write a snapshot of a running process that is "
                        "being traced (started with attach, run or the "
                        "start-up switch)."}[action])
    parser.add_argument("pid", type=_pid, help="the process id")
    if action == "attach":
        parser.add_argument("-n", "--nframe", type=_nframe, default=1,
                            help="frames stored per traceback (default 1)")
    if action == "snapshot":
        parser.add_argument("-o", "--output", default=None,
                            help="snapshot file (default: "
                                 "fasttracemalloc-PID.snapshot)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for the process (default 30)")
    args = parser.parse_args(argv)
    from . import _attach
    try:
        if action == "attach":
            res = _attach.attach(args.pid, args.nframe, args.timeout)
            sys.stdout.write("fasttracemalloc: process %d is tracing with "
                             "nframe=%d\n" % (args.pid, res["nframe"]))
        elif action == "detach":
            _attach.detach(args.pid, args.timeout)
            sys.stdout.write("fasttracemalloc: process %d stopped tracing\n"
                             % args.pid)
        else:
            out = args.output or "fasttracemalloc-%d.snapshot" % args.pid
            _attach.snapshot(args.pid, out, args.timeout)
            sys.stdout.write("fasttracemalloc: snapshot of process %d "
                             "written to %s\n" % (args.pid, out))
    except _attach.AttachError as exc:
        parser.error(str(exc))
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
  live     draw, every second, the traced memory of a program started with
           'run --live-socket PATH' (see 'live --help'; 'run --live' does
           both in one terminal)
  timeline chart the traced memory over time that 'run --timeline FILE'
           recorded (see 'timeline --help')
  attach PID / detach PID / snapshot PID
           start or stop tracing in a running Python 3.14+ process, or
           write a snapshot of it, from outside (sys.remote_exec)
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
    if command == "live":
        return cmd_live(rest)
    if command in ("attach", "detach", "snapshot"):
        return cmd_attach(rest, command)
    if command == "timeline":
        return cmd_timeline(rest)
    sys.stderr.write("python -m fasttracemalloc: unknown command %r "
                     "(expected 'run', 'report', 'compare', 'export', "
                     "'flamegraph', 'live', 'timeline', 'attach', "
                     "'detach' or 'snapshot')\n"
                     % command)
    return 2
