"""A snapshot (or the change between two) as a flame graph in one HTML file.

Owns: folding a snapshot's traces into a call tree, bounding that tree's
size, and writing the self-contained page (``_flamegraph_page``'s CSS and
script, the tree as JSON) that draws it.

The tree: the root is "all" (every trace); below it, each traceback's
frames from the oldest to the newest, one node per distinct call path,
with the summed size and block count of the traces that pass through it.
The folding is the exports' (``_pprof.traceback_statistics``: the
snapshot's ``statistics('traceback')``, or a sampled snapshot's rounded
estimates), so the root's size is the snapshot's total and what the pprof
and speedscope exports show.  A diff tree holds both snapshots' numbers in
each node: the new snapshot's ``size``/``count`` (widths are drawn by them)
and the old one's ``old_size``/``old_count``; a path that the new snapshot
no longer has keeps size 0 (not drawn) but still counts in its ancestors'
changes.

How: the tracebacks, sorted, are walked twice as the call tree, which is
never built (see the comment above ``_kept``): the first walk weighs every
node, the second writes the kept ones.  Memory: the sorted tracebacks
(which the folding made anyway), a few ints per traceback, one per node.

The bound: at most ``max_nodes`` call-path nodes are kept (default 20,000),
chosen largest first (a node is never larger than its parent, so the kept
nodes always form a tree: see ``_kept``), and none under ``min_percent``
of the total.  The children a kept node loses are merged into one
``(other)`` child, so sizes still add up: the page holds at most
2 * (max_nodes + 1) nodes, about 25-60 bytes of JSON each plus each kept
frame's file name (cut to ``MAX_NAME`` characters) once.

Untrusted input: file names come from the snapshot file, which may come
from anyone.  They only ever reach the page as JSON inside a
``<script type="application/json">`` element, with ``<``, ``>`` and ``&``
written as ``\\u003c``/``\\u003e``/``\\u0026`` (so no ``</script>`` can end
it), and the page's script puts them in the document with ``textContent``
only.  The page also forbids every script but its own (a CSP with the
script's and stylesheet's hashes, no network).

Threads: builds local data only.
"""

import base64
import hashlib
import html
import json

from ._flamegraph_page import CSS, SCRIPT

__all__ = ["DEFAULT_MAX_NODES", "MAX_NAME", "tree", "diff_tree", "page"]

DEFAULT_MAX_NODES = 20000
MAX_NAME = 1000         # characters of a file name kept in the page
ROOT, OTHER = -1, -2    # frame index of the root and of "(other)" nodes


def _paths(snapshot):
    """{frames: [size, count]}: the snapshot folded by traceback, each
    traceback as a tuple of (filename, lineno) pairs, oldest first."""
    from ._pprof import traceback_statistics
    out = {}
    for stat in traceback_statistics(snapshot):
        tb = stat.traceback
        # the stdlib's Traceback keeps its pairs oldest first in _frames
        # (3.11-3.15); iterating it would build a Frame per pair
        frames = getattr(tb, "_frames", None)
        if type(frames) is not tuple:
            frames = tuple((f.filename, f.lineno) for f in tb)
        numbers = out.setdefault(frames, [0, 0])
        numbers[0] += stat.size
        numbers[1] += stat.count
    return out


def _entries(new, old):
    """[(frames, [size, count, old_size, old_count])] sorted by frames, so
    that the tracebacks sharing a call path are neighbours and a path
    comes before the paths that extend it; and the numbers of tracebacks
    in *new* and *old*."""
    new_paths = _paths(new)
    merged = {frames: [size, count, 0, 0]
              for frames, (size, count) in new_paths.items()}
    old_paths = _paths(old) if old is not None else {}
    for frames, (size, count) in old_paths.items():
        numbers = merged.get(frames)
        if numbers is None:
            merged[frames] = [0, 0, size, count]
        else:
            numbers[2] += size
            numbers[3] += count
    return sorted(merged.items()), len(new_paths), len(old_paths)


def _common_prefixes(entries):
    """For each entry, how many leading frames it shares with the one
    before it (0 for the first): the depth at which its call path leaves
    the previous one's."""
    out = []
    prev = ()
    for frames, _numbers in entries:
        same = 0
        limit = min(len(prev), len(frames))
        while same < limit and prev[same] == frames[same]:
            same += 1
        out.append(same)
        prev = frames
    return out


def _prefix_sums(entries, column):
    sums = [0]
    total = 0
    for _frames, numbers in entries:
        total += numbers[column]
        sums.append(total)
    return sums


# The call tree is never built.  With the entries sorted, the tracebacks
# under a node (a call path) are a contiguous run of entries, so its
# numbers are differences of prefix sums, and walking the entries in order
# enters the nodes in preorder: at entry i, the nodes at depths
# lcp[i]+1 .. len(frames) begin, and every open node deeper than lcp[i]
# ended at the previous entry.  A node's index is its preorder rank
# (the root: 0).

