"""ONNX → convlens: `load("model.onnx")` turns a CNN graph into a `GraphModule` of convlens layers.

Each ONNX node goes through its converter in `convlens.onnx.ops.CONVERTERS` (one function per op),
which adds graph layers (a Conv becomes a ``Conv2d`` with the node's weights, an Add an ``Add``, ...).
Every layer is added with its spec entry, so the imported model is a graph spec model like any other:
it trains, saves as a convlens checkpoint, explains in the web app and exports back to ONNX.

Values computed from constants and shapes only (torch's ``x.view(x.size(0), -1)`` is Shape → Gather →
Unsqueeze → Concat → Reshape) are folded at import; the batch axis, unknown until run time, is the 0
that Reshape reads as "copy this axis". Every other axis must be known: from the file's input shape,
or from ``input_shape=`` when the file leaves it symbolic.

Errors name the node: an unreadable file, the first unsupported op, a graph whose shapes do not fit.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from convlens.onnx.errors import ONNXImportError, UnsupportedOpError, node_label
from convlens.onnx.ops import CONVERTERS

__all__ = ["load", "load_with_info", "SUPPORTED_OPS", "read_model"]


def read_model(source):
    """An `onnx.ModelProto` from a path, bytes or a ModelProto; a corrupt file → ONNXImportError."""
    import onnx

    if isinstance(source, onnx.ModelProto):
        return source, "model"
    if isinstance(source, bytes | bytearray):
        data, where = bytes(source), "ONNX bytes"
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise ONNXImportError(f"{path}: no such ONNX file")
        data = path.read_bytes()
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:  # protobuf's DecodeError and friends
        raise ONNXImportError(f"{where}: not a readable ONNX model ({len(data)} bytes; protobuf: "
                              f"{str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if not isinstance(source, bytes | bytearray) and any(
            t.data_location == 1 for t in model.graph.initializer):  # weights in a side file (torch's dynamo export)
        from onnx.external_data_helper import load_external_data_for_model

        try:
            load_external_data_for_model(model, str(Path(source).parent))
        except (OSError, ValueError) as e:
            raise ONNXImportError(f"{where}: its weights are stored in a separate file that cannot be read: {e}") from None
    if not model.graph.node and not model.graph.input:
        raise ONNXImportError(f"{where}: not an ONNX model (no graph: {len(data)} bytes parsed to an empty model)")
    return model, where


class Context:
    """What converters see: values (graph node names and shapes), constants, and the graph being built."""

    def __init__(self, where: str, opset: int):
        from convlens.models.graph import GraphModule

        self.where, self.opset = where, opset
        self.graph = GraphModule(inputs=["input"])
        self.values: dict[str, tuple[str, tuple]] = {}  # ONNX value → (graph node, shape without batch)
        self.consts: dict[str, np.ndarray] = {}  # ONNX value → constant array (folded)
        self.const_nodes: dict[str, str] = {}  # ONNX value → the Constant node made for it
        self.index, self.node = 0, None
        self._names: set[str] = {"input"}
        self.node_shapes: dict[str, tuple] = {"input": ()}

    # ---- errors -------------------------------------------------------------------------------------------
    def label(self) -> str:
        return f"{self.where}: {node_label(self.index, self.node)}" if self.node is not None else self.where

    def error(self, message: str) -> ONNXImportError:
        return ONNXImportError(f"{self.label()}: {message}")

    def unsupported(self, message: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"{self.label()}: {message}")

    # ---- reading a node -----------------------------------------------------------------------------------
    def attr(self, name: str, default=None):
        from onnx import helper

        for a in self.node.attribute:
            if a.name == name:
                value = helper.get_attribute_value(a)
                if isinstance(value, bytes):
                    value = value.decode()
                if hasattr(value, "dims") and hasattr(value, "data_type"):  # a TensorProto
                    from onnx import numpy_helper

                    value = numpy_helper.to_array(value)
                return list(value) if isinstance(value, list | tuple) else value
        return default

    def inputs(self) -> list[str]:
        return list(self.node.input)

    def has(self, i: int) -> bool:
        return len(self.node.input) > i and self.node.input[i] != ""

    def const(self, name: str, what: str = "input") -> np.ndarray:
        if name not in self.consts:
            raise self.unsupported(f"{what} {name!r} is computed by the graph; convlens needs it constant here")
        return self.consts[name]

    def is_const(self, name: str) -> bool:
        return name in self.consts

    def value(self, name: str) -> tuple[str, tuple]:
        """(graph node, shape) of an ONNX value; a constant gets a Constant node."""
        if name in self.values:
            return self.values[name]
        if name in self.consts:
            if name not in self.const_nodes:
                arr = np.asarray(self.consts[name], np.float32)
                node = self.add("constant", [], {"shape": list(arr.shape)}, {"value": arr}, base=f"const_{name}",
                                bind=False)
                self.const_nodes[name] = node
            node = self.const_nodes[name]
            return node, self.node_shapes[node]
        raise self.error(f"input {name!r} is not produced by any earlier node, initializer or graph input")

    def shape(self, name: str) -> tuple:
        return self.value(name)[1]

    # ---- building -----------------------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        name = re.sub(r"\W+", "_", base).strip("_") or "node"
        if name[0].isdigit():
            name = f"n{name}"
        out, k = name, 1
        while out in self._names:
            k += 1
            out = f"{name}_{k}"
        self._names.add(out)
        return out

    def base_name(self) -> str:
        """A layer name from the node's: torch's "/layer1/conv1/Conv" → "layer1_conv1", convlens's own
        "conv1/Conv" → "conv1", the dynamo exporter's "node_relu_1" → "relu_1"."""
        n = self.node
        name = n.name or (n.output[0] if n.output else n.op_type)
        if name.endswith(f"/{n.op_type}") and len(name) > len(n.op_type) + 1:
            name = name[:-len(n.op_type) - 1]
        return name[5:] if name.startswith("node_") and len(name) > 5 else name

    def add(self, kind: str, inputs: list, keys: dict, weights: dict | None = None, base: str | None = None,
            bind: bool = True, output: int = 0) -> str:
        """Add a graph layer of spec type `kind` ("module" with class/args, or a graph op) taking the ONNX
        values (or graph nodes, given as ("node", name)) `inputs`; load `weights` into it; bind the
        node's output `output` to it. Returns the graph node's name."""
        from convlens.models.graph_spec import _build_graph_layer

        name = self.fresh(base or self.base_name())
        ins, shapes = [], []
        for i in inputs:
            node, shape = (i[1], self.node_shapes[i[1]]) if isinstance(i, tuple) else self.value(i)
            ins.append(node)
            shapes.append(shape)
        layer = {"name": name, "type": kind, **keys, "inputs": ins}
        try:
            module = _build_graph_layer(kind, {k: v for k, v in layer.items()}, f"layer {name}")
        except ValueError as e:
            raise self.unsupported(str(e)) from None
        for key, arr in (weights or {}).items():
            _assign(self, module, key, arr)
        try:
            out_shape = tuple(int(v) for v in module.output_shape(*shapes))
        except (ValueError, TypeError, IndexError) as e:
            got = " and ".join(str(tuple(s)) for s in shapes) or "no input"
            raise self.error(f"the shapes do not fit: {type(module).__name__} cannot take {got} "
                             f"(without the batch axis): {str(e).splitlines()[0]}") from None
        self.graph.add_node(name, module, ins, config=layer)
        self.node_shapes[name] = out_shape
        if bind and self.node is not None:
            self.values[self.node.output[output]] = (name, out_shape)
        return name

    def bind(self, onnx_name: str, node: str) -> None:
        self.values[onnx_name] = (node, self.node_shapes[node])

    def alias(self, onnx_out: str, onnx_in: str) -> None:
        """The node's output is its input (Identity, Dropout in eval, a no-op)."""
        if onnx_in in self.consts:
            self.consts[onnx_out] = self.consts[onnx_in]
        else:
            self.values[onnx_out] = self.value(onnx_in)


