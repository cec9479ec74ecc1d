"""Compiled 2×2 pooling with stride 2, no padding, over C-contiguous (N, C, H, W) arrays.

This is the pooling of almost every CNN (ConvNetJS's, LeNet-5's), and the direct convolution
(direct.py) hands its output over in exactly this layout. The general strided-slice code in
pooling.py makes several passes per window offset (compare, mask, multiply, for max pooling); here
each direction is one compiled loop, and max pooling records which cell of each window won so that
the backward pass is a single scatter:

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
    global _kernels
    if _kernels is not None:
        return _kernels
    import numba

    @numba.njit(nogil=True, cache=True)
    def max_forward(x, out, arg, lo, hi):  # pragma: no cover - compiled
        _, C, Ho, Wo = out.shape
        for n in range(lo, hi):
            for c in range(C):
                for i in range(Ho):
                    r0, r1, o, w = x[n, c, 2 * i], x[n, c, 2 * i + 1], out[n, c, i], arg[n, c, i]
                    for j in range(Wo):
                        best, at = r0[2 * j], 0
                        v = r0[2 * j + 1]
                        if v > best or (v != v and best == best):
                            best, at = v, 1
                        v = r1[2 * j]
                        if v > best or (v != v and best == best):
                            best, at = v, 2
                        v = r1[2 * j + 1]
                        if v > best or (v != v and best == best):
                            best, at = v, 3
                        o[j] = best
                        w[j] = at

    @numba.njit(nogil=True, cache=True)
    def max_backward(g, arg, dx, lo, hi):  # pragma: no cover - compiled
        _, C, Ho, Wo = g.shape
        for n in range(lo, hi):
            for c in range(C):
                for i in range(Ho):
                    gr, w = g[n, c, i], arg[n, c, i]
                    for a in range(2):
                        row = dx[n, c, 2 * i + a]
                        for jj in range(2 * Wo):
                            j = jj >> 1
                            row[jj] = gr[j] if w[j] == 2 * a + (jj & 1) else gr[j] * 0

    @numba.njit(nogil=True, cache=True)
    def avg_forward(x, scale, out, lo, hi):  # pragma: no cover - compiled
        _, C, Ho, Wo = out.shape
        for n in range(lo, hi):
            for c in range(C):
                for i in range(Ho):
                    r0, r1, o = x[n, c, 2 * i], x[n, c, 2 * i + 1], out[n, c, i]
                    for j in range(Wo):
                        o[j] = (r0[2 * j] + r0[2 * j + 1] + r1[2 * j] + r1[2 * j + 1]) * scale

    @numba.njit(nogil=True, cache=True)
    def avg_backward(g, scale, dx, lo, hi):  # pragma: no cover - compiled
        _, C, Ho, Wo = g.shape
        for n in range(lo, hi):
            for c in range(C):
                for i in range(Ho):
                    gr = g[n, c, i]
                    for a in range(2):
                        row = dx[n, c, 2 * i + a]
                        for jj in range(2 * Wo):
                            row[jj] = gr[jj >> 1] * scale

    _kernels = {"max_forward": max_forward, "max_backward": max_backward,
                "avg_forward": avg_forward, "avg_backward": avg_backward}
    return _kernels


def _pooled(x: np.ndarray) -> np.ndarray:
    return np.empty((*x.shape[:2], x.shape[2] // 2, x.shape[3] // 2), dtype=x.dtype)


def _input_grad(x_shape, dtype) -> np.ndarray:
    """The input gradient's array: an odd last row or column is in no window, so it stays 0."""
    return (np.empty if x_shape[2] % 2 == 0 and x_shape[3] % 2 == 0 else np.zeros)(x_shape, dtype=dtype)


def max_pool(x: np.ndarray):
    """(out, arg): the window maxima and, per window, the row-major index (0–3) of the winning cell."""
    out = _pooled(x)
    arg = np.empty(out.shape, dtype=np.int8)
    f = _compile()["max_forward"]
    parallel.run(lambda lo, hi: f(x, out, arg, lo, hi), parallel.batch_ranges(x))
    return out, arg


def max_pool_backward(grad: np.ndarray, arg: np.ndarray, x_shape) -> np.ndarray:
    grad, dx = np.ascontiguousarray(grad), _input_grad(x_shape, grad.dtype)
    f = _compile()["max_backward"]
    parallel.run(lambda lo, hi: f(grad, arg, dx, lo, hi), parallel.batch_ranges(dx))
    return dx


def avg_pool(x: np.ndarray, scale) -> np.ndarray:
    out = _pooled(x)
    f = _compile()["avg_forward"]
    parallel.run(lambda lo, hi: f(x, x.dtype.type(scale), out, lo, hi), parallel.batch_ranges(x))
    return out


def avg_pool_backward(grad: np.ndarray, scale, x_shape) -> np.ndarray:
    grad, dx = np.ascontiguousarray(grad), _input_grad(x_shape, grad.dtype)
    f = _compile()["avg_backward"]
    parallel.run(lambda lo, hi: f(grad, grad.dtype.type(scale), dx, lo, hi), parallel.batch_ranges(dx))
    return dx
