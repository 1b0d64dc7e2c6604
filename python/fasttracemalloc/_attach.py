"""Attach to a running Python process (issue 9, item 4): start or stop
tracing in it, and take a snapshot of it from outside, without restarting
it.

Owns: ``attach(pid, nframe)``, ``detach(pid)`` and ``snapshot(pid, path)``,
behind ``python -m fasttracemalloc attach|detach|snapshot PID``.

How: CPython 3.14's ``sys.remote_exec(pid, script)`` asks the target
interpreter to run a script file at its next safe point (PEP 768).  The
script written here imports fasttracemalloc *in the target* (so the
target must be able to import it: the same environment) and calls
``start``/``stop``/``take_snapshot().dump``.  Each script writes a small
status file when it is done (with the error, if any), which this side
waits for: remote_exec itself returns before the script runs, and the
script runs only when a thread of the target next executes Python code
(a target blocked in one long C call answers when the call returns).

Where it does not work, and what happens instead (a one-line error, exit
status 2): interpreters before 3.14 (no remote_exec; a debugger-based
attach, e.g. gdb calling PyRun_SimpleString, is not provided: it can
deadlock a target stopped inside the allocator), a target started with
``-X disable_remote_debug`` or ``PYTHON_DISABLE_REMOTE_DEBUG``, a target
of another Python version, and no permission to ptrace it (Linux's
yama.ptrace_scope; root or the same user with scope 0).

Threads: the caller's only; nothing shared.
"""

import json
import os
import sys
import tempfile
import time

__all__ = ["AttachError", "attach", "detach", "snapshot"]

TIMEOUT = 30.0  # seconds to wait for the target to run the script


class AttachError(Exception):
    """The target cannot be reached or refused the request."""


# {status!r} is the status file; the work is in a try so that any error in
# the target is reported back instead of printed into its stderr.
_SCRIPT = """\
import json as _j, os as _o
_st = {status!r}
try:
    import fasttracemalloc as _ftm
{body}
    _r = {{"ok": True, "tracing": _ftm.is_tracing(),
           "nframe": _ftm.get_traceback_limit()}}
except BaseException as _e:
    _r = {{"ok": False, "error": "%s: %s" % (type(_e).__name__, _e)}}
with open(_st + ".tmp", "w") as _f:
    _j.dump(_r, _f)
_o.rename(_st + ".tmp", _st)
del _j, _o, _st, _r, _f
try:
    del _ftm
except NameError:
    pass
"""


def _remote_exec():
    fn = getattr(sys, "remote_exec", None)
    if fn is None:
        raise AttachError(
            "attaching needs Python 3.14 or later (sys.remote_exec); this "
            "is %d.%d" % sys.version_info[:2])
    return fn


def _run(pid, body, timeout):
    remote_exec = _remote_exec()
    if pid == os.getpid():
        raise AttachError("cannot attach to this process itself")
    tmp = tempfile.mkdtemp(prefix="fasttracemalloc-attach-")
    os.chmod(tmp, 0o755)  # the target may run as another user
    status = os.path.join(tmp, "status.json")
    script = os.path.join(tmp, "script.py")
    with open(script, "w") as fp:
        fp.write(_SCRIPT.format(status=status, body=body))
    os.chmod(script, 0o644)
    try:
        try:
            remote_exec(pid, script)
        except (OSError, RuntimeError, ValueError) as exc:
            raise AttachError("cannot run code in process %d: %s"
                              % (pid, exc))
        deadline = time.monotonic() + timeout
        while not os.path.exists(status):
            if time.monotonic() > deadline:
                raise AttachError(
                    "process %d did not run the request within %.0f s (is "
                    "it running Python code? a thread blocked in one C call "
                    "answers when the call returns)" % (pid, timeout))
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                raise AttachError("process %d exited" % pid)
            time.sleep(0.05)
        with open(status) as fp:
            result = json.load(fp)
    finally:
        for name in (status, status + ".tmp", script):
            try:
                os.unlink(name)
            except OSError:
                pass
        try:
            os.rmdir(tmp)
        except OSError:
            pass
    if not result.get("ok"):
        raise AttachError("process %d: %s" % (pid, result.get("error")))
    return result


def attach(pid, nframe=1, timeout=TIMEOUT):
    """Start tracing in process ``pid`` (install() too, so the target's own
    ``tracemalloc`` users see the engine).  Returns the target's
    {"tracing", "nframe"}."""
    body = ("    _ftm.install()\n"
            "    if not _ftm.is_tracing():\n"
            "        _ftm.start(%d)\n" % int(nframe))
    return _run(pid, body, timeout)


def detach(pid, timeout=TIMEOUT):
    """Stop tracing in process ``pid``."""
    return _run(pid, "    _ftm.stop()\n", timeout)


def snapshot(pid, path, timeout=TIMEOUT):
    """Write a snapshot of process ``pid`` to ``path`` (the target writes
    it; the directory must be writable by the target)."""
    path = os.path.abspath(path)
    body = ("    if not _ftm.is_tracing():\n"
            "        raise RuntimeError('not tracing: attach first')\n"
            "    _ftm.take_snapshot().dump(%r)\n" % path)
    return _run(pid, body, timeout)
