"""Batch normalisation: one fused Function with a hand-written backward.

The formulas are below in NumPy; float32 and float64 inputs run the same formulas compiled, two passes
over memory per direction and in the input's memory order (convlens/kernels/batchnorm.py).
"""

from __future__ import annotations

import numbers

import numpy as np

from convlens.autograd import Function, is_grad_enabled
from convlens.kernels import batchnorm as kernels
from convlens.tensor import Tensor


def _compiled(x: np.ndarray) -> bool:
    """Whether the compiled kernels take this input (the NumPy formulas handle every other dtype)."""
    return x.dtype in (np.float32, np.float64) and x.ndim >= 2


class BatchNorm(Function):
    """y = (x − μ)/√(σ² + ε) · γ + β per channel (axis 1); μ, σ² from the batch or from running stats."""

    def forward(ctx, x, weight=None, bias=None, mean=None, invstd=None, batch_stats=False):
        # batch_stats: μ and σ were computed from x itself, so the backward must differentiate them too
        shape = (1, -1) + (1,) * (x.ndim - 2)
        ctx.axes, ctx.shape, ctx.batch_stats = (0,) + tuple(range(2, x.ndim)), shape, batch_stats
        ctx.fast = _compiled(x)
        if ctx.fast:  # x̂ is recomputed from x in the backward pass, not stored
            ctx.save_for_backward(x, mean, invstd, weight)
            return kernels.normalize(x, mean, invstd, weight, bias)
        xhat = (x - mean.reshape(shape)) * invstd.reshape(shape)
        ctx.save_for_backward(xhat, weight, invstd)
        out = xhat * weight.reshape(shape) if weight is not None else xhat.copy()
        if bias is not None:
            out += bias.reshape(shape)
        return out.astype(x.dtype, copy=False)

    def backward(ctx, grad):
        if ctx.fast:
            x, mean, invstd, weight = ctx.saved_tensors
            return kernels.backward(grad, x, mean, invstd, weight, ctx.batch_stats, ctx.needs_input_grad)
        xhat, weight, invstd = ctx.saved_tensors
        axes, shape = ctx.axes, ctx.shape
        gx = gw = gb = None
        if ctx.needs_input_grad[2]:  # ∂β = Σ g
            gb = grad.sum(axis=axes)
        if ctx.needs_input_grad[1]:  # ∂γ = Σ g·x̂
            gw = (grad * xhat).sum(axis=axes)
        if ctx.needs_input_grad[0]:
            gxhat = grad * weight.reshape(shape) if weight is not None else grad
            scale = invstd.reshape(shape)
            if ctx.batch_stats:
                # μ and σ² depend on x:  ∂x = (1/σ)·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)),  ĝ = g·γ, means over batch axes
                m = gxhat.mean(axis=axes, keepdims=True)
                mx = (gxhat * xhat).mean(axis=axes, keepdims=True)
                gx = (gxhat - m - xhat * mx) * scale
            else:  # running statistics are constants: ∂x = g·γ/σ
                gx = gxhat * scale
            gx = gx.astype(grad.dtype, copy=False)
        return gx, gw, gb


def _array(value, name: str, channels: int):
    if value is None:
        return None
    array = value._data if isinstance(value, Tensor) else value
    if not isinstance(array, np.ndarray) or array.shape != (channels,):
        shape = getattr(array, "shape", type(array).__name__)
        raise ValueError(f"batch_norm: expected {name} of shape ({channels},), got {shape}")
    return array


def batch_norm(input: Tensor, running_mean=None, running_var=None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5, *, activation: str | None = None) -> Tensor:
    """Normalise each channel (axis 1) of an (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W) input.

    Training uses the batch's mean and (biased) variance over every axis but the channel axis and, when
    running stats are given, updates them in place:  r ← (1 − momentum)·r + momentum·batch_stat, with
    the unbiased variance (×M/(M−1), M values per channel). Evaluation uses the running stats.

    ``activation="gelu"`` (not in torch; `nn.Sequential` passes it for an eval-mode batch norm followed by
    an exact GELU while no gradient is recorded) returns GELU of the result, computed in the same pass.
    """
    if not isinstance(input, Tensor):
        raise ValueError(f"batch_norm: expected a Tensor as input, got {type(input).__name__}")
    if not 2 <= input.ndim <= 5:
        raise ValueError(f"batch_norm: expected a 2-d to 5-d input (N, C, *), got shape {input.shape}")
    if not isinstance(eps, numbers.Real) or eps < 0:
        raise ValueError(f"batch_norm: eps must be a non-negative number, got {eps!r}")
    if activation is not None and (activation != "gelu" or training or is_grad_enabled()):
        raise ValueError(f"batch_norm: activation='gelu' is for inference (training=False, no gradient "
                         f"recorded) and the only one; got activation={activation!r}, training={training}")
    channels = input.shape[1]
    rm = _array(running_mean, "running_mean", channels)
    rv = _array(running_var, "running_var", channels)
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != (channels,):
            raise ValueError(f"batch_norm: expected {name} of shape ({channels},) for input {input.shape}, "
                             f"got {t.shape}")
    axes = (0,) + tuple(range(2, input.ndim))
    count = input._data.size // max(channels, 1)
    dtype = input.dtype
    if training:
        if count <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                             f"got input of shape {input.shape}")
        if _compiled(input._data):
            mean, var = kernels.moments(input._data)  # float64
            mean, var = mean.astype(dtype), var.astype(dtype)
        else:
            mean = input._data.mean(axis=axes)
            var = input._data.var(axis=axes)  # biased, as used to normalise
        invstd = (1.0 / np.sqrt(var + dtype.type(eps))).astype(dtype, copy=False)
        out = BatchNorm.apply(input, weight, bias, mean=mean, invstd=invstd, batch_stats=True)
        if rm is not None:
            rm *= 1.0 - momentum
            rm += (momentum * mean).astype(rm.dtype, copy=False)
        if rv is not None:
            rv *= 1.0 - momentum
            rv += (momentum * var * (count / (count - 1))).astype(rv.dtype, copy=False)
        return out
    if rm is None or rv is None:
        raise ValueError("batch_norm: running_mean and running_var are required when training=False")
    invstd = (1.0 / np.sqrt(rv.astype(dtype, copy=False) + dtype.type(eps))).astype(dtype, copy=False)
    mean = rm.astype(dtype, copy=False)
    if activation == "gelu":  # inference only (nn.Sequential checks): no graph, nothing kept for a backward
        return Tensor._wrap(kernels.normalize(input._data, mean, invstd, _array(weight, "weight", channels),
                                              _array(bias, "bias", channels), gelu=True))
    return BatchNorm.apply(input, weight, bias, mean=mean, invstd=invstd)
