"""Compiled 2×2 pooling with stride 2, no padding, over C-contiguous (N, C, H, W) arrays.

This is the pooling of almost every CNN (ConvNetJS's, LeNet-5's), and the direct convolution
(direct.py) hands its output over in exactly this layout. The general strided-slice code in
pooling.py makes several passes per window offset (compare, mask, multiply, for max pooling); here
each direction is one compiled loop over eight windows at a time (pool_kernels.py); the backward pass
of max pooling finds each window's winning cell again:

    max:  out[n, c, i, j] = x[n, c, 2i + a, 2j + b] at the first (a, b) in row-major order holding the
          window's maximum (a NaN wins, as in PyTorch);  dx = dout at that cell, 0 at the other three
    avg:  out = scale · Σ of the window;  dx = scale · dout at every cell of the window

An odd last row or column belongs to no window (ceil_mode=False) and gets a zero gradient.
"""

from __future__ import annotations

import numpy as np

from convlens import parallel

_kernels = None


def applies(x: np.ndarray, window, scale=None) -> bool:
    """Whether `window` (a PoolWindow) on `x` is the case handled here (with one divisor, for average
    pooling)."""
    return (x.ndim == 4 and x.flags.c_contiguous and window.kernel == (2, 2) and window.stride == (2, 2)
            and not any(window.padding) and window.dilation == (1, 1) and not any(window.extra)
            and np.ndim(scale) == 0)


def _compile():
    """The compiled loops (pool_kernels.py), imported on first use; numba caches them on disk."""
    global _kernels
    if _kernels is None:
        from convlens.nn.functional import pool_kernels

        _kernels = pool_kernels
    return _kernels


def _pooled(x: np.ndarray) -> np.ndarray:
    return np.empty((*x.shape[:2], x.shape[2] // 2, x.shape[3] // 2), dtype=x.dtype)


def _input_grad(x_shape, dtype) -> np.ndarray:
    """The input gradient's array: an odd last row or column is in no window, so it stays 0."""
    return (np.empty if x_shape[2] % 2 == 0 and x_shape[3] % 2 == 0 else np.zeros)(x_shape, dtype=dtype)


def max_pool(x: np.ndarray) -> np.ndarray:
    """The window maxima."""
    out = _pooled(x)
    f = _compile().max_forward
    parallel.run(lambda lo, hi: f(x, out, lo, hi), parallel.batch_ranges(x))
    return out


def max_pool_backward(grad: np.ndarray, x: np.ndarray) -> np.ndarray:
    """dx: each window's gradient at its winning cell of `x` (found again, not stored)."""
    grad, dx = np.ascontiguousarray(grad), _input_grad(x.shape, grad.dtype)
    f = _compile().max_backward
    parallel.run(lambda lo, hi: f(grad, x, dx, lo, hi), parallel.batch_ranges(dx))
    return dx


def avg_pool(x: np.ndarray, scale) -> np.ndarray:
    out = _pooled(x)
    f = _compile().avg_forward
    parallel.run(lambda lo, hi: f(x, x.dtype.type(scale), out, lo, hi), parallel.batch_ranges(x))
    return out


def avg_pool_backward(grad: np.ndarray, scale, x_shape) -> np.ndarray:
    grad, dx = np.ascontiguousarray(grad), _input_grad(x_shape, grad.dtype)
    f = _compile().avg_backward
    parallel.run(lambda lo, hi: f(grad, grad.dtype.type(scale), dx, lo, hi), parallel.batch_ranges(dx))
    return dx
