"""A Keras-style model summary, from the layers' shape arithmetic alone (nothing is run).

    >>> print(convlens.summary(nn.Sequential(nn.Conv2d(3, 10, 5, padding=2)), (3, 32, 32)))
    Layer (type)            Output Shape          Param #
    =====================================================
    conv2d_1 (Conv2d)       (None, 10, 32, 32)    760
    =====================================================
    Total params: 760
    Trainable params: 760
    Non-trainable params: 0
    Activation memory (forward, per image): 40.0 KB

Each layer's output shape comes from its ``output_shape(input_shape)`` (the conv formula
W₂ = ⌊(W − F + 2P)/S⌋ + 1), so any input rank works: (C, L), (C, H, W) or (C, D, H, W). "Param #" counts
parameters only; BatchNorm's running mean and variance are buffers, not learned, and not counted.

The module is callable, ``convlens.summary(model, input_shape)``, and also offers `summary_rows`.
"""

from __future__ import annotations

import math
import sys
import types

import numpy as np

__all__ = ["summary", "summary_rows", "format_bytes", "forward_flops"]

_BYTES_PER_VALUE = 4  # float32


class SummaryText(str):
    """The summary table; shows as the table itself (not a quoted string) at the interactive prompt."""

    def __repr__(self) -> str:
        return str(self)


def _children(module) -> list:
    return list(module.named_children())


def _has_own_output_shape(module) -> bool:
    from convlens.nn import Module

    return type(module).output_shape is not Module.output_shape


def _rows_of(module, prefix: str) -> list:
    """(qualified name, module) for every layer listed: the leaves, descending into Sequentials and into
    any container that does not define its own output_shape."""
    out = []
    for name, child in _children(module):
        full = f"{prefix}{name}"
        if _children(child) and (type(child).__name__ == "Sequential" or not _has_own_output_shape(child)):
            out.extend(_rows_of(child, full + "."))
        else:
            out.append((full, child))
    return out


def _check_shape(input_shape) -> tuple[int, ...]:
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    if not shape or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape):
        raise ValueError(f"summary: input_shape must be positive integers without the batch axis, e.g. "
                         f"(3, 32, 32); got {input_shape!r}")
    return shape


def _hooked_pass(model, hooks, shape: tuple, dtype=np.float32) -> None:
    """One forward pass of a zeros image of `shape` through `model` with `hooks` ((module, hook) pairs)
    registered as forward hooks: evaluation mode (no batch-norm statistics updated, no dropout drawn),
    no gradient recording; the hooks are removed and the model's mode restored afterwards."""
    from convlens.autograd import no_grad
    from convlens.tensor import Tensor

    handles = [module.register_forward_hook(hook) for module, hook in hooks]
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            model(Tensor._wrap(np.zeros((1, *shape), dtype)))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)


def _traced_shapes(model, leaves, shape: tuple) -> dict | None:
    """None for a Sequential (each layer takes the one before: their output_shape() gives the shapes);
    for a model whose forward is its own code, every called leaf's output shape from one forward pass of
    zeros (forward hooks, evaluation mode); leaves its forward never calls are left out."""
    if type(model).__name__ == "Sequential" or not _children(model) or _has_own_output_shape(model):
        return None
    shapes = {}

    def record(key):
        def hook(m, inputs, output):
            shapes[key] = tuple(int(v) for v in output.shape[1:])
        return hook

    try:
        _hooked_pass(model, [(module, record(qualified)) for qualified, module in leaves], shape)
    except (ValueError, TypeError) as e:
        raise ValueError(f"summary: {type(model).__name__} cannot take an input of shape {shape}: {e}") from None
    return shapes


