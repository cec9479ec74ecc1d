"""Winograd F(2×2, 3×3)'s data transforms compiled (numba): one pass per tile instead of NumPy's
strided passes with temporaries (winograd.py keeps those as the readable reference).

Channels run innermost on both sides — channels-last images, (16, tiles, C) transformed tiles — so
each kernel walks the channels in vectors of `LANES` (simd.py) and then a scalar tail, with each
formula written once for both (`+`, `−` and unary `−` work on vectors too):

    input      V[ξν] = (Bᵀ d B)[ξν]     Bᵀ: (d0, d1, d2, d3) → (d0 − d2, d1 + d2, d2 − d1, d1 − d3)
    output     Y     = Aᵀ M A           Aᵀ: (m0, m1, m2, m3) → (m0 + m1 + m2, m1 − m2 − m3)
    adjoint    dM    = A dY Aᵀ          A:  (g0, g1) → (g0, g0 + g1, g0 − g1, −g1)  (weight gradient)

Each applies its 1-d map down the tile's columns, then along the rows of the result. Arrays are
passed flat (1-d, C-contiguous) with their sizes; each kernel takes a range [lo, hi) of images, the
tiles in (image, tile row, tile column) order, T = (hi − lo)·th·tw of them. (NumPy's form took 0.4 s
of a 2.6 s one-thread profile of the VGG-style net's steps; a plain numba loop indexing the arrays
32 times per value was 2× slower still: LLVM did not vectorise it.)
"""

from __future__ import annotations

import numba

from convlens.kernels.simd import LANES, load, store

_JIT = dict(nogil=True, cache=True)


@numba.njit(inline="always", **_JIT)
def _bt(d0, d1, d2, d3):  # pragma: no cover - compiled
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


@numba.njit(inline="always", **_JIT)
def _at(m0, m1, m2, m3):  # pragma: no cover - compiled
    return m0 + m1 + m2, m1 - m2 - m3


@numba.njit(inline="always", **_JIT)
def _a(g0, g1):  # pragma: no cover - compiled
    return g0, g0 + g1, g0 - g1, -g1


# Element access for the vector body (LANES channels at once) and the scalar tail: a kernel passes one
# pair to its tile function, which numba compiles once per pair.
@numba.njit(inline="always", **_JIT)
def _vget(a, i):  # pragma: no cover - compiled
    return load(a, i)


@numba.njit(inline="always", **_JIT)
def _vput(a, i, v):  # pragma: no cover - compiled
    store(a, i, v)


@numba.njit(inline="always", **_JIT)
def _sget(a, i):  # pragma: no cover - compiled
    return a[i]


@numba.njit(inline="always", **_JIT)
def _sput(a, i, v):  # pragma: no cover - compiled
    a[i] = v


@numba.njit(inline="always", **_JIT)
def _put4(a, q, plane, v, put):  # pragma: no cover - compiled
    """The four values of v to a[q], a[q + plane], a[q + 2·plane], a[q + 3·plane]."""
    put(a, q, v[0])
    put(a, q + plane, v[1])
    put(a, q + 2 * plane, v[2])
    put(a, q + 3 * plane, v[3])


@numba.njit(inline="always", **_JIT)
def _input_tile(xf, b, row, col, vf, p, plane, get, put):  # pragma: no cover - compiled
    e0 = _bt(get(xf, b), get(xf, b + row), get(xf, b + 2 * row), get(xf, b + 3 * row))
    b += col
    e1 = _bt(get(xf, b), get(xf, b + row), get(xf, b + 2 * row), get(xf, b + 3 * row))
    b += col
    e2 = _bt(get(xf, b), get(xf, b + row), get(xf, b + 2 * row), get(xf, b + 3 * row))
    b += col
    e3 = _bt(get(xf, b), get(xf, b + row), get(xf, b + 2 * row), get(xf, b + 3 * row))
    for xi in range(4):  # row ξ of Bᵀ d, then B along it
        _put4(vf, p + 4 * xi * plane, plane, _bt(e0[xi], e1[xi], e2[xi], e3[xi]), put)


