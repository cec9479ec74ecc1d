"""Resizing by interpolation, as ``torch.nn.functional.interpolate``: nearest, nearest-exact, (bi/tri)linear,
bicubic and area modes over 1, 2 or 3 spatial axes, by `size` or `scale_factor`, with `align_corners`.

Every mode except area is separable: along one axis of length L resized to O, output cell o is a
weighted sum of a few input cells ("taps"),

    y[o] = Σ_t w_t[o] · x[i_t[o]],

so the N-d resize is one `ResampleAxis` per axis, and its backward adds each output gradient back to
its taps (×w). The source position of o follows PyTorch exactly (float32 arithmetic for float32 inputs):

    scale = (L − 1)/(O − 1) with align_corners, else 1/scale_factor when given, else L/O
    src   = scale·o  with align_corners,  else scale·(o + ½) − ½  (clamped at 0 except for bicubic)

nearest takes ⌊scale·o⌋, nearest-exact ⌊scale·(o + ½)⌋; linear blends ⌊src⌋ and ⌊src⌋ + 1; bicubic
uses Keys' cubic kernel with a = −0.75 on four taps clamped to the border. area is adaptive average
pooling.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from convlens.autograd import Function
from convlens.errors import ShapeError
from convlens.tensor import Tensor

_LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}
MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area")


class ResampleAxis(Function):
    """y = Σ_t weight[t] · take(x, index[t], axis): T taps per output cell along one axis."""

    def forward(ctx, x, index, weight, axis):
        ctx.index, ctx.weight, ctx.axis, ctx.length = index, weight, axis, x.shape[axis]
        shape = [1] * x.ndim
        shape[axis] = -1
        out = None
        for i, w in zip(index, weight):
            term = np.take(x, i, axis=axis)
            if not np.all(w == 1):
                term = term * w.reshape(shape)
            out = term if out is None else out + term
        return out.astype(x.dtype, copy=False)

    def backward(ctx, grad):  # ∂x[i_t[o]] += w_t[o]·g[o] for every tap t and output cell o
        g = np.moveaxis(grad, ctx.axis, 0)
        out = np.zeros((ctx.length,) + g.shape[1:], dtype=grad.dtype)
        tail = (1,) * (g.ndim - 1)
        for i, w in zip(ctx.index, ctx.weight):
            np.add.at(out, i, g if np.all(w == 1) else g * w.reshape((-1,) + tail))
        return np.moveaxis(out, 0, ctx.axis)


def _scale(length: int, size: int, align_corners: bool, scale_factor, dtype):
    """PyTorch's area_pixel_compute_scale, in `dtype` arithmetic."""
    if align_corners:
        return dtype.type((length - 1) / (size - 1)) if size > 1 else dtype.type(0)
    if scale_factor is not None and scale_factor > 0:
        return dtype.type(1.0 / scale_factor)
    return dtype.type(length) / dtype.type(size)


def taps(mode: str, length: int, size: int, align_corners: bool, scale_factor, dtype):
    """(index, weight) arrays of shape (T, size) for resizing one axis from `length` to `size`."""
    o = np.arange(size)
    if mode in ("nearest", "nearest-exact"):
        if mode == "nearest" and size == length:
            index = o
        elif mode == "nearest" and size == 2 * length:
            index = o >> 1
        else:
            scale = np.float32(1.0 / scale_factor) if scale_factor else np.float32(length) / np.float32(size)
            shift = np.float32(0.5) if mode == "nearest-exact" else np.float32(0)
            index = np.minimum(np.floor((o.astype(np.float32) + shift) * scale).astype(np.int64), length - 1)
        return index[None], np.ones((1, size), dtype)
    scale = _scale(length, size, align_corners, scale_factor, dtype)
    dst = o.astype(dtype)
    src = scale * dst if align_corners else scale * (dst + dtype.type(0.5)) - dtype.type(0.5)
    if mode == "bicubic":
        base = np.floor(src)
        t = (src - base).astype(dtype)
        a = dtype.type(-0.75)

        def near(x):  # Keys' kernel for |x| ≤ 1
            return ((a + 2) * x - (a + 3)) * x * x + 1

        def far(x):  # and for 1 < |x| < 2
            return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

        weight = np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)]).astype(dtype)
        index = np.clip(base.astype(np.int64) + np.arange(-1, 3)[:, None], 0, length - 1)
        return index, weight
    src = np.maximum(src, 0)  # linear modes clamp the source position at the first cell
    i0 = src.astype(np.int64)
    i1 = np.minimum(i0 + 1, length - 1)
    lam = np.clip(src - i0, 0, 1).astype(dtype)
    return np.stack([i0, i1]), np.stack([1 - lam, lam]).astype(dtype)


