"""Graph specs: nets with branches written as data, the graph form of `convlens.models.spec`.

A layer that names its ``inputs`` takes those values (graph inputs or earlier layers, by name); one
without takes the layer before it, so straight runs read as in a sequential spec. The last layer (or
the top-level ``output``) is the result. A ResNet basic block:

    input_shape = [16, 32, 32]

    [[layers]]
    name = "conv1"
    type = "conv"
    filters = 16
    size = 3
    pad = 1
    bias = false
    [[layers]]
    name = "bn1"
    type = "batchnorm"
    [[layers]]
    name = "relu1"
    type = "relu"
    ...
    [[layers]]
    name = "add"
    type = "add"
    inputs = ["bn2", "input"]      # the skip connection: "input" is the graph input

Layer types: every sequential spec type (conv, pool, fc, batchnorm, ...: one input, the same keys), and

    add, sub, mul, div   element-wise over two or more inputs, broadcasting
    concat               dim [1]
    matmul               two inputs
    reshape              shape (ONNX's rule, batch axis written: 0 copies an axis, −1 is inferred)
    pad                  pad (torch's order, last axis first), mode ["constant"], value [0]
    slice                starts, ends, axes, steps [1s] (ONNX's Slice; axis 0 is the batch axis)
    constant             shape, value [zeros]: no inputs; a checkpoint stores the value
    erf                  no keys
    module               class (a convlens.nn class name such as "ConvTranspose2d"), args [{}]: any
                         layer with torch's constructor arguments, spelled out in full

Top-level keys: ``input_shape`` (needed when a layer's sizes follow from its input), ``layers``,
``output``, ``inputs`` (graph input names, default ["input"]), ``name``, ``description``.
A spec without ``inputs`` anywhere and only sequential types is an ordinary sequential spec.
"""

from __future__ import annotations

import numbers

from convlens.models.graph import GraphError, GraphModule
from convlens.models.spec import _KEYS, SpecError, _input_shape, _plan_layer, _where

__all__ = ["from_graph_spec", "graph_to_spec", "is_graph_spec", "GRAPH_LAYER_TYPES"]

_REQ = object()
# graph layer type → (graph_ops class, keys with defaults)
_GRAPH_TYPES = {
    "add": ("Add", {}), "sub": ("Sub", {}), "mul": ("Mul", {}), "div": ("Div", {}),
    "concat": ("Concat", {"dim": 1}), "matmul": ("MatMul", {}), "reshape": ("Reshape", {"shape": _REQ}),
    "pad": ("Pad", {"pad": _REQ, "mode": "constant", "value": 0.0}),
    "slice": ("Slice", {"starts": _REQ, "ends": _REQ, "axes": _REQ, "steps": None}),
    "constant": ("Constant", {"shape": None, "value": None}), "erf": ("Erf", {}),
}
GRAPH_LAYER_TYPES = (*_GRAPH_TYPES, "module")
_TOP = ("input_shape", "layers", "name", "description", "output", "inputs")
_LAYER_COMMON = ("type", "name", "inputs")


def is_graph_spec(spec) -> bool:
    """True when a spec dict needs the graph form (named inputs, graph layer types, ``output``)."""
    if not isinstance(spec, dict):
        return False
    if "output" in spec or "inputs" in spec:
        return True
    layers = spec.get("layers")
    return isinstance(layers, list) and any(
        isinstance(layer, dict) and ("inputs" in layer or layer.get("type") in GRAPH_LAYER_TYPES) for layer in layers)


def _module_class(name, where: str):
    from convlens import nn
    from convlens.models import graph_ops

    cls = getattr(graph_ops, str(name), None) if str(name) in graph_ops.GRAPH_OPS else getattr(nn, str(name), None)
    if not isinstance(name, str) or not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise SpecError(f"{where}: 'class' must name a convlens.nn layer class (e.g. \"ConvTranspose2d\"), got {name!r}")
    return cls


def _build_graph_layer(kind: str, layer: dict, where: str):
    from convlens.models import graph_ops

    if kind == "module":
        for key in layer:
            if key not in (*_LAYER_COMMON, "class", "args"):
                raise SpecError(f"{where}: unknown key {key!r} (expected class, args, name, inputs)")
        if "class" not in layer:
            raise SpecError(f"{where}: missing required key 'class'")
        args = layer.get("args", {})
        if not isinstance(args, dict):
            raise SpecError(f"{where}: 'args' must be a table of constructor arguments, got {args!r}")
        cls = _module_class(layer["class"], where)
        try:
            return cls(**args)
        except (TypeError, ValueError) as e:
            raise SpecError(f"{where}: {layer['class']}(**args) failed: {e}") from None
    cls_name, keys = _GRAPH_TYPES[kind]
    for key in layer:
        if key not in keys and key not in _LAYER_COMMON:
            raise SpecError(f"{where}: unknown key {key!r} (expected one of: {', '.join([*keys, 'name', 'inputs'])})")
    for key, default in keys.items():
        if default is _REQ and key not in layer:
            raise SpecError(f"{where}: missing required key {key!r}")
    kwargs = {k: layer.get(k, d) for k, d in keys.items()}
    try:
        return getattr(graph_ops, cls_name)(**kwargs)
    except (TypeError, ValueError) as e:
        raise SpecError(f"{where}: {e}") from None


