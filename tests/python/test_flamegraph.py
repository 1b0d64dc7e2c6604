"""``flamegraph``: the HTML flame graph of a snapshot, and of two (--diff).

Owns: checking fasttracemalloc.report.to_flamegraph and the CLI command on
snapshots dumped by the builtin tracemalloc and by fasttracemalloc: the
tree in the page against sums computed here from the traces themselves,
the bound on big snapshots, the diff's signs, that file names from the
snapshot cannot inject markup or script, the CLI's errors; and the page
itself in a real headless Chromium (headless.py) with the network off:
what it draws, hover, a real mouse click that zooms, search, the file
filter, the diff's colours, no script error and no request but the file.
"""

import json
import os
import re
import tracemalloc

import pytest

from conftest import (SNAPSHOT_MODULES, bad_files, dump_snapshot_pair,
                      run_python)

import fasttracemalloc
from fasttracemalloc import report

import headless

PROGRAM = """\
import sys
import {module} as tm

def leaf(n, size):
    return [bytes(size) for _ in range(n)]

def grow(n, size):
    return leaf(n, size)

def shrink(n, size):
    return leaf(n, size)

tm.start(8)
keep = [grow(10, 1000)]
keep.append(shrink(50, 3000))
tm.take_snapshot().dump(sys.argv[1])
keep.append(grow(60, 2000))
keep[1] = keep[1][:5]
keep[0] = None
tm.take_snapshot().dump(sys.argv[2])
"""
# (An earlier version of this program, with grow() and shrink() called
# from one line, found the engine giving the second call's blocks the
# first one's traceback: fixed in frames_walk.h, tested in test_capture.)
LEAF, GROW, SHRINK = 5, 8, 11          # the lines of leaf(), grow(), shrink()
FREED_CALL = 14                        # grow(10, 1000): freed before NEW
SHRUNK_CALL = 15                       # shrink(50, 3000): 5 left in NEW
GROW_CALL = 17                         # grow(60, 2000): only in NEW

@pytest.fixture(scope="module", params=sorted(SNAPSHOT_MODULES))
def snapshots(request, tmp_path_factory):
    """(old path, new path, program path) dumped by the given module."""
    return dump_snapshot_pair(tmp_path_factory.mktemp("flame-" + request.param), request.param,
                              PROGRAM)


def cli(*args, cwd):
    return run_python("-m", "fasttracemalloc", *args, cwd=str(cwd))


DATA_RE = re.compile(r'<script type="application/json" id="flame-data">'
                     r'(.*?)</script>', re.S)


def page_data(path):
    """The tree a page draws, read back from the HTML file."""
    text = path.read_text(encoding="utf-8")
    found = DATA_RE.findall(text)
    assert len(found) == 1
    return json.loads(found[0])


def node_paths(data):
    """{node index: (frame, ...) from the root}, "(other)" as None."""
    nodes = data["nodes"]
    paths = {}
    for i, (parent, frame) in enumerate(zip(nodes["parent"],
                                            nodes["frame"])):
        if i == 0:
            assert parent == -1 and frame == -1
            paths[i] = ()
            continue
        assert 0 <= parent < i          # every parent before its children
        if frame == -2 or paths[parent] is None:
            paths[i] = None
            continue
        f, line = data["frames"][frame]
        paths[i] = paths[parent] + ((data["files"][f], line),)
    return paths


def stdlib_traces(path):
    """[(size, ((file, line), ...) oldest first)] by the stdlib's classes."""
    snap = tracemalloc.Snapshot.load(str(path))
    return [(t.size, tuple((f.filename, f.lineno) for f in t.traceback))
            for t in snap.traces]


def prefix_sums(traces):
    """{call path: [size, count]} over every prefix of every traceback."""
    sums = {}
    for size, frames in traces:
        for depth in range(len(frames) + 1):
            entry = sums.setdefault(frames[:depth], [0, 0])
            entry[0] += size
            entry[1] += 1
    return sums


def prog_lines(path, prog):
    """The line numbers of the program's own frames on a call path, a
    repeated line once (3.11's list comprehension has its own frame on
    leaf()'s line; 3.12 inlines it)."""
    out = []
    for f, line in path or ():
        if f == str(prog) and out[-1:] != [line]:
            out.append(line)
    return out


# --- the tree -------------------------------------------------------------

