"""One converter per ONNX operator: ``convert(ctx)`` reads ``ctx.node`` and adds convlens graph layers
(see `convlens.onnx.importer.Context`). Layers are torch.nn's classes with torch's arguments; ONNX's
defaults are spelled out where they differ from torch's (AveragePool's count_include_pad is 0 in
ONNX, True in torch; BatchNormalization's momentum is 1 − torch's; Gemm's alpha, beta and transB are
folded into the Linear weight)."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["CONVERTERS"]


def _spatial_pairs(ctx, d: int, in_shape, kernel, stride, dilation):
    """(before, after) padding per spatial axis from pads / auto_pad."""
    auto = ctx.attr("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pairs = []
        for size, k, s, dl in zip(in_shape[1:], kernel, stride, dilation):
            total = max((math.ceil(size / s) - 1) * s + dl * (k - 1) + 1 - size, 0)
            small = total // 2
            pairs.append((small, total - small) if auto == "SAME_UPPER" else (total - small, small))
        return pairs
    if auto == "VALID":
        return [(0, 0)] * d
    pads = ctx.attr("pads", [0] * 2 * d)
    return list(zip(pads[:d], pads[d:]))


def _torch_pad(pairs) -> list[int]:
    """[(before, after) per axis, first axis first] → torch's F.pad order (last axis first)."""
    out = []
    for lo, hi in reversed(pairs):
        out += [int(lo), int(hi)]
    return out


def _pre_pad(ctx, x, pairs, value: float = 0.0):
    """An explicit Pad layer for padding a layer cannot take itself (uneven before/after)."""
    return ("node", ctx.add("pad", [x], {"pad": _torch_pad(pairs), "mode": "constant", "value": value},
                            base=f"{ctx.base_name()}_pad", bind=False))


def _conv(ctx):
    x = ctx.inputs()[0]
    w = ctx.const(ctx.inputs()[1], "weight")
    d = w.ndim - 2
    in_shape = ctx.shape(x)
    group = int(ctx.attr("group", 1))
    kernel = list(ctx.attr("kernel_shape", list(w.shape[2:])))
    stride = list(ctx.attr("strides", [1] * d))
    dilation = list(ctx.attr("dilations", [1] * d))
    pairs = _spatial_pairs(ctx, d, in_shape, kernel, stride, dilation)
    src = x
    if any(lo != hi for lo, hi in pairs):
        src = _pre_pad(ctx, x, pairs)
        pairs = [(0, 0)] * d
    has_bias = ctx.has(2)
    args = {"in_channels": int(w.shape[1] * group), "out_channels": int(w.shape[0]), "kernel_size": kernel,
            "stride": stride, "padding": [lo for lo, _ in pairs], "dilation": dilation, "groups": group,
            "bias": has_bias}
    weights = {"weight": w}
    if has_bias:
        weights["bias"] = ctx.const(ctx.inputs()[2], "bias")
    ctx.add("module", [src], {"class": f"Conv{d}d", "args": args}, weights)


