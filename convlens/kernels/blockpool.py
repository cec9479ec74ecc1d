"""Max pooling over disjoint blocks (kernel = stride, no padding, no dilation), compiled, in 1, 2 or 3-d.

The pooling of the 1-D and 3-D nets (max pool 4 over a signal, 2×2×2 over a clip): every window is a
block of ∏K cells and no two blocks share a cell, so one pass finds each block's maximum, and the backward pass finds
the winning cell again (cheaper than storing and re-reading an index) and puts the block's gradient there:

    out[n, c, o] = x[n, c, o·K + t*],  t* = the first tap in row-major order holding the maximum
                   (a NaN wins, as in PyTorch);        dx[n, c, o·K + t*] = dout[n, c, o], 0 elsewhere

Cells past the last whole block (ceil_mode=False) belong to no window and get a zero gradient. Both
memory orders are read without a copy: C-contiguous (N, C, *S) as (N·C, S₁, S₂, S₃), and channels-last
(N, *S, C) memory, where the C channels of a cell are contiguous and the inner loop runs over them.
Fewer than three spatial axes get leading axes of size 1.
"""

from __future__ import annotations

import numba
import numpy as np

from convlens import parallel


def layout(x: np.ndarray) -> str | None:
    if x.flags.c_contiguous:
        return "first"
    return "last" if np.moveaxis(x, 1, -1).flags.c_contiguous else None


def applies(x: np.ndarray, window) -> bool:
    """Disjoint blocks on an input in either memory order (see the module docstring)."""
    return (x.ndim in (3, 4, 5) and window.kernel == window.stride and not any(window.padding)
            and all(d == 1 for d in window.dilation) and not any(window.extra)
            and layout(x) is not None)


@numba.njit(nogil=True, inline="always")
def newer(v, m):
    """Whether value v replaces the running maximum m: larger, or the first NaN (also pool_kernels.py's).
    Bitwise, not `or`/`and`: the short-circuit branches were mispredicted half the time on random data."""
    return (v > m) | ((v != v) & (m == m))


@numba.njit(nogil=True, inline="always")
def _is_max(v, m):
    """Whether cell value v is its block's maximum m (NaN for NaN)."""
    return (v == m) | ((v != v) & (m != m))


# Channels-first: tap by tap over a row of outputs, the inner loop along the row (strided loads and
# selects, which LLVM vectorises; keeping the running argmax per output instead was 3× slower).
@numba.njit(nogil=True, cache=True)
def _max_first(x, k1, k2, k3, out, lo, hi):  # pragma: no cover - compiled
    for b in range(lo, hi):
        for o1 in range(out.shape[1]):
            for o2 in range(out.shape[2]):
                best = out[b, o1, o2]
                first = True
                for t1 in range(k1):
                    for t2 in range(k2):
                        row = x[b, o1 * k1 + t1, o2 * k2 + t2]
                        for t3 in range(k3):
                            if first:
                                for o3 in range(best.shape[0]):
                                    best[o3] = row[o3 * k3]
                                first = False
                            elif k3 == 2:  # the common widths as constants: a constant stride vectorises
                                _max_row(row, best, 2, t3)
                            elif k3 == 4:
                                _max_row(row, best, 4, t3)
                            else:
                                _max_row(row, best, k3, t3)


@numba.njit(nogil=True, inline="always")
def _max_row(row, best, k3, t3):
    for o3 in range(best.shape[0]):
        v = row[o3 * k3 + t3]
        best[o3] = v if newer(v, best[o3]) else best[o3]


@numba.njit(nogil=True, cache=True)
def _backward_first(g, x, out, k1, k2, k3, dx, lo, hi):  # pragma: no cover - compiled
    # every cell of every block is written: g at the block's first maximal cell (found again), else 0;
    # `rest` holds each block's gradient until its winner has taken it (a bool mask instead, or the
    # taps outside the loop along the row: 3–5× slower)
    rest = np.empty(out.shape[3], dtype=dx.dtype)
    for b in range(lo, hi):
        for o1 in range(out.shape[1]):
            for o2 in range(out.shape[2]):
                best = out[b, o1, o2]
                rest[:] = g[b, o1, o2]
                for t1 in range(k1):
                    for t2 in range(k2):
                        row = x[b, o1 * k1 + t1, o2 * k2 + t2]
                        drow = dx[b, o1 * k1 + t1, o2 * k2 + t2]
                        # the common widths as constants, so that the loop over a block's taps unrolls
                        # (a runtime-length inner loop kept the row scalar: 1-D (2048, 1980) by 4, 19.6 → 3 ms)
                        if k3 == 2:
                            _backward_row(row, drow, best, rest, 2)
                        elif k3 == 4:
                            _backward_row(row, drow, best, rest, 4)
                        else:
                            _backward_row(row, drow, best, rest, k3)


@numba.njit(nogil=True, inline="always")
def _backward_row(row, drow, best, rest, k3):
    for o3 in range(best.shape[0]):  # a block's cells in this row are contiguous
        m, r = best[o3], rest[o3]
        zero = r * 0
        for t3 in range(k3):
            hit = _is_max(row[o3 * k3 + t3], m)
            drow[o3 * k3 + t3] = r if hit else zero
            r = zero if hit else r
        rest[o3] = r


