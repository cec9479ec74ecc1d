"""The compiled loops of the 2×2/2 pooling (fastpool.py says what they compute).

Channels-first input (N, C, H, W), eight outputs at a time: a row pair's 16 + 16 inputs are four vectors, `deinterleave` splits each row
into its even and odd columns, and the four cells of eight windows are then four vectors in the order
PyTorch scans a window, (0, 0), (0, 1), (1, 0), (1, 1). The backward pass of max pooling recomputes
which cell won (cheaper than storing and re-reading an index per window) and `interleave` puts the
gradients back in input order. A row's last outputs that fill no vector take the scalar loop.
Channels-last input (N, H, W, C), the layout of the im2col and Winograd convolutions' outputs: a
window's four cells are four runs of C channels, eight channels per vector.
"""

from __future__ import annotations

import numba

from convlens.kernels.blockpool import newer
from convlens.kernels.simd import (
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
def _take4(a, b, c, d):
    """(maximum, index 0–3 of its first cell) per lane of four vectors of cells in scan order; NaN wins."""
    best, at = take_max(a, fill(a, 0), b, 1)
    best, at = take_max(best, at, c, 2)
    return take_max(best, at, d, 3)


@numba.njit(nogil=True, inline="always")
def _argmax4(a, b, c, d):
    """`_take4` for four scalars."""
    # selects, not branches: on random data the branches of `v > best or …` were mispredicted about
    # half the time (the tail of a 15 × 15 map, all of it for 7 outputs a row: 233 → 40 µs for 256 maps)
    best, at = a, 0
    u = newer(b, best)
    best, at = (b if u else best), (1 if u else at)
    u = newer(c, best)
    best, at = (c if u else best), (2 if u else at)
    u = newer(d, best)
    return (d if u else best), (3 if u else at)



@numba.njit(nogil=True, inline="always")
def _argmax_vectors(r0, r1, k):
    e0, o0, e1, o1 = _cells(r0, r1, k)
    return _take4(e0, o0, e1, o1)


@numba.njit(nogil=True, inline="always")
def _argmax(r0, r1, k):
    """(maximum, index 0–3 of its first cell) of one window; NaN wins."""
    return _argmax4(r0[k], r0[k + 1], r1[k], r1[k + 1])


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


# ---- channels-last input (N, H, W, C): a window's four cells are four runs of C channels ----------


@numba.njit(nogil=True, cache=True)
def max_forward_last(x, out, lo, hi):
    _, Ho, Wo, C = out.shape
    full = C // LANES * LANES
    for n in range(lo, hi):
        for i in range(Ho):
            for j in range(Wo):
                a, b, c, d, o = x[n, 2 * i, 2 * j], x[n, 2 * i, 2 * j + 1], x[n, 2 * i + 1, 2 * j], x[n, 2 * i + 1, 2 * j + 1], out[n, i, j]
                for k in range(0, full, LANES):
                    store(o, k, _take4(load(a, k), load(b, k), load(c, k), load(d, k))[0])
                for k in range(full, C):
                    o[k] = _argmax4(a[k], b[k], c[k], d[k])[0]


@numba.njit(nogil=True, cache=True)
def max_backward_last(g, x, dx, lo, hi):
    _, Ho, Wo, C = g.shape
    full = C // LANES * LANES
    for n in range(lo, hi):
        for i in range(Ho):
            for j in range(Wo):
                a, b, c, d = x[n, 2 * i, 2 * j], x[n, 2 * i, 2 * j + 1], x[n, 2 * i + 1, 2 * j], x[n, 2 * i + 1, 2 * j + 1]
                da, db, dc, dd = dx[n, 2 * i, 2 * j], dx[n, 2 * i, 2 * j + 1], dx[n, 2 * i + 1, 2 * j], dx[n, 2 * i + 1, 2 * j + 1]
                gr = g[n, i, j]
                for k in range(0, full, LANES):
                    at = _take4(load(a, k), load(b, k), load(c, k), load(d, k))[1]
                    gv = load(gr, k)
                    store(da, k, where_equal(at, 0, gv))
                    store(db, k, where_equal(at, 1, gv))
                    store(dc, k, where_equal(at, 2, gv))
                    store(dd, k, where_equal(at, 3, gv))
                for k in range(full, C):
                    at = _argmax4(a[k], b[k], c[k], d[k])[1]
                    v = gr[k]
                    z = v * 0
                    da[k] = v if at == 0 else z
                    db[k] = v if at == 1 else z
                    dc[k] = v if at == 2 else z
                    dd[k] = v if at == 3 else z


@numba.njit(nogil=True, cache=True)
def avg_forward_last(x, f, out, lo, hi):
    _, Ho, Wo, C = out.shape
    full = C // LANES * LANES
    for n in range(lo, hi):
        for i in range(Ho):
            for j in range(Wo):
                a, b, c, d, o = x[n, 2 * i, 2 * j], x[n, 2 * i, 2 * j + 1], x[n, 2 * i + 1, 2 * j], x[n, 2 * i + 1, 2 * j + 1], out[n, i, j]
                for k in range(0, full, LANES):
                    store(o, k, scale(add(add(add(load(a, k), load(b, k)), load(c, k)), load(d, k)), f))
                for k in range(full, C):
                    o[k] = (a[k] + b[k] + c[k] + d[k]) * f


@numba.njit(nogil=True, cache=True)
def avg_backward_last(g, f, dx, lo, hi):
    _, Ho, Wo, C = g.shape
    for n in range(lo, hi):
        for i in range(Ho):
            for j in range(Wo):
                gr = g[n, i, j]
                for cell in (dx[n, 2 * i, 2 * j], dx[n, 2 * i, 2 * j + 1], dx[n, 2 * i + 1, 2 * j], dx[n, 2 * i + 1, 2 * j + 1]):
                    for k in range(C):
                        cell[k] = gr[k] * f


# ---- launchers: ranges of images on numba's threads (kernels/launch.py) ------------------------------
_PAR = dict(nogil=True, cache=True, parallel=True)


@numba.njit(**_PAR)
def max_forward_parts(x, out, edges):
    for p in numba.prange(edges.shape[0] - 1):
        max_forward(x, out, edges[p], edges[p + 1])


@numba.njit(**_PAR)
def max_forward_last_parts(x, out, edges):
    for p in numba.prange(edges.shape[0] - 1):
        max_forward_last(x, out, edges[p], edges[p + 1])


@numba.njit(**_PAR)
def max_backward_parts(g, x, dx, edges):
    for p in numba.prange(edges.shape[0] - 1):
        max_backward(g, x, dx, edges[p], edges[p + 1])


@numba.njit(**_PAR)
def max_backward_last_parts(g, x, dx, edges):
    for p in numba.prange(edges.shape[0] - 1):
        max_backward_last(g, x, dx, edges[p], edges[p + 1])


@numba.njit(**_PAR)
def avg_forward_parts(x, f, out, edges):
    for p in numba.prange(edges.shape[0] - 1):
        avg_forward(x, f, out, edges[p], edges[p + 1])


@numba.njit(**_PAR)
def avg_forward_last_parts(x, f, out, edges):
    for p in numba.prange(edges.shape[0] - 1):
        avg_forward_last(x, f, out, edges[p], edges[p + 1])


@numba.njit(**_PAR)
def avg_backward_parts(g, f, dx, edges):
    for p in numba.prange(edges.shape[0] - 1):
        avg_backward(g, f, dx, edges[p], edges[p + 1])


@numba.njit(**_PAR)
def avg_backward_last_parts(g, f, dx, edges):
    for p in numba.prange(edges.shape[0] - 1):
        avg_backward_last(g, f, dx, edges[p], edges[p + 1])
