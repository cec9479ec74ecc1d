// convlens web app: helpers shared by every page (no framework, no build step).
"use strict";

const CL = (() => {
  // ---- DOM ----
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c.nodeType ? c : String(c));
    return node;
  }
  const $ = (sel, root = document) => root.querySelector(sel);

  // ---- API ----
  async function api(path, body, opts = {}) {
    const init = { method: body === undefined ? (opts.method || "GET") : "POST", headers: {} };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    let res;
    try { res = await fetch(path, init); } catch (e) { throw new Error("the server cannot be reached (" + e.message + ")"); }
    let data = null;
    try { data = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok) throw new Error((data && data.error) || `${res.status} ${res.statusText}`);
    return data;
  }
  function showError(box, err) {
    if (!box) return;
    if (!err) { box.textContent = ""; box.classList.remove("show"); return; }
    box.textContent = err.message || String(err);
    box.classList.add("show");
  }

  // ---- numbers ----
  function decode(map) {
    // {"shape", "data": base64 float32 little-endian} → {shape, data: Float32Array}
    const bin = atob(map.data);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return { shape: map.shape, channels: map.channels, data: new Float32Array(bytes.buffer), min: map.min, max: map.max };
  }
  function fmt(v, digits = 3) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    if (!Number.isFinite(v)) return v > 0 ? "∞" : "−∞";
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
    return v.toFixed(digits).replace(/^-/, "−");
  }
  const pct = (v) => (v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%");
  const thousands = (n) => (n === null || n === undefined ? "–" : Math.round(n).toLocaleString("en-US"));

  // ---- colour maps ----
  const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const DIVERGING = [[33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130], [178, 24, 43]];
  function ramp(stops, t) {
    t = Math.min(1, Math.max(0, t)) * (stops.length - 1);
    const i = Math.min(stops.length - 2, Math.floor(t)), f = t - i, a = stops[i], b = stops[i + 1];
    return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
  }
  function colour(v, lo, hi, cmap) {
    if (!Number.isFinite(v)) return [128, 128, 128];
    if (cmap === "gray") { const t = hi > lo ? (v - lo) / (hi - lo) : 0; const g = 255 * Math.min(1, Math.max(0, t)); return [g, g, g]; }
    if (cmap === "diverging") { const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1; return ramp(DIVERGING, 0.5 + 0.5 * v / m); }
    return ramp(VIRIDIS, hi > lo ? (v - lo) / (hi - lo) : 0);
  }
  // 256-entry lookup tables, one per colour map: drawing a map is then one multiply-add and four byte
  // copies per cell (the Draw page redraws every layer on every stroke; per-cell colour() calls took
  // ~100 ms of main-thread time per update)
  const LUTS = {};
  function lut(cmap) {
    if (!LUTS[cmap]) {
      const t = new Uint8ClampedArray(256 * 4);
      for (let i = 0; i < 256; i++) {
        const c = cmap === "gray" ? [i, i, i] : ramp(cmap === "diverging" ? DIVERGING : VIRIDIS, i / 255);
        t[4 * i] = c[0]; t[4 * i + 1] = c[1]; t[4 * i + 2] = c[2]; t[4 * i + 3] = 255;
      }
      LUTS[cmap] = t;
    }
    return LUTS[cmap];
  }
  // Draw one h×w map (values data[offset..]) into a canvas at `scale` CSS pixels per cell. The canvas's
  // CSS width is set and its height follows the aspect ratio (so `max-width: 100%` can shrink it).
  function drawMap(canvas, data, offset, h, w, opts = {}) {
    const cmap = opts.cmap || "viridis";
    let lo = opts.min, hi = opts.max;
    if (lo === undefined || hi === undefined) {
      lo = Infinity; hi = -Infinity;
      for (let i = 0; i < h * w; i++) { const v = data[offset + i]; if (v < lo) lo = v; if (v > hi) hi = v; }
      if (!Number.isFinite(lo) || !Number.isFinite(hi)) { lo = 0; hi = 1; }
      if (cmap === "viridis" && lo > 0) lo = 0;
    }
    if (canvas.width !== w) canvas.width = w;
    if (canvas.height !== h) canvas.height = h;
    // a whole number of screen pixels per cell when it is large; else the map is drawn `size` pixels wide
    const fit = (opts.size || 64) / Math.max(h, w);
    const scale = opts.scale || (fit >= 3 ? Math.floor(fit) : fit);
    const cssW = w * scale + "px";
    if (canvas.style.width !== cssW) canvas.style.width = cssW;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(w, h), px = img.data, table = lut(cmap);
    let a, b;  // index = a·v + b, clamped to 0..255
    if (cmap === "diverging") { const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1; a = 127.5 / m; b = 127.5; }
    else { a = hi > lo ? 255 / (hi - lo) : 0; b = -lo * a; }
    for (let i = 0; i < h * w; i++) {
      const v = data[offset + i];
      let k = v === v ? (a * v + b) | 0 : 128;
      k = k < 0 ? 0 : k > 255 ? 255 : k;
      const j = 4 * i, t = 4 * k;
      px[j] = table[t]; px[j + 1] = table[t + 1]; px[j + 2] = table[t + 2]; px[j + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    return { lo, hi, scale };
  }
  // Kernels (K, C, kh, kw): one tile per filter, RGB when C = 3, else the first input channel.
  function drawKernels(container, map, size = 40) {
    const k = decode(map);
    const [K, C, kh, kw] = k.shape;
    container.replaceChildren();
    let m = 0;
    for (const v of k.data) m = Math.max(m, Math.abs(v));
    for (let f = 0; f < K; f++) {
      const cv = el("canvas", { class: "map", title: `filter ${f}` });
      if (C === 3) {
        cv.width = kw; cv.height = kh;
        const scale = Math.max(1, Math.floor(size / Math.max(kh, kw)));
        cv.style.width = kw * scale + "px";
        const ctx = cv.getContext("2d"), img = ctx.createImageData(kw, kh);
        for (let i = 0; i < kh * kw; i++) {
          for (let c = 0; c < 3; c++) img.data[4 * i + c] = 255 * (0.5 + 0.5 * k.data[((f * C + c) * kh * kw) + i] / (m || 1));
          img.data[4 * i + 3] = 255;
        }
        ctx.putImageData(img, 0, 0);
      } else {
        drawMap(cv, k.data, f * C * kh * kw, kh, kw, { cmap: "diverging", min: -m, max: m, size });
      }
      container.append(cv);
    }
  }
  // One layer's output: maps (C, H, W) as a grid of canvases, or a vector (F,) as one strip.
  function layerCanvases(map, opts = {}) {
    const v = decode(map);
    const out = [];
    if (v.shape.length === 3) {
      const [C, H, W] = v.shape;
      if (H === 1 && W === 1) {  // a 1×1 map per channel: show the channels as one strip
        const cv = el("canvas", { class: "map strip-map", title: `${v.channels} channels, 1×1 each` });
        drawMap(cv, v.data, 0, 1, C, { cmap: opts.cmap, scale: Math.max(2, Math.floor((opts.stripWidth || 240) / C)) });
        out.push(cv);
        return { canvases: out, vector: true, decoded: v };
      }
      let lo = Infinity, hi = -Infinity;
      if (opts.shared) { for (const x of v.data) { lo = Math.min(lo, x); hi = Math.max(hi, x); } if (opts.cmap !== "diverging" && lo > 0) lo = 0; }
      for (let c = 0; c < C; c++) {
        const cv = el("canvas", { class: "map", title: `channel ${c}`, dataset: { channel: c } });
        drawMap(cv, v.data, c * H * W, H, W, { cmap: opts.cmap, size: opts.size || 48, ...(opts.shared ? { min: lo, max: hi } : {}) });
        out.push(cv);
      }
      return { canvases: out, vector: false, decoded: v };
    }
    const n = v.data.length;
    const cv = el("canvas", { class: "map strip-map", title: `${n} values` });
    drawMap(cv, v.data, 0, 1, n, { cmap: opts.cmap, scale: Math.max(2, Math.floor((opts.stripWidth || 240) / n)) });
    return { canvases: [cv], vector: true, decoded: v };
  }

  // ---- a line chart on <canvas> ----
  class LineChart {
    constructor(canvas, { series, yLabel = "", xLabel = "", yMin = null, yMax = null, percent = false }) {
      Object.assign(this, { canvas, series, yLabel, xLabel, yMin, yMax, percent });
      this.data = series.map(() => []);
      new ResizeObserver(() => this.draw()).observe(canvas);
    }
    set(i, points) { this.data[i] = points; this.schedule(); }
    push(i, x, y) { if (y !== null && y !== undefined && Number.isFinite(y)) { this.data[i].push([x, y]); this.schedule(); } }
    clear() { this.data = this.series.map(() => []); this.schedule(); }
    schedule() { if (!this.pending) { this.pending = true; requestAnimationFrame(() => { this.pending = false; this.draw(); }); } }
    static tick(t) {  // 0.5, 2, 150, 2.5k, 1.2M, 3e+9: never more than ~5 characters
      const a = Math.abs(t);
      if (a >= 1e9) return t.toExponential(0);
      if (a >= 1e6) return +(t / 1e6).toPrecision(2) + "M";
      if (a >= 1e4) return +(t / 1e3).toPrecision(3) + "k";
      return String(+t.toPrecision(3));
    }
    static nice(lo, hi, n = 5) {
      const span = hi - lo || 1, step0 = span / n, mag = Math.pow(10, Math.floor(Math.log10(step0)));
      const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= step0) || 10 * mag;
      const ticks = [];
      for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9 * span; t += step) ticks.push(+t.toPrecision(12));
      return ticks;
    }
    draw() {
      const c = this.canvas, dpr = window.devicePixelRatio || 1;
      const W = c.clientWidth, H = c.clientHeight;
      if (!W || !H) return;
      c.width = W * dpr; c.height = H * dpr;
      const ctx = c.getContext("2d");
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, W, H);
      const all = this.data.flat().filter((p) => Number.isFinite(p[1]));
      let x0 = 0, x1 = 1, y0 = this.yMin, y1 = this.yMax;
      if (all.length) {
        x0 = Math.min(...all.map((p) => p[0])); x1 = Math.max(...all.map((p) => p[0]));
        if (x1 === x0) x1 = x0 + 1;
        if (y0 === null) y0 = Math.min(...all.map((p) => p[1]));
        if (y1 === null) y1 = Math.max(...all.map((p) => p[1]));
      }
      if (y0 === null) y0 = 0;
      if (y1 === null || y1 <= y0) y1 = y0 + 1;
      // the y range: a loss that explodes would squash the curve into a line at 0, so the top is
      // at most 4× the 95th percentile of the values (the spike runs off the top, clipped)
      if (this.yMax === null && all.length > 4) {
        const ys = all.map((p) => p[1]).sort((a, b) => a - b), p95 = ys[Math.floor(0.95 * (ys.length - 1))];
        if (p95 > 0 && y1 > 4 * p95) y1 = 4 * p95;
      }
      ctx.font = "11px system-ui, sans-serif";
      const ticks = LineChart.nice(y0, y1, 4), label = (t) => (this.percent ? `${Math.round(t * 100)}%` : LineChart.tick(t));
      const L = Math.max(34, 10 + Math.max(...ticks.map((t) => ctx.measureText(label(t)).width))), R = 12, B = 30;
      // the legend goes on a second line when it does not fit beside the title (a phone)
      ctx.font = "11.5px system-ui, sans-serif";
      const legendW = this.series.reduce((a, s) => a + ctx.measureText(s.name).width + 30, 0);
      ctx.font = "600 12px system-ui, sans-serif";
      const twoLines = ctx.measureText(this.yLabel).width + legendW + 16 > W - L - R;
      const T = twoLines ? 40 : 24, legendY = twoLines ? 31 : 15;
      ctx.font = "11px system-ui, sans-serif";
      const pw = W - L - R, ph = H - T - B;
      const sx = (x) => L + (pw * (x - x0)) / (x1 - x0), sy = (y) => T + ph - (ph * (y - y0)) / (y1 - y0);
      ctx.fillStyle = "#667085"; ctx.strokeStyle = "#e3e7ef"; ctx.lineWidth = 1;
      ctx.textAlign = "right"; ctx.textBaseline = "middle";
      for (const t of ticks) {
        ctx.beginPath(); ctx.moveTo(L, Math.round(sy(t)) + 0.5); ctx.lineTo(L + pw, Math.round(sy(t)) + 0.5); ctx.stroke();
        ctx.fillText(label(t), L - 6, sy(t));
      }
      ctx.textAlign = "center"; ctx.textBaseline = "top";
      for (const t of LineChart.nice(x0, x1, 5)) ctx.fillText(thousands(t), sx(t), T + ph + 6);
      ctx.strokeStyle = "#c4cad6"; ctx.strokeRect(L + 0.5, T + 0.5, pw, ph);
      ctx.textAlign = "left"; ctx.textBaseline = "alphabetic"; ctx.fillStyle = "#1c2333"; ctx.font = "600 12px system-ui, sans-serif";
      ctx.fillText(this.yLabel, L, 15);
      let lx = L + pw;
      ctx.textAlign = "right"; ctx.font = "11.5px system-ui, sans-serif";
      for (let i = this.series.length - 1; i >= 0; i--) {
        const s = this.series[i];
        ctx.fillStyle = "#1c2333"; ctx.fillText(s.name, lx, legendY); lx -= ctx.measureText(s.name).width + 6;
        ctx.fillStyle = s.color; ctx.fillRect(lx - 12, legendY - 6, 12, 3); lx -= 24;
      }
      ctx.save(); ctx.beginPath(); ctx.rect(L, T, pw, ph); ctx.clip();
      this.data.forEach((pts0, i) => {
        const pts = pts0.filter((p) => Number.isFinite(p[1]));
        if (!pts.length) return;
        const s = this.series[i];
        ctx.strokeStyle = s.color; ctx.fillStyle = s.color; ctx.lineWidth = s.width || 1.8;
        if (s.dots || pts.length === 1) {
          for (const p of pts) { ctx.beginPath(); ctx.arc(sx(p[0]), sy(p[1]), 3.2, 0, 2 * Math.PI); ctx.fill(); }
        }
        if (!s.dots || pts.length > 1) {
          ctx.beginPath(); pts.forEach((p, j) => (j ? ctx.lineTo(sx(p[0]), sy(p[1])) : ctx.moveTo(sx(p[0]), sy(p[1])))); ctx.stroke();
        }
      });
      ctx.restore();
      ctx.fillStyle = "#667085"; ctx.textAlign = "right"; ctx.font = "11px system-ui, sans-serif";
      if (this.xLabel) ctx.fillText(this.xLabel, L + pw, H - 2);
    }
  }

  // ---- probability bars ----
  function bars(container, classes, probs, opts = {}) {
    probs = probs.map((p) => (Number.isFinite(p) ? p : 0));
    const top = probs.indexOf(Math.max(...probs));
    container.classList.toggle("wide", classes.some((c) => c.length > 2));
    if (container.children.length !== classes.length) {
      container.replaceChildren(...classes.map((c) => el("div", { class: "bar" },
        el("span", { class: "lbl", text: c }), el("div", { class: "track" }, el("div", { class: "fill" })), el("span", { class: "val" }))));
    }
    [...container.children].forEach((row, i) => {
      const lbl = row.querySelector(".lbl");
      if (lbl.textContent !== classes[i]) lbl.textContent = classes[i];  // rows are reused: another model's classes
      row.classList.toggle("top", i === top);
      row.querySelector(".fill").style.width = (100 * probs[i]).toFixed(1) + "%";
      row.querySelector(".val").textContent = pct(probs[i]);
      row.dataset.prob = probs[i];
    });
    if (opts.onTop) opts.onTop(top);
  }

  // ---- the page frame ----
  async function refreshBadge() {
    const badge = $("header.top .model-badge");
    try {
      const m = await api("/api/model");
      CL.model = m;
      if (badge) {
        const acc = m.info && m.info.test_accuracy ? ` · test accuracy ${pct(m.info.test_accuracy)}` : "";
        badge.replaceChildren("model ", el("b", { text: m.label }), acc);
        badge.title = `${m.label} · input ${m.input_shape.join("×")}${acc}`;
      }
      document.dispatchEvent(new CustomEvent("cl-model", { detail: m }));
      return m;
    } catch (e) { if (badge) badge.textContent = "model unavailable"; return null; }
  }
  async function frame() {
    const path = location.pathname.replace(/\/$/, "") || "/";
    document.querySelectorAll("header.top nav a").forEach((a) => a.classList.toggle("active", a.getAttribute("href") === path));
    await refreshBadge();
  }
  document.addEventListener("DOMContentLoaded", frame);

  return { el, $, api, showError, decode, fmt, pct, thousands, drawMap, drawKernels, layerCanvases, LineChart, bars, colour,
    refreshBadge, lut };
})();
