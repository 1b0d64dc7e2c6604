r"""The flame graph page's stylesheet and script (fasttracemalloc's own).

Owns: how the page draws the tree that ``_flamegraph`` embeds as JSON in
``<script type="application/json" id="flame-data">``, and its interaction:

  * an icicle layout: the root ("all") on the top row, each row below one
    frame deeper (oldest to newest), widths proportional to size (in a
    diff: to the new snapshot's size); a box shows its file's last path
    component and the line, the tooltip the whole file name;
  * hover: a tooltip with the frame, size, blocks and percentages (in a
    diff: the change in bytes and blocks, and the old numbers);
  * click: zoom on a frame (it takes the full width, its ancestors stay
    above); the Back button and the browser's back undo a zoom, Reset
    returns to the root;
  * search: frames whose "file:line" contains the text (any case) are
    highlighted; "matched" says how much memory they hold (a frame inside
    another matched frame is not counted twice);
  * filter by file: keep only the stacks that pass through a frame whose
    file name contains the text, or only those that do not.

State lives in the location's fragment, ``#zoom=ID&search=TEXT&file=TEXT
&mode=only|exclude`` (ID: a node's index in the JSON's columns), so a
view can be bookmarked and the tests drive the page deterministically.
The page marks ``<body data-ready="1">`` after each drawing, and writes
every script error into ``<pre id="errors">`` (also ``data-errors`` on
the body), so a headless browser's DOM shows them.

Invariant: nothing read from the data is ever parsed as HTML: text goes
in with ``textContent``, numbers through ``style``.  No network access.
"""

CSS = r"""
body { font: 13px/1.35 system-ui, sans-serif; margin: 0; color: #222;
  background: #fff; }
header { padding: 8px 12px; border-bottom: 1px solid #ddd;
  background: #fafafa; }
h1 { font-size: 16px; margin: 0 0 4px 0; word-break: break-all; }
#summary, #legend { color: #444; margin: 2px 0; }
#controls { margin: 6px 0 2px 0; display: flex; flex-wrap: wrap; gap: 6px;
  align-items: center; }
#controls input { width: 16em; }
#matched { font-weight: 600; color: #8a1a8a; }
#errors { color: #b00; background: #fee; margin: 0; padding: 6px 12px;
  white-space: pre-wrap; }
#graph { position: relative; margin: 6px 12px; overflow: hidden; }
.frame { position: absolute; height: 17px; box-sizing: border-box;
  border-right: 1px solid #fff; border-bottom: 1px solid #fff;
  padding: 0 3px; font: 12px/17px ui-monospace, monospace;
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
  cursor: pointer; }
.frame:hover { border: 1px solid #000; }
.frame.match { background: #d63ad6 !important; color: #fff; }
.frame.ancestor { opacity: 0.75; }
.frame.other { font-style: italic; }
#tooltip { position: fixed; z-index: 10; pointer-events: none;
  max-width: 60em; background: #fffff0; border: 1px solid #888;
  padding: 4px 6px; font: 12px/1.4 ui-monospace, monospace;
  white-space: pre-wrap; word-break: break-all;
  box-shadow: 2px 2px 6px rgba(0,0,0,0.25); }
#empty { padding: 12px; color: #666; }
"""

