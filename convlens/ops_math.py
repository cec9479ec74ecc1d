"""More element-wise and reduction ops: sin/cos, piecewise-constant functions (floor, sign...),
remainder, product, cumulative sum and the 2-norm, each forward beside its derivative."""

from __future__ import annotations

import numpy as np

from convlens.autograd import Function, unbroadcast
from convlens.ops import _expand_reduced


class Sin(Function):
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.sin(a)

    def backward(ctx, grad):  # d sin a = cos a
        return grad * np.cos(ctx.saved_tensors[0])


class Cos(Function):
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.cos(a)

    def backward(ctx, grad):  # d cos a = −sin a
        return -grad * np.sin(ctx.saved_tensors[0])


class Log1p(Function):
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.log1p(a)

    def backward(ctx, grad):  # d ln(1 + a) = 1/(1 + a)
        return grad / (1 + ctx.saved_tensors[0])


class PiecewiseConstant(Function):
    """floor, ceil, round, trunc, sign: flat almost everywhere, so the gradient is 0 (as PyTorch)."""

    def forward(ctx, a, fn, decimals=0):
        out = np.round(a, decimals) if fn == "round" else getattr(np, fn)(a)
        return out.astype(a.dtype, copy=False)

    def backward(ctx, grad):
        return np.zeros_like(grad)


class Remainder(Function):
    """a mod b with the sign of b (Python's %, ``torch.remainder``)."""

    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.mod(a, b)

    def backward(ctx, grad):  # a mod b = a − b·⌊a/b⌋: ∂a = 1, ∂b = −⌊a/b⌋
        a, b = ctx.saved_tensors
        ga = unbroadcast(grad, a.shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(-grad * np.floor(a / b), b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


def _exclusive_cumprod(a: np.ndarray, axis: int) -> np.ndarray:
    """Products of everything before each position along `axis` (1 at the start)."""
    shifted = np.ones_like(a)
    index = [slice(None)] * a.ndim
    index[axis] = slice(1, None)
    body = [slice(None)] * a.ndim
    body[axis] = slice(0, -1)
    shifted[tuple(index)] = a[tuple(body)]
    return np.cumprod(shifted, axis=axis)


class Prod(Function):
    """Product over one axis (or all cells when axis is None)."""

    def forward(ctx, a, axis=None, keepdims=False):
        ctx.shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        ctx.save_for_backward(a)
        return np.asarray(np.prod(a, axis=axis, keepdims=keepdims))

    def backward(ctx, grad):
        # ∂(Π a)/∂a_i = Π_{j≠i} a_j = (product before i)·(product after i): exact even where a_i = 0
        (a,) = ctx.saved_tensors
        flat = a.reshape(-1) if ctx.axis is None else a
        axis = 0 if ctx.axis is None else ctx.axis
        before = _exclusive_cumprod(flat, axis)
        after = np.flip(_exclusive_cumprod(np.flip(flat, axis), axis), axis)
        others = (before * after).reshape(a.shape)
        axes = None if ctx.axis is None else (ctx.axis,)
        return others * _expand_reduced(grad, ctx.shape, axes, ctx.keepdims)


class Cumsum(Function):
    def forward(ctx, a, axis):
        ctx.axis = axis
        return np.cumsum(a, axis=axis, dtype=a.dtype if a.dtype.kind == "f" else None)

    def backward(ctx, grad):  # out_j = Σ_{i≤j} a_i  ⇒  ∂L/∂a_i = Σ_{j≥i} g_j, a reversed cumulative sum
        return np.flip(np.cumsum(np.flip(grad, ctx.axis), axis=ctx.axis), ctx.axis).copy()


class Norm2(Function):
    """The Euclidean norm √(Σ a²) over `axis` (all cells when None)."""

    def forward(ctx, a, axis=None, keepdims=False):
        out = np.sqrt(np.sum(a * a, axis=axis, keepdims=True))
        ctx.save_for_backward(a, out)
        ctx.axis, ctx.keepdims = axis, keepdims
        return out if keepdims else (out.reshape(()) if axis is None else np.squeeze(out, axis))

    def backward(ctx, grad):  # ∂‖a‖/∂a = a/‖a‖, taken as 0 where ‖a‖ = 0 (PyTorch's subgradient)
        a, out = ctx.saved_tensors
        g = _expand_reduced(grad, a.shape, ctx.axis, ctx.keepdims)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(out > 0, g / out, 0)
        return (a * scale).astype(a.dtype, copy=False)
