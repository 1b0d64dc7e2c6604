"""The start-up switch: FASTTRACEMALLOC=N or -X fasttracemalloc[=N].

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
If the package itself cannot be imported (a broken install), site.py
reports the failing .pth line with its traceback and start-up continues
untraced: the error is printed, not hidden.
The engine is started before the stdlib ``tracemalloc`` module (and its
imports) is loaded, then install() makes ``import tracemalloc`` use it.

Threads: runs once, in the main thread, during site import.
"""

import os
import sys

ENV_VAR = "FASTTRACEMALLOC"
XOPTION = "fasttracemalloc"
MAX_NFRAME = 65535


class SwitchError(Exception):
    pass


def parse_nframe(text, where):
    """Return the number of frames for a switch value (0 = off).

    Accepts what the builtin's parser accepts: optional leading blanks, an
    optional sign, ASCII digits."""
    body = text.lstrip(" \t\n\r\f\v")
    digits = body[1:] if body[:1] in ("+", "-") else body
    if body == "":
        return 0
    if not (digits.isascii() and digits.isdigit()):
        raise SwitchError("%s: invalid number of frames %r: expected an "
                          "integer in range [1; %d] (0 disables tracing)"
                          % (where, text, MAX_NFRAME))
    value = int(body)
    if value < 0 or value > MAX_NFRAME:
        raise SwitchError("%s: invalid number of frames %r: the number of "
                          "frames must be in range [1; %d] (0 disables "
                          "tracing)" % (where, text, MAX_NFRAME))
    return value


def requested_nframe(xoptions=None, environ=None, ignore_environment=None):
    """Return the nframe the switch asks for (0 = off); raise SwitchError."""
    if xoptions is None:
        xoptions = sys._xoptions
    if environ is None:
        environ = os.environ
    if ignore_environment is None:
        ignore_environment = bool(sys.flags.ignore_environment)
    nframe = 0
    if not ignore_environment:
        value = environ.get(ENV_VAR, "")
        if value:
            nframe = parse_nframe(value, ENV_VAR)
    if XOPTION in xoptions:
        value = xoptions[XOPTION]
        if value is True:
            nframe = 1
        else:
            nframe = parse_nframe(value, "-X %s=NFRAME" % XOPTION)
    return nframe


def _fail(message):
    sys.stderr.write("fasttracemalloc: %s\n" % message)
    sys.stderr.flush()
    # SystemExit would be reported by site.py as a failed .pth line rather
    # than ending the process; exit with the builtin's status for -X
    # tracemalloc=bad (1).
    os._exit(1)


def main():
    try:
        nframe = requested_nframe()
    except SwitchError as exc:
        _fail(str(exc))
    if nframe == 0:
        return
    import _tracemalloc
    from . import _backend
    if not _backend.is_builtin and _tracemalloc.is_tracing():
        _tracemalloc.stop()
    _backend.engine.start(nframe)
    from ._install import install
    install()
