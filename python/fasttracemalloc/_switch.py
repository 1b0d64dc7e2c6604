"""The start-up switch: FASTTRACEMALLOC=N[,options] or -X fasttracemalloc[=N].

Options (sampled and continuous mode) follow the number after commas:
``FASTTRACEMALLOC=25,sample=512k,dir=/var/prof,interval=60,keep=10`` (see
"options after the number of frames" below).

Owns: reading the switch and starting the engine during interpreter start-up.
It is imported by ``fasttracemalloc_switch.pth`` (site-packages), whose one
line only imports this module when the switch is present, so processes that
do not ask for tracing pay nothing but that check.

Rules (mirroring the builtin's -X tracemalloc / PYTHONTRACEMALLOC):
  * the environment variable is ignored under -E/-I
    (``sys.flags.ignore_environment``); -S disables all .pth files;
  * an empty FASTTRACEMALLOC counts as unset; ``-X fasttracemalloc`` alone
    means 1; ``-X fasttracemalloc=`` and the value 0 leave tracing off;
  * -X wins over the environment variable, but an invalid environment
    variable is reported even then (the builtin parses it first too);
  * a value that is not an integer in [0; 65535] prints one line to stderr
    naming the variable and the valid range and exits with status 1, the
    status of the builtin's ``-X tracemalloc=x``;
  * if the builtin tracemalloc is tracing too (-X tracemalloc), it is
    stopped first: the user asked for fasttracemalloc.
If the package itself cannot be imported (a broken install, or an
address-space limit too tight to map the extension) or start-up runs out
of memory, the .pth line prints ONE line naming the error and start-up
continues untraced: the error is printed, not hidden, and never ends the
interpreter.  (It used to be left to site.py, whose own traceback printing
then failed under `ulimit -v` with "Fatal Python error: init_import_site".)
An engine that cannot start (its memory, its merger thread) is reported
the same way by main().

Nothing else is imported at start-up: the switch loads only the engine
(the C module and the small package modules it needs), like ``-X
tracemalloc``, which imports nothing.  The stdlib ``tracemalloc`` module
(and with it pickle, linecache, fnmatch, re ...) is loaded only when the
program imports it; a one-shot finder at the head of ``sys.meta_path``
then runs install() right after the module's own code ran, so every
``import tracemalloc`` still gets the engine.  The switch's own objects are
made before the engine starts, and what its finders do after an import is
done inside the package's "do not trace" scope: the program's traces are
the builtin's.

Children: ``-X fasttracemalloc[=N]`` is passed on to the children that
multiprocessing (spawn, forkserver) and test.support start with this
interpreter's flags, as ``-X tracemalloc`` is (see "children" below).  (Programs that control their
own imports, e.g. pyperformance's pickle_pure_python which blocks the C
accelerator before importing pickle, run unchanged.)

Threads: runs once, in the main thread, during site import.
"""

import os
import sys

ENV_VAR = "FASTTRACEMALLOC"
XOPTION = "fasttracemalloc"
MAX_NFRAME = 65535


class SwitchError(Exception):
    pass


def _shown(text):
    """The value as the error message quotes it: its repr (one line), cut
    to 60 characters."""
    shown = repr(text)
    return shown if len(shown) <= 60 else shown[:56] + "...'"


def parse_nframe(text, where):
    """Return the number of frames for a switch value (0 = off).

    Accepts what the builtin's parser accepts: optional leading blanks, an
    optional sign, ASCII digits."""
    body = text.lstrip(" \t\n\r\f\v")
    digits = body[1:] if body[:1] in ("+", "-") else body
    if body == "":
        return 0
    if not (digits.isascii() and digits.isdigit()):
        raise SwitchError("%s: invalid number of frames %s: expected an "
                          "integer in range [1; %d] (0 disables tracing)"
                          % (where, _shown(text), MAX_NFRAME))
    # int() refuses strings of over 4300 digits (3.11+): a 5000-digit value
    # used to end the .pth line with a traceback and run untraced.  A long
    # run of digits is out of range before it is converted
    # (tests/fuzz/fuzz_switch.py keeps checking the parser).
    significant = digits.lstrip("0") or "0"
    value = int(significant) if len(significant) <= 9 else MAX_NFRAME + 1
    if body[:1] == "-":
        value = -value
    if value < 0 or value > MAX_NFRAME:
        raise SwitchError("%s: invalid number of frames %s: the number of "
                          "frames must be in range [1; %d] (0 disables "
                          "tracing)" % (where, _shown(text), MAX_NFRAME))
    return value


