"""The layers a graph model needs besides torch.nn's: the ways two branches meet, and tensor reshaping.

Each takes its inputs as separate arguments, ``forward(*inputs)``, and ``output_shape(*input_shapes)``
(shapes without the batch axis) says what comes out, so a graph model can work out every node's shape
before running anything (`convlens.summary`, the web app's Explain page).

    Add         y = a + b (+ c ...)   the residual connection of a ResNet block
    Sub, Mul, Div                     element-wise, NumPy/torch broadcasting
    Concat(dim) y = [a, b, ...]       along `dim` (1: channels, as DenseNet/Inception join branches)
    MatMul      y = a @ b
    Reshape     ONNX's Reshape: 0 copies that axis of the input, −1 is inferred (batch axis included)
    Slice       ONNX's Slice with constant bounds
    Pad         constant / reflect / replicate / circular padding as `F.pad`
    Constant    a fixed tensor (a buffer, saved in checkpoints), no input
    Erf         the Gauss error function, which torch's GELU exports to below opset 20
"""

from __future__ import annotations

import math
from functools import reduce

import numpy as np

from convlens.autograd import Function
from convlens.errors import ShapeError
from convlens.nn import functional as F
from convlens.nn.modules.module import Module

__all__ = ["Add", "Sub", "Mul", "Div", "Concat", "MatMul", "Reshape", "Pad", "Slice", "Constant", "Erf",
           "broadcast_shapes", "GRAPH_OPS"]


def broadcast_shapes(where: str, *shapes) -> tuple[int, ...]:
    """NumPy's broadcasting of shapes given with the batch axis removed (the batch axis is common)."""
    try:
        return tuple(np.broadcast_shapes(*[tuple(s) for s in shapes]))
    except ValueError:
        raise ShapeError(f"{where}: input shapes {' and '.join(str(tuple(s)) for s in shapes)} do not broadcast "
                         "(without the batch axis)") from None


class _Elementwise(Module):
    _symbol = "+"

    def forward(self, *inputs):
        if len(inputs) < 2:
            raise ValueError(f"{type(self).__name__}: needs at least two inputs, got {len(inputs)}")
        return reduce(self._op, inputs)

    def output_shape(self, *input_shapes):
        return broadcast_shapes(type(self).__name__, *input_shapes)


class Add(_Elementwise):
    """y = a + b (+ ...), broadcasting. The skip connection of a residual block: ``out = relu(x + f(x))``.

    Shape:
        inputs that broadcast together → their broadcast shape
    """

    @staticmethod
    def _op(a, b):
        return a + b


class Sub(_Elementwise):
    """y = a − b, broadcasting."""

    @staticmethod
    def _op(a, b):
        return a - b


class Mul(_Elementwise):
    """y = a · b element-wise, broadcasting (a gate, a channel scale)."""

    @staticmethod
    def _op(a, b):
        return a * b


class Div(_Elementwise):
    """y = a / b element-wise, broadcasting."""

    @staticmethod
    def _op(a, b):
        return a / b


class Concat(Module):
    """Joins its inputs along `dim` (counting the batch axis as 0, as torch.cat; 1 is channels).

    Shape:
        (N, C₁, *S), (N, C₂, *S), ... → (N, C₁ + C₂ + ..., *S) for dim=1
    """

    def __init__(self, dim: int = 1):
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int) or dim == 0:
            raise ValueError(f"Concat: dim must be a non-zero integer (0 is the batch axis), got {dim!r}")
        self.dim = dim

    def forward(self, *inputs):
        from convlens import cat

        return cat(list(inputs), self.dim)

    def output_shape(self, *input_shapes):
        shapes = [tuple(s) for s in input_shapes]
        n = len(shapes[0]) + 1
        if not -n < self.dim < n:
            raise ShapeError(f"Concat(dim={self.dim}): inputs of rank {n} (with the batch axis) have no axis {self.dim}")
        axis = self.dim % n - 1
        for s in shapes[1:]:
            if len(s) != len(shapes[0]) or any(a != b for i, (a, b) in enumerate(zip(s, shapes[0])) if i != axis):
                raise ShapeError(f"Concat(dim={self.dim}): input shapes {' and '.join(map(str, shapes))} differ "
                                 f"outside axis {self.dim}")
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return tuple(out)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class MatMul(Module):
    """y = a @ b (torch.matmul); both inputs come from the graph."""

    def forward(self, a, b):
        return a @ b

    def output_shape(self, a, b):
        a, b = tuple(a), tuple(b)
        if a[-1] != b[-2 if len(b) > 1 else 0]:
            raise ShapeError(f"MatMul: shapes {a} and {b} cannot be multiplied ({a[-1]} against "
                             f"{b[-2 if len(b) > 1 else 0]})")
        return tuple(np.matmul(np.empty((1, *a), np.int8), np.empty((1, *b), np.int8)).shape[1:])


