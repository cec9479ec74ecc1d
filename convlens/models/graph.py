"""Graph models: nets with branches (residual adds, concatenations, layers with several inputs).

A `GraphModule` runs named nodes in order; each node is a module and the names of the values it takes,
graph inputs or earlier nodes' outputs:

    g = GraphModule(inputs=["input"])
    g.add_node("conv1", nn.Conv2d(16, 16, 3, padding=1), ["input"])
    g.add_node("relu1", nn.ReLU(), ["conv1"])
    g.add_node("conv2", nn.Conv2d(16, 16, 3, padding=1), ["relu1"])
    g.add_node("add", Add(), ["conv2", "input"])          # the skip connection
    y = g(x)                                               # the last node's output (or output=...)

Every node module is a direct child under its node name, so state_dict keys, hooks, `summary` and the
web app's Explain page see the same names. Ordinary Python `Module.forward` code with branches works
too; a GraphModule is the form that can be written as data (`convlens.models.graph_spec`), saved in a
checkpoint, exported to ONNX and imported from it.

`node_shapes(input_shape)` works out every node's output shape from the modules' ``output_shape``
(shapes without the batch axis), naming the node whose inputs do not fit.
"""

from __future__ import annotations

from collections import OrderedDict

from convlens.nn.modules.module import Module

__all__ = ["GraphModule", "GraphError"]


class GraphError(ValueError):
    """A graph that cannot be built or run: the message names the node."""


class GraphModule(Module):
    """Named nodes run in order, each a module applied to earlier values (see the module docstring).

    Args:
        inputs: names of the graph's inputs, in call order (default one input, ``"input"``).
        output: the node whose value is returned (default the last node).

    Shape:
        as its nodes: ``node_shapes`` and ``output_shape`` work them out.
    """

    def __init__(self, inputs=("input",), output: str | None = None):
        super().__init__()
        self.input_names = [str(n) for n in inputs]
        self.output_name = output
        self.graph: list[tuple[str, list[str]]] = []  # (node name, input names) in run order
        self.configs: dict[str, dict] = {}  # node name → its spec layer, when known (graph_spec)

    def add_node(self, name: str, module: Module, inputs, config: dict | None = None) -> GraphModule:
        """Append a node; `inputs` names graph inputs or earlier nodes. Returns self."""
        inputs = [str(i) for i in ([inputs] if isinstance(inputs, str) else inputs)]
        known = set(self.input_names) | {n for n, _ in self.graph}
        if name in known:
            raise GraphError(f"graph node {name!r}: the name is already used")
        for i in inputs:
            if i not in known:
                raise GraphError(f"graph node {name!r}: input {i!r} is neither a graph input "
                                 f"({', '.join(self.input_names)}) nor an earlier node")
        self.add_module(name, module)
        self.graph.append((name, inputs))
        if config is not None:
            self.configs[name] = config
        return self

    @property
    def output(self) -> str:
        if self.output_name is not None:
            return self.output_name
        if not self.graph:
            return self.input_names[0]
        return self.graph[-1][0]

    def forward(self, *inputs):
        if len(inputs) != len(self.input_names):
            raise GraphError(f"GraphModule: expected {len(self.input_names)} input(s) "
                             f"({', '.join(self.input_names)}), got {len(inputs)}")
        values = dict(zip(self.input_names, inputs))
        modules = self._modules
        for name, args in self.graph:
            values[name] = modules[name](*[values[a] for a in args])
        return values[self.output]

    def node_shapes(self, *input_shapes) -> OrderedDict:
        """Every node's output shape (without the batch axis) for inputs of `input_shapes`:
        ``{node name: shape}`` in run order. A node whose inputs do not fit raises GraphError naming it."""
        if len(input_shapes) != len(self.input_names):
            raise GraphError(f"GraphModule: expected {len(self.input_names)} input shape(s), got {len(input_shapes)}")
        shapes = dict(zip(self.input_names, (tuple(s) for s in input_shapes)))
        out = OrderedDict()
        for name, args in self.graph:
            module = self._modules[name]
            ins = [shapes[a] for a in args]
            try:
                shape = module.output_shape(*ins)
            except (ValueError, TypeError, IndexError, NotImplementedError) as e:
                got = " and ".join(str(tuple(s)) for s in ins) or "no input"
                raise GraphError(f"graph node {name!r} ({type(module).__name__}): cannot take {got}: "
                                 f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
            shapes[name] = out[name] = tuple(int(v) for v in shape)
        return out

    def node_input_shapes(self, *input_shapes) -> dict:
        """``{node name: [shape of each input]}`` (without the batch axis)."""
        shapes = dict(zip(self.input_names, (tuple(s) for s in input_shapes)))
        shapes.update(self.node_shapes(*input_shapes))
        return {name: [shapes[a] for a in args] for name, args in self.graph}

    def output_shape(self, *input_shapes):
        shapes = self.node_shapes(*input_shapes)
        return shapes[self.output] if self.graph else tuple(input_shapes[0])

    def to_graph_spec(self, input_shape=None) -> dict:
        """This graph as a spec dict (`convlens.models.graph_spec`): needs every node's layer (nodes
        built from a spec or by the ONNX importer have one)."""
        from convlens.models.graph_spec import graph_to_spec

        return graph_to_spec(self, input_shape)

    def extra_repr(self) -> str:
        return f"inputs={self.input_names}, output={self.output!r}"

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}(inputs={self.input_names})"]
        for name, args in self.graph:
            mod = repr(self._modules[name]).replace("\n", "\n    ")
            lines.append(f"  ({name}): {mod} <- {', '.join(args)}")
        return "\n".join(lines) + f"\n  -> {self.output}"
