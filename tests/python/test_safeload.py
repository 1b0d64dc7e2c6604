"""The safe snapshot loader (python/fasttracemalloc/_safeload.py) and the
CLI on hostile files (issue 11, item 4).

Owns: real snapshot files (the builtin's Snapshot.dump(), ours, and
pickle.dumps of ours) load and equal what Snapshot.load gives; pickles that
name other callables are refused *without running them* (each would create
a marker file); damaged files and wrong-typed contents give
UnsafeSnapshotError; the CLI turns all of it into a one-line error and exit
status 2.
"""

import io
import os
import pickle
import subprocess
import sys
import tracemalloc

import pytest

from conftest import needs_engine

from fasttracemalloc import _safeload, report

pytestmark = needs_engine


@pytest.fixture(autouse=True, params=["c-check", "pure-python"])
def loader_path(request, monkeypatch):
    """Every test runs through both of the loader's paths: the extension's
    opcode check followed by the C unpickler, and pickle's pure-Python
    unpickler (what runs where the extension is not importable)."""
    if request.param == "pure-python":
        monkeypatch.setattr(_safeload, "_scanner", lambda: None)
    else:
        assert _safeload._scanner() is not None
    return request.param


def builtin_snapshot():
    tracemalloc.start(5)
    try:
        keep = [bytearray(1000 + i) for i in range(20)]  # noqa: F841
        return tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()


def traces_of(snapshot):
    return list(snapshot.traces._traces)


@pytest.fixture
def snap_file(tmp_path):
    snap = builtin_snapshot()
    path = tmp_path / "builtin.snap"
    snap.dump(str(path))
    return snap, path


def test_real_files_load_like_snapshot_load(snap_file, tmp_path):
    snap, path = snap_file
    plain = _safeload.load(path)
    assert type(plain) is tracemalloc.Snapshot
    assert traces_of(plain) == traces_of(snap)
    assert plain.traceback_limit == 5
    assert len(plain.traces) > 20
    # ours: Snapshot.dump() and pickle.dumps() (copyreg._reconstructor)
    ours = report.load_snapshot(path)
    from fasttracemalloc._snapshot import Snapshot
    assert type(ours) is Snapshot
    ours_path = tmp_path / "ours.snap"
    ours.dump(str(ours_path))
    assert traces_of(_safeload.load(ours_path)) == traces_of(snap)
    again = _safeload.loads(pickle.dumps(ours))
    assert traces_of(again) == traces_of(snap)
    # the statistics the CLI prints come out the same
    assert (report.load_snapshot(ours_path).statistics("lineno")
            == snap.statistics("lineno"))


class Hostile:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def hostile_pickles(marker):
    code = "open(%r, 'w').close()" % str(marker)
    shell = "touch %s" % marker
    yield "os.system", pickle.dumps(Hostile(os.system, shell))
    yield "eval", pickle.dumps(Hostile(eval, code))
    yield "exec in a trace", pickle.dumps(
        {"x": [Hostile(exec, code)]})
    # a real snapshot with a hostile object where a frame should be
    snap = builtin_snapshot()
    bad = list(snap.traces._traces)
    bad[0] = (bad[0][0], bad[0][1], (Hostile(exec, code),), 1)
    snap.traces._traces = bad
    yield "exec inside a snapshot", pickle.dumps(snap, 4)
    # the reconstructor used for another class
    yield "reconstructor", pickle.dumps(Hostile(
        __import__("copyreg")._reconstructor, subprocess.Popen, object,
        None))


@pytest.mark.parametrize("which", ["os.system", "eval", "exec in a trace",
                                   "exec inside a snapshot",
                                   "reconstructor"])