# --- options after the number of frames ------------------------------------
#
# FASTTRACEMALLOC=N[,name=value...] (and -X fasttracemalloc=N[,...]):
#   sample=SIZE    sampled mode, one sample per SIZE bytes on average
#                  (bytes, or with a k/m/g suffix: KiB, MiB, GiB), as
#                  fasttracemalloc.start_sampled(N, mean_bytes=SIZE)
#   seed=INT       the sampler's seed (with sample= only)
#   dir=DIRECTORY  continuous mode: write a profile there periodically
#                  (fasttracemalloc.start_continuous; no ',' in the path)
#   interval=SECS  its period in seconds (default 60; with dir= only)
#   keep=K         how many files it keeps (default 10; with dir= only)
#   format=F       pprof (default) or snapshot (with dir= only)
#   merger=M       thread (default) or inline: whether an exact session
#                  runs a merger thread (fasttracemalloc.set_merger_thread;
#                  inline: none -- an allocating thread whose ring is full
#                  merges, as do exiting threads and queries)
# A bad option or value is reported like a bad number of frames: one line
# naming the variable, exit status 1.

OPTIONS = ("sample", "seed", "dir", "interval", "keep", "format", "merger")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
MAX_MEAN = 1 << 40


def parse_size(text, where):
    """Bytes for a sample= value: digits with an optional k/m/g suffix."""
    body = text.strip()
    unit = body[-1:].lower() if body[-1:].isalpha() else ""
    digits = body[:-1] if unit else body
    if unit in _UNITS and digits.isascii() and digits.isdigit() and \
            len(digits) <= 15:
        value = int(digits) * _UNITS[unit]
        if 1 <= value <= MAX_MEAN:
            return value
    raise SwitchError("%s: invalid sampling mean %s: expected a size in "
                      "bytes in range [1; %d], optionally with a k, m or g "
                      "suffix (e.g. sample=512k)"
                      % (where, _shown(text), MAX_MEAN))


def _parse_int(text, name, where, low, high):
    body = text.strip()
    digits = body[1:] if body[:1] in ("+", "-") else body
    if digits.isascii() and digits.isdigit() and len(digits) <= 20:
        value = int(body)
        if low <= value <= high:
            return value
    raise SwitchError("%s: invalid %s %s: expected an integer in range "
                      "[%d; %d]" % (where, name, _shown(text), low, high))


def parse_options(items, where):
    """The options after the number of frames, as a dict (name -> value);
    raise SwitchError."""
    options = {}
    for item in items:
        name, eq, value = item.partition("=")
        name = name.strip()
        if not eq or name not in OPTIONS:
            raise SwitchError("%s: invalid option %s: expected name=value "
                              "with name one of %s"
                              % (where, _shown(item), ", ".join(OPTIONS)))
        if name in options:
            raise SwitchError("%s: option %s given twice" % (where, name))
        if name == "sample":
            options[name] = parse_size(value, where)
        elif name == "seed":
            options[name] = _parse_int(value, "seed", where, 0, 2 ** 64 - 1)
        elif name == "keep":
            options[name] = _parse_int(value, "keep", where, 1, 1000000)
        elif name == "interval":
            try:
                seconds = float(value)
            except ValueError:
                seconds = -1.0
            if not 0 < seconds <= 1e7:
                raise SwitchError("%s: invalid interval %s: expected a "
                                  "number of seconds in range (0; 1e7]"
                                  % (where, _shown(value)))
            options[name] = seconds
        elif name == "merger":
            if value not in ("thread", "inline"):
                raise SwitchError("%s: invalid merger %s: expected thread "
                                  "or inline" % (where, _shown(value)))
            options[name] = value
        elif name == "format":
            if value not in ("pprof", "snapshot"):
                raise SwitchError("%s: invalid format %s: expected pprof "
                                  "or snapshot" % (where, _shown(value)))
            options[name] = value
        else:  # dir
            if not value:
                raise SwitchError("%s: invalid option %s: dir needs a "
                                  "directory" % (where, _shown(item)))
            options[name] = value
    if "seed" in options and "sample" not in options:
        raise SwitchError("%s: option seed needs sample=SIZE" % where)
    for name in ("interval", "keep", "format"):
        if name in options and "dir" not in options:
            raise SwitchError("%s: option %s needs dir=DIRECTORY"
                              % (where, name))
    return options


