"""Layer-by-layer explanations: every layer's output for one image, and the arithmetic behind one pixel.

`trace` runs the model once with forward hooks on every layer that `convlens.summary.summary_rows` lists
and keeps each layer's input and output. From a trace:

- `overview` lists the layers with their output shapes, parameter counts (summary_rows) and, for conv
  and pooling layers, the output-size formula W₂ = (W₁ − F + 2P)/S + 1 with the numbers filled in;
- `explain_conv` recomputes one output value of a convolution as the course writes it: the receptive
  field of every input channel (after padding), the kernel, their element-wise products, the sum, the
  bias, and the activation that follows; next to it the value the engine computed;
- `explain_pool` does the same for a max/average/weighted-average pooling window;
- `logits` gives the last layer's outputs, their softmax and the predicted class.

The sums are taken in float64 from the float32 values the engine used, so they equal the engine's
float32 result to about 1e-7 relative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["LayerTrace", "trace", "overview", "explain_conv", "explain_pool", "explain_fc", "receptive_field",
           "shift_demo", "logits", "softmax",
           "layer_kind"]

_NP_PAD = {"zeros": "constant", "replicate": "edge", "reflect": "reflect", "circular": "wrap"}
_ACTIVATIONS = {"ReLU", "Tanh", "Sigmoid", "LeakyReLU", "ELU", "GELU", "Softplus", "Identity"}


@dataclass
class LayerTrace:
    name: str  # the summary's display name (conv1, conv1_relu, ...)
    module_name: str  # the qualified module name in the model
    type: str
    module: object
    input: np.ndarray  # the layer's first input for the one image, without the batch axis
    output: np.ndarray  # its output, without the batch axis
    params: int


def layer_kind(module) -> str:
    """conv | pool | act | fc | flatten | norm | other (what the page can draw and explain)."""
    from convlens.nn.modules.conv import _ConvNd
    from convlens.nn.modules.pooling import _AvgPoolNd, _MaxPoolNd, _WeightedAvgPoolNd

    name = type(module).__name__
    if isinstance(module, _ConvNd):
        return "conv"
    if isinstance(module, _MaxPoolNd | _AvgPoolNd | _WeightedAvgPoolNd):
        return "pool"
    if name in _ACTIVATIONS:
        return "act"
    if name == "Linear":
        return "fc"
    if name == "Flatten":
        return "flatten"
    if "Norm" in name:
        return "norm"
    return "other"


def trace(model, x: np.ndarray, input_shape=None) -> list[LayerTrace]:
    """Run ``model`` (eval mode, no gradients) on one image ``x`` (1, C, H, W) and record every layer."""
    from convlens.autograd import no_grad
    from convlens.summary import summary_rows
    from convlens.tensor import Tensor

    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    rows = summary_rows(model, tuple(input_shape or x.shape[1:]))["rows"]
    modules = dict(model.named_modules())
    seen: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    handles = []
    for row in rows:
        module = modules[row["module"]]

        def hook(mod, inputs, output, key=row["module"]):
            seen[key] = (np.array(inputs[0]._data[0]), np.array(output._data[0]))

        handles.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            model(Tensor._wrap(np.ascontiguousarray(x)))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    out = []
    for row in rows:
        if row["module"] not in seen:  # a listed module the forward never called
            continue
        inp, outp = seen[row["module"]]
        out.append(LayerTrace(row["name"], row["module"], row["type"], modules[row["module"]], inp, outp,
                              int(row["params"])))
    return out


def _pairs(padding, n: int) -> list[tuple[int, int]]:
    pads = padding if isinstance(padding, tuple | list) else (padding,) * n
    return [tuple(p) if isinstance(p, tuple | list) else (int(p), int(p)) for p in pads]


def _geometry(module) -> dict:
    """kernel, stride, padding (before, after) per axis, dilation of a conv or pooling layer."""
    if layer_kind(module) == "conv":
        return {"kernel": tuple(module.kernel_size), "stride": tuple(module.stride),
                "padding": _pairs(module._padding_pairs(), len(module.kernel_size)),
                "dilation": tuple(module.dilation)}
    n = len(module._kernel)
    return {"kernel": tuple(module._kernel), "stride": tuple(module._stride),
            "padding": _pairs(module._padding, n), "dilation": tuple(module._dilation)}


def _formula(size: int, kernel: int, pad: tuple[int, int], stride: int, dilation: int, out: int) -> str:
    f = dilation * (kernel - 1) + 1
    p = f"2·{pad[0]}" if pad[0] == pad[1] else f"{pad[0]}+{pad[1]}"
    exact = (size - f + pad[0] + pad[1]) / stride + 1
    note = "" if exact == out else f" (rounded down from {exact:.3g})"
    return f"({size} − {f} + {p})/{stride} + 1 = {out}{note}"


def overview(traces: list[LayerTrace], encode, max_channels: int = 64) -> list[dict]:
    """Per layer: name, type, kind, output shape, params, geometry and formula, and its output encoded
    with ``encode(array, max_channels)`` (maps (C, H, W) or a vector)."""
    out = []
    for t in traces:
        kind = layer_kind(t.module)
        entry = {"name": t.name, "module": t.module_name, "type": t.type, "kind": kind,
                 "output_shape": list(t.output.shape), "input_shape": list(t.input.shape), "params": t.params}
        if kind in ("conv", "pool") and t.output.ndim == 3:
            g = _geometry(t.module)
            entry["geometry"] = {k: [list(p) for p in v] if k == "padding" else list(v) for k, v in g.items()}
            entry["formula"] = [
                _formula(t.input.shape[1 + a], g["kernel"][a], g["padding"][a], g["stride"][a], g["dilation"][a],
                         t.output.shape[1 + a]) for a in range(2)]
            if kind == "conv":
                entry["kernel_shape"] = list(t.module.weight.shape)
                entry["padding_mode"] = t.module.padding_mode
            else:
                entry["pool"] = _pool_type(t.module)
        entry["explainable"] = (kind in ("conv", "pool") and t.output.ndim == 3) or kind == "fc"
        entry["values"] = encode(t.output, max_channels)
        out.append(entry)
    return out


def _pool_type(module) -> str:
    name = type(module).__name__
    return "max" if name.startswith("Max") else "weighted" if name.startswith("Weighted") else "avg"


def _find(traces: list[LayerTrace], layer: str) -> tuple[int, LayerTrace]:
    for i, t in enumerate(traces):
        if layer in (t.name, t.module_name):
            return i, t
    raise ValueError(f"unknown layer {layer!r}: expected one of {', '.join(t.name for t in traces)}")


def _position(t: LayerTrace, channel, y, x) -> tuple[int, int, int]:
    if t.output.ndim != 3:
        raise ValueError(f"layer {t.name} ({t.type}) has output shape {tuple(t.output.shape)}, not feature maps "
                         "(C, H, W)")
    values = []
    for name, v, n in (("channel", channel, t.output.shape[0]), ("y", y, t.output.shape[1]),
                       ("x", x, t.output.shape[2])):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or not 0 <= v < n:
            raise ValueError(f"layer {t.name}: {name} must be an integer in 0..{n - 1}, got {v!r}")
        values.append(int(v))
    return tuple(values)


def _window(t: LayerTrace, channels, y: int, x: int, pad_mode: str, fill: float) -> tuple[np.ndarray, np.ndarray, list]:
    """The input values under output position (y, x) for ``channels``: (values, in_bounds mask, origin).
    ``origin`` is the input coordinate of the window's top-left cell (negative inside the padding)."""
    g = _geometry(t.module)
    (pt, pb), (pl, pr) = g["padding"]
    widths = ((0, 0), (pt, pb), (pl, pr))
    src = t.input[channels]
    if pad_mode == "constant":
        xp = np.pad(src, widths, mode="constant", constant_values=fill)
    else:
        xp = np.pad(src, widths, mode=pad_mode)
    mask = np.pad(np.ones(t.input.shape[1:], bool), widths[1:], mode="constant", constant_values=False)
    (kh, kw), (sh, sw), (dh, dw) = g["kernel"], g["stride"], g["dilation"]
    rows = slice(y * sh, y * sh + dh * (kh - 1) + 1, dh)
    cols = slice(x * sw, x * sw + dw * (kw - 1) + 1, dw)
    return xp[:, rows, cols], mask[rows, cols], [y * sh - pt, x * sw - pl]


