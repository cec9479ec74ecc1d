"""Winograd's minimal filtering F(2×2, 3×3) for stride-1 3×3 convolutions (Lavin & Gray, 2015).

A 2×2 block of outputs of a 3×3 correlation needs 36 multiplications done directly; Winograd's
algorithm gets it from a 4×4 input tile d with 16, after linear transforms of the tile and the kernel g:

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A

Over channels the element-wise product becomes 16 independent matrix products (tiles × C) · (C × K),
so the GEMM work drops 2.25× against im2col; the transforms are additions and subtractions of strided
views. The transforms are exact in real arithmetic; in float32 they add rounding of the order of 1e-6
relative, like any change of summation order.
"""

from __future__ import annotations

import numpy as np

from convlens import parallel
from convlens.kernels import winograd_kernels

# F(2, 3): Bᵀ (input), G (kernel), Aᵀ (output)
# From 32 channels in and out: VGG's 32 → 64 layer on 16×16 at batch 128 (2 threads, AVX-512) is faster
# through Winograd than through im2col, the whole VGG step 3–6 % (in-process A/B, three runs).
MIN_CHANNELS = 32
# Batch-1 inference, one thread each way (ms, im2col / Winograd): 256 → 256 on 7×7 forward 2.4 / 3.7,
# on 3×3 1.0 / 1.8, 64 → 256 on 15×15 1.0 / 2.2; at 1,024 outputs 256 → 256 wins (11.1 / 8.8), 64
# channels are even (1.7 / 1.8).
MIN_POSITIONS = 1024

_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def applies(kernel, stride, dilation, groups, channels: int, out_channels: int, positions: int) -> bool:
    """Winograd pays when the GEMMs it shrinks outweigh its transforms' extra passes over memory:
    measured 1.1–1.3× for a conv's forward + backward from 64 channels in and out, break-even at 32,
    slower at 16; and from `MIN_POSITIONS` outputs (batch × ∏ output size): below that, its 16 GEMMs
    are too small for BLAS and the kernel transform (16·C·K values, every call) is not shared by enough
    outputs (docs/performance.md)."""
    return (tuple(kernel) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)
            and groups == 1 and min(channels, out_channels) >= MIN_CHANNELS and positions >= MIN_POSITIONS)