def parse_switch(text, where):
    """(nframe, options) for a whole switch value: the number of frames
    (parse_nframe), then comma-separated options."""
    head, comma, rest = text.partition(",")
    nframe = parse_nframe(head, where)
    options = parse_options(rest.split(","), where) if comma else {}
    return nframe, options


def requested_nframe(xoptions=None, environ=None, ignore_environment=None):
    """Return the nframe the switch asks for (0 = off); raise SwitchError."""
    return requested(xoptions, environ, ignore_environment)[0]


def requested(xoptions=None, environ=None, ignore_environment=None):
    """Return (nframe, options) the switch asks for (0 = off); raise
    SwitchError.  The -X option, when given, replaces the variable's
    value as a whole (its options too)."""
    if xoptions is None:
        xoptions = sys._xoptions
    if environ is None:
        environ = os.environ
    if ignore_environment is None:
        ignore_environment = bool(sys.flags.ignore_environment)
    nframe, options = 0, {}
    if not ignore_environment:
        value = environ.get(ENV_VAR, "")
        if value:
            nframe, options = parse_switch(value, ENV_VAR)
    if XOPTION in xoptions:
        value = xoptions[XOPTION]
        if value is True:
            nframe, options = 1, {}
        else:
            nframe, options = parse_switch(value, "-X %s=NFRAME" % XOPTION)
    return nframe, options


def _fail(message):
    sys.stderr.write("fasttracemalloc: %s\n" % message)
    sys.stderr.flush()
    # SystemExit would be reported by site.py as a failed .pth line rather
    # than ending the process; exit with the builtin's status for -X
    # tracemalloc=bad (1).
    os._exit(1)


_main_ran = False


def main():
    # site.py may process the .pth twice (3.11's venv() and main() both
    # call addsitepackages() for a venv's site-packages): the switch acts
    # once, so a failing start is reported once, the finder installed
    # once and one continuous-mode writer started.
    global _main_ran
    if _main_ran:
        return
    _main_ran = True
    try:
        nframe, options = requested()
    except SwitchError as exc:
        _fail(str(exc))
    # Everything below that allocates runs before the engine starts: the
    # switch's own objects are never traced.
    if XOPTION in sys._xoptions:
        value = sys._xoptions[XOPTION]
        pass_to_children(XOPTION if value is True else
                         "%s=%s" % (XOPTION, value))
    if nframe == 0:
        return
    import _tracemalloc
    from . import _backend
    if not _backend.is_builtin and _tracemalloc.is_tracing():
        _tracemalloc.stop()
    if "tracemalloc" in sys.modules:
        from ._install import install
        install()
    else:
        sys.meta_path.insert(0, _AfterImport("tracemalloc", _install))
    if "merger" in options and not _backend.is_builtin:
        _backend.engine._set_merger_thread(options["merger"] == "thread")
    try:
        if "sample" in options:
            from ._sampling import start_sampled
            start_sampled(nframe, mean_bytes=options["sample"],
                          seed=options.get("seed"))
        else:
            _backend.engine.start(nframe)
    except (MemoryError, RuntimeError) as exc:
        # The engine could not get its memory or its merger thread (e.g.
        # under ulimit -v): say so in one line and let the program run
        # untraced, rather than a .pth traceback.
        sys.stderr.write("fasttracemalloc: cannot start tracing (%s%s); "
                         "the program runs untraced\n"
                         % (type(exc).__name__,
                            ": %s" % exc if str(exc) else ""))
        sys.stderr.flush()
        return
    if "dir" in options:
        _backend.suspend()
        try:
            from ._continuous import start_continuous
            start_continuous(options["dir"],
                             interval=options.get("interval", 60.0),
                             keep=options.get("keep", 10),
                             format=options.get("format", "pprof"))
        except (OSError, RuntimeError) as exc:
            sys.stderr.write("fasttracemalloc: cannot start continuous "
                             "mode (%s: %s); tracing goes on without it\n"
                             % (type(exc).__name__, exc))
            sys.stderr.flush()
        finally:
            _backend.resume()


