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

The bound: at most ``max_nodes`` call-path nodes are kept (default 20,000),
chosen largest first (a node is never larger than its parent, so the kept
nodes always form a tree: see ``_prune``), and none under ``min_percent``
of the total.  The children a kept node loses are merged into one
``(other)`` child, so sizes still add up: the page holds at most
2 * max_nodes + 1 nodes, about 25-60 bytes of JSON each plus each kept
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
import heapq
import html
import json

from ._flamegraph_page import CSS, SCRIPT

__all__ = ["DEFAULT_MAX_NODES", "MAX_NAME", "tree", "diff_tree", "page"]

DEFAULT_MAX_NODES = 20000
MAX_NAME = 1000         # characters of a file name kept in the page
ROOT, OTHER = -1, -2    # frame index of the root and of "(other)" nodes


class _Node:
    __slots__ = ("children", "size", "count", "old_size", "old_count")

    def __init__(self):
        self.children = {}
        self.size = self.count = self.old_size = self.old_count = 0


def _fold(root, snapshot, old):
    """Add *snapshot*'s traces to the tree under *root* (to the old
    numbers if *old*); return the number of distinct tracebacks."""
    from ._pprof import traceback_statistics
    stats = traceback_statistics(snapshot)
    for stat in stats:
        size, count = stat.size, stat.count
        node = root
        path = [root]
        for frame in stat.traceback:            # oldest frame first
            key = (frame.filename, frame.lineno)
            child = node.children.get(key)
            if child is None:
                child = node.children[key] = _Node()
            path.append(child)
            node = child
        for node in path:
            if old:
                node.old_size += size
                node.old_count += count
            else:
                node.size += size
                node.count += count
    return len(stats)


def _weight(node):
    return max(node.size, node.old_size)


def _prune(root, max_nodes, min_percent):
    """The kept nodes: the root and up to *max_nodes* others, largest
    first, none below *min_percent* of the root.  A child never weighs
    more than its parent, so taking nodes from a heap that starts with the
    root's children and gains a node's children when it is taken keeps
    every kept node's parent kept."""
    floor = _weight(root) * min_percent / 100.0
    kept = {id(root)}
    heap = []
    tie = 0
    for child in root.children.values():
        heap.append((-_weight(child), tie, child))
        tie += 1
    heapq.heapify(heap)
    while heap and len(kept) <= max_nodes:
        negw, _, node = heapq.heappop(heap)
        if -negw < floor:
            break
        kept.add(id(node))
        for child in node.children.values():
            tie += 1
            heapq.heappush(heap, (-_weight(child), tie, child))
    return kept


def _count_nodes(root):
    total = 0
    stack = [root]
    while stack:
        node = stack.pop()
        total += 1
        stack.extend(node.children.values())
    return total


def _subtree_sum(node):
    """(size, count, old_size, old_count) of a subtree merged into an
    "(other)" node: its root's numbers, which include its descendants'."""
    return node.size, node.count, node.old_size, node.old_count


def _flatten(root, kept, diff):
    """The kept tree as the page's JSON arrays, in preorder, children by
    decreasing size (the old size breaks ties in a diff), "(other)" last."""
    files, file_index = [], {}
    frames, frame_index = [], {}
    cols = {"parent": [], "frame": [], "size": [], "count": [],
            "collapsed": []}
    if diff:
        cols["old_size"] = []
        cols["old_count"] = []

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
            i = frame_index[key] = len(frames)
            frames.append([f, lineno])
        return i

    def emit(parent, frame, numbers, collapsed):
        cols["parent"].append(parent)
        cols["frame"].append(frame)
        cols["size"].append(numbers[0])
        cols["count"].append(numbers[1])
        if diff:
            cols["old_size"].append(numbers[2])
            cols["old_count"].append(numbers[3])
        cols["collapsed"].append(collapsed)
        return len(cols["parent"]) - 1

    order = lambda item: (-item[1].size, -item[1].old_size)
    stack = [(-1, ROOT, root, 0)]      # (parent, frame, node or numbers, n)
    while stack:
        parent, frame, node, n = stack.pop()
        if frame == OTHER:
            emit(parent, frame, node, n)
            continue
        me = emit(parent, frame,
                  (node.size, node.count, node.old_size, node.old_count), 0)
        items = []
        other = [0, 0, 0, 0]
        collapsed = 0
        for key, child in sorted(node.children.items(), key=order):
            if id(child) in kept:
                items.append((me, frame_id(key), child, 0))
            else:
                collapsed += 1
                for i, v in enumerate(_subtree_sum(child)):
                    other[i] += v
        if collapsed:
            items.append((me, OTHER, other, collapsed))
        stack.extend(reversed(items))   # popped in order: preorder
    return files, frames, cols


def _build(new, old, max_nodes, min_percent, meta):
    if not isinstance(max_nodes, int) or max_nodes < 1:
        raise ValueError("max_nodes must be an int >= 1: %r" % (max_nodes,))
    if not 0 <= min_percent <= 100:
        raise ValueError("min_percent must be in [0; 100]: %r"
                         % (min_percent,))
    root = _Node()
    tracebacks = _fold(root, new, False)
    diff = old is not None
    if diff:
        old_tracebacks = _fold(root, old, True)
    kept = _prune(root, max_nodes, min_percent)
    files, frames, cols = _flatten(root, kept, diff)
    from . import __version__
    info = {
        "traces": len(new.traces),
        "tracebacks": tracebacks,
        "traceback_limit": new.traceback_limit,
        "sample_mean_bytes": getattr(new, "sample_mean_bytes", 0) or 0,
        "nodes_in_tree": _count_nodes(root),
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
    """The page's data for one snapshot (a dict, JSON-ready)."""
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
