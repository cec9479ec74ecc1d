"""Compiled 2×2 pooling with stride 2, no padding, over (N, C, H, W) arrays in either memory order:
C-contiguous, or views of C-contiguous (N, H, W, C) memory (channels-last, see `layout`).

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


def layout(x: np.ndarray) -> str | None:
    """"first" for C-contiguous (N, C, H, W) memory, "last" for (N, C, H, W) views of C-contiguous
    (N, H, W, C) memory (the im2col and Winograd convolutions' outputs), else None."""
    if x.ndim != 4:
        return None
    if x.flags.c_contiguous:
        return "first"
    return "last" if np.moveaxis(x, 1, -1).flags.c_contiguous else None


def applies(x: np.ndarray, window, scale=None) -> bool:
    """Whether `window` (a PoolWindow) on `x` is the case handled here (with one divisor, for average
    pooling)."""
    return (layout(x) is not None and window.kernel == (2, 2) and window.stride == (2, 2)
            and not any(window.padding) and window.dilation == (1, 1) and not any(window.extra)
            and np.ndim(scale) == 0)


def _compile():
    """The compiled loops (pool_kernels.py), imported on first use; numba caches them on disk."""
    global _kernels
    if _kernels is None:
        from convlens.kernels import pool_kernels

        _kernels = pool_kernels
    return _kernels


def _kernel_view(a: np.ndarray, x_layout: str) -> np.ndarray:
    """The C-contiguous array a kernel for `x_layout` reads: (N, C, H, W) itself, or its (N, H, W, C)
    memory (free when `a` is such a view already, a copy otherwise)."""
    return np.ascontiguousarray(np.moveaxis(a, 1, -1) if x_layout == "last" else a)


def _new(shape, dtype, x_layout: str, zeroed: bool = False):
    """(array for the kernel, its (N, C, H, W) view) for an (N, C, H, W) result of `shape`."""
    n, c, h, w = shape
    make = np.zeros if zeroed else np.empty
    if x_layout == "last":
        a = make((n, h, w, c), dtype=dtype)
        return a, np.moveaxis(a, -1, 1)
    a = make(shape, dtype=dtype)
    return a, a


def _run(name: str, x_layout: str, *args) -> None:
    name += "_last" if x_layout == "last" else ""
    kernels = _compile()
    parallel.run_compiled(getattr(kernels, name + "_parts"), getattr(kernels, name), args,
                          parallel.compiled_ranges(args[-1].shape[0], args[-1].nbytes))


def _pooled_shape(shape) -> tuple:
    return (*shape[:2], shape[2] // 2, shape[3] // 2)


def _odd(shape) -> bool:
    """An odd last row or column is in no window: its gradient stays 0."""
    return bool(shape[2] % 2 or shape[3] % 2)


def max_pool(x: np.ndarray) -> np.ndarray:
    """The window maxima, in `x`'s memory order."""
    lay = layout(x)
    out, view = _new(_pooled_shape(x.shape), x.dtype, lay)
    _run("max_forward", lay, _kernel_view(x, lay), out)
    return view


def max_pool_backward(grad: np.ndarray, x: np.ndarray) -> np.ndarray:
    """dx: each window's gradient at its winning cell of `x` (found again, not stored)."""
    lay = layout(x)
    dx, view = _new(x.shape, grad.dtype, lay, zeroed=_odd(x.shape))
    _run("max_backward", lay, _kernel_view(grad, lay), _kernel_view(x, lay), dx)
    return view


def avg_pool(x: np.ndarray, scale) -> np.ndarray:
    lay = layout(x)
    out, view = _new(_pooled_shape(x.shape), x.dtype, lay)
    _run("avg_forward", lay, _kernel_view(x, lay), x.dtype.type(scale), out)
    return view


def avg_pool_backward(grad: np.ndarray, scale, x_shape, x_layout: str) -> np.ndarray:
    """dx in the memory order `x_layout` of the forward pass's input."""
    dx, view = _new(x_shape, grad.dtype, x_layout, zeroed=_odd(x_shape))
    _run("avg_backward", x_layout, _kernel_view(grad, x_layout), grad.dtype.type(scale), dx)
    return view