def _kept(entries, lcp, sizes, old_sizes, max_nodes, min_percent):
    """The preorder indices of the nodes to keep, and the tree's size.
    Largest first (a node's weight: the larger of its new and old size),
    the root always, then up to *max_nodes* others, none under
    *min_percent* of the root.  A child never weighs more than its parent
    and comes after it in preorder, so taking the largest with ties to the
    earlier node keeps every kept node's parent kept."""
    diff = any(old_sizes)
    weights = [0]
    opened = [0]        # per open node (depth = position): its first entry
    ranks = [0]         # and its preorder rank
    for i, frames in enumerate(e[0] for e in entries):
        depth = lcp[i]
        while len(opened) > depth + 1:
            first = opened.pop()
            w = sizes[i] - sizes[first]
            if diff:
                w = max(w, old_sizes[i] - old_sizes[first])
            weights[ranks.pop()] = w
        new = len(frames) - depth
        if new > 0:
            opened.extend([i] * new)
            ranks.extend(range(len(weights), len(weights) + new))
            weights.extend([0] * new)
    end = len(entries)
    while opened:
        first = opened.pop()
        weights[ranks.pop()] = max(sizes[end] - sizes[first],
                                   old_sizes[end] - old_sizes[first])
    floor = weights[0] * min_percent / 100.0
    kept = {0}
    others = len(weights) - 1
    if others <= max_nodes:
        cut = floor
        kept.update(i for i in range(1, len(weights)) if weights[i] >= cut)
        return kept, len(weights)
    # the max_nodes-th largest weight; the nodes above it all fit, the
    # ones equal to it fit in preorder until the budget is spent
    cut = sorted(weights[1:], reverse=True)[max_nodes - 1]
    if cut < floor:
        kept.update(i for i in range(1, len(weights)) if weights[i] >= floor)
        return kept, len(weights)
    kept.update(i for i in range(1, len(weights)) if weights[i] > cut)
    room = max_nodes - (len(kept) - 1)
    for i in range(1, len(weights)):
        if room <= 0:
            break
        if weights[i] == cut:
            kept.add(i)
            room -= 1
    return kept, len(weights)


def _flatten(entries, lcp, sums, kept, diff):
    """The kept tree as the page's JSON columns, every parent before its
    children; the children a kept node loses become one "(other)" child
    holding what is left of the node once its own traces and its kept
    children are taken away (a leaf: its own children are not kept).
    *sums*: the prefix sums of size, count, old size, old count."""
    files, file_index = [], {}
    frames_out, frame_index = [], {}
    names = ["parent", "frame", "size", "count", "collapsed"]
    if diff:
        names += ["old_size", "old_count"]
    width = 4 if diff else 2
    cols = {name: [] for name in names}

    def frame_id(key):
        i = frame_index.get(key)
        if i is None:
            filename, lineno = key
            if len(filename) > MAX_NAME:
                filename = filename[:MAX_NAME] + "\u2026"
            f = file_index.get(filename)
            if f is None:
                f = file_index[filename] = len(files)
                files.append(filename)
            i = frame_index[key] = len(frames_out)
            frames_out.append([f, lineno])
        return i

    def emit(parent, frame):
        for name in names:
            cols[name].append(0)
        cols["parent"][-1] = parent
        cols["frame"][-1] = frame
        return len(cols["parent"]) - 1

    columns = ("size", "count", "old_size", "old_count")[:width]

    def close(node, end):
        """Fill a kept node's numbers; add its "(other)" child."""
        out, first, own, kids, children = node
        total = [sums[k][end] - sums[k][first] for k in range(width)]
        for k in range(width):
            cols[columns[k]][out] = total[k]
        if children > kids[width]:
            other = emit(out, OTHER)
            for k in range(width):
                cols[columns[k]][other] = total[k] - own[k] - kids[k]
            cols["collapsed"][other] = children - kids[width]
        return total

    # per open kept node: [out index, first entry, own numbers, sums of
    # the kept children's numbers + how many, number of children]
    stack = [[emit(-1, ROOT), 0, [0] * width, [0] * (width + 1), 0]]
    # stack[d]: the open node at depth d; below the last one, the open
    # nodes (if any) are not kept

    def pop_into_parent(stop):
        # close the innermost open node at entry *stop*; its totals go to
        # its parent's children sums, and the parent gains one child
        total = close(stack.pop(), stop)
        kids = stack[-1][3]
        for k in range(width):
            kids[k] += total[k]
        kids[width] += 1

    rank = 1
    for i, (frames, numbers) in enumerate(entries):
        depth = lcp[i]
        while len(stack) > depth + 1:
            pop_into_parent(i)
        if depth < len(stack):
            # the nodes at depths depth+1 .. len(frames) begin here, ranked
            # from *rank*; below the first one not kept, none is
            for d in range(depth + 1, len(frames) + 1):
                stack[d - 1][4] += 1        # a child of a kept node
                if rank + d - depth - 1 not in kept:
                    break
                stack.append([emit(stack[-1][0], frame_id(frames[d - 1])),
                              i, [0] * width, [0] * (width + 1), 0])
        if len(stack) == len(frames) + 1:
            own = stack[-1][2]
            for k in range(width):
                own[k] += numbers[k]
        rank += len(frames) - depth
    end = len(entries)
    while len(stack) > 1:
        pop_into_parent(end)
    close(stack[0], end)
    return files, frames_out, cols