def _reshape_target(shape: tuple, full_in: tuple, where: str) -> tuple:
    """ONNX Reshape's rule on a full shape (batch axis included): 0 copies, −1 is inferred."""
    out = [full_in[i] if s == 0 else s for i, s in enumerate(shape)]
    total = math.prod(full_in)
    if out.count(-1) > 1:
        raise ShapeError(f"{where}: at most one −1 in the target shape {list(shape)}")
    if -1 in out:
        rest = math.prod(s for s in out if s != -1)
        if rest == 0 or total % rest:
            raise ShapeError(f"{where}: cannot reshape {full_in} into {list(shape)}")
        out[out.index(-1)] = total // rest
    if math.prod(out) != total:
        raise ShapeError(f"{where}: cannot reshape {full_in} ({total} values) into {tuple(out)}")
    return tuple(out)


class Reshape(Module):
    """ONNX's Reshape with the batch axis written: ``Reshape([0, -1])`` flattens each item. A 0 keeps
    that axis of the input (so the batch size can vary), a −1 is inferred.

    Shape:
        (N, *S) → the target shape
    """

    def __init__(self, shape):
        super().__init__()
        shape = [int(s) for s in shape]
        if not shape or any(s < -1 for s in shape):
            raise ValueError(f"Reshape: shape must be integers ≥ −1, got {shape!r}")
        self.shape = shape

    def forward(self, input):
        return input.reshape(*_reshape_target(tuple(self.shape), tuple(input.shape), f"Reshape({self.shape})"))

    def output_shape(self, input_shape):
        if self.shape[0] not in (0, -1):
            raise ShapeError(f"Reshape({self.shape}): the first axis must stay the batch axis (0 or −1)")
        full = _reshape_target(tuple(self.shape), (2, *input_shape), f"Reshape({self.shape})")
        return full[1:]

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class Pad(Module):
    """`F.pad` as a layer: ``pad`` is torch's (last axis first: left, right, top, bottom, ...)."""

    def __init__(self, pad, mode: str = "constant", value: float = 0.0):
        super().__init__()
        self.pad, self.mode, self.value = [int(p) for p in pad], mode, float(value)
        if len(self.pad) % 2 or any(p < 0 for p in self.pad):
            raise ValueError(f"Pad: pad must be an even number of non-negative integers, got {pad!r}")
        if mode not in ("constant", "reflect", "replicate", "circular"):
            raise ValueError(f"Pad: mode must be constant, reflect, replicate or circular, got {mode!r}")

    def forward(self, input):
        if self.mode == "constant" and not np.isfinite(self.value):
            # F.pad's constant pad multiplies through; -inf (a max pool's pad) is written directly
            from convlens.tensor import Tensor

            return F.pad(input, self.pad, "constant", 0.0) + Tensor._wrap(self._mask(tuple(input.shape)))
        return F.pad(input, self.pad, self.mode, self.value)

    def _mask(self, shape):
        mask = np.full(self.output_shape(shape[1:]), self.value, np.float32)
        inner = tuple(slice(lo, lo + s) for (lo, _), s in zip(self._pairs(len(shape) - 1), shape[1:]))
        mask[inner] = 0
        return mask

    def _pairs(self, rank: int):
        pairs = [(self.pad[2 * i], self.pad[2 * i + 1]) for i in range(len(self.pad) // 2)][::-1]
        return [(0, 0)] * (rank - len(pairs)) + pairs

    def output_shape(self, input_shape):
        if len(self.pad) // 2 > len(input_shape):
            raise ShapeError(f"Pad({self.pad}): pads {len(self.pad) // 2} axes of an input of shape {tuple(input_shape)}")
        return tuple(s + lo + hi for s, (lo, hi) in zip(input_shape, self._pairs(len(input_shape))))

    def extra_repr(self) -> str:
        return f"pad={self.pad}, mode={self.mode!r}" + (f", value={self.value}" if self.value else "")


def _open(v: int):
    """ONNX writes "to the end" as a huge bound (INT64_MAX); Python's is None."""
    return None if abs(v) >= 2**62 else v


class Slice(Module):
    """ONNX's Slice with constant bounds: ``x[..., starts[i]:ends[i]:steps[i], ...]`` on `axes` (the
    batch axis is 0 and is not sliced)."""

    def __init__(self, starts, ends, axes, steps=None):
        super().__init__()
        self.starts, self.ends, self.axes = [int(v) for v in starts], [int(v) for v in ends], [int(v) for v in axes]
        self.steps = [int(v) for v in steps] if steps is not None else [1] * len(self.axes)
        if not len(self.starts) == len(self.ends) == len(self.axes) == len(self.steps):
            raise ValueError("Slice: starts, ends, axes and steps must have the same length")
        if any(a == 0 for a in self.axes) or any(s == 0 for s in self.steps):
            raise ValueError(f"Slice: axes must not include the batch axis 0 and steps must be non-zero, got "
                             f"axes={self.axes}, steps={self.steps}")

    def _index(self, rank: int):
        index = [slice(None)] * rank
        for a, s, e, st in zip(self.axes, self.starts, self.ends, self.steps):
            index[a % rank] = slice(_open(s), _open(e), st)
        return tuple(index)

    def forward(self, input):
        return input[self._index(input.ndim)]

    def output_shape(self, input_shape):
        probe = np.empty((1, *input_shape), np.int8)
        if any(a % probe.ndim == 0 for a in self.axes) or any(not -probe.ndim <= a < probe.ndim for a in self.axes):
            raise ShapeError(f"Slice(axes={self.axes}): not axes of an input of shape {tuple(input_shape)} "
                             "(plus the batch axis)")
        return probe[self._index(probe.ndim)].shape[1:]

    def extra_repr(self) -> str:
        return f"starts={self.starts}, ends={self.ends}, axes={self.axes}, steps={self.steps}"


class Constant(Module):
    """A fixed tensor as a node without inputs; `value` is a buffer, so checkpoints carry it.

    Shape:
        () → the value's shape (it has no batch axis; it broadcasts against the ones that do)
    """

    def __init__(self, value=None, shape=None):
        super().__init__()
        if value is None:
            value = np.zeros(tuple(shape or ()), np.float32)
        a = np.asarray(getattr(value, "_data", value))
        self.register_buffer("value", a.astype(np.float32) if a.dtype.kind == "f" else a)

    def forward(self):
        return self.value

    def output_shape(self, *input_shapes):
        # the value has no batch axis of its own: an (1, C, 1, 1) constant acts as a (C, 1, 1) one
        shape = tuple(self.value.shape)
        return shape[1:] if len(shape) >= 2 and shape[0] == 1 else shape

    def extra_repr(self) -> str:
        return f"shape={tuple(self.value.shape)}"


def _erf(x: np.ndarray) -> np.ndarray:
    from convlens.kernels.special import erf  # math.erf compiled by numba (NumPy has no erf)

    return erf(x)


class _ErfFn(Function):
    """erf(x); d/dx erf(x) = 2/√π · e^(−x²)."""

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _erf(x)

    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (2 / math.sqrt(math.pi)) * np.exp(-x * x).astype(x.dtype)


class Erf(Module):
    """y = erf(x) = 2/√π ∫₀ˣ e^(−t²) dt, element-wise (what torch's GELU becomes in ONNX below opset 20)."""

    def forward(self, input):
        return _ErfFn.apply(input)

    def output_shape(self, input_shape):
        return tuple(input_shape)


GRAPH_OPS = {"Add": Add, "Sub": Sub, "Mul": Mul, "Div": Div, "Concat": Concat, "MatMul": MatMul,
             "Reshape": Reshape, "Pad": Pad, "Slice": Slice, "Constant": Constant, "Erf": Erf}
