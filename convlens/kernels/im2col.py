"""im2col convolution: every receptive field copied into a row of a matrix, then one GEMM.

For channels-last padded input xp (N, *Sp, C) and weights as (G, ∏F·C/G, K/G) matrices (conv.py's
`weight_matrix`):

    forward       Y      = cols · W          cols (M, ∏F·C/G), M = N·∏O rows, per group
    weight grad   dW     = colsᵀ · dY        (cols copied again per chunk rather than kept)
    input grad    dcols  = dY · Wᵀ, then col2im (col2im.py) adds each row back onto its receptive field

Work is cut into batch chunks whose im2col block is about CHUNK_BYTES (it stays in cache for the GEMM
that follows its copy) and run on convlens's thread pool; the blocks come from the workspace.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.lib.stride_tricks import as_strided

from convlens import parallel
from convlens.kernels import blas, col2im, workspace
from convlens.nn.functional.padding import pad_array_backward

# One im2col block is about this many bytes: small enough to be re-read from cache by the GEMM that
# follows its copy, and it bounds the extra memory a convolution needs (see docs/performance.md).
CHUNK_BYTES = 4 << 20
# A batch too small to give every thread a chunk (single-image inference) splits the forward GEMM by
# output channels instead, from this many multiply-adds: a pool hand-off costs ~0.1 ms, the products
# ~0.5 ms at this size. D's 256 → 256 layer on 7×7 at batch 1: 2.5 → 1.4 ms.
MIN_COLUMN_SPLIT = 16_000_000


def windows(xp: np.ndarray, out_size, kernel, stride, dilation) -> np.ndarray:
    """Strided view (N, *O, *F, C) of the receptive fields of channels-last padded input `xp`."""
    n, c = xp.shape[0], xp.shape[-1]
    sp = xp.strides[1:-1]
    shape = (n, *out_size, *kernel, c)
    strides = (xp.strides[0], *(s * st for s, st in zip(sp, stride)),
               *(s * d for s, d in zip(sp, dilation)), xp.strides[-1])
    return as_strided(xp, shape=shape, strides=strides, writeable=False)


def batch_chunks(n: int, bytes_per_item: int):
    """Split the batch into runs of whole items whose im2col block is about CHUNK_BYTES, in a number
    of runs that keeps every thread of the pool busy."""
    threads = parallel.get_num_threads()
    parts = -(-n * bytes_per_item // CHUNK_BYTES)
    if n * bytes_per_item >= parallel.MIN_BYTES:
        parts = -(-max(parts, threads) // threads) * threads  # a multiple of the thread count
    return parallel.split(n, parts)


def im2col(xp: np.ndarray, out_size, kernel, stride, dilation, groups: int) -> np.ndarray:
    """Copy the receptive fields of channels-last `xp` into (G, M, ∏F·C/G) (the one big copy), an
    array from the workspace: hand it back with `workspace.give` once it is used."""
    win = windows(xp, out_size, kernel, stride, dilation)  # (n, *O, *F, C) view
    m = xp.shape[0] * int(np.prod(out_size))
    taps, c = int(np.prod(kernel)), xp.shape[-1]
    out = workspace.take((groups, m, taps * (c // groups)), xp.dtype)
    if groups == 1:
        np.copyto(out[0].reshape(win.shape), win)
    else:
        np.copyto(out.reshape(groups, m, taps, c // groups), win.reshape(m, taps, groups, c // groups).transpose(2, 0, 1, 3))
    return out


def correlate(xp: np.ndarray, wmat: np.ndarray, out_size, kernel, stride, dilation, bias=None,
              relu: bool = False) -> np.ndarray:
    """Channels-last cross-correlation without padding: (N, *Sp, C) ★ wmat → (N, *O, K), chunked over N.

    The bias add and the ReLU are applied to each chunk while it is still in cache.
    """
    groups, rows, kg = wmat.shape
    n = xp.shape[0]
    k = groups * kg
    out = np.empty((n, *out_size, k), dtype=xp.dtype)
    positions = int(np.prod(out_size))

    def finish(dest, channels=slice(None)):  # bias and ReLU while the block is in cache
        if bias is not None:
            dest += bias[channels]
        if relu:
            np.maximum(dest, 0, out=dest)

    def work(lo, hi):
        cols = im2col(xp[lo:hi], out_size, kernel, stride, dilation, groups)  # (G, m, ∏F·C/G)
        dest = out[lo:hi].reshape(-1, k)
        if groups == 1:
            np.matmul(cols[0], wmat[0], out=dest)
        else:  # output channel g·K/G + j comes from group g
            dest.reshape(-1, groups, kg)[...] = np.matmul(cols, wmat).transpose(1, 0, 2)
        finish(dest)
        workspace.give(cols)

    chunks = batch_chunks(n, positions * rows * groups * xp.itemsize)
    if len(chunks) < parallel.get_num_threads() and groups == 1 and _gemm_threads(n * positions * rows * k) > 1:
        cols = im2col(xp, out_size, kernel, stride, dilation, groups)
        _split_columns(cols[0], wmat[0], out.reshape(-1, k), finish)
        workspace.give(cols)
    else:
        parallel.run(work, chunks)
    return out


def _gemm_threads(multiply_adds: int) -> int:
    """Threads to split one GEMM of this size over by output channels (`MIN_COLUMN_SPLIT`)."""
    return parallel.get_num_threads() if multiply_adds >= MIN_COLUMN_SPLIT else 1


def _split_columns(cols, wm, dest, finish) -> None:
    """dest = cols · wm with the output channels (columns) split over the threads when the product is
    big enough (`MIN_COLUMN_SPLIT`): the batch is too small to give every thread a chunk."""
    m, rows = cols.shape
    k = wm.shape[1]
    if blas.available(cols.dtype):  # the parts on the OpenMP threads, no hand-off to the pool
        blas.matmul(cols, wm, dest)
        finish(dest)
        return

    def columns(lo, hi):  # Y[:, lo:hi] = cols · W[:, lo:hi]
        np.matmul(cols, wm[:, lo:hi], out=dest[:, lo:hi])
        finish(dest[:, lo:hi], slice(lo, hi))

    parallel.run(columns, parallel.split(k, _gemm_threads(m * rows * k)))


def few_outputs(n: int, m: int, k: int, groups: int) -> bool:
    """Whether a forward pass of `n` images with m output positions in all (batch × ∏O) and k output
    channels should use `correlate_channels_first`: one image (single-image inference), or fewer
    positions than channels, where the weight matrix is larger than the im2col block and transposing
    it into (∏F·C, K) would cost more than the products (256 → 256 channels: 0.6 ms per call against
    0.2 ms of GEMM on 3×3 outputs)."""
    return groups == 1 and (n == 1 or m < k)


def correlate_channels_first(xp: np.ndarray, w: np.ndarray, out_size, kernel, stride, dilation, bias=None,
                             relu: bool = False, pads=None) -> np.ndarray:
    """`correlate` the other way round, for few images: channels-first padded `xp` (N, C, *Sp) → Y
    (N, K, *O) — or, with zero padding `pads`, unpadded `xp` read as if padded — as

        Yᵀ (K, N·∏O) = w.reshape(K, C·∏F) · cols,   cols[(c, *f), (n, *o)] = xp[n, c, o·S + f·D]

    The weight is read in place (no transpose into (∏F·C, K)), the columns are copied by a compiled
    kernel (`columns_channels_first`), the product is split over the threads on OpenMP (blas.py), and
    for one image the result is the channels-first output itself. Measured, one image, 256 → 256
    channels on 7×7: 1.46 ms for `correlate`'s layout against 0.66 ms."""
    n, c = xp.shape[:2]
    k = w.shape[0]
    rows, m = c * int(np.prod(kernel)), n * int(np.prod(out_size))
    cols = workspace.take((rows, m), xp.dtype)
    columns_channels_first(xp, cols, out_size, kernel, stride, dilation, pads)
    out_t = np.empty((k, m), dtype=xp.dtype)  # Yᵀ = W · cols, split over the threads (blas.py)
    blas.matmul(w.reshape(k, rows), cols, out_t)
    workspace.give(cols)
    if bias is not None:
        out_t += bias[:, None]
    if relu:
        np.maximum(out_t, 0, out=out_t)
    return np.moveaxis(out_t.reshape(k, n, *out_size), 0, 1)