def _conv_transpose(ctx):
    x = ctx.inputs()[0]
    w = ctx.const(ctx.inputs()[1], "weight")
    d = w.ndim - 2
    group = int(ctx.attr("group", 1))
    kernel = list(ctx.attr("kernel_shape", list(w.shape[2:])))
    stride = list(ctx.attr("strides", [1] * d))
    dilation = list(ctx.attr("dilations", [1] * d))
    if ctx.attr("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise ctx.unsupported("ConvTranspose with auto_pad SAME_* is not supported (write explicit pads)")
    pads = ctx.attr("pads", [0] * 2 * d)
    if pads[:d] != pads[d:]:
        raise ctx.unsupported(f"ConvTranspose with uneven pads {pads} is not supported")
    out_pad = list(ctx.attr("output_padding", [0] * d))
    target = ctx.attr("output_shape")
    if target is not None:
        in_sp = ctx.shape(x)[1:]
        target = list(target)[-d:]
        out_pad = [t - ((i - 1) * s - 2 * p + dl * (k - 1) + 1)
                   for t, i, s, p, dl, k in zip(target, in_sp, stride, pads[:d], dilation, kernel)]
    args = {"in_channels": int(w.shape[0]), "out_channels": int(w.shape[1] * group), "kernel_size": kernel,
            "stride": stride, "padding": pads[:d], "output_padding": out_pad, "groups": group,
            "bias": ctx.has(2), "dilation": dilation}
    weights = {"weight": w}
    if ctx.has(2):
        weights["bias"] = ctx.const(ctx.inputs()[2], "bias")
    ctx.add("module", [x], {"class": f"ConvTranspose{d}d", "args": args}, weights)


def _batchnorm(ctx):
    x, scale, bias, mean, var = ctx.inputs()[:5]
    if ctx.attr("training_mode", 0):
        raise ctx.unsupported("BatchNormalization with training_mode=1 (batch statistics) is not supported")
    d = max(1, len(ctx.shape(x)) - 1)
    c = ctx.const(scale, "scale").shape[0]
    args = {"num_features": int(c), "eps": float(ctx.attr("epsilon", 1e-5)),
            "momentum": round(1.0 - float(ctx.attr("momentum", 0.9)), 7)}
    weights = {"weight": ctx.const(scale, "scale"), "bias": ctx.const(bias, "B"),
               "running_mean": ctx.const(mean, "mean"), "running_var": ctx.const(var, "var")}
    ctx.add("module", [x], {"class": f"BatchNorm{d}d", "args": args}, weights)


def _act(cls, **fixed):
    def convert(ctx):
        args = {k: (v(ctx) if callable(v) else v) for k, v in fixed.items()}
        ctx.add("module", [ctx.inputs()[0]], {"class": cls, "args": args})
    return convert


def _hardsigmoid(ctx):
    alpha, beta = float(ctx.attr("alpha", 0.2)), float(ctx.attr("beta", 0.5))
    if not (abs(alpha - 1 / 6) < 1e-6 and abs(beta - 0.5) < 1e-6):
        raise ctx.unsupported(f"HardSigmoid with alpha={alpha:g}, beta={beta:g}: convlens's Hardsigmoid is "
                              "torch's, alpha=1/6, beta=0.5")
    _act("Hardsigmoid")(ctx)


def _selu(ctx):
    alpha, gamma = float(ctx.attr("alpha", 1.67326319217681884765625)), float(ctx.attr("gamma", 1.05070102214813232421875))
    if abs(alpha - 1.6732632) > 1e-5 or abs(gamma - 1.0507010) > 1e-5:
        raise ctx.unsupported(f"Selu with alpha={alpha:g}, gamma={gamma:g} (only the standard constants)")
    _act("SELU")(ctx)


def _gelu(ctx):
    from convlens import nn

    approx = ctx.attr("approximate", "none")
    if hasattr(nn, "GELU"):
        _act("GELU", approximate=approx)(ctx)
        return
    if approx != "none":
        raise ctx.unsupported(f"Gelu with approximate={approx!r} needs convlens's nn.GELU")
    # 0.5·x·(1 + erf(x/√2)) from graph layers
    x, out = ctx.inputs()[0], ctx.node.output[0]
    ctx.consts[f"{out}__sqrt2"] = np.asarray(math.sqrt(2.0), np.float32)
    ctx.consts[f"{out}__one"] = np.asarray(1.0, np.float32)
    ctx.consts[f"{out}__half"] = np.asarray(0.5, np.float32)
    base = ctx.base_name()
    scaled = ctx.add("div", [x, f"{out}__sqrt2"], {}, base=f"{base}_div", bind=False)
    erf = ctx.add("erf", [("node", scaled)], {}, base=f"{base}_erf", bind=False)
    plus = ctx.add("add", [("node", erf), f"{out}__one"], {}, base=f"{base}_add", bind=False)
    half = ctx.add("mul", [x, f"{out}__half"], {}, base=f"{base}_half", bind=False)
    ctx.add("mul", [("node", half), ("node", plus)], {})


def _prelu(ctx):
    x, slope = ctx.inputs()[:2]
    s = ctx.const(slope, "slope").astype(np.float32)
    if s.size != 1 and s.size != ctx.shape(x)[0]:
        raise ctx.unsupported(f"PRelu with a slope of shape {s.shape}: convlens's PReLU has one slope or one per channel")
    ctx.add("module", [x], {"class": "PReLU", "args": {"num_parameters": int(s.size)}}, {"weight": s.reshape(-1)})


def _scalar(a) -> float:
    return float(np.asarray(a).reshape(-1)[0])


def _clip(ctx):
    x = ctx.inputs()[0]
    if ctx.opset >= 11:
        lo = _scalar(ctx.const(ctx.inputs()[1], "min")) if ctx.has(1) else -math.inf
        hi = _scalar(ctx.const(ctx.inputs()[2], "max")) if ctx.has(2) else math.inf
    else:
        lo, hi = float(ctx.attr("min", -math.inf)), float(ctx.attr("max", math.inf))
    if lo == 0 and hi == 6:
        ctx.add("module", [x], {"class": "ReLU6", "args": {}})
    elif lo == 0 and hi == math.inf:
        ctx.add("module", [x], {"class": "ReLU", "args": {}})
    elif math.isfinite(lo) and math.isfinite(hi):
        ctx.add("module", [x], {"class": "Hardtanh", "args": {"min_val": lo, "max_val": hi}})
    else:
        raise ctx.unsupported(f"Clip to [{lo}, {hi}] (convlens has ReLU, ReLU6 and Hardtanh)")


def _softmax(cls):
    def convert(ctx):
        x = ctx.inputs()[0]
        rank = len(ctx.shape(x)) + 1
        axis = int(ctx.attr("axis", -1 if ctx.opset >= 13 else 1))
        if ctx.opset < 13 and axis % rank != rank - 1 and rank > 2:
            raise ctx.unsupported(f"{ctx.node.op_type} before opset 13 with axis {axis} flattens the input; "
                                  "only the last axis is supported")
        ctx.add("module", [x], {"class": cls, "args": {"dim": axis % rank}})
    return convert


def _pool_common(ctx, d, in_shape):
    kernel = list(ctx.attr("kernel_shape"))
    stride = list(ctx.attr("strides", [1] * d))
    dilation = list(ctx.attr("dilations", [1] * d))
    pairs = _spatial_pairs(ctx, d, in_shape, kernel, stride, dilation)
    return kernel, stride, dilation, pairs


def _maxpool(ctx):
    x = ctx.inputs()[0]
    in_shape = ctx.shape(x)
    d = len(in_shape) - 1
    if len(ctx.node.output) > 1 and ctx.node.output[1]:
        raise ctx.unsupported("MaxPool's Indices output is not supported")
    kernel, stride, dilation, pairs = _pool_common(ctx, d, in_shape)
    src = x
    if any(lo != hi or 2 * lo > k for (lo, hi), k in zip(pairs, kernel)):
        src = _pre_pad(ctx, x, pairs, value=-math.inf)
        pairs = [(0, 0)] * d
    args = {"kernel_size": kernel, "stride": stride, "padding": [lo for lo, _ in pairs], "dilation": dilation,
            "ceil_mode": bool(ctx.attr("ceil_mode", 0))}
    ctx.add("module", [src], {"class": f"MaxPool{d}d", "args": args})


def _avgpool(ctx):
    x = ctx.inputs()[0]
    in_shape = ctx.shape(x)
    d = len(in_shape) - 1
    kernel, stride, _, pairs = _pool_common(ctx, d, in_shape)
    include = bool(ctx.attr("count_include_pad", 0))
    src = x
    if any(lo != hi or 2 * lo > k for (lo, hi), k in zip(pairs, kernel)):
        if not include and any(lo or hi for lo, hi in pairs):
            raise ctx.unsupported(f"AveragePool with uneven pads {[p for pr in pairs for p in pr]} and "
                                  "count_include_pad=0 is not supported")
        src = _pre_pad(ctx, x, pairs)
        pairs = [(0, 0)] * d
    args = {"kernel_size": kernel, "stride": stride, "padding": [lo for lo, _ in pairs],
            "ceil_mode": bool(ctx.attr("ceil_mode", 0)), "count_include_pad": include}
    ctx.add("module", [src], {"class": f"AvgPool{d}d", "args": args})


def _global(kind):
    def convert(ctx):
        x = ctx.inputs()[0]
        d = len(ctx.shape(x)) - 1
        ctx.add("module", [x], {"class": f"Adaptive{kind}Pool{d}d", "args": {"output_size": 1}})
    return convert


def _reduce(kind):
    """ReduceMean/ReduceMax over every spatial axis = global pooling (then a flatten without keepdims)."""
    def convert(ctx):
        x = ctx.inputs()[0]
        rank = len(ctx.shape(x)) + 1
        axes = ctx.attr("axes")
        if axes is None and ctx.has(1):
            axes = [int(a) for a in ctx.const(ctx.inputs()[1], "axes").reshape(-1)]
        if axes is None or sorted(a % rank for a in axes) != list(range(2, rank)):
            raise ctx.unsupported(f"{ctx.node.op_type} over axes {axes}: only over all spatial axes (global pooling)")
        keep = bool(ctx.attr("keepdims", 1))
        node = ctx.add("module", [x], {"class": f"Adaptive{kind}Pool{rank - 2}d", "args": {"output_size": 1}},
                       bind=keep)
        if not keep:
            ctx.add("reshape", [("node", node)], {"shape": [0, -1]})
    return convert


def _linear(ctx, x, w_t, bias):
    """y = x · w_t + bias as a Linear (weight = w_tᵀ)."""
    weights = {"weight": np.ascontiguousarray(w_t.T)}
    if bias is not None:
        weights["bias"] = bias
    args = {"in_features": int(w_t.shape[0]), "out_features": int(w_t.shape[1]), "bias": bias is not None}
    ctx.add("module", [x], {"class": "Linear", "args": args}, weights)


def _gemm(ctx):
    a, b = ctx.inputs()[:2]
    alpha, beta = float(ctx.attr("alpha", 1.0)), float(ctx.attr("beta", 1.0))
    if ctx.attr("transA", 0):
        raise ctx.unsupported("Gemm with transA=1 is not supported")
    if not ctx.is_const(b):
        if alpha != 1 or ctx.has(2) or ctx.attr("transB", 0):
            raise ctx.unsupported("Gemm of two computed inputs is supported only as a plain product")
        ctx.add("matmul", [a, b], {})
        return
    w = ctx.const(b, "B").astype(np.float32)
    w_t = (w.T if ctx.attr("transB", 0) else w) * np.float32(alpha)
    bias = None
    if ctx.has(2):
        c = ctx.const(ctx.inputs()[2], "C").astype(np.float32) * np.float32(beta)
        if c.size not in (1, w_t.shape[1]):
            raise ctx.unsupported(f"Gemm with C of shape {c.shape}: convlens's Linear bias has one value per output")
        bias = np.broadcast_to(c.reshape(-1), (w_t.shape[1],)).copy()
    _linear(ctx, a, w_t, bias)


def _matmul(ctx):
    a, b = ctx.inputs()[:2]
    if ctx.is_const(b) and ctx.const(b).ndim == 2:
        _linear(ctx, a, ctx.const(b).astype(np.float32), None)
    else:
        ctx.add("matmul", [a, b], {})


_NUMPY_BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": None}


def _binary(op):
    def convert(ctx):
        a, b = ctx.inputs()[:2]
        if ctx.is_const(a) and ctx.is_const(b):  # folded at import (shape arithmetic, scalars)
            x, y = ctx.const(a), ctx.const(b)
            if op == "Div":
                out = x // y if x.dtype.kind in "iu" and y.dtype.kind in "iu" else x / y
            else:
                out = _NUMPY_BINARY[op](x, y)
            ctx.consts[ctx.node.output[0]] = np.asarray(out)
            return
        ctx.add(op.lower(), [a, b], {})
    return convert


def _neg(ctx):
    x = ctx.inputs()[0]
    if ctx.is_const(x):
        ctx.consts[ctx.node.output[0]] = -ctx.const(x)
        return
    minus = f"{ctx.node.output[0]}__minus_one"
    ctx.consts[minus] = np.asarray(-1.0, np.float32)
    ctx.add("mul", [x, minus], {})


def _concat(ctx):
    names = [n for n in ctx.inputs() if n]
    axis = int(ctx.attr("axis"))
    if all(ctx.is_const(n) for n in names):
        ctx.consts[ctx.node.output[0]] = np.concatenate([np.atleast_1d(ctx.const(n)) for n in names], axis)
        return
    rank = len(ctx.shape(next(n for n in names if not ctx.is_const(n)))) + 1
    if axis % rank == 0:
        raise ctx.unsupported("Concat along the batch axis is not supported")
    ctx.add("concat", names, {"dim": axis % rank})


def _flatten(ctx):
    x = ctx.inputs()[0]
    axis = int(ctx.attr("axis", 1))
    if ctx.is_const(x):
        a = ctx.const(x)
        ctx.consts[ctx.node.output[0]] = a.reshape(int(np.prod(a.shape[:axis])), -1)
        return
    rank = len(ctx.shape(x)) + 1
    if axis % rank != 1:
        raise ctx.unsupported(f"Flatten with axis={axis} merges the batch axis (only axis=1 is supported)")
    ctx.add("module", [x], {"class": "Flatten", "args": {}})


def _reshape(ctx):
    x, s = ctx.inputs()[:2]
    shape = [int(v) for v in ctx.const(s, "shape").reshape(-1)]
    if ctx.is_const(x):
        ctx.consts[ctx.node.output[0]] = ctx.const(x).reshape(shape)
        return
    if ctx.attr("allowzero", 0) and 0 in shape:
        raise ctx.unsupported("Reshape with allowzero=1 and a 0 in the shape is not supported")
    full_in = (0, *ctx.shape(x))
    if shape and shape[0] not in (0, -1):
        # a batch size written out (torch's legacy export of view(N, -1)): keep the axis free instead
        if -1 in shape[1:] or len(shape) < 2:
            raise ctx.unsupported(f"Reshape to {shape} fixes the batch size; convlens keeps the batch axis free")
        shape = [0, *shape[1:]]
    del full_in
    ctx.add("reshape", [x], {"shape": shape})


def _static_reshape(ctx, x, out_shape):
    ctx.add("reshape", [x], {"shape": [0, *[int(v) for v in out_shape]]})


def _axes(ctx, index: int):
    axes = ctx.attr("axes")
    if axes is None and ctx.has(index):
        axes = [int(v) for v in ctx.const(ctx.inputs()[index], "axes").reshape(-1)]
    return axes


def _unsqueeze(ctx):
    x = ctx.inputs()[0]
    axes = _axes(ctx, 1)
    if ctx.is_const(x):
        a = ctx.const(x)
        out_rank = a.ndim + len(axes)
        for ax in sorted(v % out_rank for v in axes):
            a = np.expand_dims(a, ax)
        ctx.consts[ctx.node.output[0]] = a
        return
    full = [0, *ctx.shape(x)]
    out_rank = len(full) + len(axes)
    norm = sorted(v % out_rank for v in axes)
    if 0 in norm:
        raise ctx.unsupported("Unsqueeze of the batch axis is not supported")
    for ax in norm:
        full.insert(ax, 1)
    _static_reshape(ctx, x, full[1:])


def _squeeze(ctx):
    x = ctx.inputs()[0]
    axes = _axes(ctx, 1)
    if ctx.is_const(x):
        a = ctx.const(x)
        ctx.consts[ctx.node.output[0]] = np.squeeze(a, tuple(axes) if axes is not None else None)
        return
    full = [None, *ctx.shape(x)]
    rank = len(full)
    drop = {a % rank for a in axes} if axes is not None else {i for i, s in enumerate(full) if s == 1}
    if 0 in drop:
        raise ctx.unsupported("Squeeze of the batch axis is not supported")
    _static_reshape(ctx, x, [s for i, s in enumerate(full) if i not in drop][1:])


def _shape(ctx):
    x = ctx.inputs()[0]
    if ctx.is_const(x):
        ctx.consts[ctx.node.output[0]] = np.asarray(ctx.const(x).shape, np.int64)
        return
    # the batch size is unknown until run time: 0, which Reshape reads as "keep this axis"
    full = np.asarray([0, *ctx.shape(x)], np.int64)
    start, end = ctx.attr("start", 0), ctx.attr("end", None)
    ctx.consts[ctx.node.output[0]] = full[start:end]


def _gather(ctx):
    data, idx = ctx.inputs()[:2]
    if not ctx.is_const(data):
        raise ctx.unsupported("Gather on a computed tensor is not supported (only on shapes and constants)")
    ctx.consts[ctx.node.output[0]] = np.take(ctx.const(data), ctx.const(idx, "indices"), axis=int(ctx.attr("axis", 0)))


def _slice(ctx):
    x = ctx.inputs()[0]
    if ctx.opset >= 10:
        starts = [int(v) for v in ctx.const(ctx.inputs()[1], "starts").reshape(-1)]
        ends = [int(v) for v in ctx.const(ctx.inputs()[2], "ends").reshape(-1)]
        axes = [int(v) for v in ctx.const(ctx.inputs()[3]).reshape(-1)] if ctx.has(3) else list(range(len(starts)))
        steps = [int(v) for v in ctx.const(ctx.inputs()[4]).reshape(-1)] if ctx.has(4) else [1] * len(starts)
    else:
        starts, ends = ctx.attr("starts"), ctx.attr("ends")
        axes = ctx.attr("axes", list(range(len(starts))))
        steps = [1] * len(starts)
    clamp = [max(min(v, 2**62), -2**62) for v in ends]
    if ctx.is_const(x):
        a = ctx.const(x)
        index = [slice(None)] * a.ndim
        for ax, s, e, st in zip(axes, starts, clamp, steps):
            index[ax] = slice(s, e, st)
        ctx.consts[ctx.node.output[0]] = a[tuple(index)]
        return
    rank = len(ctx.shape(x)) + 1
    axes = [a % rank for a in axes]
    if 0 in axes:
        raise ctx.unsupported("Slice of the batch axis is not supported")
    ctx.add("slice", [x], {"starts": starts, "ends": clamp, "axes": axes, "steps": steps})


def _cast(ctx):
    from onnx import helper

    x = ctx.inputs()[0]
    to = helper.tensor_dtype_to_np_dtype(int(ctx.attr("to")))
    if ctx.is_const(x):
        ctx.consts[ctx.node.output[0]] = ctx.const(x).astype(to)
    elif np.dtype(to).kind == "f":
        ctx.alias(ctx.node.output[0], x)  # convlens computes in float32 throughout
    else:
        raise ctx.unsupported(f"Cast of a computed tensor to {np.dtype(to)} is not supported")


def _constant(ctx):
    value = ctx.attr("value")
    if value is None:
        for key in ("value_float", "value_floats", "value_int", "value_ints"):
            v = ctx.attr(key)
            if v is not None:
                value = np.asarray(v, np.float32 if "float" in key else np.int64)
                break
    if value is None:
        raise ctx.unsupported("Constant without a value, value_float(s) or value_int(s) attribute")
    ctx.consts[ctx.node.output[0]] = np.asarray(value)


def _constant_of_shape(ctx):
    value = ctx.attr("value")
    fill = np.asarray(value).reshape(-1)[0] if value is not None else np.float32(0)
    ctx.consts[ctx.node.output[0]] = np.full([int(v) for v in ctx.const(ctx.inputs()[0], "shape")], fill)


def _identity(ctx):
    ctx.alias(ctx.node.output[0], ctx.inputs()[0])


def _dropout(ctx):
    if len(ctx.node.output) > 1 and ctx.node.output[1]:
        raise ctx.unsupported("Dropout's mask output is not supported")
    ratio = _scalar(ctx.const(ctx.inputs()[1], "ratio")) if ctx.has(1) else float(ctx.attr("ratio", 0.5))
    ctx.add("module", [ctx.inputs()[0]], {"class": "Dropout", "args": {"p": ratio}})


def _pad(ctx):
    x = ctx.inputs()[0]
    rank = len(ctx.shape(x)) + 1
    if ctx.opset >= 11:
        pads = [int(v) for v in ctx.const(ctx.inputs()[1], "pads").reshape(-1)]
        value = _scalar(ctx.const(ctx.inputs()[2], "constant_value")) if ctx.has(2) else 0.0
        axes = [int(v) % rank for v in ctx.const(ctx.inputs()[3], "axes").reshape(-1)] if ctx.has(3) else list(range(rank))
    else:
        pads, value, axes = list(ctx.attr("pads")), float(ctx.attr("value", 0.0)), list(range(rank))
    mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}.get(ctx.attr("mode", "constant"))
    if mode is None:
        raise ctx.unsupported(f"Pad mode {ctx.attr('mode')!r}")
    n = len(axes)
    per_axis = {a: (pads[i], pads[i + n]) for i, a in enumerate(axes)}
    if any(v < 0 for v in pads):
        raise ctx.unsupported(f"Pad with negative pads {pads} (cropping) is not supported")
    if per_axis.get(0, (0, 0)) != (0, 0):
        raise ctx.unsupported("Pad of the batch axis is not supported")
    first = min([a for a in range(1, rank) if per_axis.get(a, (0, 0)) != (0, 0)], default=rank - 1)
    pairs = [per_axis.get(a, (0, 0)) for a in range(first, rank)]
    ctx.add("pad", [x], {"pad": _torch_pad(pairs), "mode": mode, "value": value})


