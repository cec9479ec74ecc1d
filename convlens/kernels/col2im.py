"""col2im, compiled (numba): add each row of d cols back onto the receptive field it was copied from.

The input gradient of an im2col convolution is d cols = dY · W (one row of ∏F·C values per output
position), followed by the adjoint of the im2col copy: every output position o adds its row's tap t to
the padded input cell o·S + t·D. In a channels-last padded array (N, ∏Sp, C) that cell is
``base[o] + offset[t]`` with base[o] = Σ_a o_a·S_a·step_a and offset[t] = Σ_a t_a·D_a·step_a (step_a the
C-order stride of spatial axis a), so the scatter is one loop over (image, output position, tap) that
adds C contiguous values: any number of dimensions, any stride and dilation. NumPy needed one strided
add per tap, each a pass over the whole gradient with runs of only C values.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

_kernel = None


def _compile():
    global _kernel
    if _kernel is None:
        import numba

        @numba.njit(nogil=True, cache=True)
        def scatter_add(dcols, bases, offsets, n0, gxp):  # pragma: no cover - compiled
            # gxp[n0 + i, bases[q] + offsets[t], :] += dcols[i·Q + q, t, :]
            Q, T = bases.shape[0], offsets.shape[0]
            for row in range(dcols.shape[0]):
                i, q = row // Q, row % Q
                img = gxp[n0 + i]
                for t in range(T):
                    dst = img[bases[q] + offsets[t]]
                    src = dcols[row, t]
                    for c in range(dst.shape[0]):
                        dst[c] += src[c]

        _kernel = scatter_add
    return _kernel


def grid_steps(padded) -> list[int]:
    """C-order strides, in cells, of the spatial axes of one image's padded grid."""
    return [math.prod(padded[a + 1:]) for a in range(len(padded))]


@functools.lru_cache(maxsize=256)
def tap_offsets(kernel, dilation, padded) -> np.ndarray:
    """Flat padded-grid offset Σ_a t_a·D_a·step_a of every kernel tap t, in row-major tap order. Cached
    per geometry and shared: callers do not write to it (writeable, so compiled kernels see one type)."""
    steps = grid_steps(padded)
    return np.array([sum(t * d * st for t, d, st in zip(tap, dilation, steps))
                     for tap in itertools.product(*(range(f) for f in kernel))], dtype=np.int64)


@functools.lru_cache(maxsize=256)
def positions(out_size, kernel, stride, dilation, padded):
    """(bases, offsets): flat padded-grid index of each output position's window start, and of each tap
    (cached and shared, as `tap_offsets`)."""
    steps = grid_steps(padded)
    bases = sum(np.arange(o).reshape([-1 if a == b else 1 for b in range(len(out_size))]) * s * st
                for a, (o, s, st) in enumerate(zip(out_size, stride, steps)))
    return np.ascontiguousarray(bases, dtype=np.int64).reshape(-1), tap_offsets(kernel, dilation, padded)


def col2im_add(dcols: np.ndarray, bases, offsets, n0: int, gxp: np.ndarray) -> None:
    """Add `dcols` (m, T, C) — rows for images n0, n0+1, … — into the channels-last padded gradient
    `gxp` (N, *Sp, C), in place."""
    flat = gxp.reshape(gxp.shape[0], -1, gxp.shape[-1])
    _compile()(np.ascontiguousarray(dcols), bases, offsets, n0, flat)
