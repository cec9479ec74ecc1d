// The Search page: a query image and its nearest training images at a chosen layer (convlens.web.search).
"use strict";

(() => {
  const { el, $, api, showError, fmt, pct, thousands } = CL;
  let query = null;          // {sample: i} or {file: File}
  let busy = false, again = false;

  async function init() {
    try {
      const info = await api("/api/search/layers");
      const select = $("#layer");
      for (const name of info.layers) select.append(el("option", { value: name, text: name, selected: name === info.default }));
      $("#result-note").textContent = `${thousands(info.database)} training images of ${info.dataset}` +
        (info.database < info.database_total ? ` (the first of ${thousands(info.database_total)})` : "");
      await loadSamples();
    } catch (e) { showError($("#error"), e); }
    $("#layer").addEventListener("change", run);
    $("#k").addEventListener("change", run);
    $("#upload").addEventListener("change", (ev) => {
      const f = ev.target.files[0];
      if (!f) return;
      document.querySelectorAll("#samples img").forEach((im) => im.classList.remove("selected"));
      query = { file: f };
      run();
    });
  }

  async function loadSamples() {
    const data = await api("/api/samples?count=48");
    const box = $("#samples");
    box.replaceChildren();
    for (const s of data.samples) {
      box.append(el("img", { src: s.image, title: `test image ${s.index}: ${s.label}`, alt: `test ${s.index}`,
        dataset: { index: s.index },
        onclick: (ev) => {
          document.querySelectorAll("#samples img").forEach((im) => im.classList.remove("selected"));
          ev.target.classList.add("selected");
          query = { sample: s.index };
          run();
        } }));
    }
    $("#samples-note").textContent = data.message || `${data.samples.length} of ${thousands(data.total)} test images of ${data.dataset}`;
  }

  async function run() {
    if (!query) return;
    if (busy) { again = true; return; }
    busy = true;
    showError($("#error"), null);
    $("#neighbours").classList.add("loading");
    try {
      let body;
      const fields = { layer: $("#layer").value, k: Number($("#k").value) };
      if (query.file) {
        body = new FormData();
        body.append("image", query.file);
        for (const [k, v] of Object.entries(fields)) body.append(k, String(v));
      } else body = { ...fields, sample: query.sample };
      show(await api("/api/search", body));
    } catch (e) { showError($("#error"), e); }
    finally {
      busy = false;
      $("#neighbours").classList.remove("loading");
      if (again) { again = false; run(); }
    }
  }

  function show(r) {
    $("#query").src = r.query.image;
    const kv = [["layer", `${r.layer} (${thousands(r.dim)} features)`], ["label", r.query.label || "– (uploaded)"],
                ["same label in top " + r.neighbours.length, r.precision === null ? "–" : pct(r.precision)],
                ["search", `${fmt(1000 * r.search_seconds, 1)} ms`]];
    $("#query-kv").replaceChildren(...kv.flatMap(([k, v]) => [el("span", { class: "k", text: k }), el("b", { text: v })]));
    const grid = $("#neighbours");
    grid.replaceChildren(...r.neighbours.map((n) => {
      const cls = r.query.label === null ? "" : (n.label === r.query.label ? "same" : "other");
      return el("figure", { class: `neighbour ${cls}`, dataset: { label: n.label, index: n.index } },
        el("img", { src: n.image, alt: `training image ${n.index}` }),
        el("figcaption", {}, el("b", { text: `${n.rank}. ${n.label}` }), el("span", { text: `d ${fmt(n.distance, 3)}` })));
    }));
  }

  init();
})();