def _resize(ctx):
    """Resize → Upsample where the two agree: nearest (asymmetric, floor) as torch's "nearest"; linear
    and cubic (a = −0.75) with half_pixel / pytorch_half_pixel or align_corners coordinates."""
    x = ctx.inputs()[0]
    shape = ctx.shape(x)
    d = len(shape) - 1
    mode = ctx.attr("mode", "nearest")
    ctm = ctx.attr("coordinate_transformation_mode", "half_pixel")
    if ctx.opset < 11:
        raise ctx.unsupported("Resize before opset 11 is not supported")
    if ctx.has(3):
        sizes = [int(v) for v in ctx.const(ctx.inputs()[3], "sizes").reshape(-1)][-d:]
    elif ctx.has(2):
        scales = [float(v) for v in ctx.const(ctx.inputs()[2], "scales").reshape(-1)]
        if scales[:2] != [1.0, 1.0]:
            raise ctx.unsupported(f"Resize with scales {scales} changes the batch or channel axis")
        sizes = [int(math.floor(n * f)) for n, f in zip(shape[1:], scales[2:])]
    else:
        raise ctx.unsupported("Resize without scales or sizes")
    if mode == "nearest":
        if ctm != "asymmetric" or ctx.attr("nearest_mode", "round_prefer_floor") != "floor":
            raise ctx.unsupported(f"Resize nearest with {ctm} coordinates and nearest_mode="
                                  f"{ctx.attr('nearest_mode', 'round_prefer_floor')} (convlens's nearest is "
                                  "asymmetric + floor, as torch's)")
        args = {"size": sizes, "mode": "nearest"}
    elif mode in ("linear", "cubic"):
        if ctm not in ("half_pixel", "pytorch_half_pixel", "align_corners"):
            raise ctx.unsupported(f"Resize {mode} with {ctm} coordinates is not supported")
        if mode == "cubic" and abs(float(ctx.attr("cubic_coeff_a", -0.75)) + 0.75) > 1e-6:
            raise ctx.unsupported("Resize cubic with cubic_coeff_a other than −0.75 (torch's bicubic)")
        name = "bicubic" if mode == "cubic" else {1: "linear", 2: "bilinear", 3: "trilinear"}[d]
        args = {"size": sizes, "mode": name, "align_corners": ctm == "align_corners"}
    else:
        raise ctx.unsupported(f"Resize mode {mode!r}")
    ctx.add("module", [x], {"class": "Upsample", "args": args})


