"""The indices of max pooling (``return_indices=True``) and max unpooling, its partial inverse.

An index is the flat position of a window's maximum within its (sample, channel) plane of the input,
Σ_a coord_a·∏_{b>a} L_b (PyTorch's convention), the first maximum in row-major window order on ties.
``max_unpool`` puts each value back at its index in a zero tensor of the pre-pooling size (SegNet's
decoder); its gradient reads the output gradient at those indices.
"""

from __future__ import annotations

import itertools

import numpy as np

from convlens.autograd import Function
from convlens.errors import ShapeError
from convlens.nn.shape import ntuple
from convlens.tensor import Tensor


def max_pool_indices(x: np.ndarray, out: np.ndarray, window) -> np.ndarray:
    """Flat in-plane indices (int64, the shape of `out`) of the maxima `out` of `window` over `x`."""
    from convlens.nn.functional.pooling import _lowest

    xp = window.pad(x, _lowest(x.dtype))
    spatial = x.shape[2:]
    steps = [int(np.prod(spatial[a + 1:])) for a in range(len(spatial))]
    indices = np.zeros(out.shape, dtype=np.int64)
    taken = np.zeros(out.shape, dtype=bool)
    nan = np.isnan(out) if out.dtype.kind == "f" else None
    grids = [np.arange(o).reshape([-1 if a == b else 1 for b in range(len(spatial))]) * s
             for a, (o, s) in enumerate(zip(window.out, window.stride))]
    for offset, sl in zip(itertools.product(*(range(k) for k in window.kernel)), window.slices()):
        hit = xp[sl] == out
        if nan is not None:
            hit |= nan & np.isnan(xp[sl])
        hit &= ~taken
        taken |= hit
        flat = sum((g + k * d - p) * st for g, k, d, p, st in
                   zip(grids, offset, window.dilation, window.padding, steps))
        np.copyto(indices, np.broadcast_to(flat, out.shape), where=hit)
    return indices


class MaxUnpool(Function):
    """out[n, c, index[n, c, i]] = x[n, c, i] in a zero tensor with `size` positions per plane."""

    def forward(ctx, x, index, size):
        n, c = x.shape[:2]
        flat = index.reshape(n, c, -1)
        ctx.flat, ctx.shape = flat, x.shape
        out = np.zeros((n, c, int(np.prod(size))), dtype=x.dtype)
        np.put_along_axis(out, flat, x.reshape(n, c, -1), axis=2)
        return out.reshape((n, c) + tuple(size))

    def backward(ctx, grad):  # each input cell went to one place: read its gradient there
        n, c = ctx.shape[:2]
        return np.take_along_axis(grad.reshape(n, c, -1), ctx.flat, axis=2).reshape(ctx.shape)


def _max_unpool(dims: int, where: str, input, indices, kernel_size, stride, padding, output_size):
    if not isinstance(input, Tensor):
        raise TypeError(f"{where}: expected a Tensor input, got {type(input).__name__}")
    index = np.asarray(getattr(indices, "_data", indices))
    unbatched = input.ndim == dims + 1
    if unbatched:
        input, index = input.unsqueeze(0), index[None]
    if input.ndim != dims + 2:
        raise ShapeError(f"{where}: expected a {dims + 1}-d or {dims + 2}-d input, got shape {input.shape}")
    if index.shape != input.shape or index.dtype.kind not in "iu":
        raise ShapeError(f"{where}: expected int64 indices of the input's shape {input.shape}, got "
                         f"{index.dtype} of shape {index.shape}")
    kernel = ntuple(kernel_size, dims, "kernel_size", where, minimum=1)
    stride = kernel if stride is None else ntuple(stride, dims, "stride", where, minimum=1)
    padding = ntuple(padding, dims, "padding", where, minimum=0)
    default = tuple((n - 1) * s - 2 * p + k for n, s, p, k in zip(input.shape[2:], stride, padding, kernel))
    if output_size is None:
        size = default
    else:
        size = tuple(int(s) for s in tuple(output_size)[-dims:])
        if any(not (d - s <= o <= d + s) for o, d, s in zip(size, default, stride)):
            raise ValueError(f"{where}: output_size {size} must be within a stride {stride} of the default "
                             f"size {default}")
    if index.size and (index.min() < 0 or index.max() >= int(np.prod(size))):
        raise ValueError(f"{where}: found an index {int(index.max())} out of bounds for an output of size {size}")
    out = MaxUnpool.apply(input, index=index.astype(np.int64, copy=False), size=size)
    return out.squeeze(0) if unbatched else out


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Inverse of max_pool1d(return_indices=True) up to the non-maxima, which become 0.

    Shape:
        (N, C, L) → (N, C, L_out), L_out = (L − 1)·S − 2P + K (or output_size)
    """
    return _max_unpool(1, "max_unpool1d", input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Inverse of max_pool2d(return_indices=True) up to the non-maxima, which become 0.

    Shape:
        (N, C, H, W) → (N, C, H_out, W_out), H_out = (H − 1)·S − 2P + K (or output_size)
    """
    return _max_unpool(2, "max_unpool2d", input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Inverse of max_pool3d(return_indices=True); see max_unpool2d.

    Shape:
        (N, C, D, H, W) → (N, C, D_out, H_out, W_out)
    """
    return _max_unpool(3, "max_unpool3d", input, indices, kernel_size, stride, padding, output_size)
