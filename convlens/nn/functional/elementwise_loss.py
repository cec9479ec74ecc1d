"""Losses computed element by element and then reduced: binary cross-entropy (on probabilities or on
logits, with ``pos_weight``), L1, smooth L1 and Huber, and the Kullback-Leibler divergence.

Each is a `Function` giving the per-element loss ℓ and, in backward, ∂ℓ/∂input and ∂ℓ/∂target;
``reduction`` is "mean" (Σℓ/n), "sum" or "none", and kl_div also takes "batchmean" (Σℓ/N, the
mathematically correct KL divergence). Unlike PyTorch, input and target must have the same shape
(PyTorch warns and broadcasts, which is almost always a bug); ``weight`` broadcasts as in PyTorch.
"""

from __future__ import annotations

import numpy as np

from convlens.autograd import Function
from convlens.errors import ShapeError
from convlens.nn.functional.loss import legacy_reduction
from convlens.tensor import Tensor

_REDUCTIONS = ("none", "mean", "sum")


def _reduce(loss: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return np.asarray(loss.sum(), dtype=loss.dtype)
    if reduction == "batchmean":
        return np.asarray(loss.sum() / (loss.shape[0] if loss.ndim else 1), dtype=loss.dtype)
    return np.asarray(loss.mean(), dtype=loss.dtype)


def _upstream(grad: np.ndarray, reduction: str, shape) -> np.ndarray:
    """∂L/∂ℓ per element for the reduction: g, g, g/n or g/N."""
    if reduction == "mean":
        return grad / max(int(np.prod(shape)), 1)
    if reduction == "batchmean":
        return grad / (shape[0] if len(shape) else 1)
    return grad


class _Elementwise(Function):
    """Subclasses give ``loss(x, t, **p) -> (ℓ, saved)`` and ``grads(saved, g, need_x, need_t, **p)``."""

    def forward(ctx, x, t, weight=None, reduction="mean", **params):
        loss, ctx.saved = ctx.loss(x, t, **params)
        if weight is not None:
            loss = loss * weight
        ctx.weight, ctx.reduction, ctx.params, ctx.shape = weight, reduction, params, x.shape
        return _reduce(loss.astype(x.dtype, copy=False), reduction)

    def backward(ctx, grad):
        g = _upstream(grad, ctx.reduction, ctx.shape)
        if ctx.weight is not None:
            g = g * ctx.weight
        g = np.broadcast_to(g, ctx.shape)
        gx, gt = ctx.grads(ctx.saved, g, ctx.needs_input_grad[0], ctx.needs_input_grad[1], **ctx.params)
        return gx, gt


class BinaryCrossEntropy(_Elementwise):
    @staticmethod
    def loss(x, t):
        # ℓ = −(t·log x + (1 − t)·log(1 − x)), each log clamped at −100 as PyTorch
        log_x, log_1mx = np.maximum(np.log(x), -100), np.maximum(np.log1p(-x), -100)
        return -(t * log_x + (1 - t) * log_1mx), (x, t, log_x, log_1mx)

    @staticmethod
    def grads(saved, g, need_x, need_t):
        x, t, log_x, log_1mx = saved
        # ∂ℓ/∂x = (x − t)/(x(1 − x)) (the denominator kept ≥ 1e-12),  ∂ℓ/∂t = log(1 − x) − log x
        gx = g * (x - t) / np.maximum(x * (1 - x), 1e-12) if need_x else None
        gt = g * (log_1mx - log_x) if need_t else None
        return gx, gt


class BinaryCrossEntropyWithLogits(_Elementwise):
    @staticmethod
    def loss(z, t, pos_weight=None):
        # ℓ = −[p·t·log σ(z) + (1 − t)·log(1 − σ(z))] = (1 − t)·z + (1 + (p − 1)·t)·softplus(−z)
        softplus_neg = np.logaddexp(0, -z)
        lw = 1 + (pos_weight - 1) * t if pos_weight is not None else 1
        return (1 - t) * z + lw * softplus_neg, (z, t, softplus_neg, lw, pos_weight)

    @staticmethod
    def grads(saved, g, need_x, need_t, pos_weight=None):
        z, t, softplus_neg, lw, p = saved
        sig_neg = 0.5 * (1 - np.tanh(0.5 * z))  # σ(−z)
        gx = g * ((1 - t) - lw * sig_neg) if need_x else None  # ∂ℓ/∂z = (1 − t) − lw·σ(−z)
        gt = None
        if need_t:  # ∂ℓ/∂t = −z + (p − 1)·softplus(−z)
            gt = g * (-z + ((p - 1) * softplus_neg if p is not None else 0))
        return gx, gt


class L1(_Elementwise):
    @staticmethod
    def loss(x, t):
        d = x - t
        return np.abs(d), np.sign(d)

    @staticmethod
    def grads(sign, g, need_x, need_t):  # ∂|x − t|/∂x = sign(x − t)
        gx = g * sign
        return (gx if need_x else None), (-gx if need_t else None)


class SmoothL1(_Elementwise):
    """Huber's loss with both branches scaled by 1/β (smooth_l1) or by δ (huber)."""

    @staticmethod
    def loss(x, t, beta=1.0, huber=False):
        d = x - t
        a = np.abs(d)
        small = a < beta
        if huber:  # ½d² inside δ, δ(|d| − ½δ) outside
            loss = np.where(small, 0.5 * d * d, beta * (a - 0.5 * beta))
        elif beta == 0:
            loss = a
        else:  # ½d²/β inside β, |d| − ½β outside
            loss = np.where(small, 0.5 * d * d / beta, a - 0.5 * beta)
        return loss, (d, small)

    @staticmethod
    def grads(saved, g, need_x, need_t, beta=1.0, huber=False):
        d, small = saved
        if huber:  # d inside, δ·sign(d) outside
            slope = np.where(small, d, beta * np.sign(d))
        elif beta == 0:
            slope = np.sign(d)
        else:  # d/β inside, sign(d) outside
            slope = np.where(small, d / beta, np.sign(d))
        gx = g * slope
        return (gx if need_x else None), (-gx if need_t else None)


class KLDiv(_Elementwise):
    @staticmethod
    def loss(x, t, log_target=False):
        if log_target:  # ℓ = eᵗ·(t − x)
            return np.exp(t) * (t - x), (x, t)
        # ℓ = t·log t − t·x, with 0·log 0 = 0 (PyTorch's xlogy)
        return np.where(t > 0, t * np.log(np.where(t > 0, t, 1)), 0) - t * x, (x, t)

    @staticmethod
    def grads(saved, g, need_x, need_t, log_target=False):
        x, t = saved
        if log_target:  # ∂x = −eᵗ, ∂t = eᵗ·(t − x + 1)
            e = np.exp(t)
            return (-g * e if need_x else None), (g * e * (t - x + 1) if need_t else None)
        gx = -g * t if need_x else None  # ∂x = −t, ∂t = log t + 1 − x
        gt = None
        if need_t:
            gt = g * (np.where(t > 0, np.log(np.where(t > 0, t, 1)) + 1, 0) - x)
        return gx, gt


def _check(where: str, input, target, reduction: str, reductions=_REDUCTIONS):
    """Validate; returns the target as a tensor of the input's dtype."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{where}: expected a Tensor as input, got {type(input).__name__}")
    if reduction not in reductions:
        raise ValueError(f"{where}: reduction must be one of {reductions}, got {reduction!r}")
    if not isinstance(target, Tensor):
        target = Tensor._wrap(np.asarray(target, dtype=input.dtype))
    if target.shape != input.shape:
        raise ShapeError(f"{where}: expected target of the input's shape {input.shape}, got {target.shape} "
                         "(convlens does not broadcast a loss's target)")
    if input.dtype.kind != "f":
        raise TypeError(f"{where}: expected a floating-point input, got dtype {input.dtype}")
    return target if target.dtype == input.dtype else target.to(input.dtype)


def _weight(where: str, weight, input):
    if weight is None:
        return None
    w = np.asarray(getattr(weight, "_data", weight), dtype=input.dtype)
    try:
        np.broadcast_shapes(w.shape, input.shape)
    except ValueError:
        raise ShapeError(f"{where}: weight of shape {w.shape} does not broadcast to the input's {input.shape}") from None
    return w


def binary_cross_entropy(input: Tensor, target, weight=None, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """−w·[t·log x + (1 − t)·log(1 − x)] for probabilities x in [0, 1] (after a sigmoid).

    Shape:
        input (*), target (*) of the same shape → a scalar, or (*) with reduction="none".
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    target = _check("binary_cross_entropy", input, target, reduction)
    x = input._data
    if x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError("binary_cross_entropy: all elements of input should be between 0 and 1 (apply a sigmoid, "
                         "or use binary_cross_entropy_with_logits on the logits)")
    return BinaryCrossEntropy.apply(input, target, weight=_weight("binary_cross_entropy", weight, input),
                                    reduction=reduction)


def binary_cross_entropy_with_logits(input: Tensor, target, weight=None, size_average=None, reduce=None,
                                     reduction: str = "mean", pos_weight=None) -> Tensor:
    """Binary cross-entropy of logits z, computed stably: −w·[p·t·log σ(z) + (1 − t)·log(1 − σ(z))],
    `pos_weight` p (per class, broadcast over the last dim) weighting the positive term.

    Shape:
        input (*), target (*) of the same shape; pos_weight broadcastable to them → a scalar or (*).
    """
    where = "binary_cross_entropy_with_logits"
    reduction = legacy_reduction(size_average, reduce, reduction)
    target = _check(where, input, target, reduction)
    return BinaryCrossEntropyWithLogits.apply(input, target, weight=_weight(where, weight, input),
                                              reduction=reduction, pos_weight=_weight(where, pos_weight, input))


def l1_loss(input: Tensor, target, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """|input − target|, averaged, summed or per element.

    Shape:
        input and target of the same shape → a scalar, or that shape with reduction="none".
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    target = _check("l1_loss", input, target, reduction)
    return L1.apply(input, target, reduction=reduction)


def smooth_l1_loss(input: Tensor, target, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """½d²/β where |d| < β, |d| − ½β elsewhere (d = input − target); β = 0 is the L1 loss.

    Shape:
        as l1_loss.
    """
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta!r}")
    reduction = legacy_reduction(size_average, reduce, reduction)
    target = _check("smooth_l1_loss", input, target, reduction)
    return SmoothL1.apply(input, target, reduction=reduction, beta=float(beta))


def huber_loss(input: Tensor, target, reduction: str = "mean", delta: float = 1.0, weight=None) -> Tensor:
    """½d² where |d| < δ, δ·(|d| − ½δ) elsewhere (= δ·smooth_l1 with β = δ).

    Shape:
        as l1_loss.
    """
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta!r}")
    target = _check("huber_loss", input, target, reduction)
    return SmoothL1.apply(input, target, weight=_weight("huber_loss", weight, input), reduction=reduction,
                          beta=float(delta), huber=True)


def kl_div(input: Tensor, target, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """KL(target ‖ exp(input)) per element: target·(log target − input) for log-probabilities `input`
    (target probabilities, or log-probabilities with ``log_target=True``). ``reduction="batchmean"``
    divides by the batch size, which is the KL divergence; "mean" (PyTorch's default) divides by the
    number of elements.

    Shape:
        input (N, *), target of the same shape → a scalar, or (N, *) with reduction="none".
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    target = _check("kl_div", input, target, reduction, _REDUCTIONS + ("batchmean",))
    return KLDiv.apply(input, target, reduction=reduction, log_target=bool(log_target))


def soft_margin_loss(input: Tensor, target, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """log(1 + exp(−y·x)) for labels y = ±1."""
    from convlens.nn.functional.nonlinearities import softplus

    reduction = legacy_reduction(size_average, reduce, reduction)
    target = _check("soft_margin_loss", input, target, reduction)
    loss = softplus(-target * input)
    return loss if reduction == "none" else loss.sum() if reduction == "sum" else loss.mean()


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """x1·x2 / (max(‖x1‖, ε)·max(‖x2‖, ε)) along `dim` (broadcasting x1 against x2)."""
    return (x1 * x2).sum(dim) / (x1.norm(dim=dim).clamp(min=eps) * x2.norm(dim=dim).clamp(min=eps))