def kernel_transform(wmat: np.ndarray) -> np.ndarray:
    """U = G g Gᵀ per (c, k): (1, 9·C, K) with rows ordered (kh, kw, C) → (16, C, K)."""
    rows, k = wmat.shape[1:]
    g = wmat[0].reshape(3, 3, rows // 9, k)
    u = np.empty((4, 4, rows // 9, k), dtype=wmat.dtype)
    # G's rows are (1, 0, 0), ½(1, 1, 1), ½(1, −1, 1), (0, 0, 1): a few adds per axis (an unoptimised
    # einsum took 37 ms for 256 → 256 channels, more than the whole layer at batch 1)
    half = wmat.dtype.type(0.5)
    t = np.empty((4, 3, rows // 9, k), dtype=wmat.dtype)
    _g_rows(g, t, half)
    for a in range(4):
        _g_rows(t[a], u[a], half)  # along j: t[a] is (j, C, K)
    return u.reshape(16, rows // 9, k)


def _g_rows(g, out, half) -> None:
    """out[0..3] = G · g along the first axis of the 3-stack g: g0, ½(g0 + g1 + g2), ½(g0 − g1 + g2), g2."""
    np.copyto(out[0], g[0])
    np.add(g[0], g[2], out=out[1])
    np.subtract(out[1], g[1], out=out[2])
    out[1] += g[1]
    out[1] *= half
    out[2] *= half
    np.copyto(out[3], g[2])


def _bt(d, out) -> None:
    """Bᵀ applied along one axis of the 4-tuple `d`: (d0 − d2, d1 + d2, d2 − d1, d1 − d3)."""
    np.subtract(d[0], d[2], out=out[0])
    np.add(d[1], d[2], out=out[1])
    np.subtract(d[2], d[1], out=out[2])
    np.subtract(d[1], d[3], out=out[3])


def _compiled(*arrays) -> bool:
    """The compiled transforms (winograd_kernels.py) take C-contiguous float32 / float64 arrays."""
    return all(a.dtype in (np.float32, np.float64) and a.flags.c_contiguous for a in arrays)


def _input_transform(xp: np.ndarray, th: int, tw: int, out: np.ndarray) -> None:
    """V[ξν] = (Bᵀ d B)[ξν] for every 4×4 tile d (stride 2) of channels-last xp → out (16, n·th·tw, C)."""
    n, wp, c = xp.shape[0], xp.shape[2], xp.shape[-1]
    if _compiled(xp, out):
        return winograd_kernels.input_transform(xp.reshape(-1), xp.shape[1], wp, c, th, tw, out.reshape(-1), 0, n)
    rows = np.empty((4, n, th, wp, c), dtype=xp.dtype)
    _bt([xp[:, i:i + 2 * th:2] for i in range(4)], rows)  # along the tile's rows
    v = out.reshape(4, 4, n, th, tw, c)
    for a in range(4):  # then along its columns
        _bt([rows[a][:, :, j:j + 2 * tw:2] for j in range(4)], v[a])


def _output_transform(m: np.ndarray, n: int, th: int, tw: int, out: np.ndarray) -> None:
    """Y = Aᵀ M A with Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]: M (16, n·th·tw, K) → out (n, 2th, 2tw, K)."""
    k = m.shape[-1]
    if _compiled(m, out):
        return winograd_kernels.output_transform(m.reshape(-1), k, th, tw, out.reshape(-1), 0, n)
    m = m.reshape(4, 4, n, th, tw, k)
    s0 = m[0] + m[1] + m[2]  # (4, n, th, tw, K), over the second index still
    s1 = m[1] - m[2] - m[3]
    for r, s in ((0, s0), (1, s1)):
        np.add(s[0] + s[1], s[2], out=out[:, r::2, 0::2])
        np.subtract(s[1] - s[2], s[3], out=out[:, r::2, 1::2])


def _placed(a: np.ndarray, lo: int, hi: int, h: int, w: int, top: int = 0, left: int = 0) -> np.ndarray:
    """Images [lo, hi) of channels-last `a` (N, Ha, Wa, C) at (top, left) in zeros of (hi − lo, h, w, C),
    cut to fit: a chunk grown to whole tiles (odd sizes), or dY padded for the input gradient. Done per
    chunk, so that no whole-batch copy is made (case D's 256-channel layers at batch 512: 130-170 MB
    each)."""
    if (top, left) == (0, 0) and a.shape[1:3] == (h, w):
        return a[lo:hi]
    out = np.zeros((hi - lo, h, w, a.shape[-1]), dtype=a.dtype)
    hh, ww = min(a.shape[1], h - top), min(a.shape[2], w - left)
    out[:, top:top + hh, left:left + ww] = a[lo:hi, :hh, :ww]
    return out


def correlate_3x3(xp: np.ndarray, wmat: np.ndarray, out_size, chunks, bias=None, relu: bool = False,
                  top_left=(0, 0)):
    """Stride-1 3×3 correlation of channels-last padded `xp` (N, Hp, Wp, C) → (N, Ho, Wo, K); with
    `top_left`, of `xp` placed at that offset in zeros (the input gradient's padded dY)."""
    n, c = xp.shape[0], xp.shape[-1]
    ho, wo = out_size
    th, tw = -(-ho // 2), -(-wo // 2)
    u = kernel_transform(wmat)  # (16, C, K)
    k = u.shape[-1]
    out = np.empty((n, ho, wo, k), dtype=xp.dtype)
    whole = (2 * th, 2 * tw) == (ho, wo)

    def work(lo, hi):
        v = np.empty((16, (hi - lo) * th * tw, c), dtype=xp.dtype)
        _input_transform(_placed(xp, lo, hi, 2 * th + 2, 2 * tw + 2, *top_left), th, tw, v)
        dest = out[lo:hi] if whole else np.empty((hi - lo, 2 * th, 2 * tw, k), dtype=xp.dtype)
        _output_transform(np.matmul(v, u), hi - lo, th, tw, dest)  # 16 GEMMs (tiles × C)(C × K)
        if bias is not None:
            dest += bias
        if relu:
            np.maximum(dest, 0, out=dest)
        if not whole:
            out[lo:hi] = dest[:, :ho, :wo]

    parallel.run(work, chunks(n, th * tw * 16 * (c + k) * xp.itemsize))
    return out


def input_grad_applies(pads, padding_mode: str) -> bool:
    """The input gradient of a stride-1 3×3 layer is itself one (below) when the padding is zeros of at
    most 2 cells per side."""
    return padding_mode == "zeros" and all(0 <= p <= 2 for side in pads for p in side)


def input_grad(gl: np.ndarray, wmat: np.ndarray, x_shape, pads, chunks) -> np.ndarray:
    """dL/dx channels-last (N, H, W, C) of y = x ★ w (3×3, stride 1, zero padding `pads`) from dL/dy
    channels-last `gl` (N, Ho, Wo, K), as a Winograd correlation too:

        dx[i] = Σ_t w[t]·dy[i + p − t] = Σ_t' w[2 − t']·dy[i + p − 2 + t']

    the correlation of dY, zero-padded by (2 − p_before, 2 − p_after), with the kernel turned by 180°
    and its channels swapped, w'[c, k, t'] = w[k, c, 2 − t']. (The im2col path's d cols GEMM plus
    col2im scatter does 2.25× the products.)"""
    (p0, _), (q0, _) = pads
    k, c = gl.shape[-1], x_shape[1]
    taps = wmat[0].reshape(3, 3, c, k)[::-1, ::-1]  # rows of wmat: (kh, kw, C) → turned by 180°
    turned = np.ascontiguousarray(taps.transpose(0, 1, 3, 2)).reshape(1, 9 * k, c)  # rows (kh, kw, K), columns C
    return correlate_3x3(gl, turned, tuple(x_shape[2:]), chunks, top_left=(2 - p0, 2 - q0))  # dY padded per chunk


def _output_transform_adjoint(g: np.ndarray, th: int, tw: int, out: np.ndarray) -> None:
    """dM = A dY Aᵀ for every 2×2 tile of dY (n, 2th, 2tw, K) → out (16, n·th·tw, K), the adjoint of
    Y = Aᵀ M A: along each axis (d0, d1) → (d0, d0 + d1, d0 − d1, −d1), A's rows."""
    n, k = g.shape[0], g.shape[-1]
    if _compiled(g, out):
        return winograd_kernels.output_adjoint(g.reshape(-1), k, th, tw, out.reshape(-1), 0, n)
    o = out.reshape(4, 4, n, th, tw, k)
    r0, r1 = g[:, 0::2], g[:, 1::2]
    for a, row in enumerate((r0, r0 + r1, r0 - r1, -r1)):
        c0, c1 = row[:, :, 0::2], row[:, :, 1::2]
        np.copyto(o[a, 0], c0)
        np.add(c0, c1, out=o[a, 1])
        np.subtract(c0, c1, out=o[a, 2])
        np.negative(c1, out=o[a, 3])


def _g_adjoint(du, out, half) -> None:
    """The adjoint of `_g_rows` along the first axis: dg = Gᵀ dU, the 4-stack du → the 3-stack out."""
    np.add(du[1], du[2], out=out[0])
    out[0] *= half
    np.add(out[0], du[3], out=out[2])
    out[0] += du[0]
    np.subtract(du[1], du[2], out=out[1])
    out[1] *= half


def weight_grad(gl: np.ndarray, xp: np.ndarray, wshape, chunks) -> np.ndarray:
    """dL/dw (K, C, 3, 3) of the stride-1 3×3 correlation of channels-last padded `xp` (N, Hp, Wp, C)
    from dL/dy channels-last `gl` (N, Ho, Wo, K), through the same transforms (any padding mode: the
    padded input is all it needs):

        M[ξ] = V[ξ]·U[ξ]  ⇒  dU[ξ] = V[ξ]ᵀ·dM[ξ],  dM = A dY Aᵀ per tile,  dg = Gᵀ dU G

    16 GEMMs (C × tiles)(tiles × K) over 4 products per output against im2col's 9."""
    n, ho, wo, k = gl.shape
    c = xp.shape[-1]
    th, tw = -(-ho // 2), -(-wo // 2)

    def work(lo, hi):  # this chunk's share of dU
        v = np.empty((16, (hi - lo) * th * tw, c), dtype=xp.dtype)
        _input_transform(_placed(xp, lo, hi, 2 * th + 2, 2 * tw + 2), th, tw, v)
        dm = np.empty((16, (hi - lo) * th * tw, k), dtype=xp.dtype)
        _output_transform_adjoint(_placed(gl, lo, hi, 2 * th, 2 * tw), th, tw, dm)
        return np.matmul(v.transpose(0, 2, 1), dm)  # (16, C, K)

    du = sum(parallel.run(work, chunks(n, th * tw * 16 * (c + k) * xp.itemsize))).reshape(4, 4, c, k)
    half = xp.dtype.type(0.5)
    t = np.empty((3, 4, c, k), dtype=xp.dtype)
    _g_adjoint(du, t, half)  # along the kernel's rows
    dg = np.empty((3, 3, c, k), dtype=xp.dtype)
    for a in range(3):
        _g_adjoint(t[a], dg[a], half)  # then along its columns: t[a] is (ν, C, K)
    return np.ascontiguousarray(dg.transpose(3, 2, 0, 1)).reshape(wshape)
