// Convolution playground: one kernel over one grey image, any padding and stride, with the size formula.
"use strict";
(() => {
  const { el, $, api, showError, fmt, decode, drawMap } = CL;
  const errBox = $("#error");
  let kernels = {}, upload = null, timer = null, seq = 0;

  const rowsText = (k) => k.map((r) => r.map((v) => +v.toFixed(4)).join("  ")).join("\n");
  function parseNumbers(text) {
    const rows = text.trim().split(/\n+/).map((line) => line.trim().split(/[\s,;]+/).filter(Boolean).map(Number));
    if (!rows.length || rows.some((r) => r.length !== rows[0].length || r.some((v) => !Number.isFinite(v))))
      throw new Error("kernel numbers: rows of equal length, numbers separated by spaces or commas");
    return rows;
  }

  async function apply() {
    const mine = ++seq;
    showError(errBox, null);
    let kernel;
    try { kernel = $("#kernel").value === "custom" ? parseNumbers($("#numbers").value) : $("#kernel").value; } catch (e) { showError(errBox, e); return; }
    const settings = { kernel: typeof kernel === "string" ? kernel : JSON.stringify(kernel), padding: $("#padding").value,
      stride: $("#stride").value, padding_mode: $("#padding_mode").value };
    let body;
    if ($("#source").value === "upload") {
      if (!upload) { showError(errBox, new Error("choose an image file to upload")); return; }
      body = new FormData();
      body.append("image", upload);
      for (const [k, v] of Object.entries(settings)) body.append(k, v);
    } else body = { ...settings, sample: $("#source").value, kernel: typeof kernel === "string" ? kernel : kernel };
    let r;
    try { r = await api("/api/playground", body); } catch (e) { if (mine === seq) showError(errBox, e); return; }
    if (mine !== seq) return;  // a newer request is on its way
    show(r);
  }

  function show(r) {
    const [h, w] = r.input.shape, [oh, ow] = r.output_shape;
    const img = new Image();
    img.onload = () => {
      const cv = $("#in-map"), scale = 200 / Math.max(h, w);
      cv.width = w; cv.height = h; cv.style.width = w * scale + "px";
      cv.getContext("2d").drawImage(img, 0, 0);
    };
    img.src = r.input.image;
    $("#in-cap").textContent = `input ${h}×${w}` + (r.note ? ` (${r.note})` : "");
    const out = decode(r.output), relu = decode(r.relu);
    const scale = 200 / Math.max(oh, ow);
    drawMap($("#out-map"), out.data, 0, oh, ow, { cmap: "diverging", scale });
    drawMap($("#relu-map"), relu.data, 0, oh, ow, { cmap: "viridis", scale, min: 0, max: Math.max(relu.max, 1e-6) });
    $("#out-cap").textContent = `feature map ${oh}×${ow} (min ${fmt(out.min, 2)}, max ${fmt(out.max, 2)})`;
    const kv = $("#kernel-view");
    kv.style.gridTemplateColumns = `repeat(${r.kernel[0].length}, auto)`;
    kv.replaceChildren(...r.kernel.flat().map((v) => el("div", { text: fmt(v, 3) })));
    const F = `${r.kernel.length}×${r.kernel[0].length}`;
    $("#formula").replaceChildren(
      el("div", {}, "W₂ = (W₁ − F + 2P)/S + 1, with F = ", el("b", { text: F }), `, P = ${r.padding} (${r.padding_mode}), S = ${r.stride}`),
      el("div", {}, "height: ", el("b", { id: "formula-h", text: r.formula.height })),
      el("div", {}, "width:  ", el("b", { id: "formula-w", text: r.formula.width })),
      el("div", {}, "output: ", el("b", { id: "out-size", text: `${oh}×${ow}` })));
  }

  function later() { clearTimeout(timer); timer = setTimeout(apply, 150); }

  $("#kernel").addEventListener("change", () => {
    const k = $("#kernel").value;
    if (k !== "custom") $("#numbers").value = rowsText(kernels[k]);
    apply();
  });
  $("#numbers").addEventListener("input", () => { $("#kernel").value = "custom"; later(); });
  for (const id of ["padding", "stride", "padding_mode", "source"]) $("#" + id).addEventListener("change", apply);
  for (const id of ["padding", "stride"]) $("#" + id).addEventListener("input", later);
  $("#upload").addEventListener("change", (ev) => {
    upload = ev.target.files[0] || null;
    if (upload) { $("#source").value = "upload"; apply(); }
  });

  (async () => {
    try {
      kernels = (await api("/api/playground/kernels")).kernels;
      $("#kernel").replaceChildren(...Object.keys(kernels).map((k) => el("option", { value: k, text: k })),
        el("option", { value: "custom", text: "custom numbers" }));
      $("#kernel").value = "sobel-x";
      $("#numbers").value = rowsText(kernels["sobel-x"]);
      apply();
    } catch (e) { showError(errBox, e); }
  })();
})();