def _activation_after(traces, i: int, t: LayerTrace, channel: int, y: int, x: int, value: float) -> dict | None:
    """The element-wise activation layer right after ``t`` (if any): its name and output at the spot."""
    if i + 1 >= len(traces):
        return None
    nxt = traces[i + 1]
    if layer_kind(nxt.module) != "act" or nxt.output.shape != t.output.shape:
        return None
    out = {"layer": nxt.name, "type": nxt.type, "engine": float(nxt.output[channel, y, x])}
    if nxt.type == "ReLU":
        out["value"] = max(0.0, value)  # ReLU(z) = max(0, z)
    elif nxt.type == "Tanh":
        out["value"] = math.tanh(value)
    elif nxt.type == "Sigmoid":
        out["value"] = 1 / (1 + math.exp(-value)) if value > -700 else 0.0
    return out


def explain_conv(traces: list[LayerTrace], layer: str, channel, y, x) -> dict:
    """How output (channel, y, x) of conv layer ``layer`` is computed:

        z = Σ_c Σ_i Σ_j  patch[c, i, j] · kernel[c, i, j]  +  bias          (a cross-correlation)

    Returns patch, kernel and products (lists of C rows of kh×kw), the per-channel sums, the sum, bias,
    value (sum + bias), the engine's value, the activation after it, and where the window lies."""
    i, t = _find(traces, layer)
    if layer_kind(t.module) != "conv" or t.output.ndim != 3:
        raise ValueError(f"layer {t.name} is a {t.type}, not a 2-d convolution; pick a Conv2d layer")
    channel, y, x = _position(t, channel, y, x)
    m = t.module
    per_group_in = m.in_channels // m.groups
    group = channel // (m.out_channels // m.groups)
    chans = list(range(group * per_group_in, (group + 1) * per_group_in))
    patch, mask, origin = _window(t, chans, y, x, _NP_PAD[m.padding_mode], 0.0)
    kernel = np.asarray(m.weight._data[channel])
    products = patch.astype(np.float64) * kernel.astype(np.float64)
    total = float(products.sum())
    bias = float(m.bias._data[channel]) if m.bias is not None else 0.0
    value = total + bias
    return {
        "layer": t.name, "type": t.type, "channel": channel, "y": y, "x": x,
        "input_layer": traces[i - 1].name if i > 0 else "input", "input_channels": chans,
        "origin": origin, "in_bounds": mask.tolist(), "padding_mode": m.padding_mode,
        "patch": patch.tolist(), "kernel": kernel.tolist(), "products": products.tolist(),
        "channel_sums": products.sum(axis=(1, 2)).tolist(), "sum": total, "bias": bias, "value": value,
        "engine": float(t.output[channel, y, x]), "activation": _activation_after(traces, i, t, channel, y, x, value),
        "receptive_field": receptive_field(traces, i, y, x),
    }


