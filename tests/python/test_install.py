"""install()/uninstall(): the stdlib tracemalloc module runs on the engine."""

import _tracemalloc
import pytest
import tracemalloc
from unittest import mock

import fasttracemalloc
from fasttracemalloc import _install

from conftest import needs_engine, run_python

NAMES = _install.ENGINE_NAMES + ("take_snapshot",)


def test_install_rebinds_and_uninstall_restores(stopped):
    originals = {name: getattr(tracemalloc, name) for name in NAMES}
    assert not fasttracemalloc.is_installed()
    fasttracemalloc.install()
    assert fasttracemalloc.is_installed()
    for name in _install.ENGINE_NAMES:
        assert getattr(tracemalloc, name) is getattr(fasttracemalloc, name)
    assert tracemalloc.take_snapshot is not originals["take_snapshot"]
    fasttracemalloc.install()                 # idempotent
    fasttracemalloc.uninstall()
    assert not fasttracemalloc.is_installed()
    for name in NAMES:
        assert getattr(tracemalloc, name) is originals[name], name
    fasttracemalloc.uninstall()               # idempotent


def test_installed_module_works(stopped):
    fasttracemalloc.install()
    tracemalloc.start(3)
    assert fasttracemalloc.is_tracing() and tracemalloc.is_tracing()
    data = [bytes(1000) for _ in range(10)]
    snap = tracemalloc.take_snapshot()
    assert type(snap) is fasttracemalloc.Snapshot
    assert snap.traceback_limit == 3
    tb = tracemalloc.get_object_traceback(data[3])
    assert tb is not None and tb[-1].filename == __file__
    assert any(stat.traceback[0].filename == __file__
               for stat in snap.statistics("lineno")[:20])
    tracemalloc.stop()
    assert not fasttracemalloc.is_tracing()
    with pytest.raises(RuntimeError, match="must be tracing"):
        tracemalloc.take_snapshot()


def test_installed_take_snapshot_honours_patches(stopped):
    """CPython's TestSnapshot.test_create_snapshot patches the module's
    globals; the installed take_snapshot must read them from the module."""
    fasttracemalloc.install()
    raw_traces = [(0, 5, (('a.py', 2),), 10)]
    with mock.patch.object(tracemalloc, "is_tracing", return_value=True), \
            mock.patch.object(tracemalloc, "get_traceback_limit",
                              return_value=5), \
            mock.patch.object(tracemalloc, "_get_traces",
                              return_value=raw_traces):
        snap = tracemalloc.take_snapshot()
    assert snap.traceback_limit == 5
    assert snap.traces._traces == raw_traces


@needs_engine
def test_install_refuses_while_builtin_traces(stopped):
    _tracemalloc.start(7)
    with pytest.raises(RuntimeError, match="builtin tracemalloc is already "
                                           "tracing.*takeover=True"):
        fasttracemalloc.install()
    assert not fasttracemalloc.is_installed()
    assert _tracemalloc.is_tracing() and not fasttracemalloc.is_tracing()
    _tracemalloc.stop()


@needs_engine
def test_install_takeover(stopped):
    _tracemalloc.start(7)
    fasttracemalloc.install(takeover=True)
    assert not _tracemalloc.is_tracing()
    assert fasttracemalloc.is_tracing()
    assert tracemalloc.get_traceback_limit() == 7
    obj = bytes(4096)
    assert len(tracemalloc.get_object_traceback(obj)) >= 1
    fasttracemalloc.uninstall()
    assert not fasttracemalloc.is_tracing()   # uninstall stops the engine
    assert not tracemalloc.is_tracing()


@needs_engine
def test_builtin_usable_after_uninstall(stopped):
    fasttracemalloc.install()
    tracemalloc.start()
    fasttracemalloc.uninstall()
    tracemalloc.start(2)                      # the builtin again
    assert _tracemalloc.is_tracing() and not fasttracemalloc.is_tracing()
    obj = bytes(4096)
    assert tracemalloc.get_object_traceback(obj) is not None
    tracemalloc.stop()


RESOURCE_WARNING_SCRIPT = """\
import gc, sys, fasttracemalloc, tracemalloc
fasttracemalloc.install()
tracemalloc.start(5)
def leak(path):
    handle = open(path, "rb")
leak(sys.argv[1])
gc.collect()
"""


def test_resource_warning_shows_allocation_site(tmp_path):
    """warnings' "Object allocated at" lines come from the installed engine."""
    script = tmp_path / "leaky.py"
    script.write_text(RESOURCE_WARNING_SCRIPT)
    proc = run_python("-W", "always::ResourceWarning", str(script),
                      str(script))
    assert proc.returncode == 0, proc.stderr
    assert "ResourceWarning: unclosed file" in proc.stderr
    assert "Object allocated at (most recent call last):" in proc.stderr
    assert 'File "%s", lineno 5' % script in proc.stderr, proc.stderr