def test_tree_matches_traces(snapshots, tmp_path):
    old, new, prog = snapshots
    out = tmp_path / "new.html"
    proc = cli("flamegraph", str(new), "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "flame graph of" in proc.stderr and str(out) in proc.stderr
    data = page_data(out)
    assert data["mode"] == "flame"
    traces = stdlib_traces(new)
    expected = prefix_sums(traces)
    paths = node_paths(data)
    nodes = data["nodes"]
    # small: nothing merged, one node per distinct call path, exact sums
    assert -2 not in nodes["frame"]
    assert sorted(paths.values()) == sorted(expected)
    for i, path in paths.items():
        assert [nodes["size"][i], nodes["count"][i]] == expected[path], path
    assert nodes["size"][0] == sum(size for size, _ in traces)
    assert nodes["count"][0] == len(traces)
    info = data["info"]
    assert info["traces"] == len(traces)
    assert info["tracebacks"] == len({f for _, f in traces})
    assert info["nodes_kept"] == info["nodes_in_tree"] == len(paths)
    assert info["title"] == "new.snapshot"
    # the program's grow(60, 2000) call: line 16 -> grow -> leaf
    grown = [i for i, p in paths.items()
             if prog_lines(p, prog) == [GROW_CALL, GROW, LEAF]]
    assert grown and max(nodes["size"][i] for i in grown) >= 60 * 2000


def test_python_api_same_page(snapshots, tmp_path):
    old, new, prog = snapshots
    fast = fasttracemalloc.Snapshot.load(str(new))
    plain = tracemalloc.Snapshot.load(str(new))
    plain.__class__ = tracemalloc.Snapshot
    pages = []
    for i, obj in enumerate((fast, plain, str(new))):
        out = tmp_path / ("%d.html" % i)
        data = report.to_flamegraph(obj, str(out), title="t")
        assert data == page_data(out)
        pages.append(out.read_bytes())
    assert pages[0] == pages[1] == pages[2]
    diff = tmp_path / "diff.html"
    report.to_flamegraph(str(new), str(diff), old=str(old))
    assert page_data(diff)["info"]["title"] == "old.snapshot -> new.snapshot"


def synthetic_snapshot(n, depth, files, seed=7):
    """A snapshot of n traces with made-up, mostly distinct tracebacks."""
    import random
    rng = random.Random(seed)
    traces = []
    for _ in range(n):
        frames = tuple(("/app/f%d.py" % rng.randrange(files),
                        rng.randrange(1, 50))
                       for _ in range(rng.randint(1, depth)))
        # raw traces hold the most recent frame first
        traces.append((0, rng.randint(1, 4000), frames[::-1], len(frames)))
    return tracemalloc.Snapshot(traces, depth)


@pytest.mark.parametrize("max_nodes,min_percent", [(10, 0), (200, 0),
                                                   (100000, 0.1)])
def test_big_tree_is_bounded(tmp_path, max_nodes, min_percent):
    snap = synthetic_snapshot(3000, 8, 12)
    traces = [(t.size, tuple((f.filename, f.lineno) for f in t.traceback))
              for t in snap.traces]
    expected = prefix_sums(traces)
    own = {}
    for size, frames in traces:
        entry = own.setdefault(frames, [0, 0])
        entry[0] += size
        entry[1] += 1
    out = tmp_path / "big.html"
    data = report.to_flamegraph(snap, str(out), max_nodes=max_nodes,
                                min_percent=min_percent)
    nodes = data["nodes"]
    paths = node_paths(data)
    total = nodes["size"][0]
    assert total == sum(size for size, _ in traces)
    kept = [p for i, p in paths.items() if p is not None]
    assert len(kept) <= max_nodes + 1
    assert len(paths) <= 2 * (max_nodes + 1)    # each kept: one (other)
    assert data["info"]["nodes_in_tree"] == len(expected)
    # the kept call paths are the heaviest (and over the floor)
    lightest = min(expected[p][0] for p in kept if p)
    dropped = [w for p, (w, _c) in expected.items() if p not in set(kept)]
    assert dropped and max(dropped) <= lightest
    assert lightest >= total * min_percent / 100
    children = {}
    for i in range(1, len(paths)):
        children.setdefault(nodes["parent"][i], []).append(i)
    merged = 0
    for i, path in paths.items():
        if path is None:
            assert nodes["collapsed"][i] >= 1
            merged += nodes["collapsed"][i]
            continue
        assert [nodes["size"][i], nodes["count"][i]] == expected[path]
        # own traces + children (kept and merged) == the node
        kids = children.get(i, [])
        for col in ("size", "count"):
            k = 0 if col == "size" else 1
            assert (own.get(path, [0, 0])[k]
                    + sum(nodes[col][c] for c in kids)) == nodes[col][i]
    # each merged subtree: a call path not kept under one that is
    keptset = set(kept)
    assert merged == sum(1 for p in expected if p not in keptset
                         and p[:-1] in keptset) > 0


def test_sampled_snapshot_shows_estimates(tmp_path):
    from fasttracemalloc._sampling import sampled_statistics
    snap = synthetic_snapshot(300, 4, 5)
    snap.sample_mean_bytes = 8192
    estimates = sampled_statistics(snap, "traceback")
    data = report.to_flamegraph(snap, str(tmp_path / "s.html"))
    assert data["info"]["sample_mean_bytes"] == 8192
    # the pprof export's numbers: each traceback's estimate, rounded
    assert data["nodes"]["size"][0] == sum(int(round(st.size))
                                           for st in estimates)
    assert data["nodes"]["count"][0] == sum(int(round(st.count))
                                            for st in estimates)
    # stored sizes are already scaled; blocks are estimated (> samples)
    assert data["nodes"]["count"][0] > len(snap.traces)


def test_diff_signs(snapshots, tmp_path):
    old, new, prog = snapshots
    out = tmp_path / "diff.html"
    proc = cli("flamegraph", "--diff", str(old), str(new), "-o", str(out),
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = page_data(out)
    assert data["mode"] == "diff"
    new_sums = prefix_sums(stdlib_traces(new))
    old_sums = prefix_sums(stdlib_traces(old))
    paths = node_paths(data)
    nodes = data["nodes"]
    assert sorted(paths.values()) == sorted(set(new_sums) | set(old_sums))
    for i, path in paths.items():
        assert [nodes["size"][i], nodes["count"][i]] == new_sums.get(
            path, [0, 0])
        assert [nodes["old_size"][i], nodes["old_count"][i]] == old_sums.get(
            path, [0, 0])
    growth = {tuple(prog_lines(p, prog)): nodes["size"][i]
              - nodes["old_size"][i] for i, p in paths.items()}
    # grow(60, 2000) is new; 45 of shrink(50, 3000)'s blocks and all of
    # grow(10, 1000)'s were freed
    assert growth[(GROW_CALL, GROW, LEAF)] >= 60 * 2000
    assert growth[(SHRUNK_CALL, SHRINK, LEAF)] <= -45 * 3000
    assert growth[(FREED_CALL, GROW, LEAF)] <= -10 * 1000
    assert nodes["size"][0] - nodes["old_size"][0] == (
        sum(s for s, _ in stdlib_traces(new))
        - sum(s for s, _ in stdlib_traces(old)))


# --- untrusted file names -------------------------------------------------

EVIL = ('</script><img src=x onerror="window.__pwned=1">'
        '<script>window.__pwned=2</script>&lt;\u2028"\'`${x}</SCRIPT >')


def evil_snapshot(tmp_path):
    """A snapshot whose file names try to close the script element."""
    traces = [(0, 5000, ((EVIL, 3), ("/app/main.py", 1)), 2),
              (0, 3000, (("/app/main.py", 2), ("/app/main.py", 1)), 2),
              (0, 700, (("<b onmouseover=alert(1)>x</b>", 9),), 1),
              # no slash: the box shows the whole name
              (0, 2000, (('<img src=x onerror="window.__pwned=3">', 4),), 1)]
    path = tmp_path / "evil<img src=x onerror=alert(1)>.snapshot"
    tracemalloc.Snapshot(traces, 2).dump(str(path))
    return path


def test_file_names_cannot_inject(tmp_path):
    snap = evil_snapshot(tmp_path)
    out = tmp_path / "evil.html"
    proc = cli("flamegraph", str(snap), "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text(encoding="utf-8")
    # only the page's own two script elements open and close
    assert len(re.findall(r"</script", text, re.I)) == 2
    assert len(re.findall(r"<script", text, re.I)) == 2
    assert "<img" not in text.lower() and "<b " not in text
    assert "&lt;img" in text        # the title, escaped
    data = page_data(out)
    assert EVIL in data["files"]    # the names survive exactly
    assert "<b onmouseover=alert(1)>x</b>" in data["files"]


# --- CLI errors -----------------------------------------------------------

@pytest.mark.parametrize("where", ["single", "diff-old", "diff-new"])
def test_bad_snapshot_files(snapshots, tmp_path, where):
    old, new, prog = snapshots
    for name, message in bad_files(tmp_path):
        if where == "single":
            args = ["flamegraph", name, "-o", "out"]
        elif where == "diff-old":
            args = ["flamegraph", "--diff", name, str(new), "-o", "out"]
        else:
            args = ["flamegraph", "--diff", str(old), name, "-o", "out"]
        proc = cli(*args, cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        errors = [l for l in proc.stderr.splitlines() if "error:" in l]
        assert len(errors) == 1 and message in errors[0], proc.stderr
        assert "Traceback" not in proc.stderr
        assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args,message", [
    (["--diff", "{new}"], "--diff takes two snapshot files"),
    (["{old}", "{new}"], "one snapshot file expected"),
    (["--max-nodes", "0", "{new}"], "must be >= 1"),
    (["--max-nodes", "many", "{new}"], "not an integer"),
    (["--min-percent", "101", "{new}"], "must be in [0; 100]"),
    (["--min-percent", "x", "{new}"], "not a number"),
    (["-o", "{tmp}/no/such/dir.html", "{new}"], "cannot write"),
])
def test_bad_arguments(snapshots, tmp_path, args, message):
    old, new, prog = snapshots
    args = [a.format(old=old, new=new, tmp=tmp_path) for a in args]
    proc = cli("flamegraph", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    errors = [l for l in proc.stderr.splitlines() if "error:" in l]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("*.html"))


def test_default_output_names(snapshots, tmp_path):
    old, new, prog = snapshots
    a, b = tmp_path / "a.snap", tmp_path / "b.snap"
    a.write_bytes(old.read_bytes())
    b.write_bytes(new.read_bytes())
    assert cli("flamegraph", str(b), cwd=tmp_path).returncode == 0
    assert page_data(tmp_path / "b.snap.flamegraph.html")["mode"] == "flame"
    assert cli("flamegraph", "--diff", str(a), str(b),
               cwd=tmp_path).returncode == 0
    assert page_data(tmp_path / "b.snap.diff.html")["mode"] == "diff"


def test_python_api_errors(tmp_path):
    with pytest.raises(report.SnapshotFileError, match="cannot read"):
        report.to_flamegraph(str(tmp_path / "a"), str(tmp_path / "x.html"))
    snap = synthetic_snapshot(10, 3, 2)
    with pytest.raises(ValueError, match="max_nodes"):
        report.to_flamegraph(snap, str(tmp_path / "x.html"), max_nodes=0)
    with pytest.raises(ValueError, match="min_percent"):
        report.to_flamegraph(snap, str(tmp_path / "x.html"), min_percent=-1)
    assert not (tmp_path / "x.html").exists()


# --- the page in a real browser -------------------------------------------

CHROMIUM = headless.find_chromium()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium): "
                    "the flame graph page is not opened in a browser")
    b = headless.Browser()
    yield b
    b.close()


