"""convlens → ONNX: `export(model, example_input, path)` writes an ONNX model with the `onnx` package.

The model is walked, not traced: a Sequential is a chain, a `GraphModule` its nodes, and every layer
has one converter in `_CONVERTERS` that writes its ONNX nodes (opset 17). What is not a plain ONNX
operator becomes one that is:

- padding modes other than zeros: a ``Pad`` node before the convolution (reflect, edge; circular,
  which opset 17's Pad lacks, as two ``Slice``s and a ``Concat`` per axis);
- weighted-average pooling: a depthwise ``Conv`` with the fixed, normalised window weights, group = C;
- batch norm: its eval form, ``BatchNormalization`` with the running mean and variance;
- GELU, SiLU, Mish, LogSigmoid, GroupNorm (not operators before opset 18-20): their formulas;
- dropout: ``Identity`` (export is for inference).

The batch axis is dynamic (``N``); the other axes are the example input's. Layers whose output size
depends on the input size (adaptive pooling to a size other than 1) are exported for that size.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from convlens.onnx.errors import ONNXExportError

__all__ = ["export", "OPSET"]

OPSET = 17


class _Builder:
    """Collects nodes and initializers with unique names."""

    def __init__(self):
        self.nodes, self.inits, self._names = [], [], set()

    def fresh(self, base: str) -> str:
        base = base.replace(".", "_") or "v"
        name, k = base, 1
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def init(self, base: str, array) -> str:
        from onnx import numpy_helper

        a = np.asarray(getattr(array, "_data", array))
        if a.dtype.kind == "f":
            a = a.astype(np.float32)
        name = self.fresh(base)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(a), name))
        return name

    def ints(self, base: str, values) -> str:
        return self.init(base, np.asarray(list(values), np.int64))

    def node(self, op: str, inputs, base: str, **attrs) -> str:
        from onnx import helper

        out = self.fresh(base)
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=self.fresh(f"{base}/{op}"), **attrs))
        return out


def _t(v, n: int) -> list[int]:
    return [int(x) for x in (v if isinstance(v, list | tuple) else (v,) * n)]


def _pairs(padding, n: int) -> list[tuple[int, int]]:
    pads = padding if isinstance(padding, list | tuple) else (padding,) * n
    return [tuple(int(q) for q in p) if isinstance(p, list | tuple) else (int(p), int(p)) for p in pads]


def _onnx_pads(pairs) -> list[int]:
    return [lo for lo, _ in pairs] + [hi for _, hi in pairs]


def _pad(b: _Builder, x: str, pairs, mode: str, base: str, value: float = 0.0, rank: int | None = None) -> str:
    """Pad the spatial axes (the last len(pairs)) of x; mode zeros/constant, reflect, replicate, circular."""
    rank = rank if rank is not None else len(pairs) + 2
    lead = rank - len(pairs)
    if mode == "circular":  # x[..., -p:] ++ x ++ x[..., :p] per axis (Pad's "wrap" needs opset 19)
        for a, (lo, hi) in enumerate(pairs):
            axis = lead + a
            parts = []
            if lo:
                parts.append(b.node("Slice", [x, b.ints("start", [-lo]), b.ints("end", [2**62]), b.ints("axes", [axis])],
                                    f"{base}_wrap_lo"))
            parts.append(x)
            if hi:
                parts.append(b.node("Slice", [x, b.ints("start", [0]), b.ints("end", [hi]), b.ints("axes", [axis])],
                                    f"{base}_wrap_hi"))
            if len(parts) > 1:
                x = b.node("Concat", parts, f"{base}_wrap", axis=axis)
        return x
    onnx_mode = {"zeros": "constant", "constant": "constant", "reflect": "reflect", "replicate": "edge"}[mode]
    pads = b.ints(f"{base}_pads", [0] * lead + [lo for lo, _ in pairs] + [0] * lead + [hi for _, hi in pairs])
    inputs = [x, pads]
    if onnx_mode == "constant" and value != 0:
        inputs.append(b.init(f"{base}_value", np.asarray(value, np.float32)))
    return b.node("Pad", inputs, f"{base}_pad", mode=onnx_mode)


# ---- converters: (builder, module, input names, input shapes without batch, node name) → output name -----
def _conv(b, m, xs, shapes, name):
    d = len(m.kernel_size)
    x = xs[0]
    pairs = _pairs(m._padding_pairs(), d)
    if m.padding_mode != "zeros" and any(lo or hi for lo, hi in pairs):
        x = _pad(b, x, pairs, m.padding_mode, name)
        pairs = [(0, 0)] * d
    inputs = [x, b.init(f"{name}.weight", m.weight)] + ([b.init(f"{name}.bias", m.bias)] if m.bias is not None else [])
    return b.node("Conv", inputs, name, kernel_shape=list(m.kernel_size), strides=list(m.stride),
                  pads=_onnx_pads(pairs), dilations=list(m.dilation), group=m.groups)


def _conv_transpose(b, m, xs, shapes, name):
    d = len(m.kernel_size)
    if m.padding_mode != "zeros":
        raise ONNXExportError(f"layer {name!r} ({type(m).__name__}): padding_mode={m.padding_mode!r} has no ONNX form")
    inputs = [xs[0], b.init(f"{name}.weight", m.weight)] + ([b.init(f"{name}.bias", m.bias)] if m.bias is not None else [])
    return b.node("ConvTranspose", inputs, name, kernel_shape=list(m.kernel_size), strides=list(m.stride),
                  pads=_onnx_pads(_pairs(m.padding, d)), dilations=list(m.dilation), group=m.groups,
                  output_padding=list(m.output_padding))


def _linear(b, m, xs, shapes, name):
    if len(shapes[0]) == 1:
        inputs = [xs[0], b.init(f"{name}.weight", m.weight)]
        if m.bias is not None:
            inputs.append(b.init(f"{name}.bias", m.bias))
        return b.node("Gemm", inputs, name, transB=1)
    y = b.node("MatMul", [xs[0], b.init(f"{name}.weight_t", np.asarray(m.weight._data).T)], name)
    return b.node("Add", [y, b.init(f"{name}.bias", m.bias)], name) if m.bias is not None else y


def _batchnorm(b, m, xs, shapes, name):
    if m.running_mean is None:
        raise ONNXExportError(f"layer {name!r} ({type(m).__name__}): track_running_stats=False has no eval form "
                              "with fixed statistics")
    c = m.num_features
    scale = m.weight if m.weight is not None else np.ones(c, np.float32)
    shift = m.bias if m.bias is not None else np.zeros(c, np.float32)
    mom = m.momentum if m.momentum is not None else 0.1
    return b.node("BatchNormalization", [xs[0], b.init(f"{name}.weight", scale), b.init(f"{name}.bias", shift),
                                         b.init(f"{name}.running_mean", m.running_mean),
                                         b.init(f"{name}.running_var", m.running_var)],
                  name, epsilon=float(m.eps), momentum=float(1 - mom))


def _pool_attrs(m):
    n = len(m._kernel)
    attrs = dict(kernel_shape=list(m._kernel), strides=list(m._stride), pads=_onnx_pads(_pairs(m._padding, n)),
                 ceil_mode=int(bool(getattr(m, "ceil_mode", False))))
    return attrs


def _maxpool(b, m, xs, shapes, name):
    if getattr(m, "return_indices", False):
        raise ONNXExportError(f"layer {name!r}: MaxPool with return_indices=True is not exported")
    attrs = _pool_attrs(m)
    if any(d != 1 for d in m._dilation):
        attrs["dilations"] = list(m._dilation)
    return b.node("MaxPool", xs, name, **attrs)


def _avgpool(b, m, xs, shapes, name):
    if getattr(m, "divisor_override", None) is not None:
        raise ONNXExportError(f"layer {name!r}: AvgPool with divisor_override has no ONNX form")
    return b.node("AveragePool", xs, name, count_include_pad=int(m.count_include_pad), **_pool_attrs(m))


def _weighted_pool(b, m, xs, shapes, name):
    """Σ w_k x[window + k] with fixed weights (sum 1) = a depthwise convolution, one filter per channel."""
    from convlens.nn.functional.pooling import gaussian_pool_weights

    c, n = shapes[0][0], len(m._kernel)
    w = gaussian_pool_weights(m._kernel) if m.weights is None else np.asarray(m.weights, np.float64)
    w = (w / w.sum()).astype(np.float32)
    kernel = np.broadcast_to(w, (c, 1, *m._kernel))
    return b.node("Conv", [xs[0], b.init(f"{name}.weights", kernel)], name, kernel_shape=list(m._kernel),
                  strides=list(m._stride), pads=_onnx_pads(_pairs(m._padding, n)), group=c)


def _adaptive(b, m, xs, shapes, name):
    avg = "Avg" in type(m).__name__
    out = m.output_shape(shapes[0])[1:]
    spatial = shapes[0][1:]
    if all(o == 1 for o in out):
        return b.node("GlobalAveragePool" if avg else "GlobalMaxPool", xs, name)
    if any(s % o for s, o in zip(spatial, out)):
        raise ONNXExportError(f"layer {name!r} ({type(m).__name__}): output size {out} does not divide the input "
                              f"size {spatial}; ONNX has no adaptive pooling (export for an input size it divides)")
    k = [s // o for s, o in zip(spatial, out)]
    return b.node("AveragePool" if avg else "MaxPool", xs, name, kernel_shape=k, strides=k)


def _flatten(b, m, xs, shapes, name):
    rank = len(shapes[0]) + 1
    start, end = m.start_dim % rank, m.end_dim % rank
    if start == 1 and end == rank - 1:
        return b.node("Flatten", xs, name, axis=1)
    full = [0] + list(shapes[0])
    target = [0] * start + [-1] + full[end + 1:]
    return b.node("Reshape", [xs[0], b.ints(f"{name}_shape", target)], name)


def _unflatten(b, m, xs, shapes, name):
    target = [0] + list(m.output_shape(shapes[0]))
    return b.node("Reshape", [xs[0], b.ints(f"{name}_shape", target)], name)


def _simple(op, **fixed):
    def convert(b, m, xs, shapes, name):
        return b.node(op, xs, name, **{k: (v(m) if callable(v) else v) for k, v in fixed.items()})
    return convert


def _gelu(b, m, xs, shapes, name):
    x = xs[0]
    half = b.init(f"{name}_half", np.float32(0.5))
    one = b.init(f"{name}_one", np.float32(1.0))
    if getattr(m, "approximate", "none") == "tanh":  # 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
        x3 = b.node("Mul", [b.node("Mul", [x, x], name), x], name)
        inner = b.node("Add", [x, b.node("Mul", [x3, b.init(f"{name}_c", np.float32(0.044715))], name)], name)
        t = b.node("Tanh", [b.node("Mul", [inner, b.init(f"{name}_k", np.float32(math.sqrt(2 / math.pi)))], name)], name)
    else:  # 0.5·x·(1 + erf(x/√2))
        t = b.node("Erf", [b.node("Div", [x, b.init(f"{name}_sqrt2", np.float32(math.sqrt(2)))], name)], name)
    return b.node("Mul", [b.node("Mul", [x, half], name), b.node("Add", [t, one], name)], name)


def _silu(b, m, xs, shapes, name):
    return b.node("Mul", [xs[0], b.node("Sigmoid", xs, name)], name)


def _mish(b, m, xs, shapes, name):
    return b.node("Mul", [xs[0], b.node("Tanh", [b.node("Softplus", xs, name)], name)], name)


def _logsigmoid(b, m, xs, shapes, name):
    return b.node("Neg", [b.node("Softplus", [b.node("Neg", xs, name)], name)], name)


def _softplus(b, m, xs, shapes, name):
    if m.beta == 1:
        return b.node("Softplus", xs, name)
    beta = b.init(f"{name}_beta", np.float32(m.beta))
    return b.node("Div", [b.node("Softplus", [b.node("Mul", [xs[0], beta], name)], name), beta], name)


def _clip(lo, hi):
    def convert(b, m, xs, shapes, name):
        return b.node("Clip", [xs[0], b.init(f"{name}_min", np.float32(lo(m))), b.init(f"{name}_max", np.float32(hi(m)))],
                      name)
    return convert


def _prelu(b, m, xs, shapes, name):
    w = np.asarray(m.weight._data, np.float32)
    rank = len(shapes[0])
    slope = w.reshape((-1,) + (1,) * (rank - 1)) if w.size > 1 else w.reshape(1)
    return b.node("PRelu", [xs[0], b.init(f"{name}.weight", slope)], name)


def _layernorm(b, m, xs, shapes, name):
    shape = m.normalized_shape
    w = m.weight if getattr(m, "weight", None) is not None else np.ones(shape, np.float32)
    bias = m.bias if getattr(m, "bias", None) is not None else np.zeros(shape, np.float32)
    return b.node("LayerNormalization", [xs[0], b.init(f"{name}.weight", w), b.init(f"{name}.bias", bias)], name,
                  axis=-len(shape), epsilon=float(m.eps))


def _groupnorm(b, m, xs, shapes, name):
    """Reshape to (N, G, −1), normalise each group (InstanceNormalization), reshape back, scale and shift."""
    c, g, rank = m.num_channels, m.num_groups, len(shapes[0])
    y = b.node("Reshape", [xs[0], b.ints(f"{name}_groups", [0, g, -1])], name)
    y = b.node("InstanceNormalization", [y, b.init(f"{name}_ones", np.ones(g, np.float32)),
                                         b.init(f"{name}_zeros", np.zeros(g, np.float32))], name, epsilon=float(m.eps))
    y = b.node("Reshape", [y, b.ints(f"{name}_back", [0, *shapes[0]])], name)
    if getattr(m, "weight", None) is not None:
        cshape = (c,) + (1,) * (rank - 1)
        y = b.node("Mul", [y, b.init(f"{name}.weight", np.asarray(m.weight._data).reshape(cshape))], name)
        y = b.node("Add", [y, b.init(f"{name}.bias", np.asarray(m.bias._data).reshape(cshape))], name)
    return y


def _instancenorm(b, m, xs, shapes, name):
    if getattr(m, "track_running_stats", False):
        raise ONNXExportError(f"layer {name!r}: InstanceNorm with track_running_stats=True is not exported")
    c = shapes[0][0]
    w = m.weight if getattr(m, "weight", None) is not None else np.ones(c, np.float32)
    bias = m.bias if getattr(m, "bias", None) is not None else np.zeros(c, np.float32)
    return b.node("InstanceNormalization", [xs[0], b.init(f"{name}.weight", w), b.init(f"{name}.bias", bias)],
                  name, epsilon=float(m.eps))


def _lrn(b, m, xs, shapes, name):
    return b.node("LRN", xs, name, size=int(m.size), alpha=float(m.alpha), beta=float(m.beta), bias=float(m.k))


def _softmax(op):
    def convert(b, m, xs, shapes, name):
        dim = m.dim if m.dim is not None else (0 if len(shapes[0]) + 1 in (0, 1, 3) else 1)
        return b.node(op, xs, name, axis=int(dim))
    return convert


def _binary(op):
    def convert(b, m, xs, shapes, name):
        y = xs[0]
        for x in xs[1:]:
            y = b.node(op, [y, x], name)
        return y
    return convert


def _mul_by(b, m, xs, shapes, name):
    """A multiply: of two or more graph values (graph_ops.Mul), or by a fixed number (airbench's scale)."""
    if len(xs) == 1 and hasattr(m, "scale"):
        return b.node("Mul", [xs[0], b.init(f"{name}_scale", np.float32(m.scale))], name)
    return _binary("Mul")(b, m, xs, shapes, name)


def _concat(b, m, xs, shapes, name):
    return b.node("Concat", xs, name, axis=int(m.dim))


def _reshape(b, m, xs, shapes, name):
    return b.node("Reshape", [xs[0], b.ints(f"{name}_shape", m.shape)], name)


def _graph_pad(b, m, xs, shapes, name):
    pairs = m._pairs(len(shapes[0]))  # every axis but the batch axis
    return _pad(b, xs[0], [(0, 0)] + pairs, m.mode, name, m.value, rank=len(shapes[0]) + 1)


def _slice(b, m, xs, shapes, name):
    return b.node("Slice", [xs[0], b.ints(f"{name}_starts", m.starts), b.ints(f"{name}_ends", m.ends),
                            b.ints(f"{name}_axes", m.axes), b.ints(f"{name}_steps", m.steps)], name)


def _constant(b, m, xs, shapes, name):
    return b.init(f"{name}.value", m.value)


def _upsample(b, m, xs, shapes, name):
    """Upsample → Resize to the static output size (the batch axis stays free)."""
    mode, ac = m.mode, bool(m.align_corners)
    if mode == "nearest":
        attrs = dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    elif mode in ("linear", "bilinear", "trilinear", "bicubic"):
        attrs = dict(mode="cubic" if mode == "bicubic" else "linear",
                     coordinate_transformation_mode="align_corners" if ac else "half_pixel")
        if mode == "bicubic":
            attrs["cubic_coeff_a"] = -0.75  # torch's bicubic kernel
    else:
        raise ONNXExportError(f"layer {name!r} (Upsample): mode {mode!r} has no exact ONNX Resize form")
    out = m.output_shape(shapes[0])
    # sizes = (N, C) of the input ++ the static output size (float scales would round 5·1.8 down to 8)
    lead = b.node("Shape", [xs[0]], name, start=0, end=2)
    sizes = b.node("Concat", [lead, b.ints(f"{name}_size", out[1:])], name, axis=0)
    return b.node("Resize", [xs[0], "", "", sizes], name, **attrs)


def _identity(b, m, xs, shapes, name):
    return b.node("Identity", xs, name)


_CONVERTERS = {
    "_ConvTransposeNd": _conv_transpose, "_ConvNd": _conv, "Linear": _linear, "_BatchNorm": _batchnorm,
    "_MaxPoolNd": _maxpool, "_AvgPoolNd": _avgpool, "_WeightedAvgPoolNd": _weighted_pool,
    "_AdaptivePoolNd": _adaptive, "Flatten": _flatten, "Unflatten": _unflatten,
    "ReLU": _simple("Relu"), "Sigmoid": _simple("Sigmoid"), "Tanh": _simple("Tanh"),
    "LeakyReLU": _simple("LeakyRelu", alpha=lambda m: float(m.negative_slope)),
    "CELU": _simple("Celu", alpha=lambda m: float(m.alpha)), "ELU": _simple("Elu", alpha=lambda m: float(m.alpha)),
    "SELU": _simple("Selu"), "Softsign": _simple("Softsign"), "Hardswish": _simple("HardSwish"),
    "Hardsigmoid": _simple("HardSigmoid", alpha=1 / 6, beta=0.5), "GELU": _gelu, "SiLU": _silu, "Mish": _mish,
    "LogSigmoid": _logsigmoid, "Softplus": _softplus, "PReLU": _prelu,
    "ReLU6": _clip(lambda m: 0.0, lambda m: 6.0), "Hardtanh": _clip(lambda m: m.min_val, lambda m: m.max_val),
    "LogSoftmax": _softmax("LogSoftmax"), "Softmax": _softmax("Softmax"),
    "LayerNorm": _layernorm, "GroupNorm": _groupnorm, "_InstanceNorm": _instancenorm, "LocalResponseNorm": _lrn,
    "Upsample": _upsample, "Identity": _identity, "Dropout": _identity, "Dropout1d": _identity, "Dropout2d": _identity,
    "Dropout3d": _identity,
    "Add": _binary("Add"), "Sub": _binary("Sub"), "Mul": _mul_by, "Div": _binary("Div"), "Concat": _concat,
    "MatMul": _binary("MatMul"), "Reshape": _reshape, "Pad": _graph_pad, "Slice": _slice, "Constant": _constant,
    "Erf": _simple("Erf"),
}


def _has_output_shape(module) -> bool:
    from convlens.nn import Module

    return type(module).output_shape is not Module.output_shape


def _dense_shape(module, shape) -> tuple:
    """The dense models' output shape, by running them once on a zero image (they have no output_shape)."""
    from convlens.autograd import no_grad
    from convlens.tensor import Tensor

    was = module.training
    module.eval()
    try:
        with no_grad():
            return tuple(module(Tensor._wrap(np.zeros((1, *shape), np.float32))).shape[1:])
    finally:
        module.train(was)


def _converter(module):
    for cls in type(module).__mro__:
        if cls.__name__ in _CONVERTERS:
            return _CONVERTERS[cls.__name__]
    return None


def _emit(b: _Builder, module, xs: list[str], shapes: list[tuple], name: str) -> tuple[str, tuple]:
    """Write `module` applied to values `xs` (of `shapes`); returns (output name, output shape)."""
    from convlens.models.graph import GraphModule

    kind = type(module).__name__
    if isinstance(module, GraphModule):
        values = {n: (x, s) for n, x, s in zip(module.input_names, xs, shapes)}
        for node, args in module.graph:
            child = module._modules[node]
            values[node] = _emit(b, child, [values[a][0] for a in args], [values[a][1] for a in args],
                                 f"{name}.{node}" if name else node)
        return values[module.output]
    if kind == "Sequential":
        x, s = xs[0], shapes[0]
        for child_name, child in module.named_children():
            x, s = _emit(b, child, [x], [s], f"{name}.{child_name}" if name else child_name)
        return x, s
    from convlens.onnx.dense_export import DENSE_CONVERTERS

    if kind in DENSE_CONVERTERS:  # forward written as Python code: its structure spelled out once
        out_shape = tuple(module.output_shape(*shapes)) if _has_output_shape(module) else None
        out = DENSE_CONVERTERS[kind](b, module, xs, shapes, name, _emit)
        return out, out_shape if out_shape is not None else _dense_shape(module, shapes[0])
    convert = _converter(module)
    if convert is None:
        raise ONNXExportError(f"layer {name!r} ({kind}) has no ONNX converter (convertible: Sequential, GraphModule "
                              "and the layers in convlens.onnx.export._CONVERTERS)")
    try:
        out_shape = tuple(module.output_shape(*shapes))
    except (ValueError, TypeError) as e:
        raise ONNXExportError(f"layer {name!r} ({kind}): cannot take inputs of shape "
                              f"{' and '.join(map(str, shapes))}: {e}") from None
    return convert(b, module, xs, shapes, name or kind.lower()), out_shape


def export(model, example_input, path=None, *, opset_version: int = OPSET, input_names=("input",),
           output_names=("output",), dynamic_batch: bool = True, metadata: dict | None = None, check: bool = True):
    """Write `model` (a Sequential, a GraphModule or any layer with a converter) as ONNX.

    Args:
        model: the convlens module; exported in its eval form (batch norm with running statistics,
            dropout as identity).
        example_input: a Tensor or array of shape (N, *input_shape), or the input shape (C, H, W) itself;
            it fixes every axis but the batch axis.
        path: where to write the .onnx file (None: only return the ModelProto).
        opset_version: 17 (the nodes written need opset 17; later opsets accept them too).
        dynamic_batch: the batch axis is the symbolic ``N`` (else the example's batch size).
        metadata: extra string entries for the model's metadata_props (convlens writes input_shape,
            classes, mean and std there as JSON so that `convlens.onnx.load` gives them back).
        check: run `onnx.checker.check_model` on the result.

    Returns the `onnx.ModelProto`. Raises ONNXExportError naming the layer that cannot be converted.
    """
    import json

    import onnx
    from onnx import TensorProto, helper

    if opset_version < OPSET:
        raise ONNXExportError(f"export: opset_version must be at least {OPSET}, got {opset_version}")
    if isinstance(example_input, tuple | list) and all(isinstance(v, int) for v in example_input):
        shape = tuple(example_input)
        batch = 1
    else:
        arr = np.asarray(getattr(example_input, "_data", example_input))
        batch, shape = arr.shape[0], tuple(arr.shape[1:])
    b = _Builder()
    in_name = b.fresh(input_names[0])
    out, out_shape = _emit(b, model, [in_name], [shape], "")
    out_name = output_names[0]
    b.nodes.append(helper.make_node("Identity", [out], [out_name], name=b.fresh("output/Identity")))
    n = "N" if dynamic_batch else int(batch)
    graph = helper.make_graph(
        b.nodes, type(model).__name__,
        [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, [n, *shape])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, [n, *out_shape])],
        initializer=b.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset_version)],
                              producer_name="convlens", producer_version=_version())
    proto.ir_version = min(proto.ir_version, 10)  # what onnxruntime releases of 2024+ read
    meta = {"convlens.input_shape": json.dumps(list(shape))}
    for key, value in (metadata or {}).items():
        meta[key if key.startswith("convlens.") else f"convlens.{key}"] = value if isinstance(value, str) else json.dumps(value)
    helper.set_model_props(proto, meta)
    if check:
        onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(proto.SerializeToString())
        tmp.replace(path)
    return proto


def _version() -> str:
    from convlens import __version__

    return __version__
