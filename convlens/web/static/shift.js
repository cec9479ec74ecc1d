// Shift page: the model on an image and on the image moved by (dy, dx); per layer the moved-along error
// (equivariance: ~0 for convolutions) and the in-place change (invariance: smaller after pooling).
"use strict";
(() => {
  const { el, $, api, showError, pct, thousands, layerCanvases, bars } = CL;
  const errBox = $("#error");
  let sample = null, timer = null, seq = 0;

  async function loadSamples() {
    const s = await api("/api/samples?count=24");
    $("#samples").replaceChildren(...s.samples.map((x) => el("img", { src: x.image, alt: `image ${x.index}, label ${x.label}`,
      title: `#${x.index}: ${x.label}`, dataset: { index: x.index }, onclick: () => { sample = x.index; run(); } })));
    $("#samples-note").textContent = s.samples.length ? `${s.dataset} images (${thousands(s.total)}); click one.` : (s.message || "");
    return s;
  }

  async function run() {
    if (sample === null) return;
    const mine = ++seq;
    document.querySelectorAll("#samples img").forEach((img) => img.classList.toggle("selected", +img.dataset.index === sample));
    const dx = +$("#dx").value, dy = +$("#dy").value;
    $("#shift-note").textContent = `moved ${dx} px right and ${dy} px down`;
    let r;
    try { r = await api("/api/shift", { sample, dx, dy }); } catch (e) { showError(errBox, e); return; }
    if (mine !== seq) return;
    showError(errBox, null);
    show(r);
  }

  const num = (v, good, none) => el("span", { class: good ? "num-good" : "num-bad", text: v === null ? none || "–" : (100 * v).toFixed(1) + "%" });

  function show(r) {
    $("#orig").src = r.input.original; $("#moved").src = r.input.shifted;
    bars($("#probs-a"), r.original.classes, r.original.probabilities);
    bars($("#probs-b"), r.shifted.classes, r.shifted.probabilities);
    $("#pred-kv").replaceChildren(
      el("span", { class: "k", text: "original" }), el("b", { id: "pred-a", text: `${r.original.label} (${pct(r.original.probabilities[r.original.predicted])})` }),
      el("span", { class: "k", text: "shifted" }), el("b", { id: "pred-b", text: `${r.shifted.label} (${pct(r.shifted.probabilities[r.shifted.predicted])})` }),
      el("span", { class: "k", text: "probability moved" }), el("span", { id: "prob-change", text: pct(r.probability_change) + " (half the L1 distance)" }));
    $("#shift-table").replaceChildren(
      el("tr", {}, ["layer", "total stride S", "map shift (dy/S, dx/S)", "moved-along error", "in-place change"].map((h) => el("th", { text: h }))),
      ...r.layers.map((l) => el("tr", { dataset: { layer: l.name } }, el("td", { text: `${l.name} (${l.type})` }), el("td", { class: "n", text: l.stride.join("×") }),
        el("td", { class: "n", text: l.map_shift.map((v) => +v.toFixed(2)).join(", ") + (l.exact ? "" : " (rounded)") }),
        el("td", { class: "n moved", title: `compared on ${l.compared[0]}×${l.compared[1]} cells whose receptive field stays inside the image` },
          num(l.moved_error, l.moved_error !== null && l.moved_error < 0.05, "– (every cell sees the border)")), el("td", { class: "n inplace" }, num(l.in_place_change, l.in_place_change < 0.3)))));
    $("#shift-rows").replaceChildren(...r.layers.map((l) => {
      const cmap = l.kind === "conv" ? "diverging" : "viridis";
      const a = layerCanvases(l.original, { size: 48, cmap }), b = layerCanvases(l.shifted, { size: 48, cmap });
      return el("div", { class: "lrow" },
        el("div", {}, el("div", { class: "name", text: l.name }), el("div", { class: "note", text: `${l.type} · ${l.shape.join("×")}` })),
        el("div", {}, el("div", { class: "maps" }, a.canvases), el("div", { class: "maps", style: "margin-top:3px" }, b.canvases)));
    }));
  }

  for (const id of ["dx", "dy"]) $("#" + id).addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(run, 80); });

  (async () => {
    try {
      const s = await loadSamples();
      if (s.samples.length) { sample = s.samples[0].index; run(); }
    } catch (e) { showError(errBox, e); }
  })();
})();