def open_page(browser, path, fragment=""):
    browser.open(str(path), fragment)
    browser.wait_for("document.body.getAttribute('data-ready') === '1'")


def page_is_clean(browser, path):
    assert browser.evaluate(
        "document.getElementById('errors').textContent") == ""
    assert browser.exceptions == [] and browser.console_errors == [], (
        browser.exceptions, browser.console_errors)
    # nothing but the file itself was ever requested
    url = "file://" + os.path.abspath(str(path))
    assert {u.split("#")[0] for u in browser.requests} <= {
        url, "about:blank"}, browser.requests


def frames_drawn(browser):
    """[(node id, text, class names, left, width)] of the drawn boxes."""
    return browser.evaluate("""
        Array.from(document.querySelectorAll('#graph .frame')).map(e => {
          const r = e.getBoundingClientRect();
          return [Number(e.dataset.id), e.textContent, e.className,
                  r.left, r.width, r.top];
        })""")


def box_center(browser, node):
    rect = browser.evaluate(
        "(() => { const r = document.querySelector("
        "'#graph .frame[data-id=\"%d\"]').getBoundingClientRect();"
        " return [r.left + r.width / 2, r.top + r.height / 2]; })()" % node)
    return rect


def group(n):
    return "{:,}".format(n)


def test_browser_draws_zooms_searches_filters(snapshots, tmp_path, browser):
    old, new, prog = snapshots
    out = tmp_path / "flame.html"
    data = report.to_flamegraph(str(new), str(out))
    paths = node_paths(data)
    nodes = data["nodes"]
    traces = stdlib_traces(new)
    open_page(browser, out)
    page_is_clean(browser, out)
    # the numbers on the page are the snapshot's
    assert browser.evaluate(
        "document.getElementById('summary').dataset.total") == str(
        sum(s for s, _ in traces))
    assert group(len(traces)) + " blocks" in browser.evaluate(
        "document.getElementById('summary').textContent")
    drawn = frames_drawn(browser)
    texts = {t for _, t, _, _, _, _ in drawn}
    assert "all" in texts
    assert "prog.py:%d" % GROW_CALL in texts
    assert "prog.py:%d" % LEAF in texts
    # the grow(60, 2000) call's own node: hover it, then click it
    target = max((i for i, p in paths.items()
                  if prog_lines(p, prog) == [GROW_CALL, GROW]),
                 key=lambda i: nodes["size"][i])
    x, y = box_center(browser, target)
    browser.mouse("mouseMoved", x, y)
    tip = browser.evaluate("document.getElementById('tooltip').textContent")
    assert tip.startswith("%s:%d\n" % (prog, GROW))
    assert "(%s B)" % group(nodes["size"][target]) in tip
    assert "blocks: %s" % group(nodes["count"][target]) in tip
    share = 100 * nodes["size"][target] / nodes["size"][0]
    assert ("%.1f%% of all" % share) in tip or ("%.2g%% of all" % share) in tip
    width_before = [w for i, _, _, _, w, _ in drawn if i == target][0]
    browser.click(x, y)
    assert browser.evaluate("location.hash") == "#zoom=%d" % target
    assert browser.evaluate("document.body.dataset.zoom") == str(target)
    zoomed = frames_drawn(browser)
    graph_width = browser.evaluate(
        "document.getElementById('graph').getBoundingClientRect().width")
    box = [z for z in zoomed if z[0] == target]
    assert len(box) == 1 and "zoomed" in box[0][2]
    assert abs(box[0][4] - graph_width) < 2 and box[0][4] > width_before
    # drawn now: the node's ancestors (full width) and its subtree only
    ids = {z[0] for z in zoomed}
    ancestors = set()
    a = nodes["parent"][target]
    while a >= 0:
        ancestors.add(a)
        a = nodes["parent"][a]
    subtree = {i for i, p in paths.items() if p is not None
               and p[:len(paths[target])] == paths[target]}
    assert ancestors <= ids and ids <= ancestors | subtree
    for z in zoomed:
        if z[0] in ancestors:
            assert "ancestor" in z[2] and abs(z[4] - graph_width) < 2
    # Back undoes the zoom
    bx, by = browser.evaluate(
        "(() => { const r = document.getElementById('back')"
        ".getBoundingClientRect(); return [r.left + 5, r.top + 5]; })()")
    browser.click(bx, by)
    browser.wait_for("document.body.dataset.zoom === '0'")
    # search and file filter, driven through the fragment
    browser.evaluate("location.hash = '#search=' + encodeURIComponent("
                     "'prog.py:%d')" % LEAF)
    browser.wait_for("document.getElementById('matched').dataset.bytes "
                     "!== undefined")
    through_leaf = sum(s for s, f in traces if (str(prog), LEAF) in f)
    assert browser.evaluate(
        "document.getElementById('matched').dataset.bytes") == str(
        through_leaf)
    assert browser.evaluate("document.getElementById('search').value") == (
        "prog.py:%d" % LEAF)
    matches = [z for z in frames_drawn(browser) if " match" in z[2]]
    assert matches and all(
        paths[z[0]][-1] == (str(prog), LEAF) for z in matches)
    browser.evaluate("location.hash = '#file=prog.py'")
    browser.wait_for("document.getElementById('file').value === 'prog.py'")
    through_prog = sum(s for s, f in traces
                       if any("prog.py" in name for name, _ in f))
    assert browser.evaluate(
        "document.getElementById('summary').dataset.total") == str(
        through_prog)
    browser.evaluate("location.hash = '#file=prog.py&mode=exclude'")
    browser.wait_for("document.getElementById('filemode').value "
                     "=== 'exclude'")
    assert browser.evaluate(
        "document.getElementById('summary').dataset.total") == str(
        sum(s for s, _ in traces) - through_prog)
    shot = tmp_path / "flame.png"
    browser.evaluate("location.hash = ''")
    browser.screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page_is_clean(browser, out)