def _install(module):
    from ._install import install
    install()


# --- children -------------------------------------------------------------
#
# The builtin's -X tracemalloc=N reaches the Python children that are
# started with this interpreter's flags because
# subprocess._args_from_interpreter_flags() lists it (3.11-3.14: a fixed
# list of -X options; 3.15: every -X option).  multiprocessing's spawn and
# forkserver start methods (and its resource tracker) build their command
# lines from it, through multiprocessing.util, which binds the function
# when it is imported; test.support uses it too.  -X fasttracemalloc=N is
# made to travel the same way: once ``subprocess`` is imported (or at once,
# if it already is), its function is wrapped to return the same list with
# the -X fasttracemalloc option replaced by ours.  FASTTRACEMALLOC=N needs
# nothing: the environment is inherited (and ignored under -E/-I, as
# PYTHONTRACEMALLOC is).  Children forked by the ``fork`` start method or
# by the forkserver keep tracing as the builtin's do.

# The -X argument children get ("fasttracemalloc=N"); None until
# pass_to_children() is called.  Main thread, before children are started.
_child_xoption = None


def pass_to_children(xoption):
    """Make children started with this interpreter's flags get
    ``-X xoption`` (xoption is "fasttracemalloc" or "fasttracemalloc=N")."""
    global _child_xoption
    _child_xoption = xoption
    subprocess = sys.modules.get("subprocess")
    if subprocess is None:
        for finder in sys.meta_path:
            if getattr(finder, "name", None) == "subprocess" and \
                    isinstance(finder, _AfterImport):
                return
        sys.meta_path.insert(0, _AfterImport("subprocess", _wrap_flags))
        return
    _wrap_flags(subprocess)
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        _wrap_flags(util)


def _wrap_flags(module):
    """Replace module._args_from_interpreter_flags by a wrapper adding
    ``-X _child_xoption`` (once per module)."""
    original = getattr(module, "_args_from_interpreter_flags", None)
    if original is None or hasattr(original, "_fasttracemalloc_original"):
        return

    def _args_from_interpreter_flags():
        args = original()
        xoption = _child_xoption
        if xoption is None:
            return args
        kept = []
        i = 0
        while i < len(args):
            if (args[i] == "-X" and i + 1 < len(args)
                    and args[i + 1].partition("=")[0] == XOPTION):
                i += 2  # 3.15 passes every -X option: ours replaces it
                continue
            kept.append(args[i])
            i += 1
        kept += ["-X", xoption]
        return kept

    _args_from_interpreter_flags.__doc__ = original.__doc__
    _args_from_interpreter_flags.__wrapped__ = original
    _args_from_interpreter_flags._fasttracemalloc_original = original
    module._args_from_interpreter_flags = _args_from_interpreter_flags


# --- import hooks ---------------------------------------------------------

class _AfterImport:
    """A meta path finder that waits for ``import NAME``: it finds the
    module with the finders behind it, wraps its loader so ``action(module)``
    runs right after the module's code, and removes itself (one shot).
    Returns None for every other name, so imports are otherwise untouched.
    The action is the package's own work: it runs untraced.
    """

    def __init__(self, name, action):
        self.name = name
        self.action = action

    def find_spec(self, name, path=None, target=None):
        if name != self.name:
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _ActAfterExec(spec.loader, self.action)
        return spec

    def invalidate_caches(self):
        pass


class _ActAfterExec:
    """The real loader of a module, plus an action once it ran; the
    module ends up with its real loader in __loader__ and __spec__."""

    def __init__(self, loader, action):
        self.loader = loader
        self.action = action

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        spec = module.__spec__
        if spec is not None:
            spec.loader = self.loader
        module.__loader__ = self.loader
        self.loader.exec_module(module)
        # Not imported when the switch left tracing off (-X
        # fasttracemalloc=0): then nothing is traced and nothing may be
        # imported.
        backend = sys.modules.get(__package__ + "._backend")
        if backend is None:
            self.action(module)
            return
        backend.suspend()
        try:
            self.action(module)
        finally:
            backend.resume()
