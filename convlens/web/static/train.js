// Train page: settings form, start/pause/resume/stop, live curves and snapshots over server-sent events.
"use strict";
(() => {
  const { el, $, api, showError, fmt, pct, thousands, LineChart, layerCanvases, drawKernels } = CL;
  const errBox = $("#error");
  const NUMERIC = ["lr", "momentum", "weight_decay", "batch_size", "epochs", "limit", "val_split"];
  const SPEC_EXAMPLE = JSON.stringify({ layers: [
    { type: "conv", name: "conv1", filters: 8, size: 3, pad: 1, activation: "relu" },
    { type: "pool", name: "pool1", size: 2 },
    { type: "conv", name: "conv2", filters: 16, size: 3, pad: 1, activation: "relu" },
    { type: "pool", name: "pool2", size: 2 },
    { type: "fc", name: "fc", units: 10 },
  ] }, null, 1);
  let models = [], source = null, state = "idle", strip = null;

  const lossChart = new LineChart($("#loss-chart"), { yLabel: "Loss", xLabel: "examples seen", yMin: 0, series: [
    { name: "train (moving average)", color: "#4c6ef5" }, { name: "batch", color: "rgba(76,110,245,.28)", width: 1 },
    { name: "validation", color: "#e8590c", dots: true }] });
  const accChart = new LineChart($("#acc-chart"), { yLabel: "Accuracy", xLabel: "examples seen", yMin: 0, yMax: 1, percent: true, series: [
    { name: "train (moving average)", color: "#4c6ef5" }, { name: "validation", color: "#e8590c", dots: true }] });

  function setState(s, error) {
    state = s;
    const b = $("#state");
    b.textContent = s; b.className = "badge " + s;
    const active = s === "running" || s === "paused";
    $("#start").disabled = active;
    $("#pause").disabled = s !== "running";
    $("#resume").disabled = s !== "paused";
    $("#stop").disabled = !active;
    $("#save").disabled = s === "idle";
    $("#use").disabled = s === "idle";
    if (error) showError(errBox, new Error(error));
    if (s === "finished" || s === "stopped" || s === "failed" || s === "paused") refreshParams();
  }

  // the form starts with the model's quick first-run settings (the zoo's recipe is for long runs)
  function applyRecipe(name) {
    const m = models.find((x) => x.name === name);
    const base = m ? m.recipe : { optimizer: "adam", lr: 0.002, momentum: 0.9, weight_decay: 0, batch_size: 64, schedule: "none", augment: "" };
    const r = { ...base, ...((m && m.quick) || {}) };
    $("#optimizer").value = r.optimizer; $("#lr").value = r.lr; $("#momentum").value = r.momentum || 0;
    $("#weight_decay").value = r.weight_decay || 0; $("#batch_size").value = r.batch_size; $("#schedule").value = r.schedule;
    const aug = [...$("#augment").options].some((o) => o.value === r.augment) ? r.augment : "";
    $("#augment").value = aug;
    if (r.epochs) $("#epochs").value = r.epochs;
    $("#limit").value = r.limit || "";
    if (r.val_split !== undefined) $("#val_split").value = r.val_split;
  }

  function settings() {
    const body = { model: $("#model").value, dataset: $("#dataset").value, optimizer: $("#optimizer").value,
      schedule: $("#schedule").value, augment: $("#augment").value };
    for (const k of NUMERIC) { const v = $("#" + k).value.trim(); if (v !== "") body[k] = Number(v); }
    if (body.model === "spec") body.spec = $("#spec").value;
    return body;
  }

  // ---- progress ----
  function addPoint(p) {
    // the moving averages run across epochs (the epoch's running mean restarts each epoch: a cliff)
    lossChart.push(0, p.examples_seen, p.smooth_loss ?? p.loss); lossChart.push(1, p.examples_seen, p.batch_loss);
    accChart.push(0, p.examples_seen, p.smooth_accuracy ?? p.accuracy);
    $("#s-epoch").textContent = `${p.epoch}/${p.epochs}`;
    $("#s-seen").textContent = thousands(p.examples_seen);
    $("#s-ips").textContent = thousands(p.images_per_second);
    $("#s-loss").textContent = fmt(p.loss, 4);
    $("#s-acc").textContent = pct(p.accuracy);
    lastSeen = p.examples_seen;
  }
  let lastSeen = 0;
  function addEpoch(r) {
    const at = r.examples_seen ?? lastSeen;
    if (r.val_loss !== null) lossChart.push(2, at, r.val_loss);
    if (r.val_accuracy !== null) { accChart.push(1, at, r.val_accuracy); $("#s-val").textContent = pct(r.val_accuracy); }
  }

  function showStrip(s) {
    strip = s;
    $("#strip").replaceChildren(...s.images.map((src, i) => el("div", { class: "item", dataset: { i } },
      el("img", { src, alt: `test image ${i}` }), el("div", { class: "truth", text: s.labels[i] }),
      el("div", { class: "pred", dataset: { i } }))));
  }

  function showSnapshot(snap) {
    if (strip) {
      let right = 0;
      snap.strip.forEach((top, i) => {
        const box = $(`#strip .pred[data-i="${i}"]`), item = $(`#strip .item[data-i="${i}"]`);
        if (!box) return;
        const ok = top.length && top[0][0] === strip.labels[i];
        right += ok ? 1 : 0;
        item.classList.toggle("right", ok); item.classList.toggle("wrong", !ok);
        item.title = top.map(([label, p]) => `${label} ${pct(p)}`).join(", ");
        box.replaceChildren(...top.map(([label, p], j) => el("div", {},
          el("span", { class: j === 0 ? (label === strip.labels[i] ? "ok" : "no") : "" , text: label.slice(0, 8) }), " ", pct(p))));
      });
      $("#strip-score").textContent = `· ${right} of ${snap.strip.length} right (top-3 each; hover for all)`;
    }
    if (snap.kernels) drawKernels($("#kernels"), snap.kernels.values, 36);
    $("#snap-note").textContent = `· updated at ${thousands(snap.examples_seen)} examples`;
    const rows = $("#activations");
    rows.replaceChildren(...snap.layers.map((l) => {
      const { canvases } = layerCanvases(l.values, { size: 40, cmap: l.kind === "conv" ? "diverging" : "viridis" });
      const more = l.values.channels > l.values.shape[0] ? el("span", { class: "note", text: `+${l.values.channels - l.values.shape[0]} more` }) : null;
      return el("div", { class: "lrow" },
        el("div", {}, el("div", { class: "name", text: l.name }), el("div", { class: "note", text: `${l.type} · ${l.shape.join("×")}` })),
        el("div", { class: "maps" }, canvases, more));
    }));
  }

  function resetView(st) {
    lossChart.clear(); accChart.clear();
    for (const id of ["s-epoch", "s-seen", "s-ips", "s-loss", "s-acc", "s-val"]) $("#" + id).textContent = "–";
    lastSeen = 0;
    if (st && st.points) {
      // rebuild the curves from the full state (a reconnect or a page reload)
      let hi = 0;
      for (const p of st.points) { addPoint(p); }
      const ends = st.points.filter((p) => p.batch === p.batches).map((p) => p.examples_seen);
      st.history.forEach((r, i) => { lastSeen = ends[i] !== undefined ? ends[i] : hi; addEpoch(r); });
      if (st.points.length) lastSeen = st.points[st.points.length - 1].examples_seen;
    }
    if (st && st.strip) showStrip(st.strip);
    if (st && st.job_id) $("#job-desc").textContent = `job ${st.job_id}: ${st.model} on ${st.dataset} · ${thousands(st.train_images)} training, ${thousands(st.val_images)} validation images`;
  }

  function listen() {
    if (source) source.close();
    source = new EventSource("/api/train/events");
    source.addEventListener("state", (e) => { const st = JSON.parse(e.data); resetView(st); setState(st.state, st.error); });
    source.addEventListener("progress", (e) => addPoint(JSON.parse(e.data)));
    source.addEventListener("epoch", (e) => addEpoch(JSON.parse(e.data)));
    source.addEventListener("status", (e) => { const s = JSON.parse(e.data); setState(s.state, s.error); });
    source.addEventListener("snapshot", (e) => showSnapshot(JSON.parse(e.data)));
    source.addEventListener("saved", (e) => { $("#saved").textContent = "Saved " + JSON.parse(e.data).path; });
    source.addEventListener("hyper", (e) => { const h = JSON.parse(e.data); $("#live-note").textContent = `applied at ${thousands(h.at)} examples: lr ${h.lr}, momentum ${h.momentum}, weight decay ${h.weight_decay}, batch ${h.batch_size}`; });
    source.addEventListener("end", () => { source.close(); source = null; });
  }

  async function act(path, body) {
    showError(errBox, null);
    try { return await api(path, body === undefined ? {} : body); } catch (e) { showError(errBox, e); return null; }
  }

  $("#start").addEventListener("click", async () => {
    $("#start").disabled = true;
    $("#live-note").textContent = "";
    const st = await act("/api/train/start", settings());
    if (st) { setState(st.state); listen(); watchParams(); } else { setState(state); pollDatasets(); }
  });
  $("#pause").addEventListener("click", async () => { const st = await act("/api/train/pause"); if (st) setState(st.state); });
  $("#resume").addEventListener("click", async () => { const st = await act("/api/train/resume"); if (st) { setState(st.state); if (!source) listen(); } });
  $("#stop").addEventListener("click", async () => { const st = await act("/api/train/stop"); if (st) setState(st.state, st.error); });
  $("#save").addEventListener("click", async () => { const r = await act("/api/train/save"); if (r) $("#saved").textContent = `Saved ${r.path} (after epoch ${r.epoch}).`; });
  $("#use").addEventListener("click", async () => {
    const r = await act("/api/train/use");
    if (r) { $("#saved").textContent = `The Explain and Draw pages now use ${r.model}.`; CL.refreshBadge(); }
  });

  // ---- live hyper-parameters (ConvNetJS): applied to the running job between two batches ----
  let liveTimer = null;
  for (const id of ["lr", "momentum", "weight_decay", "batch_size"]) {
    $("#" + id).addEventListener("input", () => {
      if (state !== "running" && state !== "paused") return;
      clearTimeout(liveTimer);
      liveTimer = setTimeout(async () => {
        const v = $("#" + id).value.trim();
        if (v === "" || !Number.isFinite(Number(v))) return;
        const r = await act("/api/train/hyper", { [id]: Number(v) });
        if (r) $("#live-note").textContent = `${id.replace("_", " ")} is now ${r[id]}` + (id === "batch_size" ? " (from the next epoch)" : "");
      }, 400);
    });
  }

  // ---- every layer's weights and gradients ----
  let paramsTimer = null, paramsBusy = false;
  async function refreshParams() {
    if (paramsBusy || state === "idle") return;
    paramsBusy = true;
    try {
      const layer = $("#params-layer").value;
      const p = await api("/api/train/params" + (layer ? `?layer=${encodeURIComponent(layer)}` : ""));
      showParams(p);
    } catch (e) { /* a finished job with no model yet: try again later */ }
    paramsBusy = false;
  }
  function showParams(p) {
    const sel = $("#params-layer");
    if (sel.options.length !== p.layers.length) {
      const keep = sel.value;
      sel.replaceChildren(...p.layers.map((l) => el("option", { value: l.name, text: `${l.name} (${l.type} ${l.shape.join("×")})` })));
      if (keep) sel.value = keep;
    }
    $("#params-table").replaceChildren(el("tr", {}, ["layer", "weight shape", "RMS of weights", "RMS of gradients", "gradient / weight"].map((h) => el("th", { text: h }))),
      ...p.layers.map((l) => el("tr", {}, el("td", { text: l.name }), el("td", { class: "n", text: l.shape.join("×") }),
        el("td", { class: "n", text: fmt(l.weight_rms, 4) }), el("td", { class: "n", text: fmt(l.grad_rms, 4) }), el("td", { class: "n", text: fmt(l.ratio, 4) }))));
    $("#params-note").textContent = `· after ${thousands(p.examples_seen)} examples`;
    const s = p.selected;
    if (!s) return;
    drawTensor($("#w-view"), s.weight);
    if (s.grad) drawTensor($("#g-view"), s.grad); else $("#g-view").replaceChildren(el("p", { class: "note", text: "no gradient yet" }));
  }
  function drawTensor(box, map) {
    const t = CL.decode(map);
    if (t.shape.length === 4) { CL.drawKernels(box, map, 32); return; }
    // a matrix (out × in): one row per output unit, blue negative, red positive
    const [rows, cols] = t.shape.length === 2 ? t.shape : [1, t.data.length];
    let m = 0;
    for (const v of t.data) m = Math.max(m, Math.abs(v));
    const cv = el("canvas", { class: "map", title: `${rows}×${cols}` });
    CL.drawMap(cv, t.data, 0, rows, cols, { cmap: "diverging", min: -m, max: m, scale: Math.max(1, Math.min(8, Math.floor(420 / cols))) });
    box.replaceChildren(cv, el("div", { class: "note", text: `${rows}×${cols}, |max| ${fmt(m, 3)}${t.channels > rows ? ` (first ${rows} of ${t.channels} rows)` : ""}` }));
  }
  $("#params-layer").addEventListener("change", refreshParams);
  function watchParams() {
    clearInterval(paramsTimer);
    paramsTimer = setInterval(() => { if (state === "running") refreshParams(); }, 1500);
    refreshParams();
  }

  // ---- data sets that take a while to load (CIFAR-10): progress, Start waits ----
  let datasets = [], dsTimer = null;
  function describeDataset() {
    const d = datasets.find((x) => x.name === $("#dataset").value);
    if (!d) return;
    const parts = [d.description, d.shape ? `${d.shape.join("×")} images` : null,
      d.train ? `${thousands(d.train)} training and ${d.test_part === "train" ? "no separate test" : thousands(d.test) + " test"} images` : null];
    $("#ds-desc").textContent = parts.filter(Boolean).join(" · ");
    const loading = d.state === "loading";
    $("#ds-progress").classList.toggle("hidden", !loading && d.state !== "failed");
    $("#ds-progress .progress").classList.toggle("hidden", !loading);
    $("#ds-note").textContent = loading ? `Loading ${d.name}: ${d.phase} · ${Math.round(d.seconds)} s` : d.state === "failed" ? `Could not load ${d.name}: ${d.error}` : "";
    if (state !== "running" && state !== "paused") $("#start").disabled = loading;
  }
  async function pollDatasets() {
    try { datasets = (await api("/api/datasets")).datasets; } catch (e) { return; }
    describeDataset();
    const d = datasets.find((x) => x.name === $("#dataset").value);
    clearTimeout(dsTimer);
    if (d && d.state === "loading") dsTimer = setTimeout(pollDatasets, 800);
  }
  $("#dataset").addEventListener("change", async () => {
    const name = $("#dataset").value, d = datasets.find((x) => x.name === name);
    // offer a model made for this data set's images (the server refuses one that does not fit)
    const channels = d && d.shape ? d.shape[0] : (name.startsWith("cifar") ? 3 : 1);
    const m = models.find((x) => x.name === $("#model").value);
    if (m && m.input_shape[0] !== channels) {
      const fit = models.find((x) => x.input_shape[0] === channels && x.quick);
      if (fit) { $("#model").value = fit.name; applyRecipe(fit.name); }
    }
    if (d && d.state !== "ready") {
      try { await api("/api/datasets/load", { name }); } catch (e) { showError(errBox, e); }
    }
    pollDatasets();
  });
  $("#model").addEventListener("change", () => {
    const spec = $("#model").value === "spec";
    $("#spec-field").classList.toggle("hidden", !spec);
    if (spec && !$("#spec").value.trim()) $("#spec").value = SPEC_EXAMPLE;
    applyRecipe($("#model").value);
  });

  async function init() {
    try {
      const [m, d, st] = await Promise.all([api("/api/models"), api("/api/datasets"), api("/api/train/status")]);
      models = m.models;
      $("#model").replaceChildren(...models.map((x) => el("option", { value: x.name, text: `${x.name} — ${x.description.split(";")[0].slice(0, 60)}` })),
        el("option", { value: "spec", text: "custom spec (JSON)…" }),
        el("option", { value: "loaded", text: "fine-tune the model on Explain & Draw (a checkpoint or an imported .onnx)" }));
      $("#optimizer").replaceChildren(...m.optimizers.map((o) => el("option", { value: o, text: o })));
      $("#schedule").replaceChildren(...m.schedules.map((o) => el("option", { value: o, text: o })));
      datasets = d.datasets;
      $("#dataset").replaceChildren(...d.datasets.map((x) => el("option", { value: x.name, text: x.name + (x.builtin ? " (built in)" : x.description && x.description.includes("JPEG") ? " (JPEG copy)" : "") })));
      $("#model").value = "lenet5";
      applyRecipe("lenet5");
      describeDataset();
      setState(st.state, st.error);
      if (st.job_id) { listen(); watchParams(); }
    } catch (e) { showError(errBox, e); }
  }
  init();
})();