@numba.njit(nogil=True, cache=True)
def _columns(x, cols, geometry, lo, hi):  # pragma: no cover - compiled
    """cols[(c, a, b, e), (i, z, y, x)] = x[i, c, z·S₀ + a·D₀ − Q₀, y·S₁ + b·D₁ − Q₁, x·S₂ + e·D₂ − Q₂]
    for the channels c in [lo, hi), zero where that falls in the padding: x (N, C, *S) 5-D and
    C-contiguous, geometry = (*F, *S, *D, *O, *Q), 3 each (Q: the zero padding before each axis).
    Flat unsigned indices, so that a run along x is a plain loop LLVM vectorises: numba's slice
    assignment costs ~25 ns a run, and a signed index its negative-index wraparound, which keeps the
    loop scalar (24 × 9 runs of 31 floats × 31: 144 µs signed, 39 µs unsigned)."""
    n, c, p0, p1, p2 = x.shape
    f0, f1, f2, s0, s1, s2, d0, d1, d2, o0, o1, o2, q0, q1, q2 = geometry
    src, dst = x.reshape(-1), cols.reshape(-1)
    m = cols.shape[1]
    zero = cols.dtype.type(0)
    for ch in range(lo, hi):
        for a in range(f0):
            for b in range(f1):
                for e in range(f2):
                    # the outputs x in [first, stop) read inside the input along the last axis
                    shift = e * d2 - q2
                    first = min(max(-(shift // s2), 0), o2)  # ⌈−shift/S⌉, 0 when shift ≥ 0
                    stop = min(max(-(-(p2 - shift) // s2), first), o2)
                    out = (((ch * f0 + a) * f1 + b) * f2 + e) * m
                    for i in range(n):
                        for z in range(o0):
                            iz = z * s0 + a * d0 - q0
                            for y in range(o1):
                                iy = y * s1 + b * d1 - q1
                                to = np.uint64(out)
                                if iz < 0 or iz >= p0 or iy < 0 or iy >= p1:  # a row of padding
                                    for k in range(np.uint64(o2)):
                                        dst[to + k] = zero
                                else:
                                    for k in range(np.uint64(first)):
                                        dst[to + k] = zero
                                    at = np.uint64((((i * c + ch) * p0 + iz) * p1 + iy) * p2 + first * s2 + shift)
                                    run = np.uint64(stop - first)
                                    base = to + np.uint64(first)
                                    if s2 == 1:
                                        for k in range(run):
                                            dst[base + k] = src[at + k]
                                    else:
                                        for k in range(run):
                                            dst[base + k] = src[at + k * np.uint64(s2)]
                                    for k in range(np.uint64(stop), np.uint64(o2)):
                                        dst[to + k] = zero
                                out += o2


@numba.njit(nogil=True, parallel=True, cache=True)
def _columns_parts(x, cols, geometry, edges):  # pragma: no cover - compiled
    for p in numba.prange(edges.size - 1):
        _columns(x, cols, geometry, edges[p], edges[p + 1])


def columns_channels_first(x: np.ndarray, cols: np.ndarray, out_size, kernel, stride, dilation, pads=None) -> None:
    """cols (C·∏F, N·∏O) ← the receptive fields of channels-first `x` (N, C, *S), rows in (c, *f)
    order, with zero padding `pads` ((before, after) per axis; None: `x` is already padded). Compiled
    for 1-, 2- and 3-D float input, over the channels on the threads, the padding read as zeros rather
    than copied in first: NumPy's copy of the equivalent strided view moves runs of ∏O's last size (7
    floats on 7×7), 230 µs for D's 256-channel 3×3 layer on 7×7 against ~20 µs compiled, and the padded
    copy cost 15-30 µs more."""
    n, c = x.shape[:2]
    dims = len(kernel)
    if dims > 3 or x.dtype.kind != "f" or not x.flags.c_contiguous:
        xp = x if pads is None else np.pad(x, ((0, 0), (0, 0), *pads))
        s = xp.strides
        view = as_strided(xp, (c, *kernel, n, *out_size),
                          (s[1], *(st * dl for st, dl in zip(s[2:], dilation)), s[0],
                           *(st * sd for st, sd in zip(s[2:], stride))), writeable=False)
        np.copyto(cols.reshape(view.shape), view)
        return
    one = (1,) * (3 - dims)  # 1-D and 2-D as 3-D with leading sizes of one
    zeros = (0,) * (3 - dims)
    before = zeros + (tuple(p[0] for p in pads) if pads is not None else (0,) * dims)
    geometry = np.array([*one, *kernel, *one, *stride, *one, *dilation, *one, *out_size, *before], dtype=np.int64)
    x5 = x.reshape(n, c, *one, *x.shape[2:])
    parallel.run_compiled(_columns_parts, _columns, (x5, cols, geometry), parallel.compiled_ranges(c, cols.nbytes))


def weight_grad(gl, xp, wshape, wmat, out_size, stride, dilation, groups):
    """dW (K, C/G, *F) = colsᵀ · dY, accumulated chunk by chunk (`gl`: dY channels-last (N, *O, K)).

    The blocks are copied again rather than kept from the forward pass: with the batch in slices on
    both cores, re-reading kept matrices of up to 32 MB from memory cost more than a second copy into
    cache (ConvNetJS net batch 64: 2,487 → 2,826 img/s without keeping)."""
    kernel = wshape[2:]
    n, k = gl.shape[0], gl.shape[-1]
    kg = k // groups

    def work(lo, hi):  # this chunk's share of dW
        cols = im2col(xp[lo:hi], out_size, kernel, stride, dilation, groups)
        gk = gl[lo:hi].reshape(-1, groups, kg)
        if groups == 1:
            part = (cols[0].T @ gk[:, 0])[None]
        else:
            part = np.matmul(cols.transpose(0, 2, 1), gk.transpose(1, 0, 2))
        workspace.give(cols)
        return part

    positions = int(np.prod(out_size))
    gwm = sum(parallel.run(work, batch_chunks(n, positions * wmat.shape[1] * groups * xp.itemsize)))
    gw = gwm.reshape(groups, *kernel, wshape[1], kg)  # (G, *F, C/G, K/G) → (K, C/G, *F)
    return np.moveaxis(np.moveaxis(gw, -1, 1), -1, 2).reshape(wshape)


def input_grad(gl, xp, w, wmat, x_shape, out_size, stride, pads, dilation, groups, padding_mode):
    """dL/dx (channels-last) from dL/dy (channels-last `gl`): d cols = dY · Wᵀ per chunk of images (a
    GEMM with ∏F·C/G wide rows, which BLAS runs well), added back onto the receptive fields by the
    compiled col2im (col2im.py), then the padding's adjoint.

    (Measured and deleted: the input gradient as a transposed convolution — im2col of the padded dY and
    a GEMM with only C output columns — was 1.3–20× slower once col2im was compiled; docs/performance.md.)
    """
    kernel = w.shape[2:]
    n = gl.shape[0]
    xl_shape = (n, *x_shape[2:], x_shape[1])
    rows, kg = wmat.shape[1:]
    cg = xp.shape[-1] // groups
    gxp = np.zeros((n, *xp.shape[1:]), dtype=gl.dtype)
    per_item = int(np.prod(out_size)) * rows * groups * xp.itemsize
    bases, offsets = col2im.positions(out_size, kernel, stride, dilation, xp.shape[1:-1])

    def work(lo, hi):
        gk = gl[lo:hi].reshape(-1, groups, kg).transpose(1, 0, 2)  # (G, m, K/G)
        buffer = workspace.take((groups, gk.shape[1], rows), gl.dtype)
        dcols = np.matmul(gk, wmat.transpose(0, 2, 1), out=buffer)  # (G, m, ∏F·C/G)
        if groups > 1:  # per row, taps then channels of all groups: (m, ∏F, G·C/G)
            dcols = np.moveaxis(dcols.reshape(groups, -1, offsets.size, cg), 0, 2)
        col2im.col2im_add(dcols.reshape(-1, offsets.size, groups * cg), bases, offsets, lo, gxp)
        workspace.give(buffer)

    parallel.run(work, batch_chunks(n, per_item))
    return pad_array_backward(gxp, {1 + i: p for i, p in enumerate(pads)}, padding_mode, xl_shape)
