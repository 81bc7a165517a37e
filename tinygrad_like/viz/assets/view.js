/* The HTML view of a tinygrad_like graph (written by tinygrad_like.viz.to_html).

   Reads the graph from the JSON in #graph-data, writes it as DOT text and lets viz.js (Graphviz compiled to
   WebAssembly, inlined above) lay it out as SVG: no network, no server, so the page works opened from disk.
   Node i is drawn as "n<i>", a collapsed cluster k (a module call, or a run folding part of a long graph) as
   "c<k>"; the edge into input `pos` of node i is "e<i>_<pos>" (edges between collapsed clusters are
   "e<from>_<to>"). At most DRAW_LIMIT nodes and boxes are drawn at once.
   The step control walks data.steps: the rules in the order the engine runs them. */
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("graph-data").textContent);
  const { clusters, legend } = data;
  const nodes = unpackNodes(data.nodes);
  const contributions = []; // every gradient sent along an edge: {from, pos, to, grad}
  const steps = data.steps.map(([node, ...positions]) => ({ node, sent: positions.map((pos) => {
    const c = contributions.length, to = nodes[node].inputs[pos];
    contributions.push({ from: node, pos, to, grad: data.sent[c] });
    nodes[to].recv.push(c);
    return c;
  }) }));
  const state = {
    collapsed: data.collapsed.slice(),
    rankdir: "TB",
    step: -1,
    selected: null,
    timer: null,
    scale: null,
  };
  const FAST_LAYOUT = 150; // nodes
  const FANOUT = 4; // in graphs bigger than FAST_LAYOUT, a leaf feeding more drawn nodes is drawn beside each one
  const DRAW_LIMIT = data.drawLimit; // nodes and boxes drawn at once at most (html.py's DRAW_LIMIT)
  const LABEL_CHARS = 60; // a longer name is cut in the drawing (its tooltip and the side panel show all of it)
  const RECEIVED_SHOWN = 50; // contributions listed in the panel at most
  const graphDiv = document.getElementById("graph");
  const panel = document.getElementById("panel");
  const $ = (id) => document.getElementById(id);
  let viz = null;

  function unpackNodes(columns) { // the page's columns (see html.py's _view_data) as one object per node
    const column = (c) => c.index.map((k) => c.values[k]);
    const [title, cat, shape, dtype, cluster] = ["title", "cat", "shape", "dtype", "cluster"]
      .map((k) => column(columns[k]));
    return columns.inputs.map((inputs, i) => ({
      title: title[i], name: columns.name[i] ?? null, cat: cat[i], op: inputs.length ? title[i] : null,
      shape: shape[i], dtype: dtype[i], cluster: cluster[i], inputs, value: columns.value[i],
      grad: columns.grad[i], recv: [], verdict: columns.verdict[i] ?? null,
    }));
  }

  // ---------------------------------------------------------------------------------------------------
  // Text helpers
  // ---------------------------------------------------------------------------------------------------
  const escapeHTML = (s) => String(s).replace(/[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const printable = (s) => String(s).replace(/[\x00-\x08\x0b-\x1f\x7f]/g, // a NUL would end the DOT text early
    (c) => "\\x" + c.charCodeAt(0).toString(16).padStart(2, "0"));
  const clip = (s) => {
    const text = printable(s);
    return text.length > LABEL_CHARS ? text.slice(0, LABEL_CHARS - 1) + "\u2026" : text;
  };
  const escapeDOT = (s) => s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
  // Graphviz refuses a quoted string of more than 16,384 characters: longer text goes in pieces joined by `+`
  const quote = (s) => (printable(s).match(/[^]{1,4000}/g) || [""]).map((p) => `"${escapeDOT(p)}"`).join(" + ");
  const tooltip = (s) => (clip(s) === printable(s) ? "" : ` tooltip=${quote(s)}`);
  const shapeText = (shape) => (shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`);
  const nodeName = (i) => `t${i} ${nodes[i].title}`;
  const link = (i) => `<a href="#" data-node="${i}">${escapeHTML(nodeName(i))}</a>`;

  function wrap(text, width) { // lines of at most `width` characters, broken at spaces
    const lines = [];
    for (const word of text.split(" ")) {
      const last = lines.length - 1;
      if (last >= 0 && lines[last].length + word.length < width) lines[last] += " " + word;
      else lines.push(word);
    }
    return lines.join("\n");
  }

  function nested(values, shape) {
    if (shape.length === 0) return String(values[0]);
    const inner = shape.slice(1).reduce((a, b) => a * b, 1);
    const parts = [];
    for (let k = 0; k < shape[0]; k++) parts.push(nested(values.slice(k * inner, (k + 1) * inner), shape.slice(1)));
    return "[" + parts.join(", ") + "]";
  }

  function histogram(h) {
    const width = 300, height = 48, n = h.counts.length, top = Math.max(...h.counts, 1);
    const bars = h.counts.map((c, k) => {
      const bh = c === 0 ? 0 : Math.max(1, (c / top) * height);
      return `<rect x="${(k * width) / n}" y="${height - bh}" width="${width / n - 1}" height="${bh}" fill="#7986cb">` +
        `<title>${c}</title></rect>`;
    }).join("");
    return `<svg class="hist" width="${width}" height="${height + 14}" role="img" aria-label="histogram">${bars}` +
      `<text x="0" y="${height + 12}" font-size="10">${escapeHTML(h.lo)}</text>` +
      `<text x="${width}" y="${height + 12}" font-size="10" text-anchor="end">${escapeHTML(h.hi)}</text></svg>`;
  }

  function summary(s, shape) {
    let out = "";
    if (s.values) out += `<div class="values">${escapeHTML(nested(s.values, shape))}</div>`;
    const rows = ["mean", "min", "max", "norm", "nonfinite"].filter((k) => k in s)
      .map((k) => `<tr><td>${k === "nonfinite" ? "nan/inf" : k}</td><td>${escapeHTML(s[k])}</td></tr>`);
    if (rows.length) out += `<table class="stats">${rows.join("")}</table>`;
    if (s.hist) out += histogram(s.hist);
    return out;
  }

  // ---------------------------------------------------------------------------------------------------
  // The graph as DOT text
  // ---------------------------------------------------------------------------------------------------
  function drawnAs(i, collapsed = state.collapsed) { // "n<i>", or "c<k>": the outermost collapsed cluster holding i
    let shown = `n${i}`;
    for (let c = nodes[i].cluster; c !== null; c = clusters[c].parent) if (collapsed[c]) shown = `c${c}`;
    return shown;
  }

  function drawnCount(collapsed) { // how many nodes and boxes a drawing with these clusters collapsed has
    const shown = new Set();
    for (let i = 0; i < nodes.length; i++) shown.add(drawnAs(i, collapsed));
    return shown.size;
  }

  function edgeId(i, pos) { // the drawn edge carrying node i's input pos, or null inside a collapsed cluster
    const a = drawnAs(nodes[i].inputs[pos]), b = drawnAs(i);
    if (a === b) return null;
    return a[0] === "n" && b[0] === "n" ? `e${i}_${pos}` : `e${a}_${b}`;
  }

  function nodeLine(i, copy) { // copy: the drawn node this copy of leaf i stands beside
    const n = nodes[i];
    let label = `${clip(n.title)}\n${shapeText(n.shape)} ${n.dtype}`;
    let attrs = `fillcolor="${legend[n.cat][0]}"${tooltip(n.title)}`;
    if (n.verdict) {
      label += `\ngrad rel diff ${n.verdict.rel} ${n.verdict.agrees ? "ok" : "DISAGREES"}`;
      if (!n.verdict.agrees) attrs += ` color="red" penwidth=2.5`;
      if (n.verdict.cause) label += "\n" + wrap(n.verdict.cause, 36);
    }
    if (copy !== undefined) return `k${i}_${copy} [id="k${i}_${copy}" class="copy" style="rounded,filled,dashed" ` +
      `label=${quote(label)} ${attrs}];`;
    return `n${i} [id="n${i}" label=${quote(label)} ${attrs}];`;
  }

  function toDot() {
    const lines = ["digraph G {", `rankdir=${state.rankdir}; nodesep=0.25; ranksep=0.35;`,
      // Big graphs: fewer network-simplex and crossing-minimisation rounds, 4-10x faster for 1,000 nodes
      nodes.length > FAST_LAYOUT ? "nslimit=2; nslimit1=2; mclimit=0.1;" : "",
      'node [shape=box style="rounded,filled" fontname="Helvetica" fontsize=10];',
      'edge [arrowsize=0.6 color="#555555"];'];
    const members = clusters.map(() => []), children = clusters.map(() => []), topNodes = [], topClusters = [];
    nodes.forEach((n, i) => (n.cluster === null ? topNodes : members[n.cluster]).push(i));
    clusters.forEach((c, k) => (c.parent === null ? topClusters : children[c.parent]).push(k));
    const cluster = (k, depth) => {
      const c = clusters[k];
      if (state.collapsed[k]) { // a run reads "19,800 more ops", a module call its name and size
        const text = c.box ? `${c.box}\n${c.label}\n(click to open)`
          : `${clip(c.label)}\n${c.size} nodes (click to expand)`;
        lines.push(`c${k} [id="c${k}" shape=box3d fillcolor="${c.box ? "#f3eefa" : "#e8eef7"}" ` +
          `label=${quote(text)}${tooltip(c.label)}];`);
        return;
      }
      lines.push(`subgraph cluster_${k} { id="c${k}"; label=${quote(clip(c.label))};${tooltip(c.label)} ` +
        `style="rounded,filled${c.box ? ",dashed" : ""}"; fillcolor="${depth % 2 ? "#f4f4f4" : "#e8eef7"}"; ` +
        `color="grey50"; fontname="Helvetica"; fontsize=11;`);
      members[k].forEach((i) => lines.push(nodeLine(i)));
      children[k].forEach((j) => cluster(j, depth + 1));
      lines.push("}");
    };
    topNodes.forEach((i) => lines.push(nodeLine(i)));
    topClusters.forEach((k) => cluster(k, 0));
    // Edges from a leaf used all over a big graph (a shared weight) would cross every rank between; laying out
    // those long edges is what makes such graphs slow, so the leaf is drawn again (dashed) beside each consumer.
    const consumers = new Map(); // leaf -> the drawn nodes using it
    nodes.forEach((n, i) => n.inputs.forEach((j) => {
      if (nodes[j].inputs.length) return;
      if (!consumers.has(j)) consumers.set(j, new Set());
      consumers.get(j).add(drawnAs(i));
    }));
    const copied = (j) => nodes.length > FAST_LAYOUT && !nodes[j].inputs.length && consumers.get(j).size > FANOUT &&
      drawnAs(j)[0] === "n";
    const seen = new Set();
    nodes.forEach((n, i) => n.inputs.forEach((j, pos) => {
      const id = edgeId(i, pos), to = drawnAs(i);
      if (id === null || seen.has(id)) return;
      seen.add(id);
      let from = drawnAs(j);
      if (copied(j) && to !== consumers.get(j).values().next().value) { // the first consumer keeps the leaf itself
        from = `k${j}_${to.slice(1)}`;
        if (!seen.has(from)) lines.push(nodeLine(j, to.slice(1)));
        seen.add(from);
      }
      lines.push(`${from} -> ${to} [id="${id}"];`);
    }));
    lines.push("}");
    return lines.join("\n");
  }

  // ---------------------------------------------------------------------------------------------------
  // Rendering, zoom, highlights
  // ---------------------------------------------------------------------------------------------------
  function render() {
    const svg = viz.renderSVGElement(toDot());
    graphDiv.replaceChildren(svg);
    if (state.scale === null) { // first view: fit the width, but never smaller than a quarter
      const width = svg.viewBox.baseVal.width;
      state.scale = Math.max(0.25, Math.min(1, (graphDiv.clientWidth - 16) / width));
    }
    zoom(state.scale);
    highlight();
    document.body.dataset.rendered = String(Number(document.body.dataset.rendered || 0) + 1);
  }

  function zoom(scale) {
    const svg = graphDiv.querySelector("svg");
    if (!svg) return;
    state.scale = scale;
    const box = svg.viewBox.baseVal;
    svg.setAttribute("width", `${box.width * scale}px`);
    svg.setAttribute("height", `${box.height * scale}px`);
  }

  function fit() {
    const box = graphDiv.querySelector("svg").viewBox.baseVal;
    zoom(Math.min((graphDiv.clientWidth - 16) / box.width, (graphDiv.clientHeight - 16) / box.height));
  }

  function mark(id, cls) { // the drawn element `id`, and a leaf's copies
    if (id === null) return;
    const el = document.getElementById(id);
    if (el) el.classList.add(cls);
    if (id[0] === "n") graphDiv.querySelectorAll(`[id^="k${id.slice(1)}_"]`).forEach((copy) => copy.classList.add(cls));
  }

  function highlight() {
    graphDiv.querySelectorAll(".current, .target, .done, .selected, .active")
      .forEach((el) => el.classList.remove("current", "target", "done", "selected", "active"));
    const done = new Set();
    for (let s = 0; s < state.step; s++) done.add(drawnAs(steps[s].node));
    done.forEach((id) => mark(id, "done"));
    if (state.step >= 0) {
      const step = steps[state.step];
      step.sent.forEach((c) => {
        mark(drawnAs(contributions[c].to), "target");
        mark(edgeId(step.node, contributions[c].pos), "active");
      });
      mark(drawnAs(step.node), "current");
      const el = document.getElementById(drawnAs(step.node));
      if (el) el.scrollIntoView({ block: "nearest", inline: "nearest" });
    }
    if (state.selected !== null) mark(drawnAs(state.selected), "selected");
  }

  // ---------------------------------------------------------------------------------------------------
  // The side panel: overview, a node, a step
  // ---------------------------------------------------------------------------------------------------
  function clusterPath(i) {
    const names = [];
    for (let c = nodes[i].cluster; c !== null; c = clusters[c].parent) names.unshift(clusters[c].label);
    return names.join(" / ");
  }

  function verdictText(n) {
    if (!n.verdict) return "";
    const v = n.verdict;
    return v.agrees ? `<p>hand-written gradient agrees (max rel diff ${escapeHTML(v.rel)})</p>`
      : `<p class="mismatch"><b>hand-written gradient DISAGREES</b> (max rel diff ${escapeHTML(v.rel)})` +
        (v.cause ? `: ${escapeHTML(v.cause)}` : "") + "</p>";
  }

  function contributionText(c, side) {
    const k = contributions[c];
    const who = side === "from" ? `from ${link(k.from)} (its input ${k.pos})` : `to input ${k.pos}: ${link(k.to)}`;
    return `<div class="contrib">${who}${numbers(k.grad, nodes[k.to].shape)}</div>`;
  }

  function numbers(s, shape) { // a summary, or why there is none
    return s ? summary(s, shape) : `<p class="muted">values ${escapeHTML(data.omitted)}</p>`;
  }

  function received(i) { // what reached node i, contribution by contribution, and their sum
    const n = nodes[i];
    if (i === nodes.length - 1) {
      return `<p class="muted">the seed: ${data.seededWithOnes ? "ones, as for out.sum().backward()" : "1 (d out / d out)"}</p>`;
    }
    if (!n.recv.length) return "";
    let out = `<h3>received from ${n.recv.length} consumer${n.recv.length > 1 ? "s" : ""}</h3>`;
    out += n.recv.slice(0, RECEIVED_SHOWN).map((c) => contributionText(c, "from")).join("");
    if (n.recv.length > RECEIVED_SHOWN) out += `<p class="muted">and ${n.recv.length - RECEIVED_SHOWN} more</p>`;
    if (n.recv.length > 1) out += `<p>the gradient above is the sum of these ${n.recv.length} contributions</p>`;
    return out;
  }

  function overview() {
    const bad = nodes.map((n, i) => i).filter((i) => nodes[i].verdict && !nodes[i].verdict.agrees);
    let out = `<h2>${nodes.length} nodes, ${steps.length} backward steps</h2>`;
    out += "<p>Click a node for its values and gradient, a module's box to collapse or expand it. " +
      "<b>next</b> / <b>previous</b> / <b>play</b> walk the backward pass in the engine's order.</p>";
    if (bad.length) {
      out += `<h3 class="mismatch">${bad.length} gradient${bad.length > 1 ? "s" : ""} disagree</h3>`;
      out += bad.map((i) => `<p class="mismatch">${link(i)}: ${escapeHTML(nodes[i].verdict.cause || "no cause found")}</p>`).join("");
    }
    const used = new Set(nodes.map((n) => n.cat));
    out += '<h3>legend</h3><div class="legend">' + Object.entries(legend).filter(([cat]) => used.has(cat))
      .map(([, [colour, meaning]]) =>
      `<div><span class="swatch" style="background:${colour}"></span>${escapeHTML(meaning)}</div>`).join("") +
      `<div><span class="swatch" style="border: 3px solid var(--current)"></span>the rule running at this step</div>` +
      `<div><span class="swatch" style="border: 3px dashed var(--target)"></span>inputs it sends gradients to</div>` +
      `<div><span class="swatch" style="border: 3px solid var(--done)"></span>rules already run</div></div>`;
    panel.innerHTML = out;
  }

  function showNode(i) {
    const n = nodes[i];
    let out = `<h2>${escapeHTML(nodeName(i))}</h2><p>${n.op ? `op <b>${escapeHTML(n.op)}</b>` : "leaf"} &middot; ` +
      `${shapeText(n.shape)} ${escapeHTML(n.dtype)}${n.name ? ` &middot; ${escapeHTML(n.name)}` : ""}</p>`;
    if (n.cluster !== null) out += `<p class="muted">in ${escapeHTML(clusterPath(i))}</p>`;
    if (n.inputs.length) out += `<p>inputs: ${n.inputs.map(link).join(", ")}</p>`;
    out += verdictText(n);
    out += `<h3>value</h3>${numbers(n.value, n.shape)}`;
    out += `<h3>gradient</h3>` + (n.grad || !n.value ? numbers(n.grad, n.shape) :
      '<p class="muted">none (no gradient flows here)</p>');
    out += received(i);
    panel.innerHTML = out;
  }

  function showStep() {
    const status = $("step-status");
    if (state.step < 0) {
      status.textContent = `before backward (${steps.length} steps)`;
      if (state.selected === null) overview();
      return;
    }
    const step = steps[state.step], i = step.node, n = nodes[i];
    status.textContent = `step ${state.step + 1} of ${steps.length}: ${n.op} (t${i})`;
    let out = `<h2>step ${state.step + 1} of ${steps.length}: the rule of ${link(i)} runs</h2>`;
    out += `<p>op <b>${escapeHTML(n.op)}</b> &middot; ${shapeText(n.shape)} ${escapeHTML(n.dtype)}</p>` + verdictText(n);
    out += `<h3>gradient it receives</h3>${numbers(n.grad, n.shape)}` + received(i);
    out += `<h3>what it sends</h3>`;
    out += step.sent.length ? "" : '<p class="muted">nothing: no input needs a gradient</p>';
    step.sent.forEach((c) => {
      const to = contributions[c].to, all = nodes[to].recv, r = all.indexOf(c) + 1;
      out += contributionText(c, "to");
      if (all.length > 1) {
        const others = all.filter((d) => d !== c).map((d) => link(contributions[d].from)).join(", ");
        out += `<p>contribution ${r} of ${all.length} to ${link(to)} (the others come from ${others}); ` +
          (r === all.length ? `it is now complete, the sum:</p>${numbers(nodes[to].grad, nodes[to].shape)}` : "more to come</p>");
      }
    });
    panel.innerHTML = out;
  }

  // ---------------------------------------------------------------------------------------------------
  // Controls
  // ---------------------------------------------------------------------------------------------------
  function go(step) {
    state.step = Math.max(-1, Math.min(steps.length - 1, step));
    state.selected = null;
    if (state.step === steps.length - 1) stop();
    $("prev").disabled = state.step < 0;
    $("next").disabled = state.step === steps.length - 1;
    highlight();
    showStep();
  }

  function stop() {
    if (state.timer !== null) clearInterval(state.timer);
    state.timer = null;
    $("play").innerHTML = "&#9654; play";
  }

  function play() {
    if (state.timer !== null) { stop(); return; }
    if (state.step === steps.length - 1) go(-1);
    $("play").innerHTML = "&#10073;&#10073; pause";
    state.timer = setInterval(() => go(state.step + 1), 800);
  }

  function select(i) {
    state.selected = i;
    highlight();
    showNode(i);
  }

  function notice(text) {
    $("notice").textContent = text;
  }

  function depthOf(k) {
    let depth = 0;
    for (let c = clusters[k].parent; c !== null; c = clusters[c].parent) depth++;
    return depth;
  }

  function setAll(collapsed) { // expand all: level by level from the outside, as far as DRAW_LIMIT allows
    let folded = clusters.map(() => true);
    notice("");
    if (!collapsed) {
      const depth = clusters.map((c, k) => depthOf(k));
      for (let d = 0; d <= depth.reduce((a, b) => Math.max(a, b), -1); d++) {
        const trial = folded.map((c, k) => c && depth[k] > d);
        if (drawnCount(trial) > DRAW_LIMIT) {
          notice(`some boxes stay closed: the view draws at most ${DRAW_LIMIT} nodes at once`);
          break;
        }
        folded = trial;
      }
    }
    state.collapsed = folded;
    render();
  }

  function toggle(k) { // a click on a cluster's box opens it, unless the drawing would pass DRAW_LIMIT
    state.collapsed[k] = !state.collapsed[k];
    if (!state.collapsed[k]) {
      const count = drawnCount(state.collapsed);
      if (count > DRAW_LIMIT) {
        state.collapsed[k] = true;
        notice(`not opened: the drawing would have ${count} nodes, and the view draws at most ${DRAW_LIMIT}; ` +
          "close other boxes first");
        return;
      }
    }
    notice("");
    render();
  }

  function wire() {
    $("prev").addEventListener("click", () => { stop(); go(state.step - 1); });
    $("next").addEventListener("click", () => { stop(); go(state.step + 1); });
    $("play").addEventListener("click", play);
    $("expand-all").addEventListener("click", () => setAll(false));
    $("collapse-all").addEventListener("click", () => setAll(true));
    $("direction").addEventListener("click", () => {
      state.rankdir = state.rankdir === "TB" ? "LR" : "TB";
      $("direction").textContent = state.rankdir === "TB" ? "left to right" : "top to bottom";
      state.scale = null;
      render();
    });
    $("zoom-in").addEventListener("click", () => zoom(state.scale * 1.25));
    $("zoom-out").addEventListener("click", () => zoom(state.scale / 1.25));
    $("zoom-fit").addEventListener("click", fit);
    $("expand-all").disabled = $("collapse-all").disabled = clusters.length === 0;
    graphDiv.addEventListener("click", (e) => {
      const g = e.target.closest("g.node, g.cluster");
      if (!g) return;
      const k = Number(g.id.slice(1).split("_")[0]); // n<i>, c<k> or k<i>_<consumer>
      if (g.id[0] === "c") toggle(k); else select(k);
    });
    panel.addEventListener("click", (e) => {
      const a = e.target.closest("[data-node]");
      if (!a) return;
      e.preventDefault();
      select(Number(a.dataset.node));
    });
    document.addEventListener("keydown", (e) => {
      if (e.key === "ArrowRight") { stop(); go(state.step + 1); }
      else if (e.key === "ArrowLeft") { stop(); go(state.step - 1); }
    });
  }

  wire();
  if (drawnCount(state.collapsed) > DRAW_LIMIT) state.collapsed = clusters.map(() => true);
  go(-1);
  Viz.instance().then((instance) => { viz = instance; render(); }).catch((error) => {
    graphDiv.innerHTML = `<div id="error">could not lay out the graph: ${escapeHTML(error)}</div>`;
    console.error(error);
  });
})();