def explain_pool(traces: list[LayerTrace], layer: str, channel, y, x) -> dict:
    """How output (channel, y, x) of a pooling layer is computed: the window's values and max / mean /
    weighted mean (weights shown), next to the engine's value."""
    from convlens.nn.functional.pooling import gaussian_pool_weights

    i, t = _find(traces, layer)
    if layer_kind(t.module) != "pool" or t.output.ndim != 3:
        raise ValueError(f"layer {t.name} is a {t.type}, not a 2-d max/average pooling layer")
    channel, y, x = _position(t, channel, y, x)
    kind = _pool_type(t.module)
    fill = -np.inf if kind == "max" else 0.0  # padding never wins a max; it adds zeros to a mean
    window, mask, origin = _window(t, [channel], y, x, "constant", fill)
    w = window[0].astype(np.float64)
    out = {"layer": t.name, "type": t.type, "pool": kind, "channel": channel, "y": y, "x": x,
           "input_layer": traces[i - 1].name if i > 0 else "input", "origin": origin, "in_bounds": mask.tolist(),
           "window": np.where(np.isfinite(w), w, None).tolist(), "engine": float(t.output[channel, y, x])}
    if kind == "max":
        out["value"] = float(w.max())
        out["argmax"] = [int(v) for v in np.unravel_index(int(np.argmax(w)), w.shape)]
    elif kind == "avg":
        # the divisor: the cells inside the padded input (count_include_pad) or the real cells only
        g = _geometry(t.module)
        if t.module.count_include_pad:
            (pt, pb), (pl, pr) = g["padding"]
            rows = min(origin[0] + g["kernel"][0], t.input.shape[1] + pb) - origin[0]
            cols = min(origin[1] + g["kernel"][1], t.input.shape[2] + pr) - origin[1]
            divisor = int(rows * cols)
        else:
            divisor = int(mask.sum())
        out["divisor"] = divisor
        out["sum"] = float(w.sum())
        out["value"] = float(w.sum() / divisor)
    else:
        weights = (np.asarray(t.module.weights, np.float64) if t.module.weights is not None
                   else gaussian_pool_weights(tuple(t.module._kernel)))
        weights = weights / weights.sum()
        out["weights"] = weights.tolist()
        out["value"] = float((w * weights).sum())
    out["activation"] = _activation_after(traces, i, t, channel, y, x, out["value"])
    out["receptive_field"] = receptive_field(traces, i, y, x)
    return out