def test_browser_diff_colours(snapshots, tmp_path, browser):
    old, new, prog = snapshots
    out = tmp_path / "diff.html"
    data = report.to_flamegraph(str(new), str(out), old=str(old))
    paths = node_paths(data)
    nodes = data["nodes"]
    open_page(browser, out)
    page_is_clean(browser, out)
    drawn = {z[0]: z for z in frames_drawn(browser)}
    grew = [i for i, p in paths.items()
            if prog_lines(p, prog) == [GROW_CALL, GROW]]
    assert grew and all("grow" in drawn[i][2] for i in grew)
    # shrink(50, 3000) lost 45 blocks: drawn by the 5 left, in blue
    shrunk = [i for i, p in paths.items()
              if prog_lines(p, prog) == [SHRUNK_CALL, SHRINK]]
    assert len(shrunk) == 1
    assert 0 < nodes["size"][shrunk[0]] < nodes["old_size"][shrunk[0]]
    assert "shrink" in drawn[shrunk[0]][2]
    # grow(10, 1000) was freed: kept in the data, but without a width
    freed = [i for i, p in paths.items()
             if prog_lines(p, prog) == [FREED_CALL, GROW]]
    assert freed and all(nodes["size"][i] == 0 and nodes["old_size"][i] > 0
                         and i not in drawn for i in freed)
    # hover the root: the change in bytes and blocks
    x, y = box_center(browser, 0)
    browser.mouse("mouseMoved", x, y)
    tip = browser.evaluate("document.getElementById('tooltip').textContent")
    change = nodes["size"][0] - nodes["old_size"][0]
    blocks = nodes["count"][0] - nodes["old_count"][0]
    assert "change: %s%s B" % ("+" if change > 0 else "", group(change)) in tip
    assert "%s%s blocks" % ("+" if blocks > 0 else "", group(blocks)) in tip
    page_is_clean(browser, out)