def test_hostile_pickles_are_refused_without_running(tmp_path, which):
    marker = tmp_path / "ran"
    data = dict(hostile_pickles(marker))[which]
    with pytest.raises(_safeload.UnsafeSnapshotError) as info:
        _safeload.loads(data)
    assert not marker.exists()
    assert "\n" not in str(info.value)
    # the same bytes *do* run under plain pickle: the test is not vacuous
    if which != "reconstructor":
        try:
            pickle.loads(data)
        except Exception:
            pass
        assert marker.exists()


def test_damaged_files_are_errors(snap_file):
    _, path = snap_file
    data = path.read_bytes()
    bad = [b"", b"not a pickle", data[:len(data) // 2], data[:-1],
           b"\x80\x05" + b"(" * 100000]
    flipped = bytearray(data)
    for i in range(0, len(flipped), 7):
        flipped[i] ^= 0x5A
    bad.append(bytes(flipped))
    for blob in bad:
        with pytest.raises(_safeload.UnsafeSnapshotError):
            _safeload.loads(blob)


def wrong(snapshot_mutator):
    snap = builtin_snapshot()
    snapshot_mutator(snap)
    return pickle.dumps(snap, pickle.HIGHEST_PROTOCOL)


@pytest.mark.parametrize("name,mutate", [
    ("limit str", lambda s: setattr(s, "traceback_limit", "5")),
    ("extra attr", lambda s: setattr(s, "extra", 1)),
    ("traces list", lambda s: setattr(s, "traces", [])),
    ("3-tuple", lambda s: setattr(s.traces, "_traces", [(0, 1, ())])),
    ("size str", lambda s: setattr(s.traces, "_traces",
                                   [(0, "1", (("f", 1),), 1)])),
    ("negative size", lambda s: setattr(s.traces, "_traces",
                                        [(0, -1, (("f", 1),), 1)])),
    ("domain too big", lambda s: setattr(s.traces, "_traces",
                                         [(2 ** 32, 1, (("f", 1),), 1)])),
    ("frame bytes", lambda s: setattr(s.traces, "_traces",
                                      [(0, 1, ((b"f", 1),), 1)])),
    ("frame 3-tuple", lambda s: setattr(s.traces, "_traces",
                                        [(0, 1, (("f", 1, 2),), 1)])),
    ("bool lineno", lambda s: setattr(s.traces, "_traces",
                                      [(0, 1, (("f", True),), 1)])),
    ("no frame", lambda s: setattr(s.traces, "_traces", [(0, 1, (), 0)])),
    ("not a snapshot", None),
])
def test_wrong_contents_are_errors(name, mutate):
    if mutate is None:
        data = pickle.dumps([1, 2, 3])
    else:
        data = wrong(mutate)
    with pytest.raises(_safeload.UnsafeSnapshotError):
        _safeload.loads(data)


def test_cli_reports_hostile_and_damaged_files_in_one_line(tmp_path,
                                                          snap_file):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.snap"
    evil.write_bytes(dict(hostile_pickles(marker))["os.system"])
    _, good = snap_file
    cut = tmp_path / "cut.snap"
    cut.write_bytes(good.read_bytes()[:50])
    for argv in (["report", str(evil)], ["compare", str(good), str(evil)],
                 ["export", str(cut), "-o", str(tmp_path / "x.pb.gz")]):
        proc = subprocess.run([sys.executable, "-m", "fasttracemalloc"]
                              + argv, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 2, (argv, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert "is not a snapshot: " in proc.stderr
        assert not marker.exists()


def test_real_dumps_name_only_the_allowed_globals(snap_file, tmp_path):
    # What the loader allows is what real files contain: record the globals
    # a real dump names (a change in the stdlib's format shows up here).
    _, path = snap_file
    ours = tmp_path / "ours.snap"
    report.load_snapshot(path).dump(str(ours))
    seen = set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            seen.add((module, name))
            return super().find_class(module, name)

    for blob in (path.read_bytes(), ours.read_bytes()):
        Recorder(io.BytesIO(blob)).load()
    assert seen == {("tracemalloc", "Snapshot"), ("tracemalloc", "_Traces")}


REGRESSIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "..", "fuzz", "regressions")


@pytest.mark.parametrize("name", sorted(os.listdir(REGRESSIONS)))
def test_fuzzer_findings_stay_fixed(name):
    # Inputs the fuzzer (tests/fuzz/run.sh) found: a memo index that made
    # the C unpickler allocate 2 GB, a BYTEARRAY8 declaring 5 GB, a global
    # whose name holds a newline (a two-line error message), a trace with
    # no frame (statistics('filename') raised IndexError).
    with open(os.path.join(REGRESSIONS, name), "rb") as fp:
        data = fp.read()
    with pytest.raises(_safeload.UnsafeSnapshotError) as info:
        _safeload.loads(data)
    assert "\n" not in str(info.value)


def test_opcodes_a_snapshot_never_needs_are_refused():
    for blob in (pickle.dumps(bytearray(10), 5), pickle.dumps(b"x", 4),
                 pickle.dumps({1, 2}, 4), pickle.dumps(1.5, 4)):
        with pytest.raises(_safeload.UnsafeSnapshotError,
                           match="opcode a snapshot never needs"):
            _safeload.loads(blob)


def test_the_check_allows_exactly_the_documented_opcodes(loader_path):
    """The C check's table and the pure-Python dispatch filter allow the
    same opcodes: each opcode byte alone is refused as "never needs" by
    the check iff it is outside _ALLOWED_OPCODES."""
    import pickletools
    if loader_path != "c-check":
        # the pure-Python path: its dispatch table refuses the same set
        for opcode in pickletools.opcodes:
            code = opcode.code.encode("latin-1")[0]
            refused = _safeload._Unpickler.dispatch.get(code) is (
                _safeload._refuse_opcode)
            assert refused == (code not in _safeload._ALLOWED_OPCODES), (
                opcode.name)
        return
    scan = _safeload._scanner()
    for opcode in pickletools.opcodes:
        code = opcode.code.encode("latin-1")
        if code == b".":
            assert scan(code) is None  # STOP alone: an (empty) stream
            continue
        with pytest.raises(ValueError) as info:
            scan(code)  # never a complete stream: no STOP after it
        never = "never needs" in str(info.value)
        assert never == (code[0] not in _safeload._ALLOWED_OPCODES), (
            opcode.name, str(info.value))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_every_protocol_loads(protocol, snap_file):
    """Protocols 0-5 (text opcodes, memo PUT/GET lines, framing) read the
    same on both paths as with Snapshot.load.  Protocols 0 and 1 name the
    reconstructor and object by their Python 2 names (copy_reg,
    __builtin__), which the loader maps as pickle's fix_imports does."""
    snap, _ = snap_file
    data = pickle.dumps(snap, protocol)
    assert traces_of(_safeload.loads(data)) == traces_of(snap)


@pytest.mark.parametrize("blob,why", [
    (b"\x80\x04r\xff\xff\xff\x7f.", "memo index beyond the stores"),
    (b"\x80\x02p2147483647\n.", "memo index beyond the stores"),
    (b"\x80\x04h\x00.", "memo fetch of a slot never stored"),
    (b"\x80\x04\x95\xff\xff\xff\xff\x00\x00\x00\x00.",
     "frame longer than the data"),
    (b"\x80\x04X\xff\xff\xff\x7fabc.", "length beyond the data"),
    (b"\x80\x02cos\nsystem", "line argument without newline"),
    (b"\x80\x04N", "no STOP"),
])
def test_the_check_refuses_what_would_size_a_read(blob, why, loader_path):
    """Each of these made (or could make) the C unpickler size memory by
    the file; the check refuses them before unpickling, and the
    pure-Python path refuses them too."""
    with pytest.raises(_safeload.UnsafeSnapshotError) as info:
        _safeload.loads(blob)
    if loader_path == "c-check":
        assert why in str(info.value), str(info.value)
