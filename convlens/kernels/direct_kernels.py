"""The compiled loops of the direct convolution (direct.py explains the method and the layout).

Both kernels keep a tile of accumulators in vector registers (simd.py) for a whole sum: output
channels × slots of positions for `correlate_tiles` (forward and input gradient), taps × vectors of
output channels for `weight_grad_tiles`. Tile shapes arrive as tuples whose lengths are the shape, so that each shape is
its own compiled (and disk-cached) signature.
"""

from __future__ import annotations

import numba

from convlens.kernels.simd import (
    LANES,
    add_into,
    lane,
    load_many,
    load_rows,
    load_strided,
    outer_fma,
    relu,
    splat,
    splat_many,
    store,
    times_positive,
    transpose,
)

# dY values (channels × positions) per block of the weight gradient's sweep: 64 KB of float32, in L2.
GRAD_BLOCK = 16384

# 'contract' fuses multiply-adds; 'reassoc' lets the tile sums be reordered. No 'nnan'/'ninf'.
FAST = {"contract", "reassoc"}


@numba.njit(nogil=True, fastmath=FAST, cache=True)
def correlate_tiles(src, wb, offs, bias, starts, outs, lanes, plane, out, use_relu, n0, n1, kb_, nv_):
    # out[n, k, outs[s] + i] = relu?(bias[k] + Σ_c Σ_t w[k, c, t] · src[c, n·plane + starts[s] + offs[t] + i])
    # for every slot s and lane i < lanes[s]; wb[b] holds channels b·kb … b·kb + kb − 1 as (C, T, kb).
    # The tile shape comes as tuples of length kb and nv: a distinct compiled signature per shape
    kb, nv = len(kb_), len(nv_)
    C, T, K = src.shape[0], offs.shape[0], out.shape[1]
    for n in range(n0, n1):
        base = n * plane
        for s0 in range(0, starts.shape[0], nv):
            for b in range(wb.shape[0]):
                acc = splat(bias, b * kb, kb_, nv_)  # (kb × nv) vectors, in registers
                w = wb[b]
                wi = 0
                for c in range(C):
                    row = src[c]
                    for t in range(T):
                        acc = outer_fma(acc, splat(w, wi, kb_, 1), load_many(row, starts, s0, base + offs[t], nv_))
                        wi += kb
                for k in range(min(kb, K - b * kb)):
                    o = out[n, b * kb + k]
                    for j in range(nv):
                        v = acc[k * nv + j]
                        if use_relu:
                            v = relu(v)
                        m, q = lanes[s0 + j], outs[s0 + j]
                        if m == LANES:
                            store(o, q, v)
                        else:
                            for i in range(m):
                                o[q + i] = lane(v, i)


