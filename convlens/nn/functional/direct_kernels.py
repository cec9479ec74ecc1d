"""The compiled loops of the direct convolution (direct.py explains the method and the layout).

Both kernels keep a tile of accumulators in vector registers (simd.py) for a whole sum: outputs ×
slots for `correlate_tiles` (forward and input gradient), output channels × taps for
`weight_grad_tiles`. Tile shapes arrive as tuples whose lengths are the shape, so that each shape is
its own compiled (and disk-cached) signature.
"""

from __future__ import annotations

import numba

from convlens.nn.functional.simd import (
    LANES,
    add_into,
    lane,
    load_many,
    load_strided,
    mask_lanes,
    outer_fma,
    relu,
    splat,
    store,
)

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
def weight_grad_tiles(dz, q, kp, src, offs, starts, outs, lanes, plane, dwv, zero, n0, n1, group, kb_, tb_):
    # dwv[k, c, t, :] += per-lane Σ dz[n, k, outs[s] + i] · src[c, n·plane + starts[s] + offs[t] + i] over
    # images n0 ≤ n < n1, slots s, lanes i < lanes[s]. dz: (N, kp, q) flattened, kp a multiple of kb
    # (rows ≥ K zero); offs padded to a multiple of tb; dwv: (kp, C, len(offs), LANES) flattened
    kb, tb = len(kb_), len(tb_)
    C, T = src.shape[0], offs.shape[0]
    for g0 in range(n0, n1, group):
        g1 = min(n1, g0 + group)
        for b in range(kp // kb):
            for c in range(C):
                row = src[c]
                for t0 in range(0, T, tb):
                    acc = splat(zero, 0, kb_, tb_)  # (kb × tb) vectors of zeros
                    for n in range(g0, g1):
                        base, zrow = n * plane, (n * kp + b * kb) * q
                        for s in range(starts.shape[0]):
                            m = lanes[s]
                            a = load_strided(dz, zrow + outs[s], q, kb_)
                            x = load_many(row, offs, t0, base + starts[s], tb_)
                            if m < LANES:  # a row's last slot: lanes past it hold other positions
                                a = mask_lanes(a, m)
                                x = mask_lanes(x, m)
                            acc = outer_fma(acc, a, x)
                    for k in range(kb):
                        for j in range(tb):
                            add_into(dwv, (((b * kb + k) * C + c) * T + t0 + j) * LANES, acc[k * tb + j])