# Channels-last: the C channels of a cell are contiguous, the inner loop runs over them.
@numba.njit(nogil=True, cache=True)
def _max_last(x, k1, k2, k3, out, lo, hi):  # pragma: no cover - compiled
    for n in range(lo, hi):
        for o1 in range(out.shape[1]):
            for o2 in range(out.shape[2]):
                for o3 in range(out.shape[3]):
                    best = out[n, o1, o2, o3]
                    best[:] = x[n, o1 * k1, o2 * k2, o3 * k3]
                    for t1 in range(k1):
                        for t2 in range(k2):
                            for t3 in range(k3):
                                cell = x[n, o1 * k1 + t1, o2 * k2 + t2, o3 * k3 + t3]
                                for c in range(best.shape[0]):
                                    best[c] = cell[c] if newer(cell[c], best[c]) else best[c]


@numba.njit(nogil=True, cache=True)
def _backward_last(g, x, out, k1, k2, k3, dx, lo, hi):  # pragma: no cover - compiled
    rest = np.empty(out.shape[4], dtype=dx.dtype)
    for n in range(lo, hi):
        for o1 in range(out.shape[1]):
            for o2 in range(out.shape[2]):
                for o3 in range(out.shape[3]):
                    best = out[n, o1, o2, o3]
                    rest[:] = g[n, o1, o2, o3]
                    for t1 in range(k1):
                        for t2 in range(k2):
                            for t3 in range(k3):
                                i1, i2, i3 = o1 * k1 + t1, o2 * k2 + t2, o3 * k3 + t3
                                cell, dcell = x[n, i1, i2, i3], dx[n, i1, i2, i3]
                                for c in range(best.shape[0]):
                                    hit = _is_max(cell[c], best[c])
                                    dcell[c] = rest[c] if hit else 0
                                    rest[c] = 0 if hit else rest[c]


def _canonical(a: np.ndarray, lay: str) -> np.ndarray:
    """(N·C, S₁, S₂, S₃) or (N, S₁, S₂, S₃, C) view of an (N, C, *S) array in memory order `lay`."""
    n, c, *spatial = a.shape
    spatial = [1] * (3 - len(spatial)) + spatial
    if lay == "first":
        return np.ascontiguousarray(a).reshape(n * c, *spatial)
    return np.ascontiguousarray(np.moveaxis(a, 1, -1)).reshape(n, *spatial, c)


# ---- launchers: ranges of images (or rows) on numba's threads (kernels/launch.py) --------------------
_PAR = dict(nogil=True, cache=True, parallel=True)


@numba.njit(**_PAR)
def _max_first_parts(x, k1, k2, k3, out, edges):  # pragma: no cover - compiled
    for p in numba.prange(edges.shape[0] - 1):
        _max_first(x, k1, k2, k3, out, edges[p], edges[p + 1])


@numba.njit(**_PAR)
def _max_last_parts(x, k1, k2, k3, out, edges):  # pragma: no cover - compiled
    for p in numba.prange(edges.shape[0] - 1):
        _max_last(x, k1, k2, k3, out, edges[p], edges[p + 1])


@numba.njit(**_PAR)
def _backward_first_parts(g, x, out, k1, k2, k3, dx, edges):  # pragma: no cover - compiled
    for p in numba.prange(edges.shape[0] - 1):
        _backward_first(g, x, out, k1, k2, k3, dx, edges[p], edges[p + 1])


@numba.njit(**_PAR)
def _backward_last_parts(g, x, out, k1, k2, k3, dx, edges):  # pragma: no cover - compiled
    for p in numba.prange(edges.shape[0] - 1):
        _backward_last(g, x, out, k1, k2, k3, dx, edges[p], edges[p + 1])


def _kernel3(kernel) -> tuple:
    return (1,) * (3 - len(kernel)) + tuple(kernel)


def _new(shape, dtype, lay: str, zeroed: bool = False):
    """(canonical kernel array, its (N, C, *S) view) for a result of (N, C, *S) `shape`."""
    n, c, *spatial = shape
    make = np.zeros if zeroed else np.empty
    if lay == "first":
        a = make(shape, dtype=dtype)
        return _canonical(a, lay), a
    a = make((n, *spatial, c), dtype=dtype)
    return _canonical(np.moveaxis(a, -1, 1), lay), np.moveaxis(a, -1, 1)


def max_pool(x: np.ndarray, kernel) -> tuple[np.ndarray, tuple]:
    """(window maxima in `x`'s memory order, state for `max_pool_backward`)."""
    lay = layout(x)
    out_shape = (*x.shape[:2], *(s // k for s, k in zip(x.shape[2:], kernel)))
    src = _canonical(x, lay)
    out, view = _new(out_shape, x.dtype, lay)
    kern, parts = (_max_first, _max_first_parts) if lay == "first" else (_max_last, _max_last_parts)
    parallel.run_compiled(parts, kern, (src, *_kernel3(kernel), out), parallel.compiled_ranges(src.shape[0], x.nbytes))
    return view, (src, out, lay, x.shape, tuple(kernel))


def max_pool_backward(grad: np.ndarray, state) -> np.ndarray:
    """dx: each block's gradient at its winning cell (found again, not stored), zeros elsewhere, in
    the input's memory order."""
    src, out, lay, x_shape, kernel = state
    # the kernels write every cell of every block: only cells past the last block need zeros
    tails = any(s % k for s, k in zip(x_shape[2:], kernel))
    dx, view = _new(x_shape, grad.dtype, lay, zeroed=tails)
    g = _canonical(grad, lay)
    kern, parts = (_backward_first, _backward_first_parts) if lay == "first" else (_backward_last, _backward_last_parts)
    parallel.run_compiled(parts, kern, (g, src, out, *_kernel3(kernel), dx), parallel.compiled_ranges(g.shape[0], dx.nbytes))
    return view
