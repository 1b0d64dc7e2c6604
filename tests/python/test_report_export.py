"""``compare`` and ``export`` (pprof, speedscope): text, files, errors.

Owns: checking fasttracemalloc.report and its two CLI commands on snapshots
written by the builtin tracemalloc and by fasttracemalloc, each in a child
process.  The pprof output is read twice: by a small decoder written here
(independent of the package's encoder: totals, string table and sample
values exactly) and, when ``go`` is on PATH, by the real ``go tool pprof``.
"""

import gzip
import json
import shutil
import subprocess
import tracemalloc

import pytest

from conftest import (SNAPSHOT_MODULES, bad_files, child_env,
                      dump_snapshot_pair, run_python)

import fasttracemalloc
from fasttracemalloc import report
from fasttracemalloc._protowire import varint

PROGRAM = """\
import sys
import {module} as tm

def leaf(n, size):
    return [bytes(size) for _ in range(n)]

def mid(n, size):
    return leaf(n, size)

tm.start(6)
keep = [mid(40, 1000)]
tm.take_snapshot().dump(sys.argv[1])
keep.append(mid(80, 2000))
keep.append([bytearray(1000) for _ in range(25)])
del keep[0]
tm.take_snapshot().dump(sys.argv[2])
"""

@pytest.fixture(scope="module", params=sorted(SNAPSHOT_MODULES))
def snapshots(request, tmp_path_factory):
    """(old path, new path, program path) dumped by the given module."""
    return dump_snapshot_pair(tmp_path_factory.mktemp(request.param), request.param,
                              PROGRAM)


def cli(*args, cwd):
    return run_python("-m", "fasttracemalloc", *args, cwd=str(cwd))


# --- a protobuf decoder for the tests, independent of the encoder -------

def _read_varint(data, pos):
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def decode_fields(data):
    """[(field number, wire type, int or bytes)] of one message."""
    fields = []
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            value = bytes(data[pos:pos + length])
            pos += length
            assert pos <= len(data), "truncated field"
        else:
            raise AssertionError("unexpected wire type %d" % wire)
        fields.append((number, wire, value))
    assert pos == len(data)
    return fields


def message(data, repeated=()):
    """A message as {field: value}; fields in *repeated* as lists (packed
    or not); missing scalars read as 0."""
    out = {}
    for number, wire, value in decode_fields(data):
        if number in repeated:
            items = out.setdefault(number, [])
            if wire == 2 and repeated[number] == "packed":
                pos = 0
                while pos < len(value):
                    v, pos = _read_varint(value, pos)
                    items.append(v)
            else:
                items.append(value)
        else:
            out[number] = value
    return out


def decode_profile(path):
    with open(path, "rb") as f:
        raw = gzip.decompress(f.read())
    p = message(raw, {1: "msg", 2: "msg", 3: "msg", 4: "msg", 5: "msg",
                      6: "str", 13: "packed"})
    strings = [s.decode("utf-8") for s in p[6]]
    vt = lambda data: tuple(strings[message(data).get(i, 0)] for i in (1, 2))
    functions = {}
    for data in p[5]:
        f = message(data)
        functions[f[1]] = (strings[f.get(2, 0)], strings[f.get(4, 0)],
                           f.get(5, 0))
    locations = {}
    for data in p[4]:
        loc = message(data, {4: "msg"})
        assert len(loc[4]) == 1
        line = message(loc[4][0])
        assert loc.get(2) == 1   # mapping 1
        locations[loc[1]] = (functions[line[1]], line.get(2, 0))
    samples = []
    for data in p[2]:
        s = message(data, {1: "packed", 2: "packed"})
        samples.append((s[2], [locations[i] for i in s[1]]))
    return {
        "strings": strings,
        "sample_types": [vt(d) for d in p[1]],
        "period_type": vt(p[11]),
        "period": p.get(12, 0),
        "default_sample_type": strings[p.get(14, 0)],
        "comments": [strings[i] for i in p.get(13, [])],
        "mappings": [message(d) for d in p[3]],
        "samples": samples,
        "functions": functions,
    }


