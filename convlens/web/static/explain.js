// Explain page: every layer's feature maps for one image; click a map, then a pixel, to see its arithmetic.
// Conv and pooling outputs show patch ⊙ kernel + bias (or the pooling window) and the receptive field on
// the input; fully connected layers (and 1×1 maps) show the dot product plus bias; the last layer the softmax.
"use strict";
(() => {
  const { el, $, api, showError, fmt, pct, thousands, drawMap, layerCanvases, bars, decode, colour } = CL;
  const errBox = $("#error");
  const PAGE = 48;
  let current = null;   // the last /api/explain answer
  let selected = null;  // {layer, channel, entry, decoded, scale, H, W, pixel}
  let page = { offset: 0, total: 0, label: "" };
  let anim = null;      // the sliding-window animation's timer

  const sig = (v) => (v === null || v === undefined ? "–" : (Math.abs(v) >= 1e5 || (v !== 0 && Math.abs(v) < 1e-4) ? v.toExponential(6) : v.toPrecision(7)).replace(/^-/, "−"));

  // ---- the model: shipped checkpoints, upload, reset ----
  async function loadCheckpoints() {
    const c = await api("/api/checkpoints");
    $("#ckpt").replaceChildren(...c.checkpoints.map((k) => el("option", { value: k.name, selected: k.active,
      text: `${k.name}${k.dataset ? " · " + k.dataset : ""}${k.test_accuracy ? " · " + pct(k.test_accuracy) : ""}` })));
    $("#model-note").textContent = `In use: ${c.current}`;
  }
  async function modelChanged(note) {
    selected = null; current = null;
    await CL.refreshBadge();
    await loadCheckpoints();
    if (note) $("#model-note").textContent = note;
    page = { offset: 0, total: 0, label: "" };
    await start();
  }
  $("#ckpt-use").addEventListener("click", async () => {
    showError(errBox, null);
    try { await api("/api/model/use", { checkpoint: $("#ckpt").value }); await modelChanged(); } catch (e) { showError(errBox, e); }
  });
  $("#reset").addEventListener("click", async () => {
    showError(errBox, null);
    try { await api("/api/model/reset", {}); await modelChanged(); } catch (e) { showError(errBox, e); }
  });
  $("#ckpt-files").addEventListener("change", async (ev) => {
    const files = [...ev.target.files];
    const weights = files.find((f) => f.name.endsWith(".safetensors")), meta = files.find((f) => f.name.endsWith(".json"));
    showError(errBox, null);
    if (!weights || !meta) { showError(errBox, new Error("pick both files of the checkpoint: NAME.safetensors and NAME.json")); return; }
    const form = new FormData();
    form.append("weights", weights); form.append("meta", meta);
    try { const r = await api("/api/model/upload", form); await modelChanged(`In use: ${r.model} (input ${r.input_shape.join("×")})`); }
    catch (e) { showError(errBox, e); }
    ev.target.value = "";
  });

  // ---- the input images: pages, one class at a time ----
  async function loadSamples() {
    const q = `/api/samples?count=${PAGE}&offset=${page.offset}` + (page.label !== "" ? `&label=${encodeURIComponent(page.label)}` : "");
    const s = await api(q);
    page.total = s.total;
    const box = $("#samples");
    box.replaceChildren(...s.samples.map((x) => el("img", { src: x.image, alt: `image ${x.index}, label ${x.label}`,
      title: `#${x.index}: ${x.label}`, dataset: { index: x.index }, onclick: () => run({ sample: x.index }) })));
    if (s.classes && $("#class-pick").options.length !== s.classes.length + 1) {
      $("#class-pick").replaceChildren(el("option", { value: "", text: "all classes" }),
        ...s.classes.map((c, i) => el("option", { value: String(i), text: `${c} (${thousands(s.counts[i])})` })));
    }
    const part = s.part === "training" ? "training images (this data set has no separate test part)" : "test images";
    $("#samples-note").textContent = s.dataset && s.samples.length ? `${s.dataset} ${part}: ${thousands(s.total)}; click one.` : (s.message || "");
    $("#page-note").textContent = s.total ? `${thousands(page.offset + 1)}–${thousands(Math.min(page.offset + PAGE, s.total))} of ${thousands(s.total)}` : "";
    $("#prev").disabled = page.offset === 0;
    $("#next").disabled = page.offset + PAGE >= s.total;
    if (s.loading) setTimeout(() => loadSamples().then((r) => { if (r.samples.length && !current) run({ sample: r.samples[0].index }); }), 1500);
    return s;
  }
  $("#prev").addEventListener("click", () => { page.offset = Math.max(0, page.offset - PAGE); loadSamples(); });
  $("#next").addEventListener("click", () => { page.offset += PAGE; loadSamples(); });
  $("#class-pick").addEventListener("change", () => { page.label = $("#class-pick").value; page.offset = 0; loadSamples(); });

  async function run(body) {
    showError(errBox, null);
    stopAnim();
    document.querySelectorAll("#samples img").forEach((img) => img.classList.toggle("selected", body.sample !== undefined && +img.dataset.index === body.sample));
    try { current = await api("/api/explain", body); } catch (e) { showError(errBox, e); return; }
    render();
  }

  function render() {
    const r = current;
    $("#input-img").src = r.input.image;
    $("#rf-box").classList.add("hidden");
    const o = r.output;
    $("#input-kv").replaceChildren(el("span", { class: "k", text: "shape" }), el("span", { text: r.input.shape.join("×") }),
      el("span", { class: "k", text: "model" }), el("span", { text: r.model }),
      el("span", { class: "k", text: "predicted" }), el("b", { text: `${o.label} (${pct(o.probabilities[o.predicted])})` }));
    $("#pred").textContent = o.label;
    $("#pred-conf").textContent = `${pct(o.probabilities[o.predicted])} confident`;
    bars($("#probs"), o.classes, o.probabilities);
    softmaxTable(o);
    renderLayers();
    if (selected && current.layers.some((l) => l.name === selected.layer)) select(selected.layer, selected.channel, true);
    else {
      const first = r.layers.find((l) => l.kind === "conv" && l.explainable);
      if (first) select(first.name, 0, false);
    }
  }

  function softmaxTable(o) {
    const finite = o.logits.filter((z) => z !== null);
    const m = finite.length ? Math.max(...finite) : 0;
    const ex = o.logits.map((z) => (z === null ? null : Math.exp(z - m)));
    const total = ex.reduce((a, b) => a + (b || 0), 0);
    $("#logits").replaceChildren(el("tr", {}, ["class", "z", "e^(z − m)", "p"].map((h) => el("th", { text: h }))),
      ...o.classes.map((c, i) => el("tr", { class: i === o.predicted ? "top" : "", title: `z − m = ${fmt(o.logits[i] === null ? null : o.logits[i] - m, 4)}` },
        el("td", { text: c }), el("td", { class: "n", text: fmt(o.logits[i], 3) }),
        el("td", { class: "n", text: fmt(ex[i], 3) }), el("td", { class: "n", text: pct(o.probabilities[i]) }))),
      el("tr", {}, el("td", { text: "Σ" }), el("td"), el("td", { class: "n", id: "softmax-sum", text: fmt(total, 3) }), el("td", { class: "n", text: "100.0%" })));
  }

  function renderLayers() {
    const r = current;
    const cols = [];
    const inp = layerCanvases(r.input.values, { size: 56, cmap: "gray" });
    cols.push(el("div", { class: "layer", dataset: { layer: "input" } }, el("div", { class: "name", text: "input" }),
      el("div", { class: "meta", text: r.input.shape.join("×") }), el("div", { class: "maps" }, inp.canvases)));
    inp.canvases.forEach((cv, c) => { cv.dataset.layer = "input"; cv.dataset.channel = c; });
    for (const l of r.layers) {
      if (l.kind === "flatten") continue;
      const signed = l.kind === "conv" || l.kind === "fc";
      const { canvases, vector } = layerCanvases(l.values, { size: 40, cmap: signed ? "diverging" : "viridis", stripWidth: 120 });
      const maps = el("div", { class: "maps" }, canvases);
      if (!vector && canvases.length > 6) maps.style.gridTemplateColumns = "repeat(2, auto)";
      if (!vector && canvases.length > 24) maps.style.gridTemplateColumns = "repeat(4, auto)";
      const clickable = l.explainable;
      if (clickable && !vector) {
        canvases.forEach((cv, c) => { cv.dataset.layer = l.name; cv.dataset.channel = c; cv.addEventListener("click", () => select(l.name, c, false)); });
      } else if (clickable && vector) {
        // a strip of units (fc) or of 1×1 maps (a 1×1 conv output): the clicked cell is the unit / channel
        const cv = canvases[0];
        cv.dataset.layer = l.name;
        cv.addEventListener("click", (ev) => {
          const rect = cv.getBoundingClientRect(), n = cv.width;
          const k = Math.min(n - 1, Math.max(0, Math.floor(((ev.clientX - rect.left) / rect.width) * n)));
          if (l.kind === "fc") selectFc(l.name, k); else select(l.name, k, false);
        });
      }
      const meta = [`${l.type} · ${l.output_shape.join("×")}`, `${thousands(l.params)} params`];
      const col = el("div", { class: `layer kind-${l.kind}` + (clickable ? " clickable" : ""), dataset: { layer: l.name } },
        el("div", { class: "name", text: l.name }), ...meta.map((m) => el("div", { class: "meta", text: m })),
        l.formula ? el("div", { class: "formula", title: "W₂ = (W₁ − F + 2P)/S + 1", text: l.formula[0] }) : null, maps,
        l.values.channels > l.values.shape[0] ? el("div", { class: "more", text: `first ${l.values.shape[0]} of ${l.values.channels}` }) : null);
      cols.push(col);
    }
    $("#layers").replaceChildren(...cols);
  }

  // the maps a clicked neuron came from (every input channel of a conv, the same channel of a pooling
  // layer), outlined and joined to it by edges, as in CNN Explainer's overview
  let edges = null;  // {target, sources}: redrawn when the overview's layout changes
  function markSources(layerName, inputLayer, channels) {
    document.querySelectorAll("#layers canvas.source").forEach((c) => c.classList.remove("source"));
    document.querySelectorAll("#layers .layer.source-layer").forEach((c) => c.classList.remove("source-layer"));
    const col = document.querySelector(`#layers .layer[data-layer="${inputLayer}"]`);
    const target = document.querySelector("#layers canvas.selected");
    edges = null;
    if (col) {
      col.classList.add("source-layer");
      const sources = channels.map((c) => col.querySelector(`canvas[data-channel="${c}"]`)).filter(Boolean);
      sources.forEach((cv) => cv.classList.add("source"));
      if (target && sources.length) edges = { target, sources };
    }
    drawEdges();
  }
  function drawEdges() {
    const box = $("#layers");
    let svg = box.querySelector("svg.edges");
    if (!svg) {
      svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      svg.setAttribute("class", "edges");
      box.append(svg);
    }
    svg.replaceChildren();
    if (!edges || !edges.target.isConnected) return;
    const b = box.getBoundingClientRect(), t = edges.target.getBoundingClientRect();
    svg.setAttribute("width", b.width); svg.setAttribute("height", b.height);
    const tx = t.left - b.left, ty = t.top - b.top + t.height / 2;
    for (const cv of edges.sources) {
      const r = cv.getBoundingClientRect(), sx = r.right - b.left, sy = r.top - b.top + r.height / 2;
      const line = document.createElementNS("http://www.w3.org/2000/svg", "path");
      const mx = (sx + tx) / 2;  // a smooth S-curve from the source's right edge to the target's left edge
      line.setAttribute("d", `M${sx},${sy} C${mx},${sy} ${mx},${ty} ${tx},${ty}`);
      svg.append(line);
    }
  }
  new ResizeObserver(() => drawEdges()).observe($("#layers"));

  function select(layer, channel, keepPixel) {
    stopAnim();
    const entry = current.layers.find((l) => l.name === layer);
    if (!entry) return;
    if (entry.kind === "fc") { selectFc(layer, channel); return; }
    const decoded = decode(entry.values);
    const [, H, W] = decoded.shape;
    document.querySelectorAll("#layers canvas.selected").forEach((c) => c.classList.remove("selected"));
    const mini = document.querySelector(`#layers canvas[data-layer="${layer}"][data-channel="${channel}"]`);
    if (mini) mini.classList.add("selected");
    const big = $("#big-map");
    big.classList.remove("hidden");
    $("#animate").classList.remove("hidden");
    const signed = entry.kind === "conv";
    const { scale } = drawMap(big, decoded.data, channel * H * W, H, W, { cmap: signed ? "diverging" : "viridis", scale: Math.max(4, Math.floor(300 / Math.max(H, W))) });
    const prev = selected;
    selected = { layer, channel, entry, decoded, scale, H, W, pixel: keepPixel && prev ? prev.pixel : null };
    $("#detail-title").textContent = `${layer} (${entry.type}) · channel ${channel} · ${H}×${W}`;
    $("#big-note").textContent = entry.kind === "conv"
      ? `kernel ${entry.kernel_shape.join("×")}, stride ${entry.geometry.stride.join("×")}, padding ${entry.geometry.padding.map((p) => p[0]).join("×")} (${entry.padding_mode})`
      : `${entry.pool} pooling, window ${entry.geometry.kernel.join("×")}, stride ${entry.geometry.stride.join("×")}`;
    let y = 0, x = 0;
    if (selected.pixel) [y, x] = selected.pixel;
    else {  // start at the strongest response
      let best = -Infinity;
      for (let i = 0; i < H * W; i++) { const v = decoded.data[channel * H * W + i]; if (v > best) { best = v; y = Math.floor(i / W); x = i % W; } }
    }
    pick(y, x);
  }

  function mark(y, x, upto) {
    const s = selected, big = $("#big-map"), ctx = big.getContext("2d");
    drawMap(big, s.decoded.data, s.channel * s.H * s.W, s.H, s.W, { cmap: s.entry.kind === "conv" ? "diverging" : "viridis", scale: s.scale });
    if (upto !== undefined) {  // the animation: cells not computed yet are greyed out
      ctx.fillStyle = "rgba(40,40,40,0.85)";
      for (let i = upto + 1; i < s.H * s.W; i++) ctx.fillRect(i % s.W, Math.floor(i / s.W), 1, 1);
    }
    ctx.strokeStyle = "#ffd43b"; ctx.lineWidth = Math.max(0.12, 1.5 / s.scale);
    ctx.strokeRect(x + 0.06, y + 0.06, 0.88, 0.88);
  }

  function showField(rf) {
    const box = $("#rf-box");
    if (!rf || !current) { box.classList.add("hidden"); return; }
    const [, h, w] = current.input.shape;
    box.style.left = (100 * rf.cols[0]) / w + "%"; box.style.top = (100 * rf.rows[0]) / h + "%";
    box.style.width = (100 * (rf.cols[1] - rf.cols[0] + 1)) / w + "%"; box.style.height = (100 * (rf.rows[1] - rf.rows[0] + 1)) / h + "%";
    box.classList.remove("hidden");
    $("#rf-note").textContent = `Receptive field of the picked value: input rows ${rf.rows[0]}…${rf.rows[1]}, columns ${rf.cols[0]}…${rf.cols[1]} ` +
      `(${rf.size[0]}×${rf.size[1]} before clipping to the image): the only pixels it depends on.`;
  }

  async function pick(y, x) {
    const s = selected;
    s.pixel = [y, x];
    mark(y, x);
    const path = s.entry.kind === "conv" ? "/api/explain/conv" : "/api/explain/pool";
    try {
      const d = await api(path, { input_id: current.input_id, layer: s.layer, channel: s.channel, y, x });
      if (s === selected) {
        (s.entry.kind === "conv" ? showConv : showPool)(d);
        showField(d.receptive_field);
        markSources(s.layer, d.input_layer, d.input_channels || [d.channel]);
        s.last = d;
      }
    } catch (e) { showError(errBox, e); }
  }

  $("#big-map").addEventListener("click", (ev) => {
    if (!selected || selected.entry.kind === "fc") return;
    stopAnim();
    const rect = ev.currentTarget.getBoundingClientRect();
    const x = Math.floor(((ev.clientX - rect.left) / rect.width) * selected.W), y = Math.floor(((ev.clientY - rect.top) / rect.height) * selected.H);
    if (x >= 0 && y >= 0 && x < selected.W && y < selected.H) pick(y, x);
  });

  // ---- the animated sliding window (CNN Explainer's view): the window moves over the input channel,
  // the output fills in cell by cell, with the formula and the value of each step ----
  function stopAnim() {
    if (anim) { clearInterval(anim); anim = null; $("#animate").textContent = "▶ Slide the window"; }
  }
  function sourceMap(s) {
    const d = s.last;
    if (!d) return null;
    let c = s.entry.kind === "conv" ? d.input_channels[0] : d.channel;
    if (s.entry.kind === "conv" && d.channel_sums) {  // the input channel that contributes most
      let best = -1;
      d.channel_sums.forEach((v, i) => { if (Math.abs(v) > best) { best = Math.abs(v); c = d.input_channels[i]; } });
    }
    const src = d.input_layer === "input" ? current.input.values : (current.layers.find((l) => l.name === d.input_layer) || {}).values;
    if (!src) return null;
    const v = decode(src);
    if (v.shape.length !== 3 || c >= v.shape[0]) return null;
    return { v, c, H: v.shape[1], W: v.shape[2] };
  }
  $("#animate").addEventListener("click", () => {
    if (anim) { stopAnim(); return; }
    const s = selected;
    if (!s || s.entry.kind === "fc" || !s.last) return;
    const src = sourceMap(s);
    const g = s.entry.geometry, [kh, kw] = g.kernel, [sh, sw] = g.stride, [ph, pw] = [g.padding[0][0], g.padding[1][0]];
    const cv = $("#anim-src");
    cv.classList.toggle("hidden", !src);
    let i = 0;
    const total = s.H * s.W, every = Math.max(1, Math.floor(total / 400));  // at most ~400 steps
    $("#animate").textContent = "■ Stop";
    anim = setInterval(() => {
      if (selected !== s) { stopAnim(); return; }
      const y = Math.floor(i / s.W), x = i % s.W, value = s.decoded.data[s.channel * total + i];
      mark(y, x, i);
      const r0 = y * sh - ph, c0 = x * sw - pw;
      if (src) {
        const sc = Math.max(3, Math.floor(220 / Math.max(src.H, src.W)));
        drawMap(cv, src.v.data, src.c * src.H * src.W, src.H, src.W, { cmap: "gray", scale: sc });
        const ctx = cv.getContext("2d");
        ctx.strokeStyle = "#ffd43b"; ctx.lineWidth = Math.max(0.15, 2 / sc);
        ctx.strokeRect(c0, r0, (kw - 1) * g.dilation[1] + 1, (kh - 1) * g.dilation[0] + 1);
      }
      const how = s.entry.kind === "conv" ? `Σ (window ⊙ kernel over ${s.last.input_channels.length} channel${s.last.input_channels.length > 1 ? "s" : ""}) + bias`
        : `${s.entry.pool}(window)`;
      $("#anim-note").textContent = `output (y ${y}, x ${x}) ← window rows ${r0}…${r0 + kh - 1}, columns ${c0}…${c0 + kw - 1}` +
        ` (row = y·S − P = ${y}·${sh} − ${ph}); z = ${how} = ${sig(value)}`;
      i += every;
      if (i >= total) { stopAnim(); pick(y, x); }
    }, 90);
  });

  // ---- a fully connected unit: z_j = Σ_i W[j, i] x_i + b_j ----
  async function selectFc(layer, unit) {
    stopAnim();
    const entry = current.layers.find((l) => l.name === layer);
    document.querySelectorAll("#layers canvas.selected").forEach((c) => c.classList.remove("selected"));
    const strip = document.querySelector(`#layers canvas[data-layer="${layer}"]`);
    if (strip) strip.classList.add("selected");
    selected = { layer, channel: unit, entry, pixel: null };
    $("#big-map").classList.add("hidden"); $("#animate").classList.add("hidden"); $("#anim-src").classList.add("hidden");
    $("#anim-note").textContent = ""; $("#rf-box").classList.add("hidden"); $("#rf-note").textContent = "";
    let d;
    try { d = await api("/api/explain/fc", { input_id: current.input_id, layer, unit }); } catch (e) { showError(errBox, e); return; }
    if (selected.layer !== layer || selected.channel !== unit) return;
    markSources(layer, d.input_layer, []);
    const cls = d.softmax ? ` (class ${d.softmax.classes[unit]})` : "";
    $("#detail-title").textContent = `${layer} (${d.type}) · unit ${unit}${cls} of ${d.units}`;
    $("#big-note").textContent = "";
    $("#calc-head").textContent = `A fully connected unit is a dot product: its ${thousands(d.inputs)} inputs (the output of ${d.input_layer}, ` +
      `${d.input_shape.join("×")} read as one vector) times row ${unit} of the ${d.units}×${d.inputs} weight matrix, summed, plus the bias.`;
    const strips = [];
    const vec = (vals, cmap) => {
      const cv = el("canvas", { class: "map strip-map" });
      const data = Float32Array.from(vals);
      drawMap(cv, data, 0, 1, data.length, { cmap, scale: Math.max(1, Math.floor(360 / data.length)) });
      return cv;
    };
    if (d.x) {
      const products = d.x.map((v, i) => v * d.w[i]);
      strips.push(el("div", { text: "input x" }), vec(d.x, "diverging"), el("div", { text: `weights W[${unit}, :]` }), vec(d.w, "diverging"),
        el("div", { text: "x ⊙ w" }), vec(products, "diverging"));
    }
    const top = el("table", { class: "num" }, el("tr", {}, ["i", "x_i", "w_i", "x_i·w_i"].map((h) => el("td", { text: h }))),
      ...d.top.map((t) => el("tr", {}, el("td", { text: String(t.index) }), el("td", { text: fmt(t.x, 3) }), el("td", { text: fmt(t.w, 3) }), el("td", { text: fmt(t.product, 4) }))));
    $("#calc").replaceChildren(el("div", { class: "fc-strips" }, strips),
      el("div", { class: "chan" }, el("div", { class: "title", text: `the ${d.top.length} largest terms (by |x_i·w_i|)` }), top));
    const eq = $("#equation");
    eq.classList.remove("hidden");
    const parts = [
      el("div", {}, `Σ x_i·w_i over ${thousands(d.inputs)} terms = ${sig(d.positive)} (positive terms) + (${sig(d.negative)}) (negative) = `,
        el("b", { id: "calc-sum", dataset: { value: d.sum }, text: sig(d.sum) })),
      el("div", {}, `z = Σ + bias = ${sig(d.sum)} + (${sig(d.bias)}) = `, el("b", { id: "calc-z", dataset: { value: d.value }, text: sig(d.value) })),
      engineLine(d, d.value)];
    const act = activationLine(d);
    if (act) parts.push(act);
    if (d.softmax) parts.push(el("div", {}, `softmax: p = e^(z − m) / Σ e^(z_j − m) = `, el("b", { id: "calc-p", text: pct(d.softmax.probabilities[unit]) }),
      ` (m = ${sig(Math.max(...d.softmax.logits.filter((z) => z !== null)))}; the table under Prediction shows every class)`));
    eq.replaceChildren(...parts);
  }

  function table(rows, opts = {}) {
    let m = 0;
    for (const r of rows) for (const v of r) if (v !== null) m = Math.max(m, Math.abs(v));
    return el("table", { class: "num" }, rows.map((r, i) => el("tr", {}, r.map((v, j) => {
      const pad = opts.mask && !opts.mask[i][j];
      const td = el("td", { class: (pad ? "pad" : "") + (opts.hi && opts.hi[0] === i && opts.hi[1] === j ? " win" : ""), text: v === null ? "−∞" : v.toFixed(2).replace(/^-(?=0\.00$)/, "").replace(/^-/, "−") });
      if (v !== null) { const c = colour(v, -m, m, "diverging"); td.style.background = `rgb(${c.map(Math.round).join(",")})`; }
      return td;
    }))));
  }

  function engineLine(d, value) {
    if (value === null || d.engine === null) return el("div", {}, "engine's value: ", el("b", { id: "calc-engine", text: sig(d.engine) }));
    const diff = Math.abs(value - d.engine), rel = diff / Math.max(Math.abs(d.engine), 1e-12);
    return el("div", {}, "engine's value: ", el("b", { id: "calc-engine", dataset: { value: d.engine }, text: sig(d.engine) }), " ",
      el("span", { class: rel < 1e-5 || diff < 1e-6 ? "ok" : "", text: rel < 1e-5 || diff < 1e-6 ? `✓ equal (difference ${diff.toExponential(1)})` : `differs by ${diff}` }));
  }
  function activationLine(d) {
    if (!d.activation) return null;
    const a = d.activation, name = a.type === "ReLU" ? "ReLU(z) = max(0, z)" : `${a.type}(z)`;
    return el("div", {}, `${a.layer}: ${name} = `, el("b", { id: "calc-act", dataset: { value: a.value ?? a.engine }, text: sig(a.value ?? a.engine) }));
  }

  function showConv(d) {
    const n = d.patch.length, shown = Math.min(n, 16);
    const [oy, ox] = d.origin, kh = d.kernel[0].length, kw = d.kernel[0][0].length;
    $("#calc-head").textContent = `Output (y ${d.y}, x ${d.x}) of filter ${d.channel}: the ${kh}×${kw} window at rows ${oy}…${oy + kh - 1}, ` +
      `columns ${ox}…${ox + kw - 1} of ${d.input_layer} (${n} channel${n > 1 ? "s" : ""}${oy < 0 || ox < 0 ? ", grey cells are padding" : ""}), ` +
      "multiplied element-wise by the kernel and summed.";
    $("#calc").replaceChildren(...d.patch.slice(0, shown).map((patch, c) => el("div", { class: "chan" },
      el("div", { class: "title", text: `${d.input_layer} channel ${d.input_channels[c]} · Σ = ${fmt(d.channel_sums[c], 4)}` }),
      el("div", { class: "trio" }, table(patch, { mask: d.in_bounds }), el("span", { class: "op", text: "⊙" }), table(d.kernel[c]),
        el("span", { class: "op", text: "=" }), table(d.products[c])))),
      ...(n > shown ? [el("p", { class: "note", text: `… and ${n - shown} more channels (included in the sum).` })] : []));
    const sums = n > 1 && n <= 6 ? d.channel_sums.map((v) => fmt(v, 4)).join(" + ") + " = " : "";
    const eq = $("#equation");
    eq.classList.remove("hidden");
    const parts = [
      el("div", {}, `Σ products over ${n}×${kh}×${kw} = ${n * kh * kw} terms: ${sums}`, el("b", { id: "calc-sum", dataset: { value: d.sum }, text: sig(d.sum) })),
      el("div", {}, `z = Σ + bias = ${sig(d.sum)} + (${sig(d.bias)}) = `, el("b", { id: "calc-z", dataset: { value: d.value }, text: sig(d.value) })),
      engineLine(d, d.value)];
    const act = activationLine(d);
    if (act) parts.push(act);
    eq.replaceChildren(...parts);
  }

  function showPool(d) {
    const k = d.window.length, kw = d.window[0].length;
    $("#calc-head").textContent = `Output (y ${d.y}, x ${d.x}) of channel ${d.channel}: the ${k}×${kw} window at rows ${d.origin[0]}…${d.origin[0] + k - 1}, ` +
      `columns ${d.origin[1]}…${d.origin[1] + kw - 1} of ${d.input_layer}.`;
    const parts = [el("div", { class: "chan" }, el("div", { class: "title", text: "window" }), table(d.window, { mask: d.in_bounds, hi: d.argmax }))];
    if (d.weights) parts.push(el("div", { class: "chan" }, el("div", { class: "title", text: "weights (sum 1)" }), table(d.weights)));
    $("#calc").replaceChildren(...parts);
    const eq = $("#equation");
    eq.classList.remove("hidden");
    const how = d.pool === "max" ? "max(window)" : d.pool === "avg" ? `Σ window / ${d.divisor} = ${sig(d.sum)} / ${d.divisor}` : "Σ weights ⊙ window";
    const lines = [el("div", {}, `${d.pool} pooling: ${how} = `, el("b", { id: "calc-z", dataset: { value: d.value }, text: sig(d.value) })),
      engineLine(d, d.value)];
    const act = activationLine(d);  // usually none after pooling: never the text "null"
    if (act) lines.push(act);
    eq.replaceChildren(...lines);
  }

  $("#upload").addEventListener("change", async (ev) => {
    const file = ev.target.files[0];
    if (!file) return;
    const form = new FormData();
    form.append("image", file);
    selected = null;
    await run(form);
    ev.target.value = "";
  });

  async function summary() {
    const m = CL.model || (await api("/api/model"));
    const rows = m.summary.rows;
    const byName = Object.fromEntries(m.layers.map((l) => [l.name, l]));
    $("#summary").replaceChildren(el("tr", {}, ["layer", "type", "output shape", "params", "output size"].map((h) => el("th", { text: h }))),
      ...rows.map((r) => el("tr", {}, el("td", { text: r.name }), el("td", { text: r.type }), el("td", { class: "n", text: r.output_shape.join("×") }),
        el("td", { class: "n", text: thousands(r.params) }), el("td", { class: "mono", text: byName[r.name] && byName[r.name].formula ? byName[r.name].formula[0] : "" }))),
      el("tr", {}, el("td", { text: "total" }), el("td"), el("td"), el("td", { class: "n", text: thousands(m.summary.totals.total) }), el("td")));
  }

  async function start() {
    try {
      const s = await loadSamples();
      summary();
      if (s.samples.length) await run({ sample: s.samples[0].index });
      else {
        $("#layers").replaceChildren(el("p", { class: "note", text: "Pick or upload an image to see every layer." }));
        $("#input-img").removeAttribute("src");
      }
    } catch (e) { showError(errBox, e); }
  }
  (async () => {
    try { await loadCheckpoints(); } catch (e) { showError(errBox, e); }
    await start();
  })();
})();