def softmax(z: np.ndarray) -> np.ndarray:
    """softmax(z)_k = exp(z_k − max z) / Σ_j exp(z_j − max z) (the shift avoids overflow), in float64."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def logits(traces: list[LayerTrace], classes: list[str]) -> dict:
    """The last layer's outputs as logits, their softmax and the predicted class."""
    z = traces[-1].output.reshape(-1)
    p = softmax(z)
    k = int(np.argmax(p))
    names = list(classes) if classes and len(classes) == z.size else [str(c) for c in range(z.size)]
    return {"layer": traces[-1].name, "logits": z.astype(np.float64).tolist(), "probabilities": p.tolist(),
            "classes": names, "predicted": k, "label": names[k]}


def _field(traces: list[LayerTrace], i: int, y: int, x: int) -> tuple[list[int], list[int]] | None:
    """The unclipped input rows and columns [first, last] output (y, x) of layer ``i`` depends on (None
    past a layer that mixes all positions)."""
    rows, cols = [y, y], [x, x]
    for t in reversed(traces[: i + 1]):
        kind = layer_kind(t.module)
        if kind in ("conv", "pool") and t.output.ndim == 3:
            g = _geometry(t.module)
            for a, span in enumerate((rows, cols)):
                k, s, (p, _), d = g["kernel"][a], g["stride"][a], g["padding"][a], g["dilation"][a]
                span[0], span[1] = span[0] * s - p, span[1] * s - p + d * (k - 1)
        elif t.output.ndim != 3 or t.output.shape[1:] != t.input.shape[1:]:
            return None  # a layer that mixes positions (flatten, fc): not a local field
    return rows, cols


def receptive_field(traces: list[LayerTrace], i: int, y: int, x: int) -> dict | None:
    """The input pixels that output (y, x) of layer ``i`` depends on: walking back through every conv
    and pooling layer, an output row range [a, b] comes from input rows [a·S − P, b·S − P + D·(F − 1)];
    element-wise layers keep it. ``rows`` / ``cols`` are clipped to the input, ``size`` is the
    unclipped field (F_total)."""
    f = _field(traces, i, y, x)
    if f is None:
        return None
    rows, cols = f
    h, w = traces[0].input.shape[1:]
    return {"rows": [max(0, rows[0]), min(h - 1, rows[1])], "cols": [max(0, cols[0]), min(w - 1, cols[1])],
            "size": [rows[1] - rows[0] + 1, cols[1] - cols[0] + 1]}


def explain_fc(traces: list[LayerTrace], layer: str, unit) -> dict:
    """How output ``unit`` of a fully connected layer is computed: z_j = Σ_i W[j, i]·x_i + b_j, a dot
    product of the layer's input vector with row j of the weight matrix, plus the bias. Returns the
    vectors (x, w, products) for drawing, the largest contributions, the sum, bias, value and the
    engine's value, and the activation or softmax after it."""
    i, t = _find(traces, layer)
    if layer_kind(t.module) != "fc":
        raise ValueError(f"layer {t.name} is a {t.type}, not a fully connected (Linear) layer")
    n_out = int(t.module.weight.shape[0])
    if isinstance(unit, bool) or not isinstance(unit, int | np.integer) or not 0 <= unit < n_out:
        raise ValueError(f"layer {t.name}: unit must be an integer in 0..{n_out - 1}, got {unit!r}")
    unit = int(unit)
    xv = np.asarray(t.input, np.float64).reshape(-1)
    w = np.asarray(t.module.weight._data[unit], np.float64)
    products = xv * w
    total = float(products.sum())
    bias = float(t.module.bias._data[unit]) if t.module.bias is not None else 0.0
    top = np.argsort(-np.abs(products))[:12]
    src = traces[i - 1] if i > 0 else None
    # the flattened index i of a (C, H, W) map is c·H·W + y·W + x
    src_shape = list(traces[i - 2].output.shape) if i > 1 and src is not None and layer_kind(src.module) == "flatten" \
        else list(t.input.shape)
    out = {"layer": t.name, "type": t.type, "unit": unit, "units": n_out, "inputs": int(xv.size),
           "input_layer": src.name if src is not None else "input", "input_shape": src_shape,
           "x": xv.tolist() if xv.size <= 4096 else None, "w": w.tolist() if w.size <= 4096 else None,
           "top": [{"index": int(k), "x": float(xv[k]), "w": float(w[k]), "product": float(products[k])} for k in top],
           "positive": float(products[products > 0].sum()), "negative": float(products[products < 0].sum()),
           "sum": total, "bias": bias, "value": total + bias, "engine": float(t.output.reshape(-1)[unit])}
    nxt = traces[i + 1] if i + 1 < len(traces) else None
    if nxt is not None and layer_kind(nxt.module) == "act" and nxt.output.shape == t.output.shape:
        v = out["value"]
        act = {"layer": nxt.name, "type": nxt.type, "engine": float(nxt.output.reshape(-1)[unit])}
        if nxt.type == "ReLU":
            act["value"] = max(0.0, v)
        elif nxt.type == "Tanh":
            act["value"] = math.tanh(v)
        out["activation"] = act
    else:
        out["activation"] = None
    return out