def stdlib_traceback_stats(path):
    """statistics('traceback') as (size, count, [(file, line)] leaf first)
    computed by the stdlib's own Snapshot class."""
    snap = tracemalloc.Snapshot.load(str(path))
    snap.__class__ = tracemalloc.Snapshot
    return [(st.size, st.count,
             [(f.filename, f.lineno) for f in reversed(list(st.traceback))])
            for st in snap.statistics("traceback")]


# --- the encoder's primitives ---------------------------------------------

def test_varint():
    assert varint(0) == b"\x00"
    assert varint(1) == b"\x01"
    assert varint(300) == b"\xac\x02"
    assert varint(-1) == b"\xff" * 9 + b"\x01"


# --- pprof ----------------------------------------------------------------

def test_pprof_decoded_exactly(snapshots, tmp_path):
    old, new, prog = snapshots
    out = tmp_path / "new.pb.gz"
    proc = cli("export", "-f", "pprof", "-o", str(out), str(new),
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    prof = decode_profile(out)
    assert prof["strings"][0] == ""
    assert len(set(prof["strings"])) == len(prof["strings"])
    assert prof["sample_types"] == [("inuse_space", "bytes"),
                                    ("inuse_objects", "count")]
    assert prof["period_type"] == ("space", "bytes")
    assert prof["period"] == 1
    assert prof["default_sample_type"] == "inuse_space"
    assert prof["comments"] and "traceback limit 6" in prof["comments"][0]
    assert len(prof["mappings"]) == 1
    expected = stdlib_traceback_stats(new)
    got = [(values[0], values[1],
            [(func[1], line) for func, line in frames])
           for values, frames in prof["samples"]]
    assert got == expected
    # function names are "file:line", their start line the line
    for name, filename, start in prof["functions"].values():
        assert name == "%s:%d" % (filename, start)
    snap = tracemalloc.Snapshot.load(str(new))
    assert sum(v[0] for v, _ in prof["samples"]) == sum(
        t.size for t in snap.traces)
    assert sum(v[1] for v, _ in prof["samples"]) == len(snap.traces)
    # the program's mid(80, 2000) call: leaf() <- mid() <- line 13 (3.11
    # adds the list comprehension's own frame, on leaf's line)
    def lines_of(frames):
        out = []
        for filename, line in frames:
            if filename == str(prog) and out[-1:] != [line]:
                out.append(line)
        return out
    calls = [(size, count) for size, count, frames in got
             if lines_of(frames) == [5, 8, 13]]
    assert len(calls) == 1 and calls[0][0] >= 80 * 2000, calls
    assert calls[0][1] in (80, 81)


def parse_pprof_top(text):
    """{name: (flat, cum)} and the total, from -top -unit=B output."""
    rows = {}
    total = None
    started = False
    for line in text.splitlines():
        if line.startswith("Showing nodes accounting for"):
            total = int(line.rsplit(" of ", 1)[1].split("B total")[0])
        elif line.split()[:1] == ["flat"]:
            started = True
        elif started and line.strip():
            flat, _fp, _sp, cum, _cp, name = line.split(None, 5)
            rows[name] = (int(flat.rstrip("B")), int(cum.rstrip("B")))
    return rows, total


def parse_pprof_traces(text):
    """[(value, [frame names leaf first])] from -traces -unit=B output."""
    traces = []
    for block in text.split("-----------+")[1:]:
        lines = [l for l in block.splitlines()[1:] if l.strip()]
        if not lines:
            continue
        value, first = lines[0].split(None, 1)
        traces.append((int(value.rstrip("B")),
                       [first.strip()] + [l.strip() for l in lines[1:]]))
    return traces


@pytest.mark.skipif(shutil.which("go") is None,
                    reason="'go' is not on PATH (apt-get install golang-go "
                           "to run the real 'go tool pprof' on the export)")
def test_go_tool_pprof_reads_export(snapshots, tmp_path):
    old, new, prog = snapshots
    out = tmp_path / "new.pb.gz"
    report.to_pprof(str(new), str(out))
    env = child_env(HOME=str(tmp_path), PPROF_TMPDIR=str(tmp_path))

    def pprof(*args):
        proc = subprocess.run(["go", "tool", "pprof", *args, str(out)],
                              capture_output=True, text=True, env=env,
                              cwd=str(tmp_path), timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    text = pprof("-top", "-sample_index=inuse_space", "-unit=B",
                 "-nodefraction=0", "-nodecount=100000")
    rows, total = parse_pprof_top(text)
    snap = report.load_snapshot(str(new))
    assert total == sum(t.size for t in snap.traces)
    flat = {"%s:%d" % (st.traceback[0].filename, st.traceback[0].lineno):
            st.size for st in snap.statistics("lineno")
            if st.size}     # pprof lists no node for 0-byte blocks
    assert {name: f for name, (f, _c) in rows.items() if f} == flat
    top_line = snap.statistics("lineno")[0]
    frame = top_line.traceback[0]
    assert rows["%s:%d" % (frame.filename, frame.lineno)][0] == top_line.size
    # the program's own line 5 (leaf) is there under its full name
    assert rows["%s:5" % prog][0] >= 80 * 2000

    objects, total_objects = parse_pprof_top(pprof(
        "-top", "-sample_index=inuse_objects", "-unit=B",
        "-nodefraction=0", "-nodecount=100000"))
    assert total_objects == len(snap.traces)

    traces = parse_pprof_traces(pprof("-traces", "-unit=B"))
    expected = [(size, ["%s:%d" % frame for frame in frames])
                for size, _count, frames in stdlib_traceback_stats(new)]
    assert sorted(traces) == sorted(expected)


# --- speedscope -----------------------------------------------------------

def test_speedscope_structure(snapshots, tmp_path):
    old, new, prog = snapshots
    out = tmp_path / "new.json"
    proc = cli("export", "-f", "speedscope", "-o", str(out), str(new),
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["$schema"] == ("https://www.speedscope.app/"
                              "file-format-schema.json")
    assert set(doc) >= {"$schema", "shared", "profiles"}
    frames = doc["shared"]["frames"]
    for frame in frames:
        assert set(frame) <= {"name", "file", "line", "col"}
        assert frame["name"] == "%s:%d" % (frame["file"], frame["line"])
    assert len({(f["file"], f["line"]) for f in frames}) == len(frames)
    assert len(doc["profiles"]) == 1
    profile = doc["profiles"][0]
    assert set(profile) == {"type", "name", "unit", "startValue",
                            "endValue", "samples", "weights"}
    assert profile["type"] == "sampled" and profile["unit"] == "bytes"
    assert isinstance(profile["name"], str)
    assert len(profile["samples"]) == len(profile["weights"])
    for stack in profile["samples"]:
        assert stack and all(0 <= i < len(frames) for i in stack)
    assert 0 <= doc.get("activeProfileIndex", 0) < len(doc["profiles"])
    snap = tracemalloc.Snapshot.load(str(new))
    total = sum(t.size for t in snap.traces)
    assert sum(profile["weights"]) == total
    assert profile["startValue"] == 0 and profile["endValue"] == total
    # one sample per distinct traceback, oldest frame first
    expected = [(size, [(f, l) for f, l in reversed(frames)])
                for size, _c, frames in stdlib_traceback_stats(new)]
    got = [(w, [(frames[i]["file"], frames[i]["line"]) for i in stack])
           for w, stack in zip(profile["weights"], profile["samples"])]
    assert got == expected


def test_exports_from_python(snapshots, tmp_path):
    old, new, prog = snapshots
    snap = fasttracemalloc.Snapshot.load(str(new))
    plain = tracemalloc.Snapshot.load(str(new))
    plain.__class__ = tracemalloc.Snapshot
    for i, obj in enumerate((snap, plain, str(new))):
        report.to_pprof(obj, str(tmp_path / ("%d.pb.gz" % i)))
        report.to_speedscope(obj, str(tmp_path / ("%d.json" % i)))
    assert len({(tmp_path / ("%d.pb.gz" % i)).read_bytes()
                for i in range(3)}) == 1
    weights = [json.loads((tmp_path / ("%d.json" % i)).read_text())
               ["profiles"][0]["weights"] for i in range(3)]
    assert weights[0] == weights[1] == weights[2]


def test_export_default_output_name(snapshots, tmp_path):
    old, new, prog = snapshots
    src = tmp_path / "x.snapshot"
    src.write_bytes(new.read_bytes())
    assert cli("export", str(src), cwd=tmp_path).returncode == 0
    assert decode_profile(tmp_path / "x.snapshot.pb.gz")["samples"]
    assert cli("export", "-f", "speedscope", str(src),
               cwd=tmp_path).returncode == 0
    json.loads((tmp_path / "x.snapshot.speedscope.json").read_text())


# --- compare --------------------------------------------------------------

def expected_compare(old, new, top, key_type, cumulative=False):
    filters = report.noise_filters()
    o = tracemalloc.Snapshot.load(str(old)).filter_traces(filters)
    n = tracemalloc.Snapshot.load(str(new)).filter_traces(filters)
    return n.compare_to(o, key_type, cumulative)


@pytest.mark.parametrize("key_type,cumulative", [
    ("lineno", False), ("filename", False), ("traceback", False),
    ("lineno", True), ("filename", True)])
def test_compare_cli_lines(snapshots, tmp_path, key_type, cumulative):
    old, new, prog = snapshots
    args = ["compare", "--top", "3", "--key-type", key_type,
            str(old), str(new)]
    if cumulative:
        args.append("--cumulative")
    proc = cli(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == report.compare_text(str(old), str(new), 3,
                                              key_type, cumulative)
    lines = proc.stdout.splitlines()
    assert lines[0] == "[ Top 3 differences ]"
    diffs = expected_compare(old, new, 3, key_type, cumulative)
    shown = [l for l in lines[1:] if not l.startswith(" ")]
    shown = shown[:min(3, len(diffs))]
    assert shown == [str(d) for d in diffs[:3]]
    if key_type == "traceback":
        assert '  File "%s", line' % prog in proc.stdout
    if len(diffs) > 3:
        assert lines[-2].startswith("%d other: " % (len(diffs) - 3))
    assert lines[-1].startswith("Total: size=")


def test_compare_text_growth(snapshots):
    old, new, prog = snapshots
    text = report.compare_text(report.load_snapshot(str(old)),
                               report.load_snapshot(str(new)), top=10)
    diffs = expected_compare(old, new, 10, "lineno")
    # the biggest growth is line 5 (leaf): 80 x bytes(2000) - 40 x 1000
    assert diffs[0].traceback[0].lineno == 5
    assert text.splitlines()[1] == str(diffs[0])
    assert "%s:5: " % prog in text
    new_total = sum(d.size for d in diffs)
    assert "Total: size=%s" % tracemalloc._format_size(new_total, False) \
        in text


def test_compare_cumulative_with_traceback_is_an_error(snapshots, tmp_path):
    old, new, prog = snapshots
    proc = cli("compare", "--key-type", "traceback", "--cumulative",
               str(old), str(new), cwd=tmp_path)
    assert proc.returncode == 2
    assert "--cumulative cannot be used" in proc.stderr


# --- errors: like 'report' ------------------------------------------------

@pytest.mark.parametrize("command", ["compare-old", "compare-new",
                                     "export-pprof", "export-speedscope"])
def test_bad_snapshot_files(snapshots, tmp_path, command):
    old, new, prog = snapshots
    for name, message in bad_files(tmp_path):
        if command == "compare-old":
            args = ["compare", name, str(new)]
        elif command == "compare-new":
            args = ["compare", str(old), name]
        else:
            args = ["export", "-f", command.split("-")[1], "-o", "out",
                    name]
        proc = cli(*args, cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        errors = [l for l in proc.stderr.splitlines() if "error:" in l]
        assert len(errors) == 1 and message in errors[0], proc.stderr
        assert "Traceback" not in proc.stderr
        assert not (tmp_path / "out").exists()


def test_export_unwritable_output(snapshots, tmp_path):
    old, new, prog = snapshots
    proc = cli("export", "-o", str(tmp_path / "no" / "dir.pb.gz"),
               str(new), cwd=tmp_path)
    assert proc.returncode == 2
    assert "cannot write" in proc.stderr and "Traceback" not in proc.stderr


def test_python_api_errors(tmp_path):
    with pytest.raises(report.SnapshotFileError, match="cannot read"):
        report.compare_text(str(tmp_path / "a"), str(tmp_path / "b"))
    with pytest.raises(report.SnapshotFileError, match="cannot read"):
        report.to_pprof(str(tmp_path / "a"), str(tmp_path / "x"))