def forward_flops(model, input_shape) -> int:
    """Multiply-adds × 2 of one input of `input_shape`'s forward pass through the conv and linear layers
    (the work of a training step is about 3× this), counted by hooks on one pass of zeros in the model's
    dtype (`_hooked_pass`: no statistics updated, no random numbers drawn). A conv layer does
    C/groups·∏F multiply-adds per output value, a linear layer in_features."""
    total = 0

    def count(module, inputs, out):
        nonlocal total
        if type(module).__name__.startswith("Conv"):
            total += 2 * (module.in_channels // module.groups) * math.prod(module.kernel_size) * out.numel()
        elif type(module).__name__ == "Linear":
            total += 2 * module.in_features * out.numel()

    params = list(model.parameters())
    leaves = [m for m in model.modules() if not _children(m)]
    _hooked_pass(model, [(m, count) for m in leaves], tuple(input_shape), params[0].dtype if params else np.float32)
    return total


def summary_rows(model, input_shape) -> dict:
    """The summary as data (JSON-safe): ``{"input_shape": [...], "rows": [...], "totals": {...}}``.

    Each row: name (a Keras-style ``conv2d_1`` for numbered modules, else the module's name), module (its
    qualified name in the model), type, output_shape (without the batch axis), params, trainable (the
    number of those parameters that require gradients). Totals: total, trainable, non_trainable,
    buffers (values in buffers such as BatchNorm's running statistics), activation_bytes (float32
    forward activations per image: every listed layer's output) and param_bytes (float32 parameters).
    """
    shape = _check_shape(input_shape)
    first = shape
    leaves = _rows_of(model, "") if _children(model) else [(type(model).__name__.lower(), model)]
    counters: dict[str, int] = {}
    rows, activations = [], 0
    # a graph model (convlens.models.graph) gives each node's shape from that node's own inputs; a model
    # whose forward is Python code (a U-Net's skip concatenations) gives them by running it once
    graph_shapes = model.node_shapes(shape) if hasattr(model, "node_shapes") else _traced_shapes(model, leaves, shape)
    if graph_shapes is not None:
        leaves = [(q, m) for q, m in leaves if q in graph_shapes]
    for qualified, module in leaves:
        kind = type(module).__name__
        counters[kind] = counters.get(kind, 0) + 1
        last = qualified.rsplit(".", 1)[-1]
        name = f"{kind.lower()}_{counters[kind]}" if last.isdigit() else qualified
        try:
            shape = graph_shapes[qualified] if graph_shapes is not None else \
                tuple(int(v) for v in module.output_shape(shape))
        except NotImplementedError:
            raise ValueError(f"summary: layer {name} ({kind}) does not define output_shape()") from None
        except ValueError as e:
            raise ValueError(f"summary: layer {name} ({kind}) cannot take an input of shape {shape}: {e}") from None
        params = list(module.parameters())
        rows.append({"name": name, "module": qualified, "type": kind, "output_shape": list(shape),
                     "params": sum(p.numel() for p in params),
                     "trainable": sum(p.numel() for p in params if p.requires_grad)})
        activations += math.prod(shape)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    totals = {"total": total, "trainable": trainable, "non_trainable": total - trainable,
              "buffers": sum(b.numel() for b in model.buffers()),
              "activation_bytes": activations * _BYTES_PER_VALUE, "param_bytes": total * _BYTES_PER_VALUE}
    return {"input_shape": list(first), "rows": rows, "totals": totals}


def format_bytes(n: float) -> str:
    """1024-based: 480 B, 40.0 KB, 1.2 MB, 3.0 GB."""
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KB", "MB", "GB"):
        n /= 1024
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}"


def summary(model, input_shape, batch_size: int | None = None, file=None) -> SummaryText:
    """The Keras-style table for `model` fed inputs of `input_shape` (without the batch axis).

    Returns the text (which shows as the table at the interactive prompt); with `file` (say sys.stdout)
    it is also written there. `batch_size` replaces ``None`` in the shapes. A layer that cannot take its
    input (a wrong channel count, an image smaller than a kernel) raises ValueError naming the layer.
    """
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"summary: batch_size must be a positive integer or None, got {batch_size!r}")
    info = summary_rows(model, input_shape)
    batch = "None" if batch_size is None else str(batch_size)
    table = [(f"{r['name']} ({r['type']})", "(" + ", ".join([batch, *map(str, r["output_shape"])]) + ")",
              f"{r['params']:,}") for r in info["rows"]]
    w1 = max([24] + [len(a) + 2 for a, _, _ in table])
    w2 = max([22] + [len(b) + 2 for _, b, _ in table])
    width = w1 + w2 + max([7] + [len(c) for _, _, c in table])
    t = info["totals"]
    lines = [f"{'Layer (type)':<{w1}}{'Output Shape':<{w2}}Param #", "=" * width]
    lines += [f"{a:<{w1}}{b:<{w2}}{c}" for a, b, c in table]
    lines += ["=" * width, f"Total params: {t['total']:,}", f"Trainable params: {t['trainable']:,}",
              f"Non-trainable params: {t['non_trainable']:,}",
              f"Activation memory (forward, per image): {format_bytes(t['activation_bytes'])}"]
    text = SummaryText("\n".join(lines))
    if file is not None:
        print(text, file=file)
    return text


class _CallableModule(types.ModuleType):
    # `convlens.summary` is this module once imported (Python sets the package attribute), so calling it
    # must work too: convlens.summary(model, shape) and convlens.summary.summary_rows(...) both do.
    def __call__(self, *args, **kwargs):
        return summary(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
summary.summary_rows = summary_rows  # the same, if `convlens.summary` resolved to this function first
summary.format_bytes = format_bytes
summary.forward_flops = forward_flops
