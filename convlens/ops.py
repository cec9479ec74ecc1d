"""Element-wise, reduction and shape operations: each forward with its derivative right beside it."""

from __future__ import annotations

import numpy as np

from convlens.autograd import Function, unbroadcast
from convlens.kernels import elementwise
from convlens.ops_indexing import along

# ---- binary arithmetic with broadcasting -----------------------------------------------------------


class Add(Function):
    def forward(ctx, a, b):
        ctx.shapes = a.shape, b.shape
        return a + b

    def backward(ctx, grad):  # d(a+b)/da = 1, d(a+b)/db = 1
        return unbroadcast(grad, ctx.shapes[0]), unbroadcast(grad, ctx.shapes[1])


class Sub(Function):
    def forward(ctx, a, b):
        ctx.shapes = a.shape, b.shape
        return a - b

    def backward(ctx, grad):  # d(a-b)/da = 1, d(a-b)/db = -1
        return unbroadcast(grad, ctx.shapes[0]), unbroadcast(-grad, ctx.shapes[1])


class Mul(Function):
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    def backward(ctx, grad):  # d(ab)/da = b, d(ab)/db = a
        a, b = ctx.saved_tensors
        ga = unbroadcast(grad * b, a.shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(grad * a, b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    def backward(ctx, grad):  # d(a/b)/da = 1/b, d(a/b)/db = -a/b²
        a, b = ctx.saved_tensors
        ga = unbroadcast(grad / b, a.shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(-grad * a / (b * b), b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class MatMul(Function):
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    def backward(ctx, grad):  # C = AB: dA = dC Bᵀ, dB = Aᵀ dC (batched, then summed over broadcast dims)
        a, b = ctx.saved_tensors
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        if a.ndim == 1 and b.ndim == 1:  # a dot product: the gradient is 0-d
            g2 = grad.reshape(1, 1)
        else:
            g2 = grad[..., None, :] if a.ndim == 1 else grad
            g2 = g2[..., None] if b.ndim == 1 else g2
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape if a.ndim > 1 else (1, a.shape[0]))
            ga = ga.reshape(a.shape)
        if ctx.needs_input_grad[1]:
            gb = unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape if b.ndim > 1 else (b.shape[0], 1))
            gb = gb.reshape(b.shape)
        return ga, gb


class Pow(Function):
    def forward(ctx, a, b):
        out = a**b
        ctx.save_for_backward(a, b, out)
        return out

    def backward(ctx, grad):  # d(aᵇ)/da = b·aᵇ⁻¹, d(aᵇ)/db = aᵇ·ln a
        a, b, out = ctx.saved_tensors
        ga = unbroadcast(grad * b * a ** (b - 1), a.shape) if ctx.needs_input_grad[0] else None
        gb = None
        if ctx.needs_input_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = unbroadcast(grad * out * np.where(a > 0, np.log(np.where(a > 0, a, 1)), 0), b.shape)
        return ga, gb


# ---- unary ---------------------------------------------------------------------------------------


class Neg(Function):
    def forward(ctx, a):
        return -a

    def backward(ctx, grad):  # d(-a)/da = -1
        return -grad


class PowScalar(Function):
    def forward(ctx, a, exponent):
        ctx.save_for_backward(a)
        ctx.exponent = exponent
        return a**exponent

    def backward(ctx, grad):  # d(aᵖ)/da = p·aᵖ⁻¹
        (a,) = ctx.saved_tensors
        p = ctx.exponent
        return grad * (p * a ** (p - 1)).astype(grad.dtype, copy=False)


class Exp(Function):
    def forward(ctx, a):
        out = np.exp(a)
        ctx.save_for_backward(out)
        return out

    def backward(ctx, grad):  # d(eᵃ)/da = eᵃ
        (out,) = ctx.saved_tensors
        return grad * out


class Log(Function):
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.log(a)

    def backward(ctx, grad):  # d(ln a)/da = 1/a
        (a,) = ctx.saved_tensors
        return grad / a


class Sqrt(Function):
    def forward(ctx, a):
        out = np.sqrt(a)
        ctx.save_for_backward(out)
        return out

    def backward(ctx, grad):  # d(√a)/da = 1/(2√a)
        (out,) = ctx.saved_tensors
        return grad / (2 * out)


class Abs(Function):
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.abs(a)

    def backward(ctx, grad):  # d|a|/da = sign(a)
        (a,) = ctx.saved_tensors
        return grad * np.sign(a)


class ReLU(Function):
    def forward(ctx, a):
        out = elementwise.relu(a)  # max(a, 0), one compiled pass on every core where it can
        ctx.save_for_backward(out)
        return out

    def backward(ctx, grad):  # d max(a, 0)/da = 1 where a > 0 (equivalently where the output > 0)
        (out,) = ctx.saved_tensors
        if grad.dtype == out.dtype and grad.dtype in (np.float32, np.float64):  # one compiled pass
            return elementwise.relu_grad(grad, out)
        return np.where(out > 0, grad, 0).astype(grad.dtype, copy=False)


class Sigmoid(Function):
    def forward(ctx, a):
        # σ(a) = 1/(1+e⁻ᵃ), computed as ½(1 + tanh(a/2)) which never overflows
        out = (0.5 * (1 + np.tanh(0.5 * a))).astype(a.dtype, copy=False)
        ctx.save_for_backward(out)
        return out

    def backward(ctx, grad):  # dσ/da = σ(1−σ)
        (out,) = ctx.saved_tensors
        return grad * out * (1 - out)


class Tanh(Function):
    def forward(ctx, a):
        out = np.tanh(a)
        ctx.save_for_backward(out)
        return out

    def backward(ctx, grad):  # d tanh(a)/da = 1 − tanh²(a)
        (out,) = ctx.saved_tensors
        return grad * (1 - out * out)


class Clamp(Function):
    def forward(ctx, a, low=None, high=None):
        ctx.save_for_backward(a)
        ctx.low, ctx.high = low, high
        return np.clip(a, low, high)

    def backward(ctx, grad):  # 1 inside [low, high], 0 where clipped
        (a,) = ctx.saved_tensors
        mask = np.ones(a.shape, dtype=bool)
        if ctx.low is not None:
            mask &= a >= ctx.low
        if ctx.high is not None:
            mask &= a <= ctx.high
        return np.where(mask, grad, 0).astype(grad.dtype, copy=False)


class Cast(Function):
    def forward(ctx, a, dtype):
        ctx.dtype_in = a.dtype
        return a.astype(dtype)

    def backward(ctx, grad):
        return grad.astype(ctx.dtype_in)


class Clone(Function):
    def forward(ctx, a):
        return a.copy()

    def backward(ctx, grad):
        return grad


# ---- reductions ----------------------------------------------------------------------------------


def _expand_reduced(grad, shape, axis, keepdims):
    """Re-insert reduced axes so that `grad` broadcasts against the input of shape `shape`."""
    if axis is not None and not keepdims:
        grad = np.expand_dims(grad, axis)
    elif axis is None and not keepdims:
        grad = np.reshape(grad, (1,) * len(shape))
    return grad


class Sum(Function):
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        return np.asarray(a.sum(axis=axis, keepdims=keepdims))

    def backward(ctx, grad):  # every summand gets the gradient of the sum
        return np.broadcast_to(_expand_reduced(grad, ctx.shape, ctx.axis, ctx.keepdims), ctx.shape).copy()


class Mean(Function):
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        ctx.count = a.size if axis is None else int(np.prod([a.shape[i] for i in axis]))
        return np.asarray(a.mean(axis=axis, keepdims=keepdims), dtype=a.dtype)

    def backward(ctx, grad):  # d mean/da_i = 1/n
        g = _expand_reduced(grad, ctx.shape, ctx.axis, ctx.keepdims) / ctx.count
        return np.broadcast_to(g, ctx.shape).astype(grad.dtype)


class Max(Function):
    def forward(ctx, a, axis=None, keepdims=False):
        out = np.asarray(a.max(axis=axis, keepdims=True))
        ctx.save_for_backward(a, out)
        ctx.axis, ctx.keepdims = axis, keepdims
        return out if keepdims else (out.reshape(()) if axis is None else np.squeeze(out, axis))

    def backward(ctx, grad):  # the gradient goes to the maxima, shared equally between ties
        a, out = ctx.saved_tensors
        mask = (a == out).astype(grad.dtype)
        mask /= mask.sum(axis=ctx.axis, keepdims=True)
        return mask * _expand_reduced(grad, a.shape, ctx.axis, ctx.keepdims)


# ---- shape -------------------------------------------------------------------------------------


class Reshape(Function):
    def forward(ctx, a, shape):
        ctx.shape_in = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape a tensor of shape {a.shape} ({a.size} elements) to {shape}"
            ) from None

    def backward(ctx, grad):
        return grad.reshape(ctx.shape_in)


class Permute(Function):
    def forward(ctx, a, dims):
        if sorted(dims) != list(range(a.ndim)):
            raise ValueError(f"permute: dims {dims} are not a permutation of the {a.ndim} axes of {a.shape}")
        ctx.dims = dims
        return a.transpose(dims)

    def backward(ctx, grad):  # undo the permutation
        return grad.transpose(np.argsort(ctx.dims))


class Expand(Function):
    def forward(ctx, a, shape):
        ctx.shape_in = a.shape
        return np.broadcast_to(a, shape)

    def backward(ctx, grad):
        return unbroadcast(grad, ctx.shape_in)


class GetItem(Function):
    def forward(ctx, a, index):
        ctx.shape_in, ctx.dtype_in, ctx.index = a.shape, a.dtype, index
        return a[index]

    def backward(ctx, grad):  # scatter back; np.add.at only where fancy indices may repeat
        out = np.zeros(ctx.shape_in, dtype=grad.dtype)
        parts = ctx.index if isinstance(ctx.index, tuple) else (ctx.index,)
        if any(isinstance(i, np.ndarray | list) for i in parts):
            np.add.at(out, ctx.index, grad)
        else:
            out[ctx.index] = grad
        return out


class Cat(Function):
    def forward(ctx, *arrays, axis=0):
        ctx.axis = axis
        ctx.splits = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return np.concatenate(arrays, axis=axis)

    def backward(ctx, grad):
        return tuple(np.split(grad, ctx.splits, axis=ctx.axis))


def cat(tensors, dim: int = 0):
    """Concatenate tensors along an existing dimension (`torch.cat`)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat(): expected a non-empty list of tensors")
    return Cat.apply(*tensors, axis=dim % tensors[0].ndim)


concatenate = cat


def stack(tensors, dim: int = 0):
    """Stack tensors along a new dimension (`torch.stack`)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack(): expected a non-empty list of tensors")
    dim = dim % (tensors[0].ndim + 1)
    return cat([t.unsqueeze(dim) for t in tensors], dim=dim)


# ---- in-place updates as graph operations (Tensor._inplace records them while grad is on) ----------


class SetItem(Function):
    def forward(ctx, a, value, index):
        ctx.index, ctx.value_shape = index, value.shape
        out = a.copy()
        out[index] = value
        return out

    def backward(ctx, grad):  # the overwritten cells pass no gradient to `a`; `value` gets theirs
        ga = None
        if ctx.needs_input_grad[0]:
            ga = grad.copy()
            ga[ctx.index] = 0
        gv = unbroadcast(grad[ctx.index], ctx.value_shape) if ctx.needs_input_grad[1] else None
        return ga, gv


class CopyFrom(Function):
    def forward(ctx, a, src):
        ctx.src_shape, ctx.src_dtype = src.shape, src.dtype
        return np.broadcast_to(src, a.shape).astype(a.dtype, copy=True)

    def backward(ctx, grad):  # a's old values are gone (no gradient); src gets it, summed over broadcasting
        return None, unbroadcast(grad, ctx.src_shape).astype(ctx.src_dtype, copy=False)


class Fill(Function):
    def forward(ctx, a, value):
        return np.full_like(a, value)

    def backward(ctx, grad):  # a constant: nothing flows back
        return np.zeros_like(grad)


# ---- element-wise maximum and the (values, indices) reductions ---------------------------------------


class Maximum(Function):
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.maximum(a, b)

    def backward(ctx, grad):  # to the larger input; ties share it equally (as PyTorch)
        a, b = ctx.saved_tensors
        share = np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0)).astype(grad.dtype)
        ga = unbroadcast(grad * share, a.shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(grad * (1 - share), b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class TakeAlong(Function):
    """``out = take_along_axis(a, indices, axis)``: the values picked by ``max(dim)``, ``sort``,
    ``topk``, ``gather`` (whose index may be shorter than `a` on the other axes). The gradient goes
    back to exactly the picked cells."""

    def forward(ctx, a, indices, axis):
        ctx.shape, ctx.where = a.shape, along(indices, axis)
        return a[ctx.where]

    def backward(ctx, grad):
        out = np.zeros(ctx.shape, dtype=grad.dtype)
        np.add.at(out, ctx.where, grad)  # an index picked twice (gather) receives both gradients
        return out