@numba.njit(**_JIT)
def input_transform(xf, hp, wp, c, th, tw, vf, lo, hi):  # pragma: no cover - compiled
    """Images [lo, hi) of xf (N, hp, wp, C), hp ≥ 2th + 2, wp ≥ 2tw + 2 → vf (16, T, C)."""
    plane = (hi - lo) * th * tw * c
    vec_end = c - c % LANES
    for n in range(lo, hi):
        for i in range(th):
            for j in range(tw):
                b = ((n * hp + 2 * i) * wp + 2 * j) * c
                p = (((n - lo) * th + i) * tw + j) * c
                for ch in range(0, vec_end, LANES):
                    _input_tile(xf, b + ch, wp * c, c, vf, p + ch, plane, _vget, _vput)
                for ch in range(vec_end, c):
                    _input_tile(xf, b + ch, wp * c, c, vf, p + ch, plane, _sget, _sput)


@numba.njit(inline="always", **_JIT)
def _output_tile(mf, yf, p, plane, b, row, col, get, put):  # pragma: no cover - compiled
    f0 = _at(get(mf, p), get(mf, p + 4 * plane), get(mf, p + 8 * plane), get(mf, p + 12 * plane))  # Aᵀ down
    p += plane                                                                                   # column ν …
    f1 = _at(get(mf, p), get(mf, p + 4 * plane), get(mf, p + 8 * plane), get(mf, p + 12 * plane))
    p += plane
    f2 = _at(get(mf, p), get(mf, p + 4 * plane), get(mf, p + 8 * plane), get(mf, p + 12 * plane))
    p += plane
    f3 = _at(get(mf, p), get(mf, p + 4 * plane), get(mf, p + 8 * plane), get(mf, p + 12 * plane))
    for r in range(2):  # … then along each of the two rows
        y = _at(f0[r], f1[r], f2[r], f3[r])
        put(yf, b + r * row, y[0])
        put(yf, b + r * row + col, y[1])


@numba.njit(inline="always", **_JIT)
def _adjoint_tile(mf, gf, p, plane, b, row, col, get, put):  # pragma: no cover - compiled
    h0 = _a(get(gf, b), get(gf, b + row))  # A down column 0 of the 2×2 dY …
    h1 = _a(get(gf, b + col), get(gf, b + row + col))
    for xi in range(4):  # … then along each row of the result
        _put4(mf, p + 4 * xi * plane, plane, _a(h0[xi], h1[xi]), put)


@numba.njit(inline="always", **_JIT)
def _each_output_tile(mf, yf, k, th, tw, lo, hi, tile):  # pragma: no cover - compiled
    """tile(mf, yf, p, plane, b, row, col, get, put) for every 2×2 output tile of images [lo, hi) of yf
    (N, 2th, 2tw, K) and its 16 values at p in mf (16, T, K): vectors of channels, then the tail."""
    plane = (hi - lo) * th * tw * k
    vec_end = k - k % LANES
    for n in range(lo, hi):
        for i in range(th):
            for j in range(tw):
                p = (((n - lo) * th + i) * tw + j) * k
                b = ((n * 2 * th + 2 * i) * 2 * tw + 2 * j) * k
                for ch in range(0, vec_end, LANES):
                    tile(mf, yf, p + ch, plane, b + ch, 2 * tw * k, k, _vget, _vput)
                for ch in range(vec_end, k):
                    tile(mf, yf, p + ch, plane, b + ch, 2 * tw * k, k, _sget, _sput)


@numba.njit(**_JIT)
def output_transform(mf, k, th, tw, yf, lo, hi):  # pragma: no cover - compiled
    """mf (16, T, K) → images [lo, hi) of yf (N, 2th, 2tw, K)."""
    _each_output_tile(mf, yf, k, th, tw, lo, hi, _output_tile)


@numba.njit(**_JIT)
def output_adjoint(gf, k, th, tw, mf, lo, hi):  # pragma: no cover - compiled
    """Images [lo, hi) of gf (N, 2th, 2tw, K) → mf (16, T, K)."""
    _each_output_tile(mf, gf, k, th, tw, lo, hi, _adjoint_tile)
