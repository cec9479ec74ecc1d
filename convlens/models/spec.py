"""Networks as data: a spec is an input shape and a list of layer tables, in the spirit of ConvNetJS.

    input_shape = [1, 28, 28]          # (C, L), (C, H, W) or (C, D, H, W); a flat (F,) suits fc-only nets

    [[layers]]
    type = "conv"                      # conv, pool, fc, dropout, batchnorm, flatten, global_pool,
    filters = 6                        # relu, tanh, sigmoid, leaky_relu, softmax, identity
    size = 5
    pad = 2
    activation = "relu"

    [[layers]]
    type = "pool"
    kind = "avg"
    size = 2

The same in JSON is ``{"input_shape": [...], "layers": [{...}, ...]}``; a bare JSON list of layers works
when the input shape is given to `from_spec`. In- and out-sizes are never written: each layer's input
shape follows from the one before it, W₂ = ⌊(W − F + 2P)/S⌋ + 1 (`conv_output_size`), so a spec says only
what a person designing the net decides. 1-d and 3-d nets follow from the rank of ``input_shape``.

Layer keys (defaults in brackets; ``size``, ``stride``, ``pad`` and ``dilation`` take an int or one per
spatial axis; every layer also takes an optional ``name``, the module's name in the Sequential):

    conv        filters, size, stride [1], pad [0], padding_mode ["zeros"], dilation [1], groups [1],
                bias [true], activation ["none"]: relu, tanh, sigmoid, gelu, leaky_relu or none
    pool        kind ["max"]: max, avg or weighted; size, stride [= size], pad [0], ceil_mode [false]
    fc          units, bias [true], activation ["none"]; flattens first when its input has rank > 1
    dropout     p [0.5]
    batchnorm   eps [1e-5], momentum [0.1]
    flatten     (no keys)
    global_pool kind ["avg"]: avg or max; flatten [true]. An adaptive pool to size 1, then a Flatten.
    whiten      size [2], eps [5e-4]: a frozen patch-whitening conv with 2·C·size² outputs, fitted to the
                training set when a run starts (convlens.models.airbench.PatchWhitening)
    scale       factor: multiply by a fixed number (airbench's output scale)
    batchnorm   also learn_scale [true]: false freezes γ at 1 (airbench)
    relu, tanh, sigmoid, gelu (exact erf form), softmax (over the channel axis), identity: no keys; leaky_relu: negative_slope [0.01]

A layer that adds modules of its own (a conv's activation, an fc's flatten, a global pool's flatten) names
them after itself: layer "conv1" gives modules "conv1" and "conv1_relu"; unnamed layers are numbered like
any Sequential ("0", "1", ...). Layers are counted from 1 in error messages.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import tomllib
from pathlib import Path

from convlens.nn.shape import conv_output_size

__all__ = ["from_spec", "to_spec", "load_spec", "save_spec", "plan_spec", "SpecError", "LAYER_TYPES"]

_REQUIRED = object()
_ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "leaky_relu": "LeakyReLU", "gelu": "GELU"}
_POOLS = {"max": "MaxPool", "avg": "AvgPool", "weighted": "WeightedAvgPool"}
_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

# Every key a layer type accepts, with its default; `type` and `name` are accepted by all.
_KEYS: dict[str, dict] = {
    "conv": {"filters": _REQUIRED, "size": _REQUIRED, "stride": 1, "pad": 0, "padding_mode": "zeros",
             "dilation": 1, "groups": 1, "bias": True, "activation": "none"},
    "pool": {"kind": "max", "size": _REQUIRED, "stride": None, "pad": 0, "ceil_mode": False},
    "fc": {"units": _REQUIRED, "bias": True, "activation": "none"},
    "dropout": {"p": 0.5},
    "batchnorm": {"eps": 1e-5, "momentum": 0.1, "learn_scale": True},
    "flatten": {},
    "global_pool": {"kind": "avg", "flatten": True},
    "relu": {}, "tanh": {}, "sigmoid": {}, "gelu": {}, "leaky_relu": {"negative_slope": 0.01}, "softmax": {}, "identity": {},
    "whiten": {"size": 2, "eps": 5e-4}, "scale": {"factor": _REQUIRED},  # airbench's layers
}
LAYER_TYPES = tuple(_KEYS)
_TOP_KEYS = ("input_shape", "layers", "name", "description")


class SpecError(ValueError):
    """A spec that cannot be built; the message names the layer (counted from 1) and the key."""


class SpecNotFoundError(SpecError, FileNotFoundError):
    """A spec path that does not exist (a SpecError, and a FileNotFoundError as before)."""


# ---- validation helpers ---------------------------------------------------------------------------------
def _where(i: int, kind: str) -> str:
    return f"spec layer {i} ({kind})"


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _pos_int(v, key: str, where: str) -> int:
    if not _is_int(v) or v < 1:
        raise SpecError(f"{where}: {key!r} must be a positive integer, got {v!r}")
    return int(v)


def _ints(v, n: int, key: str, where: str, minimum: int) -> tuple[int, ...]:
    """An int or a list of `n` ints, each ≥ `minimum`, as an n-tuple."""
    what = "positive" if minimum == 1 else "non-negative"
    seq = [v] * n if _is_int(v) else list(v) if isinstance(v, list | tuple) else None
    if seq is None or len(seq) != n or not all(_is_int(x) and x >= minimum for x in seq):
        raise SpecError(f"{where}: {key!r} must be a {what} integer or a list of {n} {what} integers "
                        f"(one per spatial axis), got {v!r}")
    return tuple(int(x) for x in seq)


def _number(v, key: str, where: str, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not lo <= v <= hi:
        raise SpecError(f"{where}: {key!r} must be a number in [{lo:g}, {hi:g}], got {v!r}")
    return float(v)


def _choice(v, key: str, where: str, options) -> str:
    if v not in options:
        raise SpecError(f"{where}: {key!r} must be one of {', '.join(map(repr, options))}, got {v!r}")
    return v


def _flag(v, key: str, where: str) -> bool:
    if not isinstance(v, bool):
        raise SpecError(f"{where}: {key!r} must be true or false, got {v!r}")
    return v


def _compact(t):
    """(5, 5) → 5 for kwargs and spec entries; uneven tuples stay as they are."""
    t = tuple(t) if isinstance(t, list | tuple) else t
    return t[0] if isinstance(t, tuple) and len(set(t)) == 1 else t


def _x(t) -> str:
    return "×".join(map(str, t))


def _spatial(shape: tuple, where: str) -> tuple[int, ...]:
    if not 2 <= len(shape) <= 4:
        raise SpecError(f"{where}: needs an input with channels and 1 to 3 spatial axes, (C, L), (C, H, W) or "
                        f"(C, D, H, W); got shape {shape}")
    return shape[1:]


def _input_shape(value, where: str = "spec") -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or not 1 <= len(value) <= 4 or not all(
            _is_int(v) and v >= 1 for v in value):
        raise SpecError(f"{where}: 'input_shape' must be 1 to 4 positive integers without the batch axis, "
                        f"(F,), (C, L), (C, H, W) or (C, D, H, W); got {value!r}")
    return tuple(int(v) for v in value)


# ---- planning: each spec layer → modules (class name + torch-style kwargs) and an output shape -------------
def _activation(act: str) -> tuple:
    return act, _ACTIVATIONS[act], ({"negative_slope": 0.01} if act == "leaky_relu" else {})


def _plan_layer(i: int, layer, shape: tuple) -> tuple[list, tuple, str]:
    """Returns ([(suffix or None, class name, kwargs), ...], output shape, layer type)."""
    if not isinstance(layer, dict):
        raise SpecError(f"spec layer {i}: expected a table with a 'type' key, got {layer!r}")
    kind = layer.get("type")
    if kind is None or not isinstance(kind, str) or kind not in _KEYS:
        got = "no 'type'" if kind is None else f"unknown type {kind!r}"
        raise SpecError(f"spec layer {i}: {got} (expected one of: {', '.join(LAYER_TYPES)})")
    where = _where(i, kind)
    known = _KEYS[kind]
    for key in layer:
        if key not in known and key not in ("type", "name"):
            expected = ", ".join([*known, "name"])
            raise SpecError(f"{where}: unknown key {key!r} (expected one of: {expected})")
    for key, default in known.items():
        if default is _REQUIRED and key not in layer:
            raise SpecError(f"{where}: missing required key {key!r}")
    p = {**known, **layer}
    rank = len(shape)
    d = rank - 1  # spatial axes

    if kind == "conv":
        sp = _spatial(shape, where)
        filters = _pos_int(p["filters"], "filters", where)
        size = _ints(p["size"], d, "size", where, 1)
        stride = _ints(p["stride"], d, "stride", where, 1)
        pad = _ints(p["pad"], d, "pad", where, 0)
        dilation = _ints(p["dilation"], d, "dilation", where, 1)
        groups = _pos_int(p["groups"], "groups", where)
        mode = _choice(p["padding_mode"], "padding_mode", where, _PADDING_MODES)
        bias = _flag(p["bias"], "bias", where)
        act = _choice(p["activation"], "activation", where, (*_ACTIVATIONS, "none"))
        if shape[0] % groups or filters % groups:
            raise SpecError(f"{where}: 'groups' = {groups} must divide both the {shape[0]} input channels "
                            f"and the {filters} filters")
        if mode != "zeros" and any(q > s - (mode == "reflect") for q, s in zip(pad, sp)):
            raise SpecError(f"{where}: {mode} padding {_x(pad)} needs a larger input than {_x(sp)}")
        out = conv_output_size(sp, size, stride, pad, dilation)
        if min(out) < 1:
            span = tuple(dl * (k - 1) + 1 for k, dl in zip(size, dilation))
            kernel = f"{_x(size)} kernel" + (f" with dilation {_x(dilation)} (spanning {_x(span)})"
                                             if span != size else "")
            padded = f"{_x(sp)} input" + (f" with padding {_x(pad)}" if any(pad) else "")
            raise SpecError(f"{where}: the {kernel} is larger than the {padded} (input shape {shape})")
        kwargs = dict(in_channels=shape[0], out_channels=filters, kernel_size=_compact(size),
                      stride=_compact(stride), padding=_compact(pad), dilation=_compact(dilation),
                      groups=groups, bias=bias, padding_mode=mode)
        mods = [(None, f"Conv{d}d", kwargs)]
        if act != "none":
            mods.append(_activation(act))
        return mods, (filters, *out), kind

    if kind == "pool":
        sp = _spatial(shape, where)
        pool = _choice(p["kind"], "kind", where, tuple(_POOLS))
        size = _ints(p["size"], d, "size", where, 1)
        stride = size if p["stride"] is None else _ints(p["stride"], d, "stride", where, 1)
        pad = _ints(p["pad"], d, "pad", where, 0)
        ceil = _flag(p["ceil_mode"], "ceil_mode", where)
        if any(2 * q > k for q, k in zip(pad, size)):
            raise SpecError(f"{where}: 'pad' {_x(pad)} must be at most half the window {_x(size)}")
        out = conv_output_size(sp, size, stride, pad, ceil_mode=ceil)
        if min(out) < 1:
            padded = f"{_x(sp)} input" + (f" with padding {_x(pad)}" if any(pad) else "")
            raise SpecError(f"{where}: the {_x(size)} window is larger than the {padded} (input shape {shape})")
        kwargs = dict(kernel_size=_compact(size), stride=_compact(stride), padding=_compact(pad))
        if pool != "weighted":
            kwargs["ceil_mode"] = ceil
        elif ceil:
            raise SpecError(f"{where}: 'ceil_mode' is not available for weighted pooling")
        return [(None, f"{_POOLS[pool]}{d}d", kwargs)], (shape[0], *out), kind

    if kind == "fc":
        units = _pos_int(p["units"], "units", where)
        bias = _flag(p["bias"], "bias", where)
        act = _choice(p["activation"], "activation", where, (*_ACTIVATIONS, "none"))
        mods = [("flatten", "Flatten", {})] if rank > 1 else []
        mods.append((None, "Linear", dict(in_features=math.prod(shape), out_features=units, bias=bias)))
        if act != "none":
            mods.append(_activation(act))
        return mods, (units,), kind

    if kind == "global_pool":
        _spatial(shape, where)
        pool = _choice(p["kind"], "kind", where, ("avg", "max"))
        flatten = _flag(p["flatten"], "flatten", where)
        mods = [(None, f"Adaptive{pool.capitalize()}Pool{d}d", dict(output_size=1))]
        if flatten:
            mods.append(("flatten", "Flatten", {}))
        return mods, ((shape[0],) if flatten else (shape[0],) + (1,) * d), kind

    if kind == "batchnorm":
        eps = _number(p["eps"], "eps", where, 0.0, 1.0)
        momentum = _number(p["momentum"], "momentum", where, 0.0, 1.0)
        dims = max(1, d)  # (F,) and (C, L) inputs both take BatchNorm1d
        kwargs = dict(num_features=shape[0], eps=eps, momentum=momentum)
        if not _flag(p["learn_scale"], "learn_scale", where):
            kwargs["_frozen"] = ("weight",)  # not a constructor argument: from_spec freezes these afterwards
        return [(None, f"BatchNorm{dims}d", kwargs)], shape, kind
    if kind == "whiten":
        sp = _spatial(shape, where)
        if len(sp) != 2:
            raise SpecError(f"{where}: patch whitening needs (C, H, W) input, got shape {shape}")
        k = _pos_int(p["size"], "size", where)
        if k > min(sp):
            raise SpecError(f"{where}: the {k}×{k} patches are larger than the {_x(sp)} input")
        eps = _number(p["eps"], "eps", where, 0.0, math.inf)
        out = (2 * shape[0] * k * k, sp[0] - k + 1, sp[1] - k + 1)
        return [(None, "PatchWhitening", dict(in_channels=shape[0], kernel_size=k, eps=eps))], out, kind
    if kind == "scale":
        return [(None, "Mul", dict(scale=_number(p["factor"], "factor", where, -math.inf, math.inf)))], shape, kind

    if kind == "dropout":
        return [(None, "Dropout", dict(p=_number(p["p"], "p", where, 0.0, 1.0)))], shape, kind
    if kind == "flatten":
        return [(None, "Flatten", {})], (math.prod(shape),), kind
    if kind == "leaky_relu":
        slope = _number(p["negative_slope"], "negative_slope", where, -math.inf, math.inf)
        return [(None, "LeakyReLU", dict(negative_slope=slope))], shape, kind
    if kind == "softmax":
        return [(None, "Softmax", dict(dim=1))], shape, kind
    if kind == "identity":
        return [(None, "Identity", {})], shape, kind
    return [(None, _ACTIVATIONS[kind], {})], shape, kind


def _plan(layers, input_shape: tuple, start: int = 0, first_layer: int = 1, used=None):
    """All modules of a layer list: [(module name, class name, kwargs, layer number)], output shape."""
    if not isinstance(layers, list | tuple):
        raise SpecError(f"spec: 'layers' must be a list of layer tables, got {type(layers).__name__}")
    used = {} if used is None else used
    planned, shape = [], input_shape
    for i, layer in enumerate(layers, first_layer):
        mods, shape, kind = _plan_layer(i, layer, shape)
        _check_size(i, kind, mods, shape)
        name = layer.get("name")
        if name is not None and (not isinstance(name, str) or not name.isidentifier()):
            raise SpecError(f"{_where(i, kind)}: 'name' must be an identifier (letters, digits, _), got {name!r}")
        for suffix, cls, kwargs in mods:
            if name is None:
                mod_name = str(start + len(planned))
            else:
                mod_name = name if suffix is None else f"{name}_{suffix}"
            if mod_name in used:
                raise SpecError(f"{_where(i, kind)}: module name {mod_name!r} is already used by layer {used[mod_name]}")
            used[mod_name] = i
            planned.append((mod_name, cls, kwargs, i))
    return planned, shape


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not on every platform
        return 8 * 2**30


def _check_size(i: int, kind: str, mods, out_shape) -> None:
    """Refuse, before anything is allocated, a layer whose weights (float32, with their gradient and two
    optimizer buffers: 16 bytes a parameter) or per-image output could not fit in this machine's memory:
    ``fc units=1e8`` said "internal error (MemoryError)" after trying to allocate 300 GB."""
    params = 0
    for _, cls, kw in mods:
        if cls == "Linear":
            params += kw["in_features"] * kw["out_features"] + (kw["out_features"] if kw["bias"] else 0)
        elif cls.startswith("Conv"):
            k = kw["kernel_size"]
            taps = math.prod(k) if isinstance(k, tuple) else k ** int(cls[4])
            params += kw["out_channels"] * (kw["in_channels"] // kw["groups"]) * taps + (
                kw["out_channels"] if kw["bias"] else 0)
    memory = _physical_memory()
    if params * 16 > memory:
        raise SpecError(f"{_where(i, kind)}: {params:,} parameters would need {params * 16 / 1e9:,.1f} GB to train "
                        f"(weights, gradients, optimizer state), this machine has {memory / 1e9:.1f} GB; use fewer "
                        "units/filters or a smaller input")
    values = math.prod(out_shape)
    if values * 4 > memory // 4:
        raise SpecError(f"{_where(i, kind)}: its output of shape {tuple(out_shape)} is {values * 4 / 1e9:,.1f} GB per "
                        f"image, more than this machine's {memory / 1e9:.1f} GB allow")


# ---- loading and building -------------------------------------------------------------------------------
def load_spec(path) -> dict:
    """Read a spec file: ``.toml`` with tomllib, anything else as JSON. Returns a dict (a bare JSON list of
    layers comes back as ``{"layers": [...]}``)."""
    path = Path(path)
    if not path.is_file():
        raise SpecNotFoundError(f"load_spec: no spec file at {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"load_spec: {path.name} is not UTF-8 text (byte offset {e.start}: {e.reason})") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except RecursionError:
        raise SpecError(f"load_spec: {path.name} is nested too deeply to be a spec") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise SpecError(f"load_spec: {path.name} is not valid {'TOML' if path.suffix.lower() == '.toml' else 'JSON'}: {e}") from None
    if not isinstance(data, dict | list):
        raise SpecError(f"load_spec: {path.name} holds a {type(data).__name__}: expected an object with 'layers' "
                        "(and optionally 'input_shape') or a list of layer tables")
    return {"layers": data} if isinstance(data, list) else data


def _normalise(spec) -> dict:
    if isinstance(spec, str | Path):
        spec = load_spec(spec)
    if isinstance(spec, list | tuple):
        spec = {"layers": list(spec)}
    if not isinstance(spec, dict):
        raise SpecError(f"from_spec: expected a path, a dict or a list of layers, got {type(spec).__name__}")
    for key in spec:
        if key not in _TOP_KEYS:
            raise SpecError(f"spec: unknown key {key!r} (expected one of: {', '.join(_TOP_KEYS)})")
    if "layers" not in spec:
        raise SpecError("spec: missing 'layers' (a list of layer tables)")
    return spec


def plan_spec(spec, input_shape=None):
    """The modules a spec builds, without building them: ([(name, class name, kwargs, layer), ...], input
    shape, output shape). Class names and kwargs are torch.nn's."""
    spec = _normalise(spec)
    if input_shape is None:
        input_shape = spec.get("input_shape")
        if input_shape is None:
            raise SpecError("from_spec: the input shape is unknown: give 'input_shape' in the spec or the "
                            "input_shape argument, e.g. [1, 28, 28]")
    shape = _input_shape(input_shape)
    planned, out = _plan(spec["layers"], shape)
    return planned, shape, out