def _lrn(ctx):
    args = {"size": int(ctx.attr("size")), "alpha": float(ctx.attr("alpha", 1e-4)),
            "beta": float(ctx.attr("beta", 0.75)), "k": float(ctx.attr("bias", 1.0))}
    ctx.add("module", [ctx.inputs()[0]], {"class": "LocalResponseNorm", "args": args})


def _instancenorm(ctx):
    x, scale, bias = ctx.inputs()[:3]
    d = len(ctx.shape(x)) - 1
    c = ctx.const(scale, "scale").shape[0]
    ctx.add("module", [x], {"class": f"InstanceNorm{d}d", "args": {"num_features": int(c), "eps": float(ctx.attr("epsilon", 1e-5)),
                                                                  "affine": True}},
            {"weight": ctx.const(scale), "bias": ctx.const(bias, "B")})


def _layernorm(ctx):
    x = ctx.inputs()[0]
    rank = len(ctx.shape(x)) + 1
    axis = int(ctx.attr("axis", -1)) % rank
    if axis == 0:
        raise ctx.unsupported("LayerNormalization over the batch axis is not supported")
    shape = list(ctx.shape(x)[axis - 1:])
    scale = ctx.const(ctx.inputs()[1], "scale")
    weights = {"weight": np.broadcast_to(scale, shape).copy()}
    has_bias = ctx.has(2)
    if has_bias:
        weights["bias"] = np.broadcast_to(ctx.const(ctx.inputs()[2], "B"), shape).copy()
    ctx.add("module", [x], {"class": "LayerNorm", "args": {"normalized_shape": shape, "eps": float(ctx.attr("epsilon", 1e-5)),
                                                           "bias": has_bias}}, weights)


