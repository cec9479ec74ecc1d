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
    { name: "train (running mean)", color: "#4c6ef5" }, { name: "batch", color: "rgba(76,110,245,.28)", width: 1 },
    { name: "validation", color: "#e8590c", dots: true }] });
  const accChart = new LineChart($("#acc-chart"), { yLabel: "Accuracy", xLabel: "examples seen", yMin: 0, yMax: 1, percent: true, series: [
    { name: "train (running mean)", color: "#4c6ef5" }, { name: "validation", color: "#e8590c", dots: true }] });

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
  }

  function applyRecipe(name) {
    const m = models.find((x) => x.name === name);
    const r = m ? m.recipe : { optimizer: "adam", lr: 0.002, momentum: 0.9, weight_decay: 0, batch_size: 64, schedule: "none", augment: "" };
    $("#optimizer").value = r.optimizer; $("#lr").value = r.lr; $("#momentum").value = r.momentum || 0;
    $("#weight_decay").value = r.weight_decay; $("#batch_size").value = r.batch_size; $("#schedule").value = r.schedule;
    const aug = [...$("#augment").options].some((o) => o.value === r.augment) ? r.augment : "";
    $("#augment").value = aug;
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
    lossChart.push(0, p.examples_seen, p.loss); lossChart.push(1, p.examples_seen, p.batch_loss);
    accChart.push(0, p.examples_seen, p.accuracy);
    $("#s-epoch").textContent = `${p.epoch}/${p.epochs}`;
    $("#s-seen").textContent = thousands(p.examples_seen);
    $("#s-ips").textContent = thousands(p.images_per_second);
    $("#s-loss").textContent = fmt(p.loss, 4);
    $("#s-acc").textContent = pct(p.accuracy);
    lastSeen = p.examples_seen;
  }
  let lastSeen = 0;
  function addEpoch(r) {
    if (r.val_loss !== null) lossChart.push(2, lastSeen, r.val_loss);
    if (r.val_accuracy !== null) { accChart.push(1, lastSeen, r.val_accuracy); $("#s-val").textContent = pct(r.val_accuracy); }
  }

  function showStrip(s) {
    strip = s;
    $("#strip").replaceChildren(...s.images.map((src, i) => el("div", { class: "item" },
      el("img", { src, alt: `test image ${i}` }), el("div", { class: "truth", text: `true: ${s.labels[i]}` }),
      el("div", { class: "pred", dataset: { i } }))));
  }

  function showSnapshot(snap) {
    if (strip) {
      snap.strip.forEach((top, i) => {
        const box = $(`#strip .pred[data-i="${i}"]`);
        if (!box) return;
        box.replaceChildren(...top.map(([label, p], j) => el("div", {},
          el("span", { class: j === 0 ? (label === strip.labels[i] ? "ok" : "no") : "" , text: label.padEnd(3).slice(0, 10) }), " ", pct(p))));
      });
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
    source.addEventListener("end", () => { source.close(); source = null; });
  }

  async function act(path, body) {
    showError(errBox, null);
    try { return await api(path, body === undefined ? {} : body); } catch (e) { showError(errBox, e); return null; }
  }

  $("#start").addEventListener("click", async () => {
    $("#start").disabled = true;
    const st = await act("/api/train/start", settings());
    if (st) { setState(st.state); listen(); } else setState(state);
  });
  $("#pause").addEventListener("click", async () => { const st = await act("/api/train/pause"); if (st) setState(st.state); });
  $("#resume").addEventListener("click", async () => { const st = await act("/api/train/resume"); if (st) { setState(st.state); if (!source) listen(); } });
  $("#stop").addEventListener("click", async () => { const st = await act("/api/train/stop"); if (st) setState(st.state, st.error); });
  $("#save").addEventListener("click", async () => { const r = await act("/api/train/save"); if (r) $("#saved").textContent = `Saved ${r.path} (after epoch ${r.epoch}).`; });
  $("#use").addEventListener("click", async () => { const r = await act("/api/train/use"); if (r) $("#saved").textContent = `The Explain and Draw pages now use ${r.model}.`; });
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
        el("option", { value: "spec", text: "custom spec (JSON)…" }));
      $("#optimizer").replaceChildren(...m.optimizers.map((o) => el("option", { value: o, text: o })));
      $("#schedule").replaceChildren(...m.schedules.map((o) => el("option", { value: o, text: o })));
      $("#dataset").replaceChildren(...d.datasets.map((x) => el("option", { value: x.name, text: x.name + (x.builtin ? " (built in)" : "") })));
      $("#model").value = "lenet5";
      applyRecipe("lenet5");
      $("#epochs").value = 2;
      $("#limit").value = 2000;
      setState(st.state, st.error);
      if (st.job_id) listen();
    } catch (e) { showError(errBox, e); }
  }
  init();
})();