def from_spec(spec, input_shape=None):
    """Build a flat `nn.Sequential` from a spec: a path (.toml or .json), a dict or a list of layer tables.

    `input_shape` (without the batch axis) overrides the spec's own ``input_shape``; one of them is needed,
    since in-channels and fc input sizes follow from it. Bad specs raise ValueError naming the layer and key.
    """
    from convlens import nn

    if isinstance(spec, str | Path):
        spec = load_spec(spec)
    from convlens.models.graph_spec import from_graph_spec, is_graph_spec

    if is_graph_spec(spec):  # named inputs or branch layers: a GraphModule (convlens.models.graph_spec)
        return from_graph_spec(spec, input_shape)
    planned, _, _ = plan_spec(spec, input_shape)
    model = nn.Sequential()
    for name, cls, kwargs, _ in planned:
        kwargs = dict(kwargs)
        frozen = kwargs.pop("_frozen", ())
        if hasattr(nn, cls):
            module = getattr(nn, cls)(**kwargs)
        else:  # the airbench layers (whiten, scale)
            import importlib

            module = getattr(importlib.import_module("convlens.models.airbench"), cls)(**kwargs)
        for pname in frozen:
            getattr(module, pname).requires_grad_(False)
        model.add_module(name, module)
    return model


# ---- writing a model back as a spec ----------------------------------------------------------------------
def _children(module) -> list:
    if hasattr(module, "named_children"):
        return list(module.named_children())
    return [(n, m) for n, m in module.named_modules() if n and "." not in n]


