"""More element-wise non-linearities, as ``torch.nn.functional``: elu, selu, celu, gelu, silu, mish, hardswish,
hardsigmoid, hardtanh/relu6, softplus, softsign, logsigmoid and prelu (a learned slope per channel).

Each is a `Function` with the derivative beside the forward. Smooth ones are computed stably:
softplus(x) = log(1 + eˣ) as ``logaddexp(0, x)``, σ(x) as ½(1 + tanh(x/2)).
"""

from __future__ import annotations

import numbers

import numpy as np

from convlens.autograd import Function, unbroadcast
from convlens.kernels import gelu as gelu_kernels
from convlens.kernels.special import erf
from convlens.nn.functional.activation import _check_tensor
from convlens.tensor import Tensor


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return (0.5 * (1 + np.tanh(0.5 * a))).astype(a.dtype, copy=False)


def _number(where: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{where}: {name} must be a number, got {value!r}")
    return float(value)


class ELU(Function):
    """x for x > 0, α(eˣ − 1) otherwise, times `scale` (selu's λ, 1 for elu); celu is elu of x/α."""

    def forward(ctx, a, alpha=1.0, scale=1.0, input_scale=1.0):
        negative = scale * alpha * np.expm1(np.minimum(a, 0) * input_scale)
        out = np.where(a > 0, scale * a, negative).astype(a.dtype, copy=False)
        ctx.save_for_backward(a, negative)
        ctx.params = (alpha, scale, input_scale)
        return out

    def backward(ctx, grad):  # d/dx = λ for x > 0, else λα·s·eˣˢ = s·(negative + λα)
        a, negative = ctx.saved_tensors
        alpha, scale, input_scale = ctx.params
        slope = np.where(a > 0, scale, input_scale * (negative + scale * alpha))
        return (grad * slope).astype(grad.dtype, copy=False)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, α(eˣ − 1) otherwise (Clevert et al. 2016)."""
    _check_tensor(input, "elu")
    return ELU.apply(input, alpha=_number("elu", "alpha", alpha))


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """λ·elu(x, α) with PyTorch's constants λ ≈ 1.0507, α ≈ 1.6733 (self-normalising networks)."""
    _check_tensor(input, "selu")
    return ELU.apply(input, alpha=_SELU_ALPHA, scale=_SELU_SCALE)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, α(e^(x/α) − 1))."""
    _check_tensor(input, "celu")
    alpha = _number("celu", "alpha", alpha)
    return ELU.apply(input, alpha=alpha, input_scale=1.0 / alpha)


class SiLU(Function):
    def forward(ctx, a):
        s = _sigmoid(a)
        ctx.save_for_backward(a, s)
        return a * s

    def backward(ctx, grad):  # d(xσ(x))/dx = σ(x)(1 + x(1 − σ(x)))
        a, s = ctx.saved_tensors
        return grad * s * (1 + a * (1 - s))


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x·σ(x) (also called swish)."""
    _check_tensor(input, "silu")
    return SiLU.apply(input)


_SQRT_HALF, _INV_SQRT_2PI, _SQRT_2_OVER_PI = 0.7071067811865476, 0.3989422804014327, 0.7978845608028654


class GELU(Function):
    """x·Φ(x), Φ the standard normal CDF: exact ½x(1 + erf(x/√2)), or the tanh form
    ½x(1 + tanh(√(2/π)(x + 0.044715x³))) of Hendrycks & Gimpel (2016) when approximate='tanh'."""

    def forward(ctx, a, approximate="none"):
        ctx.approximate = approximate
        if approximate == "tanh":
            t = np.tanh(_SQRT_2_OVER_PI * (a + 0.044715 * a * a * a)).astype(a.dtype, copy=False)
            ctx.save_for_backward(a, t)
            return 0.5 * a * (1 + t)
        if gelu_kernels.applies(a):  # the same formula, one compiled pass on every core (kernels/gelu.py)
            y, cdf = gelu_kernels.forward(a)
            ctx.save_for_backward(a, cdf)
            return y
        cdf = 0.5 * (1 + erf(a * a.dtype.type(_SQRT_HALF)))
        ctx.save_for_backward(a, cdf)
        return a * cdf

    def backward(ctx, grad):
        a, s = ctx.saved_tensors
        if ctx.approximate == "tanh":  # ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²)
            inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * a * a)
            return grad * (0.5 * (1 + s) + 0.5 * a * (1 - s * s) * inner)
        # d(xΦ(x))/dx = Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π)
        if gelu_kernels.backward_applies(a, grad, s):  # the same formula, one compiled pass (kernels/gelu.py)
            return gelu_kernels.backward(a, grad, s)
        return grad * (s + a * (_INV_SQRT_2PI * np.exp(-0.5 * a * a)))


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x·Φ(x) (Gaussian error linear unit); ``approximate='tanh'`` uses the tanh formula, as torch."""
    _check_tensor(input, "gelu")
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(input, approximate=approximate)


class Mish(Function):
    def forward(ctx, a):
        t = np.tanh(np.logaddexp(0, a)).astype(a.dtype, copy=False)
        ctx.save_for_backward(a, t)
        return a * t

    def backward(ctx, grad):  # d(x·tanh(softplus x))/dx = tanh(sp) + x·(1 − tanh²(sp))·σ(x)
        a, t = ctx.saved_tensors
        return grad * (t + a * (1 - t * t) * _sigmoid(a))


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x·tanh(softplus(x)) (Misra 2019)."""
    _check_tensor(input, "mish")
    return Mish.apply(input)


