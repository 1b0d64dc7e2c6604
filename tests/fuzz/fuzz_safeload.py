"""Fuzz target: the safe snapshot loader (python/fasttracemalloc/_safeload.py).

Property: for any bytes, ``_safeload.loads`` returns a plain
``tracemalloc.Snapshot`` or raises ``UnsafeSnapshotError`` -- nothing else
-- and never runs code: the only callables it may reach are tracemalloc's
two classes and the checked reconstructor (a canary in ``os.system`` /
``builtins.eval`` / ``exec`` trips if anything else is called).  A snapshot
that loads must also survive what the CLI does with it (statistics by
lineno and traceback, filter_traces, compare_to).  Both of the loader's
paths run on every input: the C opcode check followed by the C unpickler
(python/src/pickle_scan.c) and the pure-Python unpickler; each must hold
the property on its own.  Seeds: real dumps written by tests/fuzz/run.sh
into the corpus directory.
"""

import builtins
import os
import sys

import atheris

with atheris.instrument_imports():
    import tracemalloc
    from fasttracemalloc import _safeload
    from fasttracemalloc._snapshot import Snapshot


class CodeRan(Exception):
    pass


def _canary(*args, **kwargs):
    raise CodeRan("the loader called a function the file named")


CANARIES = ((os, "system"), (builtins, "eval"), (builtins, "exec"))
REAL = {name: getattr(mod, name) for mod, name in CANARIES}


def load_with_canaries(data, fast):
    # Only around the load: atheris itself uses exec.
    for mod, name in CANARIES:
        setattr(mod, name, _canary)
    try:
        return _safeload.loads(data, fast=fast)
    finally:
        for mod, name in CANARIES:
            setattr(mod, name, REAL[name])


def TestOneInput(data):
    check(data, True)
    check(data, False)


def check(data, fast):
    try:
        snap = load_with_canaries(data, fast)
    except _safeload.UnsafeSnapshotError as exc:
        assert "\n" not in str(exc), str(exc)
        return
    assert type(snap) is tracemalloc.Snapshot
    snap.__class__ = Snapshot
    for key in ("lineno", "filename", "traceback"):
        snap.statistics(key)
    snap.statistics("lineno", cumulative=True)
    snap.filter_traces([tracemalloc.Filter(False, "*x*")])
    snap.compare_to(snap, "lineno")


atheris.Setup(sys.argv, TestOneInput)
atheris.Fuzz()