def _leaves(model, prefix: str = "") -> list:
    out = []
    for name, child in _children(model):
        full = f"{prefix}{name}"
        if not _children(child):
            out.append((full, child))
        elif type(child).__name__ == "Sequential":
            out.extend(_leaves(child, full + "."))
        else:
            raise SpecError(f"to_spec: {full!r} ({type(child).__name__}) is a container other than Sequential, "
                            "which a spec cannot express")
    return out


def _tuple_attr(m, attr):
    v = getattr(m, attr)
    return tuple(v) if isinstance(v, list | tuple) else v


def _entries(leaves: list, j: int) -> list:
    """Candidate spec entries for the leaves from position j: [(entry, number of leaves it covers)], the
    most merged first (a conv and its activation as one layer, say)."""
    name, m = leaves[j]
    cls = type(m).__name__
    nxt = [type(x).__name__ for _, x in leaves[j + 1:j + 3]]
    base = cls[:-2] if cls[-2:] in ("1d", "2d", "3d") else cls

    def act_of(k):  # the spec activation name of the leaf at j + k, if any
        if len(nxt) >= k:
            inverse = {v: k2 for k2, v in _ACTIVATIONS.items()}
            return inverse.get(nxt[k - 1])
        return None

    if cls == "PatchWhitening":
        return [({"type": "whiten", "size": m.kernel_size[0], "eps": m.eps}, 1)]
    if cls == "Mul":
        return [({"type": "scale", "factor": m.scale}, 1)]
    if base == "Conv":
        if isinstance(m.padding, str):
            raise SpecError(f"to_spec: layer {name!r} ({cls}) uses padding={m.padding!r}; a spec needs numbers")
        e = {"type": "conv", "filters": m.out_channels, "size": _compact(m.kernel_size),
             "stride": _compact(m.stride), "pad": _compact(m.padding), "padding_mode": m.padding_mode,
             "dilation": _compact(m.dilation), "groups": m.groups, "bias": m.bias is not None}
        act = act_of(1)
        return ([({**e, "activation": act}, 2)] if act else []) + [(e, 1)]
    if cls == "Linear":
        e = {"type": "fc", "units": m.out_features, "bias": m.bias is not None}
        act = act_of(1)
        return ([({**e, "activation": act}, 2)] if act else []) + [(e, 1)]
    if cls == "Flatten" and nxt[:1] == ["Linear"]:
        lin_name, lin = leaves[j + 1]
        e = {"type": "fc", "units": lin.out_features, "bias": lin.bias is not None}
        act = act_of(2)
        return ([({**e, "activation": act}, 3)] if act else []) + [(e, 2), ({"type": "flatten"}, 1)]
    if base in ("MaxPool", "AvgPool", "WeightedAvgPool"):
        kind = {v: k for k, v in _POOLS.items()}[base]
        stride = _compact(m.stride) if m.stride is not None else _compact(m.kernel_size)
        e = {"type": "pool", "kind": kind, "size": _compact(m.kernel_size), "stride": stride,
             "pad": _compact(m.padding), "ceil_mode": bool(getattr(m, "ceil_mode", False))}
        return [(e, 1)]
    if base in ("AdaptiveAvgPool", "AdaptiveMaxPool"):
        e = {"type": "global_pool", "kind": "avg" if "Avg" in base else "max"}
        return ([({**e, "flatten": True}, 2)] if nxt[:1] == ["Flatten"] else []) + [({**e, "flatten": False}, 1)]
    if base == "BatchNorm":
        learn_scale = m.weight is None or bool(m.weight.requires_grad)
        return [({"type": "batchnorm", "eps": m.eps, "momentum": m.momentum, "learn_scale": learn_scale}, 1)]
    if cls == "Dropout":
        return [({"type": "dropout", "p": m.p}, 1)]
    if cls == "LeakyReLU":
        return [({"type": "leaky_relu", "negative_slope": m.negative_slope}, 1)]
    simple = {"Flatten": "flatten", "Softmax": "softmax", "Identity": "identity",
              **{v: k for k, v in _ACTIVATIONS.items() if k != "leaky_relu"}}
    if cls in simple:
        return [({"type": simple[cls]}, 1)]
    raise SpecError(f"to_spec: layer {name!r} ({cls}) has no spec layer type (spec layers: {', '.join(LAYER_TYPES)})")