def _assign(ctx: Context, module, key: str, arr) -> None:
    target = getattr(module, key)
    arr = np.asarray(arr)
    if tuple(target.shape) != arr.shape:
        raise ctx.error(f"{key} of shape {arr.shape} does not fit {type(module).__name__}'s {tuple(target.shape)}")
    target._data = np.array(arr, dtype=target._data.dtype, order="C")  # a writable copy


def _input_shape(ctx: Context, value_info, given) -> tuple:
    dims = value_info.type.tensor_type.shape.dim
    static = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if given is not None:
        given = tuple(int(v) for v in given)
        if static and len(static) - 1 != len(given):
            raise ONNXImportError(f"{ctx.where}: input_shape={given} has {len(given)} axes, the model's input "
                                  f"{value_info.name!r} has {len(static) - 1} besides the batch axis")
        for a, (s, g) in enumerate(zip(static[1:], given), 1):
            if s is not None and s != g:
                raise ONNXImportError(f"{ctx.where}: input_shape={given} differs from the model's input "
                                      f"{value_info.name!r}, which fixes axis {a} to {s}")
        return given
    if not static:
        raise ONNXImportError(f"{ctx.where}: the input {value_info.name!r} has no shape; pass input_shape=(C, H, W)")
    if any(s is None for s in static[1:]):
        raise ONNXImportError(f"{ctx.where}: the input {value_info.name!r} has symbolic axes "
                              f"{[d.dim_param or '?' for d in dims]}; pass input_shape=(C, H, W) to fix all but the batch axis")
    return tuple(static[1:])


