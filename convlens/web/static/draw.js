// Draw page: a pointer-events canvas; the drawing goes to /api/predict while you draw.
"use strict";
(() => {
  const { el, $, api, showError, pct, bars, layerCanvases } = CL;
  const pad = $("#pad"), ctx = pad.getContext("2d"), errBox = $("#error");
  let drawing = false, last = null, inFlight = false, again = false, timer = null, dirty = false;

  function clear() {
    ctx.fillStyle = "#000"; ctx.fillRect(0, 0, pad.width, pad.height);
    dirty = false;
    $("#pred").textContent = "–"; $("#pred-conf").textContent = "draw something";
    $("#prepared").removeAttribute("src");
    bars($("#probs"), (CL.model && CL.model.classes) || [...Array(10).keys()].map(String), new Array(10).fill(0));
    $("#activations").replaceChildren(el("p", { class: "note", text: "Draw a digit to see the network's activations." }));
  }

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
      const r = await api("/api/predict", { image: pad.toDataURL("image/png"), prepare: "auto" });
      showError(errBox, null);
      show(r);
    } catch (e) { showError(errBox, e); }
    inFlight = false;
    if (again) { again = false; predict(); }
  }

  function show(r) {
    $("#prepared").src = r.prepared;
    $("#pred").textContent = r.blank ? "–" : r.label;
    $("#pred-conf").textContent = r.blank ? "the drawing is empty" : `${pct(r.probabilities[r.predicted])} confident`;
    bars($("#probs"), r.classes, r.probabilities);
    $("#activations").replaceChildren(...r.layers.map((l) => {
      const signed = l.kind === "conv" || l.kind === "fc";
      const { canvases } = layerCanvases(l.values, { size: 42, cmap: signed ? "diverging" : "viridis", stripWidth: 360 });
      const more = l.values.channels > l.values.shape[0] ? el("span", { class: "note", text: `+${l.values.channels - l.values.shape[0]} more` }) : null;
      return el("div", { class: "lrow" },
        el("div", {}, el("div", { class: "name", text: l.name }), el("div", { class: "note", text: `${l.type} · ${l.shape.join("×")}` })),
        el("div", { class: "maps" }, canvases, more));
    }));
  }

  $("#clear").addEventListener("click", clear);
  clear();
  document.addEventListener("DOMContentLoaded", () => setTimeout(() => { if (!dirty) clear(); }, 300));
})();
