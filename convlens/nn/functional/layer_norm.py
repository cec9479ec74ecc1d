"""Normalisation over the features of each sample: layer, group and instance normalisation.

All three standardise a block of values with its own mean and (biased) variance,

    x̂ = (x − μ)/√(σ² + ε),

and differ only in the block: the last dims of each sample (layer norm, Ba et al. 2016), the channels of
one group with their spatial extent (group norm, Wu & He 2018), or each channel's spatial extent
(instance norm, Ulyanov et al. 2016). One `Normalize` Function does the standardising; the learned
scale and shift (γ, β) are ordinary differentiable ops on top.
"""

from __future__ import annotations

import numbers

import numpy as np

from convlens.autograd import Function
from convlens.errors import ShapeError
from convlens.tensor import Tensor


class Normalize(Function):
    """x̂ = (x − mean)/√(var + ε) over `axes` (the statistics of x itself)."""

    def forward(ctx, x, axes, eps):
        mean = x.mean(axis=axes, keepdims=True)
        centred = x - mean
        var = np.mean(centred * centred, axis=axes, keepdims=True)
        invstd = (1.0 / np.sqrt(var + x.dtype.type(eps))).astype(x.dtype, copy=False)
        xhat = centred * invstd
        ctx.save_for_backward(xhat, invstd)
        ctx.axes = axes
        return xhat

    def backward(ctx, grad):
        # μ and σ² depend on x:  ∂x = (1/σ)·(g − mean(g) − x̂·mean(g·x̂)), the means over the block
        xhat, invstd = ctx.saved_tensors
        axes = ctx.axes
        mean_g = grad.mean(axis=axes, keepdims=True)
        mean_gx = (grad * xhat).mean(axis=axes, keepdims=True)
        return ((grad - mean_g - xhat * mean_gx) * invstd).astype(grad.dtype, copy=False)


def _check_eps(where: str, eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or eps < 0:
        raise ValueError(f"{where}: eps must be a non-negative number, got {eps!r}")
    return float(eps)


def _affine(out: Tensor, weight, bias, shape) -> Tensor:
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Standardise over the last ``len(normalized_shape)`` dims of each sample, then y = x̂·γ + β
    (γ, β of shape `normalized_shape`).

    Shape:
        input (*, *normalized_shape) → the same shape.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"layer_norm: expected a Tensor input, got {type(input).__name__}")
    shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or input.shape[input.ndim - k:] != shape or input.ndim < k:
        raise ShapeError(f"layer_norm: given normalized_shape={list(shape)}, expected input with shape "
                         f"[*, {', '.join(map(str, shape))}], but got input of size {list(input.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != shape:
            raise ShapeError(f"layer_norm: expected {name} of shape {shape}, got {t.shape}")
    axes = tuple(range(input.ndim - k, input.ndim))
    out = Normalize.apply(input, axes=axes, eps=_check_eps("layer_norm", eps))
    return _affine(out, weight, bias, shape)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Split the C channels into `num_groups` groups and standardise each group of each sample over its
    channels and positions, then y = x̂·γ + β per channel.

    Shape:
        input (N, C, *) with C divisible by num_groups → the same shape.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"group_norm: expected a Tensor input, got {type(input).__name__}")
    if input.ndim < 2:
        raise ShapeError(f"group_norm: expected an input (N, C, *) with at least 2 dims, got shape {input.shape}")
    n, c = input.shape[:2]
    if isinstance(num_groups, bool) or not isinstance(num_groups, numbers.Integral) or num_groups < 1 or c % num_groups:
        raise ShapeError(f"group_norm: expected the number of channels of input {input.shape} to be divisible by "
                         f"num_groups, got num_groups={num_groups!r}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != (c,):
            raise ShapeError(f"group_norm: expected {name} of shape ({c},), got {t.shape}")
    grouped = input.reshape(n, int(num_groups), -1)
    out = Normalize.apply(grouped, axes=(2,), eps=_check_eps("group_norm", eps)).reshape(input.shape)
    return _affine(out, weight, bias, (1, c) + (1,) * (input.ndim - 2))


def instance_norm(input: Tensor, running_mean=None, running_var=None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True, momentum: float = 0.1,
                  eps: float = 1e-5) -> Tensor:
    """Standardise each channel of each sample over its positions, then y = x̂·γ + β per channel.

    With running stats given and ``use_input_stats``, they are updated in place with the batch mean of
    the per-instance statistics (the variance unbiased over the positions), as PyTorch; without
    ``use_input_stats`` the running stats normalise instead (evaluation with track_running_stats).

    Shape:
        input (N, C, *spatial) → the same shape.
    """
    from convlens.nn.functional.normalization import batch_norm

    if not isinstance(input, Tensor):
        raise TypeError(f"instance_norm: expected a Tensor input, got {type(input).__name__}")
    if input.ndim < 3:
        raise ShapeError(f"instance_norm: expected an input (N, C, *spatial), got shape {input.shape}")
    eps = _check_eps("instance_norm", eps)
    c = input.shape[1]
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError("instance_norm: running_mean and running_var are needed when use_input_stats=False")
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != (c,):
            raise ShapeError(f"instance_norm: expected {name} of shape ({c},), got {t.shape}")
    axes = tuple(range(2, input.ndim))
    out = Normalize.apply(input, axes=axes, eps=eps)
    if running_mean is not None or running_var is not None:
        x = input._data
        count = x.size // (x.shape[0] * c)
        if running_mean is not None:
            rm = running_mean._data if isinstance(running_mean, Tensor) else running_mean
            rm *= 1.0 - momentum
            rm += (momentum * x.mean(axis=axes).mean(axis=0)).astype(rm.dtype, copy=False)
        if running_var is not None:
            rv = running_var._data if isinstance(running_var, Tensor) else running_var
            unbiased = x.var(axis=axes, ddof=1) if count > 1 else np.zeros(x.shape[:2], x.dtype)
            rv *= 1.0 - momentum
            rv += (momentum * unbiased.mean(axis=0)).astype(rv.dtype, copy=False)
    return _affine(out, weight, bias, (1, c) + (1,) * (input.ndim - 2))


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    """AlexNet's normalisation across `size` neighbouring channels:
    b_c = a_c / (k + α/n · Σ_{c' near c} a_{c'}²)^β (PyTorch's definition, zero-padded at the ends)."""
    from convlens.factories import zeros
    from convlens.ops import cat

    if input.ndim < 3:
        raise ShapeError(f"local_response_norm: expected an input (N, C, *), got shape {input.shape}")
    n, c, rest = input.shape[0], input.shape[1], input.shape[2:]
    squares = input * input
    before, after = (zeros(n, p, *rest, dtype=input.dtype) for p in (size // 2, (size - 1) // 2))
    padded = cat([before, squares, after], 1)  # zero channels at both ends
    windows = sum(padded[:, i:i + c] for i in range(size))
    return input / (windows * (alpha / size) + k) ** beta
