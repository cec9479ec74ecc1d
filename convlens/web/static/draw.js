// Draw page: a pointer-events canvas; the drawing goes to /api/predict while you draw.
"use strict";
(() => {
  const { el, $, api, showError, pct, bars, layerCanvases } = CL;
  const pad = $("#pad"), ctx = pad.getContext("2d"), errBox = $("#error");
  let drawing = false, last = null, inFlight = false, again = false, timer = null, dirty = false;
  let rows = null;          // the activation rows drawn last: {key, canvases per layer}, reused when the layers match
  let pendingShow = null;   // the newest answer, drawn on the next animation frame (older ones are skipped)

  function clear() {
    ctx.fillStyle = "#000"; ctx.fillRect(0, 0, pad.width, pad.height);
    dirty = false;
    $("#pred").textContent = "–"; $("#pred-conf").textContent = "draw something";
    $("#prepared").removeAttribute("src");
    const classes = (CL.model && CL.model.classes) || [...Array(10).keys()].map(String);
    bars($("#probs"), classes, new Array(classes.length).fill(0));
    rows = null;
    $("#activations").replaceChildren(el("p", { class: "note", text: "Draw to see the network's activations." }));
  }

  // the page's words follow the model: a digit model gets "Draw a digit", a CIFAR-10 model another text
  function describeModel(m) {
    if (!m) return;
    const [c, h, w] = m.input_shape;
    if (m.digit_model) {
      $("#draw-title").textContent = "Draw a digit";
      $("#prep-note").replaceChildren("28×28, white on black, fitted into 20×20 and centred by mass: ", el("code", { text: "prepare_digit" }), ", as ", el("code", { text: "convlens predict" }), " does.");
    } else {
      const what = (m.classes || []).slice(0, 4).join(", ");
      $("#draw-title").textContent = `Draw something for a ${c}×${h}×${w} model`;
      $("#prep-note").textContent = `The drawing is resized to ${h}×${w}${c === 3 ? " RGB" : ""}, as the model's input. Its classes: ${what}${m.classes && m.classes.length > 4 ? ", …" : ""}. A white-on-black sketch is far from the photos it was trained on: expect odd answers.`;
    }
    if (!dirty) clear();
  }
  document.addEventListener("cl-model", (e) => describeModel(e.detail));

  function point(ev) {
    const r = pad.getBoundingClientRect();
    return [((ev.clientX - r.left) * pad.width) / r.width, ((ev.clientY - r.top) * pad.height) / r.height];
  }
  function stroke(a, b) {
    ctx.strokeStyle = "#fff"; ctx.lineWidth = 20; ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke();
    dirty = true;
  }

  pad.addEventListener("pointerdown", (ev) => {
    drawing = true; last = point(ev);
    pad.setPointerCapture(ev.pointerId);
    stroke(last, [last[0] + 0.01, last[1]]);
    schedule();
  });
  pad.addEventListener("pointermove", (ev) => {
    if (!drawing) return;
    const p = point(ev);
    stroke(last, p); last = p;
    schedule();
  });
  const end = () => { if (drawing) { drawing = false; predict(); } };
  pad.addEventListener("pointerup", end);
  pad.addEventListener("pointercancel", end);
  pad.addEventListener("pointerleave", end);

  function schedule() {  // at most one request in flight and ~8 per second while drawing
    if (timer) return;
    timer = setTimeout(() => { timer = null; predict(); }, 120);
  }

  async function predict() {
    if (!dirty) return;
    if (inFlight) { again = true; return; }
    inFlight = true;
    try {
      performance.mark("draw-encode-start");
      const image = pad.toDataURL("image/png");
      performance.measure("draw-encode", "draw-encode-start");
      const r = await api("/api/predict", { image, prepare: "auto" });
      showError(errBox, null);
      show(r);
    } catch (e) { showError(errBox, e); }
    inFlight = false;
    if (again) { again = false; predict(); }
  }

  function show(r) {
    if (!pendingShow) requestAnimationFrame(() => { const x = pendingShow; pendingShow = null; render(x); });
    pendingShow = r;
  }

  // Drawing the activations: the canvases are made once and redrawn in place on later strokes (making
  // ~60 canvases and laying them out on every update was most of the ~120 ms per update)
  function render(r) {
    performance.mark("draw-render-start");
    try { renderNow(r); } finally { performance.measure("draw-render", "draw-render-start"); }
  }
  function renderNow(r) {
    $("#prepared").src = r.prepared;
    $("#pred").textContent = r.blank ? "–" : r.label;
    $("#pred-conf").textContent = r.blank ? "the drawing is empty" : `${pct(r.probabilities[r.predicted])} confident`;
    bars($("#probs"), r.classes, r.probabilities);
    const key = r.layers.map((l) => `${l.name}:${l.values.shape.join("x")}`).join("|");
    if (rows && rows.key === key) {
      r.layers.forEach((l, i) => redraw(rows.canvases[i], l));
      return;
    }
    const canvases = [];
    $("#activations").replaceChildren(...r.layers.map((l) => {
      const signed = l.kind === "conv" || l.kind === "fc";
      const made = layerCanvases(l.values, { size: 42, cmap: signed ? "diverging" : "viridis", stripWidth: 360 });
      canvases.push(made.canvases);
      const more = l.values.channels > l.values.shape[0] ? el("span", { class: "note", text: `+${l.values.channels - l.values.shape[0]} more` }) : null;
      return el("div", { class: "lrow" },
        el("div", {}, el("div", { class: "name", text: l.name }), el("div", { class: "note", text: `${l.type} · ${l.shape.join("×")}` })),
        el("div", { class: "maps" }, made.canvases, more));
    }));
    rows = { key, canvases };
  }
  function redraw(cvs, l) {
    const v = CL.decode(l.values), cmap = l.kind === "conv" || l.kind === "fc" ? "diverging" : "viridis";
    if (v.shape.length === 3 && !(v.shape[1] === 1 && v.shape[2] === 1)) {
      const [C, H, W] = v.shape;
      for (let c = 0; c < C && c < cvs.length; c++) CL.drawMap(cvs[c], v.data, c * H * W, H, W, { cmap, size: 42 });
    } else {
      const n = v.data.length;
      CL.drawMap(cvs[0], v.data, 0, 1, n, { cmap, scale: Math.max(2, Math.floor(360 / n)) });
    }
  }

  $("#clear").addEventListener("click", clear);
  clear();
  if (CL.model) describeModel(CL.model);
})();
