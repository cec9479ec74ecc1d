"""Activation functions: element-wise non-linearities and the (log-)softmax over one axis."""

from __future__ import annotations

import numbers

import numpy as np

from convlens.autograd import Function
from convlens.ops import ReLU, Sigmoid, Tanh
from convlens.tensor import Tensor


def _check_tensor(input, where: str) -> None:
    if not isinstance(input, Tensor):
        raise ValueError(f"{where}: expected a convlens Tensor as input, got {type(input).__name__}")


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0) element-wise. ``inplace`` is accepted for PyTorch compatibility; a new tensor is returned."""
    _check_tensor(input, "relu")
    return ReLU.apply(input)


class LeakyReLU(Function):
    def forward(ctx, a, negative_slope):
        ctx.save_for_backward(a > 0)
        ctx.slope = negative_slope
        return np.where(a > 0, a, a * a.dtype.type(negative_slope))

    def backward(ctx, grad):  # d/da = 1 where a > 0, negative_slope elsewhere
        (positive,) = ctx.saved_tensors
        return np.where(positive, grad, grad * grad.dtype.type(ctx.slope))


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x where x > 0, negative_slope·x elsewhere."""
    _check_tensor(input, "leaky_relu")
    if not isinstance(negative_slope, numbers.Real):
        raise ValueError(f"leaky_relu: negative_slope must be a number, got {negative_slope!r}")
    return LeakyReLU.apply(input, negative_slope=float(negative_slope))


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + e⁻ˣ) element-wise."""
    _check_tensor(input, "sigmoid")
    return Sigmoid.apply(input)


def tanh(input: Tensor) -> Tensor:
    _check_tensor(input, "tanh")
    return Tanh.apply(input)


def _softmax_dim(input: Tensor, dim, where: str) -> int:
    if dim is None:  # PyTorch's legacy implicit choice
        dim = 0 if input.ndim in (0, 1, 3) else 1
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise ValueError(f"{where}: dim must be an integer, got {dim!r}")
    n = max(input.ndim, 1)
    if not -n <= dim < n:
        raise ValueError(f"{where}: dim {dim} out of range for an input of shape {input.shape}")
    return int(dim) % n


class Softmax(Function):
    def forward(ctx, a, axis):
        # subtracting the maximum leaves softmax unchanged and keeps exp() from overflowing
        e = np.exp(a - a.max(axis=axis, keepdims=True))
        out = e / e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    def backward(ctx, grad):  # ∂L/∂aᵢ = pᵢ(gᵢ − Σⱼ gⱼpⱼ)
        (p,) = ctx.saved_tensors
        return p * (grad - (grad * p).sum(axis=ctx.axis, keepdims=True))


class LogSoftmax(Function):
    def forward(ctx, a, axis):
        # log softmax(a) = a − m − log Σ e^(a−m) with m = max a: no overflow, no log(0)
        shifted = a - a.max(axis=axis, keepdims=True)
        out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    def backward(ctx, grad):  # ∂L/∂aᵢ = gᵢ − softmax(a)ᵢ Σⱼ gⱼ
        (out,) = ctx.saved_tensors
        return grad - np.exp(out) * grad.sum(axis=ctx.axis, keepdims=True)


def softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    """e^(xᵢ) / Σⱼ e^(xⱼ) along `dim`, computed stably."""
    _check_tensor(input, "softmax")
    if dtype is not None:
        input = input.to(dtype)
    return Softmax.apply(input, axis=_softmax_dim(input, dim, "softmax"))


def log_softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    """log softmax(x) along `dim`, computed stably (never log of an underflowed 0)."""
    _check_tensor(input, "log_softmax")
    if dtype is not None:
        input = input.to(dtype)
    return LogSoftmax.apply(input, axis=_softmax_dim(input, dim, "log_softmax"))