def from_graph_spec(spec: dict, input_shape=None) -> GraphModule:
    """Build a `GraphModule` from a graph spec dict (see the module docstring). Errors name the layer."""
    from convlens import nn

    for key in spec:
        if key not in _TOP:
            raise SpecError(f"spec: unknown key {key!r} (expected one of: {', '.join(_TOP)})")
    layers = spec.get("layers")
    if not isinstance(layers, list):
        raise SpecError("spec: 'layers' must be a list of layer tables")
    if input_shape is None:
        input_shape = spec.get("input_shape")
    shape = _input_shape(input_shape) if input_shape is not None else None
    input_names = spec.get("inputs", ["input"])
    if not isinstance(input_names, list) or not input_names or not all(isinstance(n, str) for n in input_names):
        raise SpecError(f"spec: 'inputs' must be a list of names, got {input_names!r}")
    if len(input_names) != 1 and shape is not None:
        raise SpecError("spec: 'input_shape' describes one input; a graph with several inputs is built without it")
    graph = GraphModule(inputs=input_names)
    shapes = {input_names[0]: shape} if shape is not None else {}
    alias: dict[str, str] = {n: n for n in input_names}  # layer name → the node holding its output
    previous = input_names[0]
    for i, layer in enumerate(layers, 1):
        if not isinstance(layer, dict):
            raise SpecError(f"spec layer {i}: expected a table with a 'type' key, got {layer!r}")
        kind = layer.get("type")
        where = _where(i, kind)
        name = layer.get("name", f"layer{i}")
        if not isinstance(name, str) or not name.isidentifier():
            raise SpecError(f"{where}: 'name' must be an identifier (letters, digits, _), got {name!r}")
        if name in alias:
            raise SpecError(f"{where}: the name {name!r} is already used")
        inputs = layer.get("inputs", [] if kind == "constant" else [previous])
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or any(not isinstance(n, str) or n not in alias for n in inputs):
            bad = [n for n in inputs if n not in alias] if isinstance(inputs, list) else inputs
            raise SpecError(f"{where}: 'inputs' must name the graph input or earlier layers, "
                            f"got {bad!r} (known: {', '.join(alias)})")
        nodes = [alias[n] for n in inputs]
        in_shapes = [shapes.get(n) for n in nodes]
        config = dict(layer, name=name)
        if kind in _KEYS:  # a sequential layer type: one input, sizes from its shape
            if len(nodes) != 1:
                raise SpecError(f"{where}: takes one input, got {len(nodes)} ({', '.join(inputs)})")
            if in_shapes[0] is None:
                raise SpecError(f"{where}: its sizes follow from its input shape: give 'input_shape' in the spec")
            plain = {k: v for k, v in layer.items() if k not in ("inputs", "name")}
            mods, out_shape, _ = _plan_layer(i, plain, in_shapes[0])
            src = nodes[0]
            for j, (suffix, cls, kwargs) in enumerate(mods):
                node = name if suffix is None else f"{name}_{suffix}"
                graph.add_node(node, getattr(nn, cls)(**kwargs), [src], config if j == 0 else {"_part_of": name})
                src = node
            # a conv with activation = the conv then its activation: the layer's value is the last one
            alias[name] = src
            shapes[src] = out_shape
        elif kind in GRAPH_LAYER_TYPES:
            module = _build_graph_layer(kind, layer, where)
            graph.add_node(name, module, nodes, config)
            alias[name] = name
            if all(s is not None for s in in_shapes):
                try:
                    shapes[name] = tuple(module.output_shape(*in_shapes))
                except (ValueError, TypeError, IndexError) as e:
                    got = " and ".join(map(str, in_shapes)) or "no input"
                    raise SpecError(f"{where}: cannot take inputs of shape {got}: {e}") from None
        else:
            got = "no 'type'" if kind is None else f"unknown type {kind!r}"
            raise SpecError(f"spec layer {i}: {got} (expected one of: {', '.join([*_KEYS, *GRAPH_LAYER_TYPES])})")
        previous = name
    out = spec.get("output")
    if out is not None:
        if out not in alias:
            raise SpecError(f"spec: 'output' {out!r} names no layer")
        graph.output_name = alias[out]
    elif graph.graph:
        graph.output_name = alias[previous]
    graph.spec_input_shape = list(shape) if shape is not None else None
    return graph


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "item") and not isinstance(value, numbers.Number):
        return value.item()
    return value


def graph_to_spec(graph: GraphModule, input_shape=None) -> dict:
    """The spec that rebuilds `graph` (the same node names, so the same state_dict keys)."""
    layers = []
    for name, _ in graph.graph:
        config = graph.configs.get(name)
        if config is None:
            raise GraphError(f"graph node {name!r} ({type(graph._modules[name]).__name__}): added without a spec "
                             "layer, so the graph cannot be written as a spec (pass config= to add_node)")
        if "_part_of" in config:
            continue
        layers.append(_plain(dict(config)))
    spec: dict = {}
    shape = input_shape if input_shape is not None else getattr(graph, "spec_input_shape", None)
    if shape is not None:
        spec["input_shape"] = [int(v) for v in shape]
    if graph.input_names != ["input"]:
        spec["inputs"] = list(graph.input_names)
    spec["layers"] = layers
    last_layer = layers[-1]["name"] if layers else None
    out = graph.output
    if layers and out != last_layer and graph.configs.get(out, {}).get("_part_of") != last_layer:
        spec["output"] = graph.configs.get(out, {}).get("_part_of", out)
    return spec
