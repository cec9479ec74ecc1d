"""Strided-window helpers shared by the pooling ops: window geometry and PyTorch's adaptive bins.

`PoolWindow`: a window of K taps, D apart, moved by stride S over the input padded by P reads, for a
fixed kernel offset k, the padded cells k·D, k·D + S, …, k·D + (O−1)·S of every window: one strided
slice. `AdaptiveBins`: the bins [⌊iL/O⌋, ⌈(i+1)L/O⌉) of adaptive pooling along one axis.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np

from convlens.nn.shape import check_input, conv_output_size, ntuple


@dataclass(frozen=True)
class PoolWindow:
    """Validated geometry of a window pooling: per-axis kernel, stride, padding, dilation and output.

    ``extra`` is the padding added after ``padding`` on the right so that ceil_mode's last window,
    which may run past the padded input, still reads a full slice (those cells hold the fill value).
    """

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    out: tuple[int, ...]
    extra: tuple[int, ...]

    @property
    def disjoint(self) -> bool:
        """Whether no two windows share a cell: stride >= the window's extent D·(K−1) + 1 on every axis."""
        return all(s >= d * (k - 1) + 1 for s, d, k in zip(self.stride, self.dilation, self.kernel))

    def slices(self):
        """For each kernel offset (row-major, the order PyTorch scans a window), the slice of the
        padded input it reads in every window."""
        for offset in itertools.product(*(range(k) for k in self.kernel)):
            yield (Ellipsis,) + tuple(slice(k * d, k * d + (o - 1) * s + 1, s) for k, d, o, s in
                                      zip(offset, self.dilation, self.out, self.stride))

    def pad(self, x: np.ndarray, fill) -> np.ndarray:
        """`x` with `padding` cells of `fill` on both sides of each spatial axis (plus `extra` on the right)."""
        if not any(self.padding) and not any(self.extra):
            return x
        d = len(self.kernel)
        shape = x.shape[:-d] + tuple(n + 2 * p + e for n, p, e in zip(x.shape[-d:], self.padding, self.extra))
        out = np.full_like(x, fill, shape=shape)  # keeps x's memory order
        out[self.inner(x.shape)] = x
        return out

    def inner(self, shape) -> tuple:
        """Index of the unpadded input inside the padded array."""
        d = len(self.kernel)
        return (Ellipsis,) + tuple(slice(p, p + n) for p, n in zip(self.padding, shape[-d:]))


def pool_window(where: str, shape, dims: int, kernel_size, stride, padding, dilation=1,
                ceil_mode: bool = False) -> PoolWindow:
    """Validate a window pooling's arguments for an input of `shape` (errors name `where`). The result
    (a frozen PoolWindow) is remembered per argument set: a layer asks the same question on every
    forward pass, and the checks cost more than a small pooling (LeNet-5, one image: 2 × 20 µs)."""
    try:
        return _pool_window_cached(where, tuple(shape), dims, kernel_size, stride, padding, dilation, ceil_mode)
    except TypeError:  # an unhashable argument (a list): checked every time
        return _pool_window(where, shape, dims, kernel_size, stride, padding, dilation, ceil_mode)


def _pool_window(where: str, shape, dims: int, kernel_size, stride, padding, dilation=1,
                 ceil_mode: bool = False) -> PoolWindow:
    check_input(shape, dims, where)
    kernel = ntuple(kernel_size, dims, "kernel_size", where, minimum=1)
    if stride is None or (isinstance(stride, list | tuple) and len(stride) == 0):
        stride = kernel  # PyTorch's default: non-overlapping windows
    stride = ntuple(stride, dims, "stride", where, minimum=1)
    padding = ntuple(padding, dims, "padding", where, minimum=0)
    dilation = ntuple(dilation, dims, "dilation", where, minimum=1)
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ValueError(f"{where}: padding must be at most half the kernel size (padding <= kernel_size // 2), "
                         f"got padding={padding} for kernel_size={kernel}")
    spatial = tuple(shape[2:])
    out = conv_output_size(spatial, kernel, stride, padding, dilation, ceil_mode=bool(ceil_mode))
    if any(o < 1 for o in out):
        what = f"kernel_size={kernel}" + (f" with dilation={dilation}" if any(d > 1 for d in dilation) else "")
        raise ValueError(f"{where}: {what} is larger than the padded input: input of shape {tuple(shape)} "
                         f"padded by {padding} gives an output of size {out}")
    # the last window ends at (O−1)·S + D·(K−1) + 1; ceil_mode may put that past the padded input
    extra = tuple(max(0, (o - 1) * s + d * (k - 1) + 1 - (n + 2 * p))
                  for o, s, d, k, n, p in zip(out, stride, dilation, kernel, spatial, padding))
    return PoolWindow(kernel, stride, padding, dilation, out, extra)


_pool_window_cached = functools.lru_cache(maxsize=512)(_pool_window)