CONVERTERS = {
    "Conv": _conv, "ConvTranspose": _conv_transpose, "BatchNormalization": _batchnorm,
    "Relu": _act("ReLU"), "LeakyRelu": _act("LeakyReLU", negative_slope=lambda c: float(c.attr("alpha", 0.01))),
    "Sigmoid": _act("Sigmoid"), "Tanh": _act("Tanh"), "Gelu": _gelu,
    "Elu": _act("ELU", alpha=lambda c: float(c.attr("alpha", 1.0))), "Selu": _selu,
    "Celu": _act("CELU", alpha=lambda c: float(c.attr("alpha", 1.0))), "Softplus": _act("Softplus"),
    "Softsign": _act("Softsign"), "HardSigmoid": _hardsigmoid, "HardSwish": _act("Hardswish"), "PRelu": _prelu,
    "Clip": _clip, "Erf": lambda ctx: ctx.add("erf", [ctx.inputs()[0]], {}),
    "Softmax": _softmax("Softmax"), "LogSoftmax": _softmax("LogSoftmax"),
    "MaxPool": _maxpool, "AveragePool": _avgpool, "GlobalAveragePool": _global("Avg"),
    "GlobalMaxPool": _global("Max"), "ReduceMean": _reduce("Avg"), "ReduceMax": _reduce("Max"),
    "Gemm": _gemm, "MatMul": _matmul, "Add": _binary("Add"), "Sub": _binary("Sub"), "Mul": _binary("Mul"),
    "Div": _binary("Div"), "Neg": _neg, "Concat": _concat, "Flatten": _flatten, "Reshape": _reshape, "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze, "Shape": _shape, "Gather": _gather, "Slice": _slice, "Cast": _cast, "Pad": _pad,
    "Dropout": _dropout, "Identity": _identity, "Constant": _constant, "ConstantOfShape": _constant_of_shape,
    "Resize": _resize, "LRN": _lrn, "InstanceNormalization": _instancenorm, "LayerNormalization": _layernorm,
}
