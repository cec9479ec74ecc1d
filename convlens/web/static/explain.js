// Explain page: every layer's feature maps for one image; click a map, then a pixel, to see its arithmetic.
"use strict";
(() => {
  const { el, $, api, showError, fmt, pct, thousands, drawMap, layerCanvases, bars, decode, colour } = CL;
  const errBox = $("#error");
  let current = null;   // the last /api/explain answer
  let selected = null;  // {layer, channel, entry, decoded, scale}

  const sig = (v) => (Math.abs(v) >= 1e5 || (v !== 0 && Math.abs(v) < 1e-4) ? v.toExponential(6) : v.toPrecision(7)).replace(/^-/, "−");

  async function loadSamples() {
    const s = await api("/api/samples?count=36");
    const box = $("#samples");
    box.replaceChildren(...s.samples.map((x) => el("img", { src: x.image, alt: `test image ${x.index}, label ${x.label}`,
      title: `#${x.index}: ${x.label}`, dataset: { index: x.index }, onclick: () => run({ sample: x.index }) })));
    $("#samples-note").textContent = s.dataset ? `${s.dataset} test images (${thousands(s.total)}); click one.` : s.message;
    return s;
  }

  async function run(body) {
    showError(errBox, null);
    document.querySelectorAll("#samples img").forEach((img) => img.classList.toggle("selected", body.sample !== undefined && +img.dataset.index === body.sample));
    try { current = await api("/api/explain", body); } catch (e) { showError(errBox, e); return; }
    render();
  }

  function render() {
    const r = current;
    $("#input-img").src = r.input.image;
    const o = r.output;
    $("#input-kv").replaceChildren(el("span", { class: "k", text: "shape" }), el("span", { text: r.input.shape.join("×") }),
      el("span", { class: "k", text: "model" }), el("span", { text: r.model }),
      el("span", { class: "k", text: "predicted" }), el("b", { text: `${o.label} (${pct(o.probabilities[o.predicted])})` }));
    $("#pred").textContent = o.label;
    $("#pred-conf").textContent = `${pct(o.probabilities[o.predicted])} confident`;
    bars($("#probs"), o.classes, o.probabilities);
    $("#logits").replaceChildren(el("tr", {}, el("th", { text: "class" }), el("th", { text: "logit z" }), el("th", { text: "softmax" })),
      ...o.classes.map((c, i) => el("tr", {}, el("td", { text: c }), el("td", { class: "n", text: fmt(o.logits[i], 4) }),
        el("td", { class: "n", text: pct(o.probabilities[i]) }))));
    renderLayers();
    if (selected) select(selected.layer, selected.channel, true);
    else {
      const first = r.layers.find((l) => l.kind === "conv" && l.explainable);
      if (first) select(first.name, 0, false);
    }
  }

  function renderLayers() {
    const r = current;
    const cols = [];
    const inp = layerCanvases(r.input.values, { size: 56, cmap: "gray" });
    cols.push(el("div", { class: "layer" }, el("div", { class: "name", text: "input" }),
      el("div", { class: "meta", text: r.input.shape.join("×") }), el("div", { class: "maps" }, inp.canvases)));
    for (const l of r.layers) {
      if (l.kind === "flatten") continue;
      const signed = l.kind === "conv" || l.kind === "fc";
      const { canvases, vector } = layerCanvases(l.values, { size: 40, cmap: signed ? "diverging" : "viridis", stripWidth: 120 });
      const maps = el("div", { class: "maps" }, canvases);
      if (!vector && canvases.length > 6) maps.style.gridTemplateColumns = "repeat(2, auto)";
      if (!vector && canvases.length > 24) maps.style.gridTemplateColumns = "repeat(4, auto)";
      if (l.explainable && !vector) {
        canvases.forEach((cv, c) => cv.addEventListener("click", () => select(l.name, c, false)));
        canvases.forEach((cv, c) => { cv.dataset.layer = l.name; cv.dataset.channel = c; });
      }
      const meta = [`${l.type} · ${l.output_shape.join("×")}`, `${thousands(l.params)} params`];
      const col = el("div", { class: `layer kind-${l.kind}` + (l.explainable && !vector ? " clickable" : ""), dataset: { layer: l.name } },
        el("div", { class: "name", text: l.name }), ...meta.map((m) => el("div", { class: "meta", text: m })),
        l.formula ? el("div", { class: "formula", title: "W₂ = (W₁ − F + 2P)/S + 1", text: l.formula[0] }) : null, maps,
        l.values.channels > l.values.shape[0] ? el("div", { class: "more", text: `first ${l.values.shape[0]} of ${l.values.channels}` }) : null);
      cols.push(col);
    }
    $("#layers").replaceChildren(...cols);
  }

  function select(layer, channel, keepPixel) {
    const entry = current.layers.find((l) => l.name === layer);
    if (!entry) return;
    const decoded = decode(entry.values);
    const [, H, W] = decoded.shape;
    document.querySelectorAll("#layers canvas.selected").forEach((c) => c.classList.remove("selected"));
    const mini = document.querySelector(`#layers canvas[data-layer="${layer}"][data-channel="${channel}"]`);
    if (mini) mini.classList.add("selected");
    const big = $("#big-map");
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

  function mark(y, x) {
    const s = selected, big = $("#big-map"), ctx = big.getContext("2d");
    drawMap(big, s.decoded.data, s.channel * s.H * s.W, s.H, s.W, { cmap: s.entry.kind === "conv" ? "diverging" : "viridis", scale: s.scale });
    ctx.strokeStyle = "#ffd43b"; ctx.lineWidth = Math.max(0.12, 1.5 / s.scale);
    ctx.strokeRect(x + 0.06, y + 0.06, 0.88, 0.88);
  }

  async function pick(y, x) {
    const s = selected;
    s.pixel = [y, x];
    mark(y, x);
    const path = s.entry.kind === "conv" ? "/api/explain/conv" : "/api/explain/pool";
    try {
      const d = await api(path, { input_id: current.input_id, layer: s.layer, channel: s.channel, y, x });
      if (s === selected) (s.entry.kind === "conv" ? showConv : showPool)(d);
    } catch (e) { showError(errBox, e); }
  }

  $("#big-map").addEventListener("click", (ev) => {
    if (!selected) return;
    const rect = ev.currentTarget.getBoundingClientRect();
    const x = Math.floor(((ev.clientX - rect.left) / rect.width) * selected.W), y = Math.floor(((ev.clientY - rect.top) / rect.height) * selected.H);
    if (x >= 0 && y >= 0 && x < selected.W && y < selected.H) pick(y, x);
  });

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
    eq.replaceChildren(
      el("div", {}, `Σ products over ${n}×${kh}×${kw} = ${n * kh * kw} terms: ${sums}`, el("b", { id: "calc-sum", dataset: { value: d.sum }, text: sig(d.sum) })),
      el("div", {}, `z = Σ + bias = ${sig(d.sum)} + (${sig(d.bias)}) = `, el("b", { id: "calc-z", dataset: { value: d.value }, text: sig(d.value) })),
      engineLine(d, d.value), activationLine(d));
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
    eq.replaceChildren(el("div", {}, `${d.pool} pooling: ${how} = `, el("b", { id: "calc-z", dataset: { value: d.value }, text: sig(d.value) })),
      engineLine(d, d.value), activationLine(d));
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

  (async () => {
    try {
      const s = await loadSamples();
      summary();
      if (s.samples.length) await run({ sample: s.samples[0].index });
    } catch (e) { showError(errBox, e); }
  })();
})();