SCRIPT = r"""
"use strict";
(function () {
  var errorsEl = document.getElementById("errors");
  function reportError(text) {
    errorsEl.hidden = false;
    errorsEl.textContent += text + "\n";
    document.body.setAttribute("data-errors",
      String(Number(document.body.getAttribute("data-errors") || 0) + 1));
  }
  window.addEventListener("error", function (e) {
    reportError("error: " + e.message + " (line " + e.lineno + ")");
  });
  window.addEventListener("unhandledrejection", function (e) {
    reportError("unhandled rejection: " + e.reason);
  });

  var ROW = 18;
  var D, N, kids, depth, label, shortLabel, fileOf, maxDepth;
  var val, cnt, oval, ocnt;          // numbers under the current filter
  var state = {zoom: 0, search: "", file: "", mode: "only"};
  var pushed = 0;                    // history entries this page added
  var el = {};

  function $(id) { return document.getElementById(id); }

  function group(n) {
    var s = String(Math.abs(n)), out = "";
    while (s.length > 3) {
      out = "," + s.slice(-3) + out;
      s = s.slice(0, -3);
    }
    return (n < 0 ? "-" : "") + s + out;
  }
  function human(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], a = Math.abs(n), u = 0;
    while (a >= 1024 && u < units.length - 1) { a /= 1024; u++; }
    return (n < 0 ? "-" : "") + (u ? a.toFixed(1) : String(a)) + " " +
      units[u];
  }
  function bytes(n) { return human(n) + " (" + group(n) + " B)"; }
  function signed(n) { return (n > 0 ? "+" : "") + group(n); }
  function pct(part, whole) {
    if (!whole) { return "0%"; }
    var p = 100 * part / whole;
    return (Math.abs(p) >= 10 ? p.toFixed(1) : p.toPrecision(2)) + "%";
  }

  function load() {
    D = JSON.parse($("flame-data").textContent);
    var nodes = D.nodes;
    N = nodes.parent.length;
    kids = new Array(N);
    depth = new Int32Array(N);
    label = new Array(N);
    shortLabel = new Array(N);
    fileOf = new Array(N);
    maxDepth = 0;
    for (var i = 0; i < N; i++) {
      kids[i] = [];
      var f = nodes.frame[i];
      if (i > 0) {
        kids[nodes.parent[i]].push(i);
        depth[i] = depth[nodes.parent[i]] + 1;
        if (depth[i] > maxDepth) { maxDepth = depth[i]; }
      }
      if (f === -1) {
        label[i] = "all"; fileOf[i] = null;
      } else if (f === -2) {
        label[i] = "(other)"; fileOf[i] = null;
      } else {
        var fr = D.frames[f];
        fileOf[i] = D.files[fr[0]];
        label[i] = fileOf[i] + ":" + fr[1];
      }
      // the box shows the file's last path component and the line; the
      // tooltip and the search use the whole name
      var slash = fileOf[i] === null ? -1 :
        Math.max(fileOf[i].lastIndexOf("/"), fileOf[i].lastIndexOf("\\"));
      shortLabel[i] = slash >= 0 && slash < fileOf[i].length - 1 ?
        label[i].slice(slash + 1) : label[i];
    }
    // children left to right by decreasing size (the old size breaks
    // ties), "(other)" last
    var size = nodes.size, old = nodes.old_size || nodes.size;
    kids.forEach(function (ks) {
      ks.sort(function (a, b) {
        var oa = nodes.frame[a] === -2, ob = nodes.frame[b] === -2;
        if (oa !== ob) { return oa ? 1 : -1; }
        return (size[b] - size[a]) || (old[b] - old[a]) || (a - b);
      });
    });
  }

  // The numbers of every node once the file filter is applied: a stack
  // (a path from the root to where its blocks were counted) is kept when
  // one of its frames is in a matching file ("only") or none is
  // ("exclude").  Children come after their parent in the preorder, so
  // one pass down marks the nodes under a match and one pass up sums.
  function applyFilter() {
    var nodes = D.nodes, diff = D.mode === "diff";
    var cols = diff ? ["size", "count", "old_size", "old_count"]
                    : ["size", "count"];
    var out = cols.map(function () { return new Float64Array(N); });
    if (!state.file) {
      cols.forEach(function (c, k) { out[k].set(nodes[c]); });
    } else {
      var under = new Uint8Array(N);
      var sub = cols.map(function () { return new Float64Array(N); });
      var i, k;
      for (i = 0; i < N; i++) {
        under[i] = (i > 0 && under[nodes.parent[i]]) ||
          (fileOf[i] !== null && fileOf[i].indexOf(state.file) >= 0) ? 1 : 0;
      }
      for (i = N - 1; i >= 0; i--) {
        for (k = 0; k < cols.length; k++) {
          var full = nodes[cols[k]][i];
          var inc = under[i] ? full : sub[k][i];
          out[k][i] = state.mode === "exclude" ? full - inc : inc;
          if (i > 0) { sub[k][nodes.parent[i]] += inc; }
        }
      }
    }
    val = out[0]; cnt = out[1];
    oval = diff ? out[2] : null; ocnt = diff ? out[3] : null;
  }

  function readHash() {
    var s = {zoom: 0, search: "", file: "", mode: "only"};
    var h = window.location.hash.replace(/^#/, "");
    h.split("&").forEach(function (part) {
      if (!part) { return; }
      var eq = part.indexOf("="), key = eq < 0 ? part : part.slice(0, eq);
      var v = eq < 0 ? "" : part.slice(eq + 1);
      try { v = decodeURIComponent(v); } catch (e) { /* keep it raw */ }
      if (key === "zoom") {
        var z = parseInt(v, 10);
        s.zoom = z >= 0 && z < N ? z : 0;
      } else if (key === "search") { s.search = v; }
      else if (key === "file") { s.file = v; }
      else if (key === "mode") { s.mode = v === "exclude" ? v : "only"; }
    });
    return s;
  }
  function hashOf(s) {
    var parts = [];
    if (s.zoom) { parts.push("zoom=" + s.zoom); }
    if (s.search) { parts.push("search=" + encodeURIComponent(s.search)); }
    if (s.file) { parts.push("file=" + encodeURIComponent(s.file)); }
    if (s.mode !== "only") { parts.push("mode=" + s.mode); }
    return parts.length ? "#" + parts.join("&") : "";
  }
  function setState(change, push) {
    var s = {zoom: state.zoom, search: state.search, file: state.file,
             mode: state.mode};
    for (var k in change) { s[k] = change[k]; }
    var h = hashOf(s);
    var url = window.location.pathname + window.location.search + h;
    if (push) {
      history.pushState(null, "", url || "#");
      pushed++;
    } else {
      history.replaceState(null, "", url || "#");
    }
    sync();
  }

  function color(i) {
    if (D.mode === "diff") {
      var delta = val[i] - oval[i];
      var t = maxDelta ? Math.min(1, Math.abs(delta) / maxDelta) : 0;
      var light = Math.round(238 - 178 * Math.sqrt(t));
      var pale = light + "," + light;
      if (delta > 0) { return ["grow", "rgb(255," + pale + ")"]; }
      if (delta < 0) { return ["shrink", "rgb(" + pale + ",255)"]; }
      return ["same", "rgb(232,232,232)"];
    }
    if (fileOf[i] === null) { return ["none", "rgb(210,210,210)"]; }
    var h = 0, name = fileOf[i];
    for (var k = 0; k < name.length; k++) {
      h = (h * 31 + name.charCodeAt(k)) >>> 0;
    }
    var line = D.frames[D.nodes.frame[i]][1];
    return ["file", "hsl(" + (h % 50 + 5) + ",85%," +
      (58 + (h >>> 8) % 12 + line % 7) + "%)"];
  }

  var maxDelta = 0, matchedSet = null;

  function searchMatches() {
    if (!state.search) { return null; }
    var needle = state.search.toLowerCase(), set = new Uint8Array(N);
    for (var i = 0; i < N; i++) {
      if (label[i].toLowerCase().indexOf(needle) >= 0) { set[i] = 1; }
    }
    return set;
  }

  function render() {
    var graph = el.graph, width = graph.clientWidth || 800;
    var z = state.zoom, nodes = D.nodes, i;
    graph.textContent = "";
    maxDelta = 0;
    if (D.mode === "diff") {
      for (i = 1; i < N; i++) {
        maxDelta = Math.max(maxDelta, Math.abs(val[i] - oval[i]));
      }
    }
    var frag = document.createDocumentFragment(), drawn = 0, rows = 0;
    function draw(i, x, w, row, extra) {
      var d = document.createElement("div");
      var c = color(i);
      d.className = "frame " + c[0] + (extra ? " " + extra : "") +
        (nodes.frame[i] === -2 ? " other" : "") +
        (matchedSet && matchedSet[i] ? " match" : "");
      d.style.left = (100 * x / width) + "%";
      d.style.width = (100 * w / width) + "%";
      d.style.top = (row * ROW) + "px";
      d.style.background = c[1];
      d.setAttribute("data-id", String(i));
      // a box too narrow for a few characters stays blank (hover names it)
      d.textContent = w >= 24 ? shortLabel[i] : "";
      frag.appendChild(d);
      drawn++;
      if (row + 1 > rows) { rows = row + 1; }
    }
    // the zoomed node's ancestors: full width, above it
    var chain = [], a = z;
    while (a > 0) { a = nodes.parent[a]; chain.unshift(a); }
    chain.forEach(function (anc, row) {
      draw(anc, 0, width, row, "ancestor");
    });
    var base = chain.length;
    if (val[z] <= 0) {
      var empty = document.createElement("div");
      empty.id = "empty";
      empty.style.marginTop = ((base + 1) * ROW) + "px";
      empty.textContent = state.file
        ? "No memory left under this frame with this file filter."
        : "This frame holds no memory in this snapshot.";
      draw(z, 0, width, base, "zoomed");
      frag.appendChild(empty);
    } else {
      var stack = [[z, 0, width]];
      while (stack.length) {
        var top = stack.pop(), n = top[0], x = top[1], w = top[2];
        draw(n, x, w, base + depth[n] - depth[z], n === z ? "zoomed" : "");
        var cx = x, ks = kids[n];
        for (var k = 0; k < ks.length; k++) {
          var cw = w * val[ks[k]] / val[n];
          if (cw >= 1) { stack.push([ks[k], cx, cw]); }
          cx += cw;
        }
      }
    }
    graph.style.height = (rows * ROW + 40) + "px";
    graph.appendChild(frag);
    el.graph.setAttribute("data-drawn", String(drawn));
  }

  function summary() {
    var info = D.info, diff = D.mode === "diff";
    var lines = [];
    if (diff) {
      lines.push("New: " + bytes(val[0]) + " in " + group(cnt[0]) +
        " blocks; old: " + bytes(oval[0]) + " in " + group(ocnt[0]) +
        " blocks; change: " + signed(val[0] - oval[0]) + " B (" +
        signed(cnt[0] - ocnt[0]) + " blocks). Widths: new size; red grew, " +
        "blue shrank.");
    } else {
      lines.push("Total: " + bytes(val[0]) + " in " + group(cnt[0]) +
        " blocks, " + group(info.tracebacks) + " tracebacks (" +
        group(info.traces) + " traces, traceback limit " +
        info.traceback_limit + ")" +
        (info.sample_mean_bytes ? "; sampled, one sample per " +
          group(info.sample_mean_bytes) + " B: sizes are estimates" : ""));
    }
    if (state.file) {
      var full = D.nodes.size[0];
      lines.push("File filter: " + (state.mode === "exclude" ?
        "stacks not through " : "stacks through ") +
        JSON.stringify(state.file) +
        " hold " + pct(val[0], full) + " of the total.");
    }
    el.summary.textContent = lines.join(" ");
    el.summary.setAttribute("data-total", String(val[0]));
    el.summary.setAttribute("data-count", String(cnt[0]));
    var legend = group(info.nodes_kept) + " of " + group(info.nodes_in_tree) +
      " call-path nodes kept (the " + group(info.max_nodes) + " largest" +
      (info.min_percent ? ", none under " + info.min_percent + "%" : "") +
      "); smaller ones are merged into \"(other)\". Click a frame to zoom.";
    el.legend.textContent = legend;
  }

  function matched() {
    if (!matchedSet) {
      el.matched.textContent = "";
      el.matched.removeAttribute("data-bytes");
      return;
    }
    // a match inside another match is already counted by its ancestor
    var total = 0, under = new Uint8Array(N), nodes = D.nodes;
    for (var i = 0; i < N; i++) {
      var p = i > 0 ? nodes.parent[i] : -1;
      var covered = p >= 0 && (under[p] || matchedSet[p]);
      under[i] = covered ? 1 : 0;
      if (matchedSet[i] && !covered) { total += val[i]; }
    }
    el.matched.textContent = "Matched: " + bytes(total) + ", " +
      pct(total, val[0]) + " of all";
    el.matched.setAttribute("data-bytes", String(total));
  }

  function tooltipText(i) {
    var lines = [label[i]], z = state.zoom;
    if (D.mode === "diff") {
      lines.push("size: " + bytes(val[i]) + " in " + group(cnt[i]) +
        " blocks");
      lines.push("change: " + signed(val[i] - oval[i]) + " B (" +
        human(val[i] - oval[i]) + "), " + signed(cnt[i] - ocnt[i]) +
        " blocks");
      lines.push("before: " + bytes(oval[i]) + " in " + group(ocnt[i]) +
        " blocks");
    } else {
      lines.push("size: " + bytes(val[i]) + ", " + pct(val[i], val[0]) +
        " of all" + (z && val[z] ? ", " + pct(val[i], val[z]) +
        " of the zoomed frame" : ""));
      lines.push("blocks: " + group(cnt[i]));
    }
    var c = D.nodes.collapsed[i];
    if (c) {
      lines.push(group(c) + " smaller call paths merged here");
    }
    return lines.join("\n");
  }

  function sync() {
    state = readHash();
    el.search.value = state.search;
    el.file.value = state.file;
    el.filemode.value = state.mode;
    el.back.disabled = pushed <= 0;
    applyFilter();
    matchedSet = searchMatches();
    render();
    summary();
    matched();
    el.tooltip.hidden = true;
    document.body.setAttribute("data-zoom", String(state.zoom));
    document.body.setAttribute("data-ready", "1");
  }

  function frameAt(target) {
    while (target && target !== el.graph) {
      if (target.classList && target.classList.contains("frame")) {
        return target;
      }
      target = target.parentNode;
    }
    return null;
  }

  function setup() {
    ["graph", "tooltip", "summary", "legend", "matched", "search", "file",
     "filemode", "back", "reset", "title"].forEach(function (id) {
      el[id] = $(id);
    });
    el.title.textContent = D.info.title + (D.mode === "diff" ?
      " (diff)" : "");
    var list = $("files");
    D.files.forEach(function (name) {
      var o = document.createElement("option");
      o.value = name;
      list.appendChild(o);
    });
    el.graph.addEventListener("click", function (e) {
      var f = frameAt(e.target);
      if (!f) { return; }
      var id = Number(f.getAttribute("data-id"));
      if (id !== state.zoom) { setState({zoom: id}, true); }
    });
    el.graph.addEventListener("mousemove", function (e) {
      var f = frameAt(e.target);
      if (!f) { el.tooltip.hidden = true; return; }
      el.tooltip.textContent = tooltipText(Number(f.getAttribute("data-id")));
      el.tooltip.hidden = false;
      var x = e.clientX + 14, y = e.clientY + 14;
      var w = el.tooltip.offsetWidth, h = el.tooltip.offsetHeight;
      if (x + w > window.innerWidth) { x = Math.max(0, e.clientX - w - 8); }
      if (y + h > window.innerHeight) { y = Math.max(0, e.clientY - h - 8); }
      el.tooltip.style.left = x + "px";
      el.tooltip.style.top = y + "px";
    });
    el.graph.addEventListener("mouseleave", function () {
      el.tooltip.hidden = true;
    });
    el.back.addEventListener("click", function () {
      if (pushed > 0) { pushed--; history.back(); }
    });
    el.reset.addEventListener("click", function () {
      if (state.zoom) { setState({zoom: 0}, true); }
    });
    el.search.addEventListener("input", function () {
      setState({search: el.search.value}, false);
    });
    el.file.addEventListener("input", function () {
      setState({file: el.file.value, zoom: 0}, false);
    });
    el.filemode.addEventListener("change", function () {
      setState({mode: el.filemode.value}, false);
    });
    window.addEventListener("hashchange", sync);
    window.addEventListener("popstate", sync);
    var pending = false;
    window.addEventListener("resize", function () {
      if (pending) { return; }
      pending = true;
      window.requestAnimationFrame(function () { pending = false; render(); });
    });
  }

  try {
    load();
    setup();
    sync();
  } catch (e) {
    reportError("error: " + (e && e.stack ? e.stack : e));
  }
})();
"""