def _sizes(where: str, spatial, d: int, size, scale_factor):
    """(output sizes, per-axis scale factors for the kernels or None)."""
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{where}: give exactly one of size and scale_factor")
    if size is not None:
        sizes = tuple(size) if isinstance(size, tuple | list) else (size,) * d
        if len(sizes) != d or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in sizes):
            raise ValueError(f"{where}: size must be a positive int or {d} of them for a {d + 2}-d input, got {size!r}")
        return tuple(int(s) for s in sizes), (None,) * d
    factors = tuple(scale_factor) if isinstance(scale_factor, tuple | list) else (scale_factor,) * d
    if len(factors) != d or any(not isinstance(f, numbers.Real) or f <= 0 for f in factors):
        raise ValueError(f"{where}: scale_factor must be a positive number or {d} of them, got {scale_factor!r}")
    sizes = tuple(int(math.floor(n * float(f))) for n, f in zip(spatial, factors))
    if any(s < 1 for s in sizes):
        raise ValueError(f"{where}: scale_factor {scale_factor!r} makes an empty output from {tuple(spatial)}")
    return sizes, tuple(float(f) for f in factors)


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                recompute_scale_factor=None, antialias: bool = False) -> Tensor:
    """Resize the spatial axes of an (N, C, *spatial) input; see the module docstring.

    Shape:
        (N, C, L) / (N, C, H, W) / (N, C, D, H, W) → the same with the new sizes: `size`, or
        ⌊L·scale_factor⌋ per axis.
    """
    where = "interpolate"
    if not isinstance(input, Tensor):
        raise TypeError(f"{where}: expected a Tensor input, got {type(input).__name__}")
    d = input.ndim - 2
    if d not in (1, 2, 3):
        raise ShapeError(f"{where}: expected a 3-d to 5-d input (N, C, *spatial), got shape {input.shape}")
    if mode not in MODES:
        raise ValueError(f"{where}: mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode in ("linear", "bilinear", "trilinear") and mode != _LINEAR[d]:
        raise ShapeError(f"{where}: got a {input.ndim}-d input, but {mode} mode needs a "
                         f"{ {'linear': 3, 'bilinear': 4, 'trilinear': 5}[mode]}-d input")
    if mode == "bicubic" and d != 2:
        raise ShapeError(f"{where}: got a {input.ndim}-d input, but bicubic mode needs a 4-d input")
    interpolating = mode in ("linear", "bilinear", "trilinear", "bicubic")
    if align_corners is not None and not interpolating:
        raise ValueError(f"{where}: align_corners can only be set with the interpolating modes "
                         f"linear | bilinear | bicubic | trilinear, got mode={mode!r}")
    if antialias:
        raise NotImplementedError(f"{where}: antialias=True is not supported in convlens")
    if input.dtype.kind != "f":
        raise TypeError(f"{where}: expected a floating-point input, got dtype {input.dtype}")
    sizes, factors = _sizes(where, input.shape[2:], d, size, scale_factor)
    if recompute_scale_factor:
        factors = (None,) * d
    if mode == "area":
        from convlens.nn.functional import pooling

        return getattr(pooling, f"adaptive_avg_pool{d}d")(input, sizes)
    out = input
    for axis in range(2, input.ndim):
        index, weight = taps(mode, input.shape[axis], sizes[axis - 2], bool(align_corners), factors[axis - 2],
                             input.dtype)
        if not (index.shape[0] == 1 and np.array_equal(index[0], np.arange(input.shape[axis]))):
            out = ResampleAxis.apply(out, index=index, weight=weight, axis=axis)
    return out if out is not input else input.clone()


def upsample(input, size=None, scale_factor=None, mode: str = "nearest", align_corners=None) -> Tensor:
    """The deprecated name of `interpolate`."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None) -> Tensor:
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None) -> Tensor:
    """Bilinear with align_corners=True, as PyTorch's deprecated function."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)
