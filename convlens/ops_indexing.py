"""Selection and rearrangement ops: `where`, scatter, tile (``repeat``), flip, roll.

Each forward is a NumPy indexing operation; its backward sends every output cell's gradient back to
the input cell it came from (summed where one input cell feeds several outputs).
"""

from __future__ import annotations

import numpy as np

from convlens.autograd import Function, unbroadcast


class Where(Function):
    """out = a where cond else b (broadcast)."""

    def forward(ctx, a, b, cond):
        ctx.cond, ctx.shapes = cond, (a.shape, b.shape)
        return np.where(cond, a, b)

    def backward(ctx, grad):  # ∂/∂a = [cond], ∂/∂b = [not cond]
        zero = grad.dtype.type(0)
        ga = unbroadcast(np.where(ctx.cond, grad, zero), ctx.shapes[0]) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(np.where(ctx.cond, zero, grad), ctx.shapes[1]) if ctx.needs_input_grad[1] else None
        return ga, gb


def along(index: np.ndarray, axis: int) -> tuple:
    """The full index of ``take_along_axis``/``scatter``: position (i, j, ...) of `index` addresses
    (i, ..., index[i, j, ...], ...) with `index`'s value on `axis` (torch.gather's rule; the other
    axes may be shorter than the indexed tensor's)."""
    grid = [np.arange(n).reshape([-1 if i == d else 1 for i in range(index.ndim)])
            for d, n in enumerate(index.shape)]
    grid[axis] = index
    return tuple(grid)


def _leading(shape) -> tuple:
    """The slice of a larger array that has `shape` (the part of `src` that scatter reads)."""
    return tuple(slice(0, n) for n in shape)


class Scatter(Function):
    """out = a with out[along(index)] = src (or the number `value`); ``add=True`` adds instead
    (scatter_add), so repeated indices accumulate."""

    def forward(ctx, a, src=None, index=None, axis=0, value=None, add=False):
        ctx.where, ctx.add = along(index, axis), add
        ctx.src_shape = None if src is None else src.shape
        values = value if src is None else src[_leading(index.shape)]
        out = a.copy()
        if add:
            np.add.at(out, ctx.where, values)
        else:
            out[ctx.where] = values
        return out

    def backward(ctx, grad):
        # overwritten cells pass nothing back to `a` (added ones pass theirs); src gets its cells' gradient
        ga = gs = None
        if ctx.needs_input_grad[0]:
            ga = grad.copy()
            if not ctx.add:
                ga[ctx.where] = 0
        if ctx.src_shape is not None and ctx.needs_input_grad[1]:
            gs = np.zeros(ctx.src_shape, dtype=grad.dtype)
            picked = grad[ctx.where]
            gs[_leading(picked.shape)] = picked
        return ga, gs


class Tile(Function):
    """``np.tile``: out repeats `a` reps[i] times along axis i (torch's ``Tensor.repeat``)."""

    def forward(ctx, a, reps):
        ctx.shape = (1,) * (len(reps) - a.ndim) + a.shape  # repeat() may add leading axes
        ctx.reps, ctx.in_shape = reps, a.shape
        return np.tile(a, reps)

    def backward(ctx, grad):  # each input cell appears once per tile: sum the tiles
        split = [n for pair in zip(ctx.reps, ctx.shape) for n in pair]  # (r0, s0, r1, s1, ...)
        return grad.reshape(split).sum(axis=tuple(range(0, len(split), 2))).reshape(ctx.in_shape)


class Flip(Function):
    def forward(ctx, a, dims):
        ctx.dims = dims
        return np.flip(a, dims).copy()

    def backward(ctx, grad):  # a permutation of the cells: flip back
        return np.flip(grad, ctx.dims).copy()


class Roll(Function):
    def forward(ctx, a, shifts, dims):
        ctx.shifts, ctx.dims = shifts, dims
        return np.roll(a, shifts, dims)

    def backward(ctx, grad):  # roll back
        return np.roll(grad, tuple(-s for s in ctx.shifts) if isinstance(ctx.shifts, tuple) else -ctx.shifts,
                       ctx.dims)