def test_browser_empty_snapshot_and_bad_fragment(tmp_path, browser):
    snap = tmp_path / "empty.snapshot"
    tracemalloc.Snapshot([], 1).dump(str(snap))
    out = tmp_path / "empty.html"
    data = report.to_flamegraph(str(snap), str(out))
    assert data["nodes"]["parent"] == [-1] and data["nodes"]["size"] == [0]
    # a fragment that is not valid percent-encoding, an unknown node
    open_page(browser, out, "#zoom=99&search=%E0%A4%A&file=%")
    assert browser.evaluate("document.body.dataset.zoom") == "0"
    assert browser.evaluate(
        "document.getElementById('search').value") == "%E0%A4%A"
    assert browser.evaluate("document.getElementById('file').value") == "%"
    assert "No memory left" in browser.evaluate(
        "document.getElementById('graph').textContent")
    browser.evaluate("location.hash = ''")
    browser.wait_for("document.getElementById('file').value === ''")
    assert "holds no memory" in browser.evaluate(
        "document.getElementById('graph').textContent")
    page_is_clean(browser, out)


def test_browser_injection_stays_text(tmp_path, browser):
    snap = evil_snapshot(tmp_path)
    out = tmp_path / "evil.html"
    report.to_flamegraph(str(snap), str(out))
    open_page(browser, out)
    assert browser.evaluate("typeof window.__pwned") == "undefined"
    assert browser.evaluate("document.querySelectorAll('img').length") == 0
    assert browser.evaluate("document.querySelectorAll('b').length") == 0
    assert browser.evaluate("document.scripts.length") == 2
    title = browser.evaluate("document.title")
    assert title == "evil<img src=x onerror=alert(1)>.snapshot"
    options = browser.evaluate(
        "Array.from(document.querySelectorAll('#files option'))"
        ".map(o => o.value)")
    assert EVIL in options
    data = page_data(out)
    evil = [i for i, p in node_paths(data).items()
            if p and p[-1] == (EVIL, 3)]
    assert len(evil) == 1
    x, y = box_center(browser, evil[0])
    browser.mouse("mouseMoved", x, y)
    tip = browser.evaluate("document.getElementById('tooltip').textContent")
    assert tip.startswith(EVIL + ":3\n")
    page_is_clean(browser, out)