def _shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``a`` (C, H, W) moved by (dy, dx) cells, the cells that come in set to 0."""
    out = np.zeros_like(a)
    h, w = a.shape[1:]
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[:, yd, xd] = a[:, ys, xs]
    return out


def shift_demo(model, x: np.ndarray, shifted: np.ndarray, input_shape, dy: int, dx: int, classes, encode,
               max_channels: int = 4) -> dict:
    """Equivariance and invariance, measured: run the model on an image and on the image moved by
    (dy, dx) pixels. For every layer with feature maps, with S its total stride (the product of the
    strides so far), the maps of the moved image are compared

    - with the original maps moved by (dy/S, dx/S) cells, on the cells whose receptive field is inside
      the image both times (``compared``; none for layers whose field covers the whole image: then
      the error is None): a convolution is equivariant, F(T x) = T F(x), so this "moved-along error"
      is ~0 when S divides the shift;
    - with the original maps in place: the "in-place change" ‖F(T x) − F(x)‖ / ‖F(x)‖, which
      pooling makes smaller (invariance) and which is largest for the first conv layers.

    Returns per layer both numbers and a few maps of each image, and both predictions."""
    a, b = trace(model, x, input_shape), trace(model, shifted, input_shape)
    layers, stride = [], [1, 1]
    h0, w0 = a[0].input.shape[1:]
    for i, (ta, tb) in enumerate(zip(a, b, strict=True)):
        kind = layer_kind(ta.module)
        if kind in ("conv", "pool") and ta.output.ndim == 3:
            g = _geometry(ta.module)
            stride = [stride[k] * g["stride"][k] for k in range(2)]
        if ta.output.ndim != 3:
            continue
        fa, fb = ta.output.astype(np.float64), tb.output.astype(np.float64)
        sy, sx = dy / stride[0], dx / stride[1]
        iy, ix = round(sy), round(sx)
        moved = _shift(fa, iy, ix)
        h, w = fa.shape[1:]
        # compare only the cells whose receptive field lies inside the part of the moved image that
        # came from the original (no zeros shifted in, no padding): there F(T x) = T F(x) exactly
        ok_rows = [y for y in range(h) if (f := _field(a, i, y, 0)) and max(0, dy) <= f[0][0] and f[0][1] < h0 + min(0, dy)]
        ok_cols = [x for x in range(w) if (f := _field(a, i, 0, x)) and max(0, dx) <= f[1][0] and f[1][1] < w0 + min(0, dx)]
        norm = float(np.linalg.norm(fa)) or 1.0
        moved_error = None
        if ok_rows and ok_cols:
            inner = np.ix_(range(fa.shape[0]), ok_rows, ok_cols)
            denom = float(np.linalg.norm(fb[inner])) or float(np.linalg.norm(moved[inner])) or 1.0
            moved_error = float(np.linalg.norm(fb[inner] - moved[inner])) / denom
        layers.append({
            "name": ta.name, "type": ta.type, "kind": kind, "shape": list(ta.output.shape),
            "stride": list(stride), "map_shift": [sy, sx], "exact": sy == iy and sx == ix,
            "compared": [len(ok_rows), len(ok_cols)], "moved_error": moved_error,
            "in_place_change": float(np.linalg.norm(fb - fa)) / norm,
            "original": encode(ta.output, max_channels), "shifted": encode(tb.output, max_channels)})
    pa, pb = logits(a, classes), logits(b, classes)
    return {"dy": dy, "dx": dx, "layers": layers, "original": pa, "shifted": pb,
            "probability_change": float(np.abs(np.asarray(pa["probabilities"]) - np.asarray(pb["probabilities"])).sum() / 2)}
