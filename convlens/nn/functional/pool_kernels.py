"""The compiled loops of the 2×2/2 pooling (fastpool.py says what they compute).

Eight outputs at a time: a row pair's 16 + 16 inputs are four vectors, `deinterleave` splits each row
into its even and odd columns, and the four cells of eight windows are then four vectors in the order
PyTorch scans a window, (0, 0), (0, 1), (1, 0), (1, 1). The backward pass of max pooling recomputes
which cell won (cheaper than storing and re-reading an index per window) and `interleave` puts the
gradients back in input order. A row's last outputs that fill no vector take the scalar loop.
"""

from __future__ import annotations

import numba

from convlens.nn.functional.simd import (
    LANES,
    add,
    deinterleave,
    fill,
    interleave,
    load,
    scale,
    store,
    take_max,
    where_equal,
)


@numba.njit(nogil=True, inline="always")
def _cells(r0, r1, k):
    """The four cells of the windows over columns k … k + 2·LANES − 1 of rows r0, r1, in scan order."""
    e0, o0 = deinterleave(load(r0, k), load(r0, k + LANES))
    e1, o1 = deinterleave(load(r1, k), load(r1, k + LANES))
    return e0, o0, e1, o1


@numba.njit(nogil=True, inline="always")
def _argmax_vectors(r0, r1, k):
    e0, o0, e1, o1 = _cells(r0, r1, k)
    best, at = take_max(e0, fill(e0, 0), o0, 1)
    best, at = take_max(best, at, e1, 2)
    return take_max(best, at, o1, 3)


@numba.njit(nogil=True, inline="always")
def _argmax(r0, r1, k):
    """(maximum, index 0–3 of its first cell) of one window; NaN wins."""
    best, at = r0[k], 0
    for code, v in ((1, r0[k + 1]), (2, r1[k]), (3, r1[k + 1])):
        newer = v > best or (v != v and best == best)
        best = v if newer else best
        at = code if newer else at
    return best, at


@numba.njit(nogil=True, cache=True)
def max_forward(x, out, lo, hi):
    _, C, Ho, Wo = out.shape
    full = Wo // LANES * LANES
    for n in range(lo, hi):
        for c in range(C):
            for i in range(Ho):
                r0, r1, o = x[n, c, 2 * i], x[n, c, 2 * i + 1], out[n, c, i]
                for j in range(0, full, LANES):
                    store(o, j, _argmax_vectors(r0, r1, 2 * j)[0])
                for j in range(full, Wo):
                    o[j] = _argmax(r0, r1, 2 * j)[0]


@numba.njit(nogil=True, cache=True)
def max_backward(g, x, dx, lo, hi):
    # dx = g at the window's winning cell, g·0 at the other three
    _, C, Ho, Wo = g.shape
    full = Wo // LANES * LANES
    for n in range(lo, hi):
        for c in range(C):
            for i in range(Ho):
                r0, r1, gr = x[n, c, 2 * i], x[n, c, 2 * i + 1], g[n, c, i]
                d0, d1 = dx[n, c, 2 * i], dx[n, c, 2 * i + 1]
                for j in range(0, full, LANES):
                    at = _argmax_vectors(r0, r1, 2 * j)[1]
                    gv = load(gr, j)
                    a, b = interleave(where_equal(at, 0, gv), where_equal(at, 1, gv))
                    store(d0, 2 * j, a)
                    store(d0, 2 * j + LANES, b)
                    a, b = interleave(where_equal(at, 2, gv), where_equal(at, 3, gv))
                    store(d1, 2 * j, a)
                    store(d1, 2 * j + LANES, b)
                for j in range(full, Wo):
                    at = _argmax(r0, r1, 2 * j)[1]
                    v = gr[j]
                    z = v * 0
                    d0[2 * j] = v if at == 0 else z
                    d0[2 * j + 1] = v if at == 1 else z
                    d1[2 * j] = v if at == 2 else z
                    d1[2 * j + 1] = v if at == 3 else z


@numba.njit(nogil=True, cache=True)
def avg_forward(x, f, out, lo, hi):
    # out = f · (sum of the window, added in scan order)
    _, C, Ho, Wo = out.shape
    full = Wo // LANES * LANES
    for n in range(lo, hi):
        for c in range(C):
            for i in range(Ho):
                r0, r1, o = x[n, c, 2 * i], x[n, c, 2 * i + 1], out[n, c, i]
                for j in range(0, full, LANES):
                    e0, o0, e1, o1 = _cells(r0, r1, 2 * j)
                    store(o, j, scale(add(add(add(e0, o0), e1), o1), f))
                for j in range(full, Wo):
                    o[j] = (r0[2 * j] + r0[2 * j + 1] + r1[2 * j] + r1[2 * j + 1]) * f


@numba.njit(nogil=True, cache=True)
def avg_backward(g, f, dx, lo, hi):
    # every cell of a window gets f · g
    _, C, Ho, Wo = g.shape
    full = Wo // LANES * LANES
    for n in range(lo, hi):
        for c in range(C):
            for i in range(Ho):
                gr, d0, d1 = g[n, c, i], dx[n, c, 2 * i], dx[n, c, 2 * i + 1]
                for j in range(0, full, LANES):
                    gv = scale(load(gr, j), f)
                    a, b = interleave(gv, gv)
                    store(d0, 2 * j, a)
                    store(d0, 2 * j + LANES, b)
                    store(d1, 2 * j, a)
                    store(d1, 2 * j + LANES, b)
                for j in range(full, Wo):
                    v = gr[j] * f
                    d0[2 * j] = d0[2 * j + 1] = d1[2 * j] = d1[2 * j + 1] = v