# Settings a spec cannot express must be at their defaults; the rest are checked against the plan.
_FIXED = {"GELU": {"approximate": "none"}, "MaxPool": {"dilation": 1, "return_indices": False}, "AvgPool": {"count_include_pad": True,
          "divisor_override": None}, "BatchNorm": {"affine": True, "track_running_stats": True},
          "Flatten": {"start_dim": 1, "end_dim": -1}, "Softmax": {"dim": 1},
          "WeightedAvgPool": {"weights": False}}


def _mismatch(module, cls: str, kwargs: dict) -> str | None:
    """Why `module` differs from what the plan would build (None if it is the same)."""
    if type(module).__name__ != cls:
        return f"the spec would build {cls} here"
    base = cls[:-2] if cls[-2:] in ("1d", "2d", "3d") else cls
    checks = {**_FIXED.get(base, {}), **kwargs}
    for key, want in checks.items():
        if key in ("bias", "weights"):  # a bias or not; custom pooling weights or the default
            have = getattr(module, key, None) is not None
        elif not hasattr(module, key):
            continue
        else:
            have = _tuple_attr(module, key)
        if isinstance(have, tuple) and _is_int(want):
            want = (want,) * len(have)
        if isinstance(want, tuple) and _is_int(have):
            have = (have,) * len(want)
        if have != want:
            return f"{key}={have!r}, where the spec would give {want!r}"
    return None