def _build(new, old, max_nodes, min_percent, meta):
    if not isinstance(max_nodes, int) or max_nodes < 1:
        raise ValueError("max_nodes must be an int >= 1: %r" % (max_nodes,))
    if not 0 <= min_percent <= 100:
        raise ValueError("min_percent must be in [0; 100]: %r"
                         % (min_percent,))
    diff = old is not None
    entries, tracebacks, old_tracebacks = _entries(new, old)
    lcp = _common_prefixes(entries)
    sums = [_prefix_sums(entries, k) for k in range(4)]
    kept, in_tree = _kept(entries, lcp, sums[0], sums[2], max_nodes,
                          min_percent)
    files, frames, cols = _flatten(entries, lcp, sums, kept, diff)
    from . import __version__
    info = {
        "traces": len(new.traces),
        "tracebacks": tracebacks,
        "traceback_limit": new.traceback_limit,
        "sample_mean_bytes": getattr(new, "sample_mean_bytes", 0) or 0,
        "nodes_in_tree": in_tree,
        "nodes_kept": len(cols["parent"]),
        "max_nodes": max_nodes,
        "min_percent": min_percent,
        "generator": "fasttracemalloc %s" % __version__,
    }
    if diff:
        info["old_traces"] = len(old.traces)
        info["old_tracebacks"] = old_tracebacks
    info.update(meta)
    return {"version": 1, "mode": "diff" if diff else "flame",
            "files": files, "frames": frames, "nodes": cols, "info": info}


def tree(snapshot, max_nodes=DEFAULT_MAX_NODES, min_percent=0.0,
         title="tracemalloc snapshot"):
    """The page's data for one snapshot (a dict, JSON-ready): ``files``,
    ``frames`` ([file index, lineno]) and ``nodes``, columns with one entry
    per node, every parent before its children: ``parent`` (-1 for the
    root), ``frame`` (-1: the root, -2: "(other)"), ``size``, ``count``,
    ``collapsed`` (an "(other)" node: how many subtrees it merges), and in
    a diff ``old_size``, ``old_count``; ``info``: totals and limits."""
    return _build(snapshot, None, max_nodes, min_percent, {"title": title})


def diff_tree(old, new, max_nodes=DEFAULT_MAX_NODES, min_percent=0.0,
              title="tracemalloc snapshots compared"):
    """The page's data for the change from *old* to *new*."""
    return _build(new, old, max_nodes, min_percent, {"title": title})


def _script_json(data):
    """*data* as JSON that is safe inside a <script> element: ASCII only
    (no U+2028 surprises), and no '<', '>' or '&' at all."""
    text = json.dumps(data, ensure_ascii=True, allow_nan=False,
                      separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026"))


def _csp_hash(text):
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-%s'" % base64.b64encode(digest).decode("ascii")


def page(data):
    """The HTML page (str) that draws *data* (from tree or diff_tree)."""
    title = data["info"].get("title", "flame graph")
    title = title.encode("utf-8", "backslashreplace").decode("utf-8")
    csp = ("default-src 'none'; script-src %s; style-src %s; "
           "img-src 'none'; connect-src 'none'; form-action 'none'; "
           "base-uri 'none'" % (_csp_hash(SCRIPT), _csp_hash(CSS)))
    return TEMPLATE % {
        "csp": html.escape(csp, quote=True),
        "title": html.escape(title, quote=True),
        "css": CSS,
        "data": _script_json(data),
        "script": SCRIPT,
    }


TEMPLATE = """\
<!DOCTYPE html>
<!-- Written by fasttracemalloc: a flame graph of a tracemalloc snapshot.
     Self-contained: no network, no external file; the script and the
     stylesheet are fasttracemalloc's own (python/fasttracemalloc/
     _flamegraph_page.py), written for this page rather than taken from a
     flame graph library, so the file opens on an air-gapped machine and
     carries no third-party code.  The data is the JSON element below. -->
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="%(csp)s">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%(title)s</title>
<style>%(css)s</style>
</head>
<body>
<header>
<h1 id="title"></h1>
<div id="summary"></div>
<div id="controls">
<button type="button" id="back" disabled>Back</button>
<button type="button" id="reset">Reset zoom</button>
<label>Search <input type="search" id="search" placeholder="file or line"
  autocomplete="off"></label>
<label>File <input type="search" id="file" list="files"
  placeholder="filter by file" autocomplete="off"></label>
<select id="filemode" aria-label="file filter mode">
<option value="only">only stacks through it</option>
<option value="exclude">stacks not through it</option>
</select>
<datalist id="files"></datalist>
<span id="matched"></span>
</div>
<div id="legend"></div>
</header>
<pre id="errors" hidden></pre>
<main id="graph" aria-label="flame graph"></main>
<div id="tooltip" hidden></div>
<script type="application/json" id="flame-data">%(data)s</script>
<script>%(script)s</script>
</body>
</html>
"""
