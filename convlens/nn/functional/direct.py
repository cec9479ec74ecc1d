"""Direct convolution for layers with few input channels (compiled with numba).

im2col copies every receptive field, ∏F·C values per output position, before its GEMM; with one to a
few input channels that copy and the skinny GEMM behind it cost far more than the products themselves
(LeNet's first layer ran at about 10 GFLOP/s that way). Here the products are summed in place.

The "flat shift" trick: lay out the padded input channel-major, each channel one flat run over
(batch, *padded spatial) — ``src[c, i]`` with i = n·P + (h·Wp + w) for 2-d, P = ∏ padded sizes. For
stride 1, kernel tap t = (r, s) reads, for every output position i, ``src[c, i + off_t]`` with
off_t = (r·Wp + s)·D. So each (channel, tap) pair is one multiply-add of two contiguous runs:

    y[k, i] = b[k] + Σ_c Σ_t  w[k, c, t] · src[c, i + off_t]

computed for all i of the padded grid; the positions with h ≥ H_out or w ≥ W_out (and those that read
across an image boundary) are computed too and thrown away. The same loop gives the input gradient
(a correlation of dY, laid out on the padded grid with zeros elsewhere, with offsets max(off) − off_t)
and the weight gradient is a dot product of two runs per (k, c, t):

    dx_pad[c, j] = Σ_k Σ_t  w[k, c, t] · dy[k, j − off_t]        dw[k, c, t] = Σ_i  dy[k, i] · src[c, i + off_t]

Used for stride 1, groups 1, at most `MAX_CHANNELS` input and `MAX_OUT_CHANNELS` output channels, and
when at least `MIN_USEFUL` of the padded grid's positions are real outputs (see `applies`); the batch
is cut into chunks run on convlens's thread pool (the kernels release the GIL).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from convlens import parallel
from convlens.nn.functional import col2im, workspace
from convlens.nn.functional.padding import pad_array, pad_array_backward

# Beyond this many input channels im2col's GEMM is faster (it reuses each copied value K times in
# registers; these loops re-read the output block once per channel and tap). Measured: 1 (LeNet-5) and
# 3 (RGB) channels win here; LeNet-5's 6 → 16 layer is 1.4× faster with im2col and the compiled col2im.
MAX_CHANNELS = 4
# Beyond this many output channels im2col amortises its copy over enough products (K per copied value)
# and the direct weight gradient's (K, grid) buffer of dY grows: VGG's 3 → 32 first layer ran 1.8×
# slower here than with im2col.
MAX_OUT_CHANNELS = 16
# Fraction of the padded grid that must be real outputs (the rest is computed and thrown away).
MIN_USEFUL = 0.4

_kernels = None


def _compile():
    """The numba kernels, compiled on first use (and cached on disk by numba)."""
    global _kernels
    if _kernels is not None:
        return _kernels
    import numba

    # reassoc lets LLVM vectorise the dot-product reductions; no 'nnan'/'ninf', so NaN and Inf propagate
    fast = {"reassoc", "contract"}
    block = 512  # positions per pass: one block of K output rows stays in L1/L2 while every tap adds to it

    @numba.njit(nogil=True, fastmath=fast, cache=True)
    def correlate_runs(src, w, offs, bias, relu, runs, run_len, P, out, lo, hi):  # pragma: no cover - compiled
        # z[k, i] = bias[k] + Σ_c Σ_t w[k, c, t] · src[c, i + offs[t]] for grid positions lo <= i < hi.
        # The outputs of image n are runs of `run_len` grid positions n·P + runs[r, 0] + j, stored (after
        # max(·, 0) when relu) at out[n, k, runs[r, 1] + j]; the other positions are not outputs
        K, C, T = w.shape
        acc = np.empty((K, block), dtype=out.dtype)
        for b0 in range(lo, hi, block):
            m = min(hi, b0 + block) - b0
            for k in range(K):
                o = acc[k, :m]
                bk = bias[k]
                for i in range(m):
                    o[i] = bk
            for c in range(C):
                t = 0
                while t + 4 <= T:  # four taps per pass: one load and store of the output per four products
                    x0 = src[c, b0 + offs[t]:b0 + offs[t] + m]  # slices keep indices non-negative: vectorised
                    x1 = src[c, b0 + offs[t + 1]:b0 + offs[t + 1] + m]
                    x2 = src[c, b0 + offs[t + 2]:b0 + offs[t + 2] + m]
                    x3 = src[c, b0 + offs[t + 3]:b0 + offs[t + 3] + m]
                    for k in range(K):
                        w0, w1, w2, w3 = w[k, c, t], w[k, c, t + 1], w[k, c, t + 2], w[k, c, t + 3]
                        o = acc[k, :m]
                        for i in range(m):
                            o[i] += w0 * x0[i] + w1 * x1[i] + w2 * x2[i] + w3 * x3[i]
                    t += 4
                while t < T:
                    x0 = src[c, b0 + offs[t]:b0 + offs[t] + m]
                    for k in range(K):
                        w0 = w[k, c, t]
                        o = acc[k, :m]
                        for i in range(m):
                            o[i] += w0 * x0[i]
                    t += 1
            for n in range(b0 // P, (b0 + m - 1) // P + 1):  # the images this block touches
                for r in range(runs.shape[0]):
                    g0 = n * P + runs[r, 0]
                    s, e = max(g0, b0), min(g0 + run_len, b0 + m)
                    if s >= e:
                        continue
                    q = runs[r, 1] + s - g0
                    for k in range(K):
                        a = acc[k, s - b0:e - b0]
                        o = out[n, k, q:q + e - s]
                        for i in range(e - s):
                            v = a[i]
                            o[i] = v if (v > 0 or not relu) else v * 0

    @numba.njit(nogil=True, fastmath=fast, cache=True)
    def weight_grad_runs(g, base, src, offs, lo, hi, dw, zero):  # pragma: no cover - compiled
        # dw[k, c, t] += Σ_{lo <= i < hi} g[k, base + i] · src[c, i + offs[t]]; `zero` is 0 in dw's dtype,
        # so the sums stay in that precision (a Python 0.0 would make them float64 and slow)
        K, C, T = dw.shape
        for b0 in range(lo, hi, block):
            m = min(hi, b0 + block) - b0
            for c in range(C):
                for t in range(T):
                    xs = src[c, b0 + offs[t]:b0 + offs[t] + m]
                    k = 0
                    while k + 4 <= K:  # four output channels per pass: each input value loaded once
                        g0 = g[k, base + b0:base + b0 + m]
                        g1 = g[k + 1, base + b0:base + b0 + m]
                        g2 = g[k + 2, base + b0:base + b0 + m]
                        g3 = g[k + 3, base + b0:base + b0 + m]
                        s0 = s1 = s2 = s3 = zero
                        for i in range(m):
                            v = xs[i]
                            s0 += g0[i] * v
                            s1 += g1[i] * v
                            s2 += g2[i] * v
                            s3 += g3[i] * v
                        dw[k, c, t] += s0
                        dw[k + 1, c, t] += s1
                        dw[k + 2, c, t] += s2
                        dw[k + 3, c, t] += s3
                        k += 4
                    while k < K:
                        g0 = g[k, base + b0:base + b0 + m]
                        s0 = zero
                        for i in range(m):
                            s0 += g0[i] * xs[i]
                        dw[k, c, t] += s0
                        k += 1

    _kernels = (correlate_runs, weight_grad_runs)
    return _kernels


def applies(in_channels: int, out_channels: int, stride, groups: int, padded, out_size) -> bool:
    """Whether the direct loops beat im2col for this layer (see the module docstring)."""
    if (groups != 1 or any(s != 1 for s in stride) or in_channels > MAX_CHANNELS
            or out_channels > MAX_OUT_CHANNELS):
        return False
    return math.prod(out_size) >= MIN_USEFUL * math.prod(padded)


class Geometry:
    """The flat padded grid of a batch: P = ∏ padded sizes per image, L = N·P, and the tap offsets."""

    def __init__(self, n, padded, out_size, kernel, dilation):
        self.n, self.padded, self.out_size, self.kernel = n, tuple(padded), tuple(out_size), tuple(kernel)
        self.plane = math.prod(padded)
        self.length = n * self.plane
        self.offsets = col2im.tap_offsets(kernel, dilation, padded)
        self.reach = int(self.offsets[-1])  # the largest offset: the runs read this far past position L

    def output_runs(self) -> np.ndarray:
        """(R, 2): where each run of outputs along the last axis starts on one image's padded grid, and
        its index in the flattened output; every run is `out_size[-1]` long."""
        lead = itertools.product(*(range(o) for o in self.out_size[:-1]))
        steps = col2im.grid_steps(self.padded)
        grid = [sum(i * st for i, st in zip(idx, steps)) for idx in lead]
        return np.array([[g, r * self.out_size[-1]] for r, g in enumerate(grid)], dtype=np.int64).reshape(-1, 2)

    def valid(self, flat: np.ndarray) -> np.ndarray:
        """View (K, N, *O) of the real outputs inside a (K, ≥ L) array laid out on the grid."""
        grid = flat[:, :self.length].reshape(flat.shape[0], self.n, *self.padded)
        return grid[(slice(None), slice(None), *(slice(0, o) for o in self.out_size))]

    def chunks(self, bytes_per_position: int):
        """Position ranges of whole images, one per thread when the work is big enough to share."""
        return [(lo * self.plane, hi * self.plane)
                for lo, hi in parallel.batch_ranges(self.n, self.length * bytes_per_position)]


def forward(x, w, b, pads, padded, out_size, dilation, padding_mode, relu):
    """Direct convolution of (N, C, *S) `x` with (K, C, *F) `w` (`padded`: the padded sizes, `out_size`:
    the output's): returns (y, state) where y is a C-contiguous (N, K, *O) array and `state` what
    `backward` needs."""
    n, c = x.shape[:2]
    k, kernel = w.shape[0], w.shape[2:]
    xc = np.moveaxis(x, 1, 0)  # (C, N, *S) view
    geo = Geometry(n, padded, out_size, kernel, dilation)
    src = np.empty((c, geo.length + geo.reach), dtype=x.dtype)  # (C, L + reach): runs may read past L
    src[:, geo.length:] = 0
    grid = src[:, :geo.length].reshape(c, n, *padded)
    if padding_mode == "zeros":
        inner = (slice(None), slice(None), *(slice(p0, p0 + s) for (p0, _), s in zip(pads, x.shape[2:])))
        if any(p0 or p1 for p0, p1 in pads):
            grid[...] = 0  # the border; the inside is overwritten next
        grid[inner] = xc
    else:
        grid[...] = pad_array(xc, {2 + a: p for a, p in enumerate(pads)}, padding_mode)
    wf = np.ascontiguousarray(w.reshape(k, c, -1))
    bias = np.zeros(k, dtype=x.dtype) if b is None else np.ascontiguousarray(b)
    y = np.empty((n, k, *out_size), dtype=x.dtype)
    runs, flat = geo.output_runs(), y.reshape(n, k, -1)
    correlate_runs, _ = _compile()
    parallel.run(lambda lo, hi: correlate_runs(src, wf, geo.offsets, bias, relu, runs, out_size[-1], geo.plane,
                                               flat, lo, hi), geo.chunks(k * x.itemsize))
    return y, (src, wf, geo, y if relu else None)


def backward(grad, state, x_shape, pads, padding_mode, needs):
    """(dx, dw, db) of the direct convolution; `needs` says which of the three to compute."""
    src, wf, geo, y = state
    k, c, taps = wf.shape
    dtype = src.dtype
    gz = workspace.take((k, geo.reach + geo.length), dtype)  # dY on the grid, `reach` zeros in front
    gz[...] = 0
    g = gz[:, geo.reach:]  # a view (numba gets gz and the offset: contiguous rows vectorise)
    gv = geo.valid(g)
    if y is not None:  # fused ReLU: dL/dz = dL/dy · [y > 0]
        np.multiply(np.moveaxis(grad, 1, 0), np.moveaxis(y, 1, 0) > 0, out=gv)
    else:
        np.copyto(gv, np.moveaxis(grad, 1, 0))
    correlate_runs, weight_grad_runs = _compile()
    dx = dw = db = None
    if needs[2]:
        db = g.sum(axis=1)  # rows are contiguous here: NumPy's own sum is fast
    if needs[1]:
        def part(lo, hi):
            acc = np.zeros((k, c, taps), dtype=dtype)
            weight_grad_runs(gz, geo.reach, src, geo.offsets, lo, hi, acc, dtype.type(0))
            return acc

        dw = sum(parallel.run(part, geo.chunks((k + c) * src.itemsize))).reshape(k, c, *geo.kernel)
    if needs[0]:
        wt = np.ascontiguousarray(wf.transpose(1, 0, 2))  # (C, K, T)
        back = geo.reach - geo.offsets  # dx[j] reads dY[j − off] = gz[j + reach − off]
        dxp = np.empty((geo.n, c, geo.plane), dtype=dtype)  # every grid position is an input position:
        whole = np.zeros((1, 2), dtype=np.int64)  # one run per image, the whole grid
        parallel.run(lambda lo, hi: correlate_runs(gz, wt, back, np.zeros(c, dtype), False, whole, geo.plane,
                                                   geo.plane, dxp, lo, hi), geo.chunks(c * src.itemsize))
        dx = pad_array_backward(dxp.reshape(geo.n, c, *geo.padded), {2 + a: p for a, p in enumerate(pads)},
                                padding_mode, x_shape)
    workspace.give(gz)
    return dx, dw, db
