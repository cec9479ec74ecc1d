"""Loss functions: cross-entropy (fused log-softmax + NLL), negative log-likelihood, mean squared error.

Cross-entropy of logits z (classes on axis 1) against a target distribution q per sample:

    ℓ = −Σⱼ qⱼ log softmax(z)ⱼ,     ∂ℓ/∂zⱼ = softmax(z)ⱼ·Σₖ qₖ − qⱼ.

For a class index y with class weights w and label smoothing ε over C classes,
qⱼ = (1−ε)·w_y·[j = y] + (ε/C)·wⱼ (PyTorch's definition), so without weights or smoothing the gradient
is softmax − onehot. ``reduction="mean"`` divides by Σ w_y over the non-ignored samples.
"""

from __future__ import annotations

import numpy as np

from convlens.autograd import Function
from convlens.tensor import Tensor

_REDUCTIONS = ("none", "mean", "sum")


def legacy_reduction(size_average, reduce, reduction: str) -> str:
    """PyTorch's deprecated size_average/reduce arguments, when given, decide the reduction."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return "mean" if size_average and reduce else "sum" if reduce else "none"


def _reduce(per_sample: np.ndarray, reduction: str, denominator) -> np.ndarray:
    if reduction == "none":
        return per_sample
    total = per_sample.sum()
    return np.asarray(total if reduction == "sum" else total / denominator, dtype=per_sample.dtype)


def _grad_scale(grad: np.ndarray, reduction: str, denominator) -> np.ndarray:
    """The upstream gradient as a factor per sample, with a class axis (axis 1) to broadcast over."""
    if reduction == "none":
        return np.expand_dims(grad, 1)
    if reduction == "mean" and not np.any(denominator):
        # every target ignored (or of weight 0): the loss is 0/0 = NaN, but no sample contributes, so
        # the gradient is 0 everywhere (as PyTorch's), not 0·NaN
        return np.zeros_like(grad)
    return grad / denominator if reduction == "mean" else grad


def _check_common(where: str, input, reduction: str) -> None:
    if not isinstance(input, Tensor):
        raise ValueError(f"{where}: expected a Tensor as input, got {type(input).__name__}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{where}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _class_targets(where: str, input: Tensor, target, weight, ignore_index: int):
    """Validate class-index targets; return (target array, valid mask, per-sample weight w_y, weights)."""
    t = target._data if isinstance(target, Tensor) else np.asarray(target)
    expected = (input.shape[0],) + input.shape[2:]
    if t.dtype.kind not in "iu":
        raise ValueError(f"{where}: expected integer class indices (int64) as target, got dtype {t.dtype}")
    if t.shape != expected:
        raise ValueError(f"{where}: expected target of shape {expected} for input of shape {input.shape}, "
                         f"got {t.shape}")
    classes = input.shape[1]
    valid = t != ignore_index
    bad = valid & ((t < 0) | (t >= classes))
    if bad.any():
        raise ValueError(f"{where}: target values must be class indices in [0, {classes}) "
                         f"(or ignore_index={ignore_index}), got {int(t[bad].flat[0])}")
    w = None
    if weight is not None:
        w = weight._data if isinstance(weight, Tensor) else np.asarray(weight)
        if w.shape != (classes,):
            raise ValueError(f"{where}: expected weight of shape ({classes},) for {classes} classes, got {w.shape}")
        w = w.astype(input.dtype, copy=False)
    safe = np.where(valid, t, 0).astype(np.int64, copy=False)
    wy = valid.astype(input.dtype) if w is None else np.where(valid, w[safe], 0).astype(input.dtype)
    return safe, valid, wy, w


def _batched(input: Tensor, target):
    """PyTorch's unbatched form: input (C,) with a 0-d target becomes a batch of one."""
    if input.ndim == 1:
        t = target._data if isinstance(target, Tensor) else np.asarray(target)
        if t.ndim == 1 and t.shape == input.shape:  # class probabilities
            return input.unsqueeze(0), t[None], True
        return input.unsqueeze(0), t.reshape((1,) + t.shape), True
    return input, target, False


class CrossEntropy(Function):
    def forward(ctx, z, index=None, valid=None, probs=None, wy=None, weight=None, smoothing=0.0,
                reduction="mean", denominator=1.0):
        classes = z.shape[1]
        shifted = z - z.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        shape = (1, classes) + (1,) * (z.ndim - 2)
        w = None if weight is None else weight.reshape(shape)
        if probs is not None:  # q = w·((1−ε)t + ε/C)
            q = probs * (1 - smoothing) + smoothing / classes
            q = q * w if w is not None else q
        else:  # q = (1−ε)·w_y·onehot(y) + (ε/C)·w, zero for ignored samples
            q = np.zeros_like(z)
            np.put_along_axis(q, index[:, None], ((1 - smoothing) * wy)[:, None], axis=1)
            if smoothing:
                spread = (smoothing / classes) * (w if w is not None else np.ones(shape, z.dtype))
                q += spread * valid[:, None]
        q = q.astype(z.dtype, copy=False)
        ctx.save_for_backward(logp, q)
        ctx.reduction, ctx.denominator = reduction, denominator
        return _reduce(-(q * logp).sum(axis=1), reduction, denominator)

    def backward(ctx, grad):  # ∂ℓ/∂z = softmax(z)·Σq − q
        logp, q = ctx.saved_tensors
        dz = np.exp(logp) * q.sum(axis=1, keepdims=True) - q
        return (dz * _grad_scale(grad, ctx.reduction, ctx.denominator)).astype(logp.dtype, copy=False)