def load_with_info(source, input_shape=None):
    """``(module, info)``: the imported `GraphModule` (eval mode) and what the file says: ``input_shape``,
    and ``classes``, ``mean``, ``std`` when convlens wrote them (metadata_props), ``source``, ``producer``."""
    from onnx import numpy_helper

    proto, where = read_model(source)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 1)
    ctx = Context(where, opset)
    for init in proto.graph.initializer:
        ctx.consts[init.name] = numpy_helper.to_array(init)
    inputs = [i for i in proto.graph.input if i.name not in ctx.consts]
    if len(inputs) != 1:
        raise ONNXImportError(f"{where}: the graph has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); "
                              "convlens imports models with one input")
    elem = inputs[0].type.tensor_type.elem_type
    if elem not in (1, 10, 11):  # float, float16, double
        raise ONNXImportError(f"{where}: the input {inputs[0].name!r} is not a floating-point tensor (type {elem})")
    meta = {p.key: p.value for p in proto.metadata_props}
    if input_shape is None and "convlens.input_shape" in meta:
        input_shape = json.loads(meta["convlens.input_shape"])
    shape = _input_shape(ctx, inputs[0], input_shape)
    ctx.values[inputs[0].name] = ("input", shape)
    ctx.node_shapes["input"] = shape
    for index, node in enumerate(proto.graph.node):
        ctx.index, ctx.node = index, node
        if node.domain not in ("", "ai.onnx"):
            raise ctx.unsupported(f"operator {node.domain}.{node.op_type} is not a standard ONNX operator")
        convert = CONVERTERS.get(node.op_type)
        if convert is None:
            raise ctx.unsupported(f"operator {node.op_type} is not supported (supported: {', '.join(sorted(CONVERTERS))})")
        convert(ctx)
    ctx.node = None
    outputs = list(proto.graph.output)
    if len(outputs) != 1:
        raise ONNXImportError(f"{where}: the graph has {len(outputs)} outputs; convlens imports models with one")
    out = outputs[0].name
    if out in ctx.consts or out not in ctx.values:
        raise ONNXImportError(f"{where}: the output {out!r} does not depend on the input")
    ctx.graph.output_name = ctx.values[out][0]
    ctx.graph.spec_input_shape = list(shape)
    ctx.graph.eval()
    info = {"input_shape": list(shape), "source": where, "producer": f"{proto.producer_name} {proto.producer_version}".strip(),
            "opset": opset}
    for key in ("classes", "mean", "std", "dataset"):
        if f"convlens.{key}" in meta:
            try:
                info[key] = json.loads(meta[f"convlens.{key}"])
            except ValueError:
                info[key] = meta[f"convlens.{key}"]
    return ctx.graph, info


def load(source, input_shape=None):
    """Import an ONNX model (a path, bytes or `onnx.ModelProto`) as a convlens `GraphModule` in eval mode.

    `input_shape` (C, H, W) fixes the input's axes when the file leaves them symbolic (the batch axis
    always stays free). Raises ONNXImportError (a ValueError) naming the file and the node: an unreadable
    file, the first unsupported operator, shapes that do not fit.
    """
    return load_with_info(source, input_shape)[0]


SUPPORTED_OPS = tuple(sorted(CONVERTERS))