def _clean(entry: dict, name: str | None) -> dict:
    """Drop defaults so that entries read like hand-written ones."""
    defaults = _KEYS[entry["type"]]
    out = {"type": entry["type"]}
    if name is not None:
        out["name"] = name
    for key, value in entry.items():
        if key == "type" or (defaults.get(key, _REQUIRED) is not _REQUIRED and value == defaults[key]):
            continue
        if key == "stride" and entry["type"] == "pool" and value == entry["size"]:
            continue
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def to_spec(model, input_shape) -> dict:
    """A spec dict for a Sequential (nested Sequentials are flattened) built from spec layer types, such
    that ``from_spec(to_spec(model, shape))`` has the same layers and parameter count. For a flat Sequential
    the module names, and so the state_dict keys, are the same too."""
    shape = _input_shape(input_shape, "to_spec")
    if hasattr(model, "to_graph_spec"):  # a GraphModule writes the graph form (convlens.models.graph_spec)
        return model.to_graph_spec(shape)
    leaves = _leaves(model)
    flat = all("." not in n for n, _ in leaves)
    layers, used, j = [], {}, 0
    while j < len(leaves):
        reasons = []
        for entry, count in _entries(leaves, j):
            # the module the entry is named after: the Linear of a Flatten + Linear, else the first
            merged_flatten = entry["type"] == "fc" and type(leaves[j][1]).__name__ == "Flatten"
            main = leaves[j + 1][0] if merged_flatten else leaves[j][0]
            name = main if flat and not main.isdigit() else None
            cleaned = _clean(entry, name)
            try:
                planned, out = _plan([cleaned], shape, start=j, first_layer=len(layers) + 1, used=dict(used))
            except SpecError as e:
                reasons.append(str(e))
                continue
            if len(planned) != count:
                reasons.append(f"the spec's {cleaned['type']} builds {' + '.join(p[1] for p in planned)} here")
                continue
            why = None
            for (pname, cls, kwargs, _), (lname, module) in zip(planned, leaves[j:j + count]):
                why = _mismatch(module, cls, kwargs)
                if why is None and flat and pname != lname:
                    why = f"its name {lname!r} differs from the spec's {pname!r}"
                if why:
                    reasons.append(f"layer {lname!r} ({type(module).__name__}): {why}")
                    break
            if why is None:
                layers.append(cleaned)
                used.update({p[0]: len(layers) for p in planned})
                shape = out
                j += count
                break
        else:
            raise SpecError(f"to_spec: cannot write {leaves[j][0]!r} ({type(leaves[j][1]).__name__}) at input "
                            f"shape {shape} as a spec layer: {reasons[-1] if reasons else 'unsupported'}")
    return {"input_shape": list(_input_shape(input_shape, "to_spec")), "layers": layers}


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        f = float(v)
        return "nan" if f != f else ("inf" if f > 0 else "-inf") if math.isinf(f) else repr(f)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON's string escapes are valid TOML basic strings
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise SpecError(f"save_spec: cannot write {v!r} ({type(v).__name__}) to TOML")


def save_spec(spec, path) -> Path:
    """Write a spec dict (or list of layers) as TOML when `path` ends in .toml, else as JSON."""
    spec = _normalise(spec)
    path = Path(path)
    if path.suffix.lower() == ".toml":
        lines = [f"{k} = {_toml_value(v)}" for k, v in spec.items() if k != "layers" and v is not None]
        for layer in spec["layers"]:
            lines += ["", "[[layers]]"] + [f"{k} = {_toml_value(v)}" for k, v in layer.items() if v is not None]
        text = "\n".join(lines).lstrip("\n") + "\n"
    else:
        text = json.dumps(spec, indent=2) + "\n"
    path.write_text(text, encoding="utf-8")
    return path