def cross_entropy(input: Tensor, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy between logits and class indices (or class probabilities), as `torch.nn.functional`.

    Shape:
        input (N, C) or (N, C, d1, ...) logits, or (C,) for one sample; target (N,) / (N, d1, ...) int64
        class indices, or float probabilities of input's shape. Output: a scalar, or (N, d1, ...) with
        ``reduction="none"``.
    """
    where = "cross_entropy"
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_common(where, input, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{where}: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    if input.ndim == 0:
        raise ValueError(f"{where}: expected input of shape (N, C) or (N, C, d1, ...), got a 0-d input")
    x, t, unbatched = _batched(input, target)
    t_array = t._data if isinstance(t, Tensor) else np.asarray(t)
    if t_array.dtype.kind == "f":
        if t_array.shape != x.shape:
            raise ValueError(f"{where}: class-probability targets must have the input's shape {input.shape}, "
                             f"got {t_array.shape}; class indices must be integers")
        w = None if weight is None else (weight._data if isinstance(weight, Tensor) else np.asarray(weight))
        if w is not None and w.shape != (x.shape[1],):
            raise ValueError(f"{where}: expected weight of shape ({x.shape[1]},), got {w.shape}")
        denominator = x._data.size // x.shape[1]
        out = CrossEntropy.apply(x, probs=t_array.astype(x.dtype, copy=False),
                                 weight=None if w is None else w.astype(x.dtype), smoothing=label_smoothing,
                                 reduction=reduction, denominator=denominator)
    else:
        index, valid, wy, w = _class_targets(where, x, t_array, weight, ignore_index)
        denominator = wy.sum() if weight is not None else valid.sum()
        out = CrossEntropy.apply(x, index=index, valid=valid, wy=wy, weight=w, smoothing=label_smoothing,
                                 reduction=reduction, denominator=x.dtype.type(denominator))
    return out.reshape(()) if unbatched and reduction == "none" else out


class NLL(Function):
    def forward(ctx, logp, index=None, wy=None, reduction="mean", denominator=1.0):
        ctx.index, ctx.wy, ctx.shape = index, wy, logp.shape
        ctx.reduction, ctx.denominator = reduction, denominator
        picked = np.take_along_axis(logp, index[:, None], axis=1)[:, 0]
        return _reduce(-wy * picked, reduction, denominator)

    def backward(ctx, grad):  # ℓ = −w_y·x_y:  ∂ℓ/∂x_j = −w_y·[j = y]
        dx = np.zeros(ctx.shape, dtype=grad.dtype)
        scale = _grad_scale(grad, ctx.reduction, ctx.denominator)
        np.put_along_axis(dx, ctx.index[:, None], -(ctx.wy[:, None] * scale), axis=1)
        return dx


def nll_loss(input: Tensor, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices given log-probabilities (use after log_softmax).

    Shape:
        input (N, C) or (N, C, d1, ...) or (C,); target (N,) / (N, d1, ...) int64; output as cross_entropy.
    """
    where = "nll_loss"
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_common(where, input, reduction)
    if input.ndim == 0:
        raise ValueError(f"{where}: expected input of shape (N, C) or (N, C, d1, ...), got a 0-d input")
    x, t, unbatched = _batched(input, target)
    index, valid, wy, _ = _class_targets(where, x, t, weight, ignore_index)
    denominator = wy.sum() if weight is not None else valid.sum()
    out = NLL.apply(x, index=index, wy=wy, reduction=reduction, denominator=x.dtype.type(denominator))
    return out.reshape(()) if unbatched and reduction == "none" else out


class MSE(Function):
    def forward(ctx, a, b, reduction="mean"):
        diff = a - b
        ctx.save_for_backward(diff)
        ctx.reduction = reduction
        sq = diff * diff
        if reduction == "none":
            return sq
        return np.asarray(sq.sum() if reduction == "sum" else sq.mean(), dtype=a.dtype)

    def backward(ctx, grad):  # ℓ = (a − b)²:  ∂a = 2(a − b), ∂b = −2(a − b); "mean" divides by n
        (diff,) = ctx.saved_tensors
        scale = grad if ctx.reduction == "none" else (grad / diff.size if ctx.reduction == "mean" else grad)
        ga = 2 * diff * scale
        return ga, (-ga if ctx.needs_input_grad[1] else None)


def mse_loss(input: Tensor, target, size_average=None, reduce=None, reduction: str = "mean", weight=None) -> Tensor:
    """Mean squared error (input − target)², averaged (``"mean"``), summed or per element (``"none"``).

    Shape:
        input and target of the same shape (no silent broadcasting: an (N, 1) input against an (N,)
        target is almost always a bug).
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    if weight is not None:
        raise NotImplementedError("mse_loss: weight= is not supported in convlens")
    _check_common("mse_loss", input, reduction)
    if not isinstance(target, Tensor):
        target = Tensor._wrap(np.asarray(target, dtype=input.dtype))
    if target.shape != input.shape:
        raise ValueError(f"mse_loss: expected target of the input's shape {input.shape}, got {target.shape}")
    return MSE.apply(input, target, reduction=reduction)