@numba.njit(nogil=True, fastmath=FAST, cache=True)
def weight_grad_tiles(dzc, src, offs, rows, row_len, plane, dwv, zero, n0, n1, kv_, m_):
    # dwv[c, t, k] += Σ dzc[n, q, k] · src[c, n·plane + g(q) + offs[t]] over images n0 ≤ n < n1 and their
    # output positions q (row r, column j: g = rows[r] + j). dzc: (N, Q, Kp) channels-last, flattened;
    # dwv: (C, len(offs), Kp) flattened. A tile is m taps × kv vectors of channels: each position adds
    # the outer product of m broadcast inputs and kv vectors of dY
    # The positions are taken in blocks of rows holding about GRAD_BLOCK values of dY (in cache while
    # every tile sweeps them): one sweep of all positions per tile streamed dY from memory C·T/m·Kp/(kv·8)
    # times (36 times 67 MB per step for the video net's first layer).
    kv, m = len(kv_), len(m_)
    C, T = src.shape[0], offs.shape[0]
    kp = dwv.shape[0] // (C * T)
    n_rows = rows.shape[0]
    q_len = n_rows * row_len
    rb = max(1, GRAD_BLOCK // (row_len * kp))
    for n in range(n0, n1):
        for r0 in range(0, n_rows, rb):
            r1 = min(n_rows, r0 + rb)
            for k0 in range(0, kp, kv * LANES):
                for c in range(C):
                    row = src[c]
                    for t0 in range(0, T, m):
                        acc = splat(zero, 0, m_, kv_)  # (m × kv) vectors of zeros
                        for r in range(r0, r1):
                            g = n * plane + rows[r]
                            z = (n * q_len + r * row_len) * kp + k0
                            for j in range(row_len):
                                acc = outer_fma(acc, splat_many(row, offs, t0, g + j, m_),
                                                load_strided(dzc, z + j * kp, LANES, kv_))
                        for i in range(m):
                            for v in range(kv):
                                add_into(dwv, (c * T + t0 + i) * kp + k0 + v * LANES, acc[i * kv + v])


@numba.njit(nogil=True, cache=True)
def channels_last_grad(g, y, use_relu, dzc, n0, n1):
    # dzc[n, q, k] = g[n, k, q] (· [y[n, k, q] > 0] when use_relu) for images n0 ≤ n < n1: (N, K, Q) →
    # (N, Q, kp), channels K ≤ k < kp zero. Blocks of LANES channels × LANES positions are transposed in
    # registers (a scalar walk with one side strided ran at 1.2–6.6 ns per value, this below 0.5)
    K, Q = g.shape[1], g.shape[2]
    kp = dzc.shape[2]
    gf, yf, zf = g.reshape(-1), y.reshape(-1), dzc.reshape(-1)
    full = Q // LANES * LANES
    zero = gf[0] * 0
    for n in range(n0, n1):
        for q0 in range(0, full, LANES):
            for k0 in range(0, kp, LANES):
                at = (n * Q + q0) * kp + k0
                if k0 >= K:
                    for i in range(LANES):
                        for j in range(LANES):
                            zf[at + i * kp + j] = zero
                    continue
                base = (n * K + k0) * Q + q0
                rows = load_rows(gf, base, Q, min(LANES, K - k0), LANES)
                if use_relu:
                    rows = times_positive(rows, load_rows(yf, base, Q, min(LANES, K - k0), LANES))
                cols = transpose(rows)
                for i in range(LANES):
                    store(zf, at + i * kp, cols[i])
        for q in range(full, Q):
            for k in range(kp):
                v = zero
                if k < K:
                    v = gf[(n * K + k) * Q + q]
                    if use_relu:
                        v = v * (yf[(n * K + k) * Q + q] > 0)
                zf[(n * Q + q) * kp + k] = v


@numba.njit(nogil=True, cache=True)
def grid_grad(dzc, gz, front, rows, row_len, plane, n0, n1):
    # gz[k, front + n·plane + rows[r] + j] = dzc[n, r·row_len + j, k]: dL/dz onto the padded grid
    K, kp, Q = gz.shape[0], dzc.shape[2], dzc.shape[1]
    zf = dzc.reshape(-1)
    for n in range(n0, n1):
        for k in range(K):
            out = gz[k]
            for r in range(rows.shape[0]):
                at, z = front + n * plane + rows[r], (n * Q + r * row_len) * kp + k
                for j in range(row_len):
                    out[at + j] = zf[z + j * kp]


# ---- launchers: a range of images each, on numba's threads (kernels/launch.py) ------------------
# A parallel loop takes no tuple arguments, so the tile shape arrives as ints and is chosen here among
# the shapes direct.py uses (TILE_CHANNELS × NV = 2, GRAD_TILES).

@numba.njit(nogil=True, cache=True)
def correlate(src, wb, offs, bias, starts, outs, lanes, plane, out, use_relu, kb, n0, n1):
    z2 = (0, 0)
    if kb == 6:
        correlate_tiles(src, wb, offs, bias, starts, outs, lanes, plane, out, use_relu, n0, n1, (0,) * 6, z2)
    elif kb == 5:
        correlate_tiles(src, wb, offs, bias, starts, outs, lanes, plane, out, use_relu, n0, n1, (0,) * 5, z2)
    elif kb == 4:
        correlate_tiles(src, wb, offs, bias, starts, outs, lanes, plane, out, use_relu, n0, n1, (0,) * 4, z2)
    elif kb == 3:
        correlate_tiles(src, wb, offs, bias, starts, outs, lanes, plane, out, use_relu, n0, n1, (0,) * 3, z2)
    else:
        correlate_tiles(src, wb, offs, bias, starts, outs, lanes, plane, out, use_relu, n0, n1, (0,) * 2, z2)


@numba.njit(nogil=True, parallel=True, cache=True)
def correlate_parts(src, wb, offs, bias, starts, outs, lanes, plane, out, use_relu, kb, edges):
    for p in numba.prange(edges.shape[0] - 1):
        correlate(src, wb, offs, bias, starts, outs, lanes, plane, out, use_relu, kb, edges[p], edges[p + 1])


@numba.njit(nogil=True, cache=True)
def weight_grad(dzc, src, offs, rows, row_len, plane, dwv, zero, kv, n0, n1):
    # the (kv, m) tiles of direct.GRAD_TILES, told apart by kv
    if kv == 2:
        weight_grad_tiles(dzc, src, offs, rows, row_len, plane, dwv, zero, n0, n1, (0,) * 2, (0,) * 5)
    elif kv == 3:
        weight_grad_tiles(dzc, src, offs, rows, row_len, plane, dwv, zero, n0, n1, (0,) * 3, (0,) * 3)
    else:
        weight_grad_tiles(dzc, src, offs, rows, row_len, plane, dwv, zero, n0, n1, (0,) * 1, (0,) * 9)


@numba.njit(nogil=True, parallel=True, cache=True)
def weight_grad_parts(dzc, src, offs, rows, row_len, plane, dwv_parts, zero, kv, edges):
    # part p sums its images into its own row dwv_parts[p]
    for p in numba.prange(edges.shape[0] - 1):
        weight_grad(dzc, src, offs, rows, row_len, plane, dwv_parts[p], zero, kv, edges[p], edges[p + 1])


@numba.njit(nogil=True, parallel=True, cache=True)
def channels_last_grad_parts(g, y, use_relu, dzc, edges):
    for p in numba.prange(edges.shape[0] - 1):
        channels_last_grad(g, y, use_relu, dzc, edges[p], edges[p + 1])


@numba.njit(nogil=True, parallel=True, cache=True)
def grid_grad_parts(dzc, gz, front, rows, row_len, plane, edges):
    for p in numba.prange(edges.shape[0] - 1):
        grid_grad(dzc, gz, front, rows, row_len, plane, edges[p], edges[p + 1])