@dataclass(frozen=True)
class AdaptiveBins:
    """PyTorch's adaptive bins along one axis of length L into O outputs: [⌊iL/O⌋, ⌈(i+1)L/O⌉).

    Bins are read tap by tap: tap t of every bin is one array with O at the axis. When O divides L,
    tap t is the strided view x[t::L/O]; otherwise it is gathered, shorter bins repeating their last
    cell, and the mean is instead one matrix product along the axis (bins overlap there).
    """

    length: int
    size: int

    @property
    def even(self) -> bool:
        return self.length % self.size == 0

    @property
    def bounds(self):
        i = np.arange(self.size)
        return (i * self.length) // self.size, -((-(i + 1) * self.length) // self.size)

    def index(self) -> np.ndarray:
        """(K × O): the cell tap t of bin i reads, K the longest bin; a shorter bin repeats its last cell
        (harmless for max: the repeat comes after the original and ties keep the first)."""
        start, end = self.bounds
        return np.minimum(start + np.arange(int((end - start).max()))[:, None], end - 1)

    def tap(self, axis: int, t: int) -> tuple:
        """Index of tap t when O divides L: every (L/O)-th cell from t."""
        return (slice(None),) * axis + (slice(t, None, self.length // self.size),)

    def taps(self, x: np.ndarray, axis: int):
        if self.even:
            for t in range(self.length // self.size):
                yield x[self.tap(axis, t)]
        else:
            for cells in self.index():
                yield np.take(x, cells, axis=axis)

    def matrix(self, dtype) -> np.ndarray:
        """A (O × L): A[i, j] = 1/|bin i| for j in bin i, so that mean = A·x along the axis."""
        start, end = self.bounds
        j = np.arange(self.length)
        inside = (j >= start[:, None]) & (j < end[:, None])
        return (inside / (end - start)[:, None]).astype(dtype)

    # mean ---------------------------------------------------------------------------------------------
    def mean(self, x: np.ndarray, axis: int) -> np.ndarray:
        if not self.even:
            return matmul_axis(x, self.matrix(x.dtype), axis)
        y = None
        for v in self.taps(x, axis):
            y = v.copy() if y is None else np.add(y, v, out=y)
        y *= x.dtype.type(self.size / self.length)
        return y

    def mean_backward(self, g: np.ndarray, axis: int) -> np.ndarray:
        # mean = A·x along the axis  ⇒  ∂L/∂x = Aᵀ·∂L/∂mean: each cell gets grad/|bin| from every bin holding it
        if not self.even:
            return matmul_axis(g, self.matrix(g.dtype).T, axis)
        gx = np.empty(g.shape[:axis] + (self.length,) + g.shape[axis + 1:], dtype=g.dtype)
        share = g * g.dtype.type(self.size / self.length)
        for t in range(self.length // self.size):
            gx[self.tap(axis, t)] = share
        return gx

    # max ----------------------------------------------------------------------------------------------
    def max(self, x: np.ndarray, axis: int) -> np.ndarray:
        y = None
        for v in self.taps(x, axis):
            y = v.copy() if y is None else np.maximum(y, v, out=y)
        return y

    def max_backward(self, x: np.ndarray, y: np.ndarray, g: np.ndarray, axis: int) -> np.ndarray:
        # ∂max/∂x = 1 at the bin's first maximum, 0 elsewhere
        if self.even:
            gx = np.empty(x.shape, dtype=g.dtype)
        else:  # per-tap gradients, then summed into the cells they read: select[t·O + i, index[t, i]] = 1
            index = self.index()
            parts = np.empty(x.shape[:axis] + index.shape + x.shape[axis + 1:], dtype=g.dtype)
        taken = np.zeros(y.shape, dtype=bool)  # bins whose maximum an earlier tap already claimed
        for t, v in enumerate(self.taps(x, axis)):
            hit = np.equal(v, y)
            np.greater(hit, taken, out=hit)  # hit and not taken
            taken |= hit
            np.multiply(g, hit, out=gx[self.tap(axis, t)] if self.even else parts[(slice(None),) * axis + (t,)])
        if self.even:
            return gx
        select = np.zeros((index.size, self.length), dtype=g.dtype)
        select[np.arange(index.size), index.ravel()] = 1
        merged = parts.reshape(x.shape[:axis] + (-1,) + x.shape[axis + 1:])
        return matmul_axis(merged, select.T, axis)


def matmul_axis(x: np.ndarray, m: np.ndarray, axis: int) -> np.ndarray:
    """y[..., i, ...] = Σ_j m[i, j]·x[..., j, ...] along `axis`, as one matrix product."""
    xm = np.ascontiguousarray(np.moveaxis(x, axis, -1))
    y = (xm.reshape(-1, xm.shape[-1]) @ m.T).reshape(xm.shape[:-1] + (m.shape[0],))
    return np.moveaxis(y, -1, axis)