class Hardswish(Function):
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return (a * np.clip(a + 3, 0, 6) / 6).astype(a.dtype, copy=False)

    def backward(ctx, grad):  # 0 below −3, x/3 + ½ on [−3, 3], 1 above (PyTorch's choice at the ends)
        (a,) = ctx.saved_tensors
        slope = np.where(a < -3, 0, np.where(a <= 3, a / 3 + 0.5, 1))
        return (grad * slope).astype(grad.dtype, copy=False)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x·relu6(x + 3)/6 (MobileNetV3)."""
    _check_tensor(input, "hardswish")
    return Hardswish.apply(input)


class Hardsigmoid(Function):
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return (np.clip(a + 3, 0, 6) / 6).astype(a.dtype, copy=False)

    def backward(ctx, grad):  # 1/6 strictly inside (−3, 3), else 0
        (a,) = ctx.saved_tensors
        return (grad * ((a > -3) & (a < 3)) / 6).astype(grad.dtype, copy=False)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3)/6."""
    _check_tensor(input, "hardsigmoid")
    return Hardsigmoid.apply(input)


class Hardtanh(Function):
    def forward(ctx, a, low, high):
        ctx.save_for_backward(a)
        ctx.bounds = low, high
        return np.clip(a, low, high).astype(a.dtype, copy=False)

    def backward(ctx, grad):  # 1 strictly between the bounds, 0 outside and on them (as PyTorch)
        (a,) = ctx.saved_tensors
        low, high = ctx.bounds
        return (grad * ((a > low) & (a < high))).astype(grad.dtype, copy=False)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """x clipped to [min_val, max_val]."""
    _check_tensor(input, "hardtanh")
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
    return Hardtanh.apply(input, low=float(min_val), high=float(max_val))


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6)."""
    return hardtanh(input, 0.0, 6.0)


class Softplus(Function):
    def forward(ctx, a, beta, threshold):
        scaled = a * beta
        linear = scaled > threshold  # PyTorch reverts to the identity where βx > threshold
        ctx.save_for_backward(scaled, linear)
        return np.where(linear, a, np.logaddexp(0, scaled) / beta).astype(a.dtype, copy=False)

    def backward(ctx, grad):  # d/dx (1/β)·log(1 + e^(βx)) = σ(βx), 1 on the linear part
        scaled, linear = ctx.saved_tensors
        return np.where(linear, grad, grad * _sigmoid(scaled)).astype(grad.dtype, copy=False)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """(1/β)·log(1 + e^(βx)), the identity where βx > threshold."""
    _check_tensor(input, "softplus")
    return Softplus.apply(input, beta=_number("softplus", "beta", beta),
                          threshold=_number("softplus", "threshold", threshold))


def softsign(input: Tensor) -> Tensor:
    """x/(1 + |x|)."""
    _check_tensor(input, "softsign")
    return input / (input.abs() + 1)


def logsigmoid(input: Tensor) -> Tensor:
    """log σ(x) = −softplus(−x), computed stably."""
    _check_tensor(input, "logsigmoid")
    return -softplus(-input)


class PReLU(Function):
    def forward(ctx, a, weight):
        shape = (1, -1) + (1,) * (a.ndim - 2) if weight.size > 1 else ()
        w = weight.reshape(shape) if shape else weight.reshape(())
        ctx.save_for_backward(a, w)
        ctx.weight_shape = weight.shape
        return np.where(a > 0, a, w * a).astype(a.dtype, copy=False)

    def backward(ctx, grad):  # ∂x = 1 (x > 0) or w;  ∂w = Σ over non-channel axes of x·g where x ≤ 0
        a, w = ctx.saved_tensors
        gx = np.where(a > 0, grad, w * grad).astype(grad.dtype, copy=False) if ctx.needs_input_grad[0] else None
        gw = None
        if ctx.needs_input_grad[1]:
            contribution = np.where(a > 0, 0, a * grad)
            gw = unbroadcast(contribution, w.shape).reshape(ctx.weight_shape)
        return gx, gw


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x for x > 0, w·x otherwise, with one learned slope per channel (axis 1) or one shared."""
    _check_tensor(input, "prelu")
    channels = input.shape[1] if input.ndim >= 2 else 1
    if weight.numel() not in (1, channels):
        raise ValueError(f"prelu: weight must have 1 or {channels} (the channels of input {input.shape}) "
                         f"elements, got shape {weight.shape}")
    if input.ndim < 2 and weight.numel() != 1:
        raise ValueError(f"prelu: a {input.ndim}-d input needs a single slope, got weight of shape {weight.shape}")
    return PReLU.apply(input, weight)
