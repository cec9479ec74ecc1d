// Detect & Segment page: pick a model and a test scene (or upload one); see the mask or the boxes and
// the encoder's feature maps.
"use strict";

(() => {
  const { el, $, api, showError } = CL;
  const errBox = () => $("#dense-error");
  let current = null; // {scene} or {file}

  async function run() {
    if (!current) return;
    showError(errBox(), null);
    const model = $("#dense-model").value;
    const threshold = $("#dense-threshold").value;
    try {
      let r;
      if (current.file) {
        const form = new FormData();
        form.append("image", current.file);
        form.append("model", model);
        form.append("score_threshold", threshold);
        r = await api("/api/dense/run", form);
      } else {
        r = await api("/api/dense/run", { model, scene: current.scene, score_threshold: Number(threshold) });
      }
      show(r);
    } catch (e) { showError(errBox(), e); }
  }

  function show(r) {
    $("#dense-result").src = r.overlay;
    $("#dense-result").dataset.task = r.task;
    const list = $("#dense-detections");
    list.replaceChildren();
    if (r.task === "detect") {
      $("#dense-summary").textContent = `${r.detections.length} boxes on ${r.size[1]}×${r.size[0]} pixels`;
      for (const d of r.detections) {
        list.append(el("li", { class: "detection", text: `${d.class} ${d.score.toFixed(2)} at [${d.box.map((v) => v.toFixed(1)).join(", ")}]` }));
      }
    } else {
      const parts = Object.entries(r.pixels).map(([k, v]) => `${k}: ${v} px`);
      $("#dense-summary").textContent = `mask of ${r.size[1]}×${r.size[0]} pixels — ${parts.join(", ")}`;
    }
    const feats = $("#dense-features");
    feats.replaceChildren();
    for (const f of r.features) {
      const row = el("div", { class: "feature-row" }, el("h3", { text: `${f.name} (${f.shape.join("×")})` }));
      const maps = el("div", { class: "samples" });
      for (const m of f.maps) maps.append(el("img", { src: m, alt: f.name }));
      row.append(maps);
      feats.append(row);
    }
  }

  async function init() {
    try {
      const { models } = await api("/api/dense/models");
      const sel = $("#dense-model");
      if (!models.length) throw new Error("no segmentation or detection model is loaded: start the server with convlens serve --dense RUN_DIR");
      for (const m of models) sel.append(el("option", { value: m.name, text: `${m.name} — ${m.task}` }));
      sel.addEventListener("change", run);
      $("#dense-threshold").addEventListener("change", run);
      const { scenes } = await api("/api/dense/scenes?count=24");
      const box = $("#dense-scenes");
      for (const s of scenes) {
        const img = el("img", { src: s.image, alt: `test scene ${s.index}`, dataset: { index: s.index } });
        img.addEventListener("click", () => {
          box.querySelectorAll("img").forEach((i) => i.classList.remove("selected"));
          img.classList.add("selected");
          current = { scene: s.index };
          run();
        });
        box.append(img);
      }
      $("#dense-upload").addEventListener("change", (ev) => {
        const f = ev.target.files[0];
        if (f) { current = { file: f }; run(); }
      });
    } catch (e) { showError(errBox(), e); }
  }
  init();
})();
