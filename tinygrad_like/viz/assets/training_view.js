/* The page of a recorded training run (written by tinygrad_like.viz.TrainingRecorder.to_html).

   Reads the run from the JSON in #graph-data: the recorded steps, their losses and, per module, its numbers and
   histograms at each of them. The module graph is DOT text laid out once by viz.js (Graphviz compiled to
   WebAssembly, inlined above: no network, no server); choosing a step rewrites the numbers in its boxes, the
   histograms and the markers on the curves (the loss, and one number per module, chosen in #metric). Module i
   is drawn as "m<i>", the model's input as "input". Numbers that are not finite arrive as the strings "nan",
   "inf", "-inf". */
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("graph-data").textContent);
  const { steps, loss, modules, edges } = data;
  const $ = (id) => document.getElementById(id);
  const state = { index: 0, timer: null };
  const FRAMES = 200; // a whole run plays in about this many frames, however many steps were recorded
  const escapeHTML = (s) => String(s).replace(/[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const quote = (s) => '"' + String(s).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") + '"';
  const finite = (v) => typeof v === "number" && Number.isFinite(v);

  function fmt(v) { // 3 significant digits, the same width for every step of a box
    if (v === null || v === undefined) return "-";
    if (!finite(v)) return String(v);
    if (v === 0) return "0";
    const a = Math.abs(v);
    return a >= 1e4 || a < 1e-3 ? v.toExponential(2) : v.toPrecision(3);
  }
  const percent = (v) => (finite(v) ? `${(100 * v).toFixed(1)}%` : fmt(v));

  // ---------------------------------------------------------------------------------------------------
  // The module graph: one box per module, its lines rewritten at each step
  // ---------------------------------------------------------------------------------------------------
  function boxLines(m, k) { // the text lines of module m's box at step index k
    const lines = [`${m.path || "(model)"}: ${m.kind}`];
    if (m.mean[k] !== null) lines.push(`${m.activation || "output"} mean ${fmt(m.mean[k])} std ${fmt(m.std[k])}`);
    if (m.dead[k] !== null) lines.push(`dead units ${percent(m.dead[k])}`);
    if (m.saturated[k] !== null) lines.push(`saturated ${percent(m.saturated[k])}`);
    if (m.grad_norm[k] !== null) {
      const ratio = finite(m.grad_norm[k]) && finite(m.weight_norm[k]) && m.weight_norm[k] > 0
        ? m.grad_norm[k] / m.weight_norm[k] : null;
      lines.push(`|grad| ${fmt(m.grad_norm[k])}  grad/weight ${fmt(ratio)}`);
    }
    if (m.update_ratio[k] !== null) lines.push(`update/weight ${fmt(m.update_ratio[k])}`);
    if (m.stale[k]) lines.push("STALE gradient (no zero_grad)");
    return lines;
  }

  function widest(m) { // per line position, the longest text of any step: the box is sized once for all
    const out = [];
    steps.forEach((_, k) => boxLines(m, k).forEach((line, j) => {
      if (!out[j] || line.length > out[j].length) out[j] = line;
    }));
    return out;
  }

  function badness(m, k) { // 0 (healthy) .. 1: the fraction of dead or saturated units; 1 for nan or inf
    const values = [m.mean[k], m.grad_norm[k], m.update_ratio[k]];
    if (values.some((v) => v !== null && !finite(v))) return 1;
    return Math.max(finite(m.dead[k]) ? m.dead[k] : 0, finite(m.saturated[k]) ? m.saturated[k] : 0);
  }

  function fill(bad) { // white to red
    const g = Math.round(255 - 120 * bad), b = Math.round(255 - 130 * bad);
    return `rgb(255, ${g}, ${b})`;
  }

  function toDot() {
    const lines = ["digraph G {", "rankdir=LR; nodesep=0.3; ranksep=0.35;",
      'node [shape=box style="rounded,filled" fontname="Helvetica" fontsize=10 fillcolor="white"];',
      'edge [arrowsize=0.6 color="#555555"];'];
    if (edges.some(([a]) => a < 0)) lines.push('input [id="input" label="input" shape=ellipse fillcolor="#eeeeee"];');
    modules.forEach((m, i) => lines.push(`m${i} [id="m${i}" label=${quote(widest(m).join("\n"))}];`));
    edges.forEach(([a, b]) => lines.push(`${a < 0 ? "input" : "m" + a} -> m${b};`));
    lines.push("}");
    return lines.join("\n");
  }

  function showBoxes(k) {
    modules.forEach((m, i) => {
      const g = document.getElementById(`m${i}`);
      if (!g) return;
      const texts = g.querySelectorAll("text"), lines = boxLines(m, k);
      texts.forEach((t, j) => { t.textContent = lines[j] || ""; });
      const shape = g.querySelector("path, polygon");
      if (shape) {
        shape.setAttribute("fill", fill(badness(m, k)));
        shape.setAttribute("stroke", m.stale[k] ? "#e65100" : "#000000");
      }
    });
  }

  // ---------------------------------------------------------------------------------------------------
  // Curves over the steps, with the chosen step marked: the loss, and one number per module
  // ---------------------------------------------------------------------------------------------------
  const H = 150, PAD = 44;
  const COLOURS = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#ad1457", "#4e342e"];
  const METRICS = { // name -> [label, value of module m at step k, log scale]
    bad: ["dead or saturated share", (m, k) => (m.dead[k] !== null ? m.dead[k] : m.saturated[k]), false],
    ratio: ["grad/weight", (m, k) => (finite(m.grad_norm[k]) && m.weight_norm[k] > 0
      ? m.grad_norm[k] / m.weight_norm[k] : null), true],
    update: ["update/weight", (m, k) => m.update_ratio[k], true],
    std: ["activation std", (m, k) => m.std[k], false],
  };
  let width = 1000; // of every curve, in pixels: set from the page when drawn
  const xAt = (k) => PAD + (steps.length > 1 ? (k * (width - 2 * PAD)) / (steps.length - 1) : (width - 2 * PAD) / 2);

  function curves(div, series, name, log) { // series: [{label, values}]; a null or non-finite value leaves a gap
    const usable = (v) => finite(v) && (!log || v > 0);
    const all = series.flatMap((s) => s.values.filter(usable)).map((v) => (log ? Math.log10(v) : v));
    const lo = all.length ? Math.min(...all) : 0, hi = all.length ? Math.max(...all) : 1;
    const yAt = (v) => H - 16 - (((log ? Math.log10(v) : v) - lo) / (hi - lo || 1)) * (H - 34);
    const label = (v) => fmt(log ? 10 ** v : v);
    const paths = series.map((s, i) => {
      let d = "", pen = "M";
      s.values.forEach((v, k) => {
        if (!usable(v)) { pen = "M"; return; }
        d += `${pen}${xAt(k).toFixed(1)},${yAt(v).toFixed(1)} `;
        pen = "L";
      });
      return `<path d="${d}" fill="none" stroke="${COLOURS[i % COLOURS.length]}" stroke-width="1.5">` +
        `<title>${escapeHTML(s.label)}</title></path>`;
    }).join("");
    const keys = series.map((s, i) => `<text x="${width - PAD - 130 * (series.length - 1 - i)}" y="12" ` +
      `font-size="11" text-anchor="end" fill="${COLOURS[i % COLOURS.length]}">${escapeHTML(s.label)}</text>`);
    div.innerHTML = `<svg width="${width}" height="${H}" role="img" aria-label="${escapeHTML(name)}">${paths}` +
      `<line class="marker" y1="4" y2="${H - 14}" stroke="#e65100" stroke-width="1.5"/>` +
      `<text x="2" y="12" font-size="11">${escapeHTML(name)}${log ? " (log)" : ""} ` +
      `${escapeHTML(label(hi))}</text><text x="2" y="${H - 18}" font-size="11">${escapeHTML(label(lo))}</text>` +
      `<text x="${PAD}" y="${H - 2}" font-size="11">step ${steps[0]}</text>${series.length > 1 ? keys.join("") : ""}` +
      `<text x="${width - PAD}" y="${H - 2}" font-size="11" text-anchor="end">step ${steps[steps.length - 1]}</text>` +
      "</svg>";
    div.querySelector("svg").addEventListener("click", (e) => {
      const x = e.clientX - e.currentTarget.getBoundingClientRect().left;
      stop();
      go(Math.round(((x - PAD) / (width - 2 * PAD)) * (steps.length - 1)));
    });
  }

  function drawCurves() {
    width = Math.max(200, $("loss").clientWidth - 16);
    curves($("loss"), [{ label: "loss", values: loss }], "loss", useLog());
    const [name, value, log] = METRICS[$("metric").value];
    const series = modules.map((m) => ({ label: m.path || "(model)", values: steps.map((_, k) => value(m, k)) }))
      .filter((s) => s.values.some(finite));
    curves($("trend"), series, name, log);
  }

  function useLog() { // a loss over more than two orders of magnitude, all positive
    const known = loss.filter(finite);
    return known.length > 1 && Math.min(...known) > 0 && Math.max(...known) / Math.min(...known) > 100;
  }

  // ---------------------------------------------------------------------------------------------------
  // The panel: per module, the histograms of its activation, gradients and last update
  // ---------------------------------------------------------------------------------------------------
  function histogram(h, name) {
    const width = 140, height = 40;
    if (!h) return `<div class="hist"><div>${name}</div><div class="muted" style="width:${width}px">none</div></div>`;
    const [a, b, counts] = h, top = Math.max(...counts, 1), n = counts.length;
    const bars = counts.map((c, k) => {
      const bh = c === 0 ? 0 : Math.max(1, (c / top) * height);
      return `<rect x="${(k * width) / n}" y="${height - bh}" width="${width / n - 0.5}" height="${bh}" ` +
        `fill="#7986cb"><title>${c}</title></rect>`;
    }).join("");
    return `<div class="hist"><div>${name}</div><svg width="${width}" height="${height + 12}" role="img" ` +
      `aria-label="${name} histogram">${bars}` +
      `<text x="0" y="${height + 10}" font-size="9">${escapeHTML(fmt(a))}</text>` +
      `<text x="${width}" y="${height + 10}" font-size="9" text-anchor="end">${escapeHTML(fmt(b))}</text></svg></div>`;
  }

  function showPanel(k) {
    const parts = [`<h2>step ${steps[k]}: loss ${escapeHTML(fmt(loss[k]))}</h2>`];
    modules.forEach((m) => {
      const h = m.hists;
      if (!h.activation[k] && !h.gradient[k] && !h.update[k]) return;
      parts.push(`<div class="module"><h3>${escapeHTML(m.path || "(model)")} ${escapeHTML(m.kind)}` +
        `${m.stale[k] ? ' <span class="stale">stale gradient</span>' : ""}</h3><div class="hists">` +
        histogram(h.activation[k], m.activation || "output") +
        (m.params ? histogram(h.gradient[k], "gradient") + histogram(h.update[k], "update") : "") + "</div></div>");
    });
    parts.push('<p class="muted">Box colour: the fraction of dead or saturated units (white 0, red 1; red also ' +
      "for nan or inf); an orange border: a step on a stale gradient. |grad| and |weight| are over the module's " +
      "own parameters; update/weight is the last step's ||W_now - W_prev|| / ||W_prev||.</p>");
    $("panel").innerHTML = parts.join("");
  }

  // ---------------------------------------------------------------------------------------------------
  // Choosing a step: previous / next, play / pause, the slider, a click on the loss curve
  // ---------------------------------------------------------------------------------------------------
  function go(k) {
    state.index = Math.max(0, Math.min(steps.length - 1, k));
    const i = state.index;
    $("scrub").value = String(i);
    $("status").textContent = `step ${steps[i]} (${i + 1} of ${steps.length} recorded)  loss ${fmt(loss[i])}`;
    document.querySelectorAll(".marker").forEach((line) => {
      line.setAttribute("x1", xAt(i));
      line.setAttribute("x2", xAt(i));
    });
    showBoxes(i);
    showPanel(i);
    document.body.dataset.step = String(i);
  }

  function stop() {
    if (state.timer !== null) clearInterval(state.timer);
    state.timer = null;
    $("play").innerHTML = "&#9654; play";
    document.body.dataset.playing = "0";
  }

  function play() {
    if (state.index >= steps.length - 1) go(0);
    $("play").innerHTML = "&#10074;&#10074; pause";
    document.body.dataset.playing = "1";
    state.timer = setInterval(() => {
      go(state.index + Math.max(1, Math.round(steps.length / FRAMES)));
      if (state.index >= steps.length - 1) stop(); // the last step stays shown
    }, 60);
  }

  function wire() {
    $("scrub").max = String(steps.length - 1);
    $("scrub").addEventListener("input", () => { stop(); go(Number($("scrub").value)); });
    $("prev").addEventListener("click", () => { stop(); go(state.index - 1); });
    $("next").addEventListener("click", () => { stop(); go(state.index + 1); });
    $("play").addEventListener("click", () => (state.timer === null ? play() : stop()));
    document.addEventListener("keydown", (e) => {
      if (e.target === $("scrub")) return; // the slider moves itself
      if (e.key === "ArrowRight") { stop(); go(state.index + 1); }
      else if (e.key === "ArrowLeft") { stop(); go(state.index - 1); }
      else if (e.key === " ") { e.preventDefault(); $("play").click(); }
    });
  }

  drawCurves();
  window.addEventListener("resize", () => { drawCurves(); go(state.index); });
  $("metric").addEventListener("change", () => { drawCurves(); go(state.index); });
  wire();
  stop();
  go(0);
  Viz.instance().then((viz) => {
    const svg = viz.renderSVGElement(toDot()), box = svg.viewBox.baseVal;
    const scale = Math.min(1, ($("graph").clientWidth - 16) / box.width); // the whole graph in view, if it can
    svg.setAttribute("width", `${box.width * scale}px`);
    svg.setAttribute("height", `${box.height * scale}px`);
    $("graph").replaceChildren(svg);
    showBoxes(state.index);
    document.body.dataset.rendered = "1";
  }).catch((error) => {
    $("graph").innerHTML = `<div id="error">could not lay out the graph: ${escapeHTML(error)}</div>`;
    console.error(error);
  });
})();
