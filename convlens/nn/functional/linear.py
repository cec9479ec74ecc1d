"""Fully connected layer, flattening and dropout."""

from __future__ import annotations

import numbers

import numpy as np

from convlens.autograd import Function
from convlens.tensor import Tensor, default_generator


def column_sums(a: np.ndarray) -> np.ndarray:
    """Σ over the rows of a 2-d array, as a matrix-vector product 1ᵀA: for a tall, narrow gradient (a bias
    gradient sums N·H·W rows of K values) BLAS does this about 15× faster than ``a.sum(axis=0)``."""
    return np.ones(a.shape[0], dtype=a.dtype) @ a


class Linear(Function):
    def forward(ctx, x, weight, bias=None):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        out = x @ weight.T
        if bias is not None:
            out += bias
        return out

    def backward(ctx, grad):  # y = xWᵀ + b: ∂x = g W, ∂W = gᵀ x (summed over all leading axes), ∂b = Σ g
        x, weight = ctx.saved_tensors
        g2 = grad.reshape(-1, grad.shape[-1])
        gx = grad @ weight if ctx.needs_input_grad[0] else None
        gw = g2.T @ x.reshape(-1, x.shape[-1]) if ctx.needs_input_grad[1] else None
        gb = column_sums(g2) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x Wᵀ + b.

    Shape:
        input (*, in_features), weight (out_features, in_features), bias (out_features,)
        → output (*, out_features).
    """
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise ValueError(f"linear: input and weight must be Tensors, got {type(input).__name__} "
                         f"and {type(weight).__name__}")
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-d (out_features, in_features), got shape {weight.shape}")
    if input.ndim < 1 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: expected input with last dimension {weight.shape[1]} (weight {weight.shape}), "
                         f"got input of shape {input.shape}")
    if input.dtype != weight.dtype or (bias is not None and bias.dtype != weight.dtype):
        raise ValueError(f"linear: input ({input.dtype}), weight ({weight.dtype}) and bias must share a dtype; "
                         "convert the model with .float()/.double() or the input with .to(dtype)")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: expected bias of shape ({weight.shape[0]},), got {bias.shape}")
    return Linear.apply(input, weight, bias)


def flatten(input: Tensor, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    """Merge the axes start_dim..end_dim (inclusive) into one."""
    n = max(input.ndim, 1)
    for name, d in (("start_dim", start_dim), ("end_dim", end_dim)):
        if not -n <= d < n:
            raise ValueError(f"flatten: {name}={d} out of range for an input of shape {input.shape}")
    start, end = start_dim % n, end_dim % n
    if start > end:
        raise ValueError(f"flatten: start_dim={start_dim} comes after end_dim={end_dim} for input {input.shape}")
    if input.ndim == 0:
        return input.reshape(1)
    size = int(np.prod(input.shape[start:end + 1]))
    return input.reshape(input.shape[:start] + (size,) + input.shape[end + 1:])


class Dropout(Function):
    def forward(ctx, a, mask):
        ctx.save_for_backward(mask)
        return a * mask

    def backward(ctx, grad):  # y = x·m with m ∈ {0, 1/(1−p)}: ∂x = g·m
        (mask,) = ctx.saved_tensors
        return grad * mask


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Inverted dropout: zero each element with probability p and scale the rest by 1/(1−p), so that
    the expected value is unchanged and evaluation needs no rescaling. The identity when not training."""
    if not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p!r}")
    if not training or p == 0.0:
        return input
    dtype = input.dtype if input.dtype.kind == "f" else np.dtype(np.float32)
    if p == 1.0:
        mask = np.zeros(input.shape, dtype=dtype)
    else:
        uniform = default_generator().random(input.shape, dtype=np.float64 if dtype == np.float64 else np.float32)
        keep = uniform >= p
        mask = keep.astype(dtype) * dtype.type(1.0 / (1.0 - p))
    return Dropout.apply(input, mask=mask)
