"""Batch normalisation, compiled (numba): each direction in two passes over memory.

nn/functional/normalization.py holds the math; here it is computed per channel c over the M = N·∏S
values of that channel, with per-channel coefficients so that every pass is one fused loop:

    statistics    μ = Σx / M,  σ² = Σ(x − μ)² / M                            (two reductions)
    forward       y = a·x + b,  a = γ/√(σ² + ε),  b = β − a·μ                 (one pass)
    backward      S₁ = Σ g,  S₂ = Σ g·(x − μ)                                 (one reduction)
                  dβ = S₁,  dγ = S₂/σ̃  (σ̃ = √(σ² + ε)),
                  dx = a·g + p·x + q   (batch statistics: p = −a·S₂/(M·σ̃²), q = −a·S₁/M − p·μ;
                                        running statistics: p = q = 0)          (one pass)

x̂ is never stored: the backward pass re-reads x, which the graph keeps anyway. Sums are accumulated
in float64. Two memory orders are handled without a copy: C-contiguous (N, C, *S) memory, seen as
(N, C, S), and channels-last memory (N, *S, C) — the im2col and Winograd convolutions' outputs —
seen as (M, C). Work is split over the threads by images (channels-first) or rows (channels-last).
"""

from __future__ import annotations

import numba
import numpy as np

from convlens import parallel
from convlens.kernels import gelu as gelu_kernels
from convlens.kernels import launch

_JIT = dict(nogil=True, cache=True, fastmath={"reassoc", "contract"})  # reassociated sums: no nnan/ninf


# ---- channels-first (N, C, S) ------------------------------------------------------------------------
@numba.njit(**_JIT)
def _moments_first(x, mu, s1, s2, lo, hi):  # pragma: no cover - compiled
    # s1[c] += Σ (x − μ[c]),  s2[c] += Σ (x − μ[c])²  over images lo..hi
    for n in range(lo, hi):
        for c in range(x.shape[1]):
            m = mu[c]
            a = 0.0
            b = 0.0
            for s in range(x.shape[2]):
                d = np.float64(x[n, c, s]) - m
                a += d
                b += d * d
            s1[c] += a
            s2[c] += b


@numba.njit(**_JIT)
def _grad_sums_first(x, g, mu, s1, s2, lo, hi):  # pragma: no cover - compiled
    # s1[c] += Σ g,  s2[c] += Σ g·(x − μ[c])
    for n in range(lo, hi):
        for c in range(x.shape[1]):
            m = mu[c]
            a = 0.0
            b = 0.0
            for s in range(x.shape[2]):
                gv = np.float64(g[n, c, s])
                a += gv
                b += gv * (np.float64(x[n, c, s]) - m)
            s1[c] += a
            s2[c] += b


@numba.njit(**_JIT)
def _affine_first(x, a, b, out, lo, hi):  # pragma: no cover - compiled
    # out = a[c]·x + b[c]
    for n in range(lo, hi):
        for c in range(x.shape[1]):
            ac, bc = a[c], b[c]
            for s in range(x.shape[2]):
                out[n, c, s] = ac * x[n, c, s] + bc


@numba.njit(**_JIT)
def _affine2_first(g, x, a, p, q, out, lo, hi):  # pragma: no cover - compiled
    # out = a[c]·g + p[c]·x + q[c]
    for n in range(lo, hi):
        for c in range(x.shape[1]):
            ac, pc, qc = a[c], p[c], q[c]
            for s in range(x.shape[2]):
                out[n, c, s] = ac * g[n, c, s] + pc * x[n, c, s] + qc


# ---- channels-last (M, C) ----------------------------------------------------------------------------
@numba.njit(**_JIT)
def _moments_last(x, mu, s1, s2, lo, hi):  # pragma: no cover - compiled
    for r in range(lo, hi):
        for c in range(x.shape[1]):
            d = np.float64(x[r, c]) - mu[c]
            s1[c] += d
            s2[c] += d * d


@numba.njit(**_JIT)
def _grad_sums_last(x, g, mu, s1, s2, lo, hi):  # pragma: no cover - compiled
    for r in range(lo, hi):
        for c in range(x.shape[1]):
            gv = np.float64(g[r, c])
            s1[c] += gv
            s2[c] += gv * (np.float64(x[r, c]) - mu[c])


@numba.njit(**_JIT)
def _affine_last(x, a, b, out, lo, hi):  # pragma: no cover - compiled
    for r in range(lo, hi):
        for c in range(x.shape[1]):
            out[r, c] = a[c] * x[r, c] + b[c]


@numba.njit(**_JIT)
def _affine2_last(g, x, a, p, q, out, lo, hi):  # pragma: no cover - compiled
    for r in range(lo, hi):
        for c in range(x.shape[1]):
            out[r, c] = a[c] * g[r, c] + p[c] * x[r, c] + q[c]


# ---- launchers: ranges of images (channels-first) or rows (channels-last) on numba's threads
# (kernels/launch.py); a sum's part p adds into row p of its (parts, C) accumulators ------------------
_PAR = dict(_JIT, parallel=True)


@numba.njit(**_PAR)
def _moments_first_parts(x, mu, s1, s2, edges):  # pragma: no cover - compiled
    for p in numba.prange(edges.shape[0] - 1):
        _moments_first(x, mu, s1[p], s2[p], edges[p], edges[p + 1])


@numba.njit(**_PAR)
def _moments_last_parts(x, mu, s1, s2, edges):  # pragma: no cover - compiled
    for p in numba.prange(edges.shape[0] - 1):
        _moments_last(x, mu, s1[p], s2[p], edges[p], edges[p + 1])


@numba.njit(**_PAR)
def _grad_sums_first_parts(x, g, mu, s1, s2, edges):  # pragma: no cover - compiled
    for p in numba.prange(edges.shape[0] - 1):
        _grad_sums_first(x, g, mu, s1[p], s2[p], edges[p], edges[p + 1])


@numba.njit(**_PAR)
def _grad_sums_last_parts(x, g, mu, s1, s2, edges):  # pragma: no cover - compiled
    for p in numba.prange(edges.shape[0] - 1):
        _grad_sums_last(x, g, mu, s1[p], s2[p], edges[p], edges[p + 1])


@numba.njit(**_PAR)
def _affine_first_parts(x, a, b, out, edges):  # pragma: no cover - compiled
    for p in numba.prange(edges.shape[0] - 1):
        _affine_first(x, a, b, out, edges[p], edges[p + 1])


@numba.njit(**_PAR)
def _affine_last_parts(x, a, b, out, edges):  # pragma: no cover - compiled
    for p in numba.prange(edges.shape[0] - 1):
        _affine_last(x, a, b, out, edges[p], edges[p + 1])


@numba.njit(**_PAR)
def _affine2_first_parts(g, x, a, p_, q, out, edges):  # pragma: no cover - compiled
    for p in numba.prange(edges.shape[0] - 1):
        _affine2_first(g, x, a, p_, q, out, edges[p], edges[p + 1])


@numba.njit(**_PAR)
def _affine2_last_parts(g, x, a, p_, q, out, edges):  # pragma: no cover - compiled
    for p in numba.prange(edges.shape[0] - 1):
        _affine2_last(g, x, a, p_, q, out, edges[p], edges[p + 1])


def _channels_last_dense(x: np.ndarray) -> bool:
    """Whether (N, C, *S) `x` is a view of C-contiguous (N, *S, C) memory (np.moveaxis(x, 1, -1)
    .flags.c_contiguous without building the view: 7 µs of a 30 µs small-map call)."""
    expected = x.itemsize
    for axis in (1, *range(x.ndim - 1, 1, -1), 0):
        if x.shape[axis] != 1 and x.strides[axis] != expected:
            return False
        expected *= x.shape[axis]
    return True


# ---- drivers -----------------------------------------------------------------------------------------
class Layout:
    """How an (N, C, *S) array is read by the kernels: `view` is (N, C, S) or (M, C) of its memory."""

    def __init__(self, x: np.ndarray):
        self.shape = x.shape
        self.last = x.ndim > 2 and not x.flags.c_contiguous and _channels_last_dense(x)
        self.count = x.size // max(x.shape[1], 1)  # M values per channel

    def view(self, a: np.ndarray) -> np.ndarray:
        """`a` (of the layout's shape) as the kernels' 3-d or 2-d array (a copy only if its memory
        order differs)."""
        if self.last:
            return np.ascontiguousarray(np.moveaxis(a, 1, -1)).reshape(-1, self.shape[1])
        return np.ascontiguousarray(a).reshape(self.shape[0], self.shape[1], -1)

    def new(self, dtype) -> tuple[np.ndarray, np.ndarray]:
        """(kernel array, its (N, C, *S) view) for a result in this layout."""
        n, c, *spatial = self.shape
        if self.last:
            a = np.empty((n, *spatial, c), dtype=dtype)
            return a.reshape(-1, c), np.moveaxis(a, -1, 1)
        a = np.empty(self.shape, dtype=dtype)
        return a.reshape(n, c, -1), a

    def ranges(self, v: np.ndarray):
        return parallel.compiled_ranges(v.shape[0], v.nbytes)


def _sums(kernels, lay: Layout, *arrays):
    """Per-channel float64 (S₁, S₂) of the sums kernel (and its launcher) `kernels` over all rows or
    images: partial sums per range, added up here."""
    kernel, parts = kernels
    ranges = lay.ranges(arrays[0])
    s1, s2 = np.zeros((len(ranges), lay.shape[1])), np.zeros((len(ranges), lay.shape[1]))
    if len(ranges) > 1 and launch.available() and not parallel.in_serial() and parallel.get_num_threads() > 1:
        launch.set_threads(parallel.get_num_threads())
        parts(*arrays, s1, s2, launch.edges(ranges))
    else:
        parallel.run(lambda i, _: kernel(*arrays, s1[i], s2[i], *ranges[i]), [(i, i + 1) for i in range(len(ranges))])
    return s1.sum(axis=0), s2.sum(axis=0)


def _kernels(lay: Layout):
    """(moments, grad_sums, affine, affine2) for the layout, each as (kernel, its launcher)."""
    if lay.last:
        return ((_moments_last, _moments_last_parts), (_grad_sums_last, _grad_sums_last_parts),
                (_affine_last, _affine_last_parts), (_affine2_last, _affine2_last_parts))
    return ((_moments_first, _moments_first_parts), (_grad_sums_first, _grad_sums_first_parts),
            (_affine_first, _affine_first_parts), (_affine2_first, _affine2_first_parts))


def moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and biased variance (float64) of an (N, C, *S) array."""
    lay = Layout(x)
    v = lay.view(x)
    moments_k = _kernels(lay)[0]
    zero = np.zeros(x.shape[1])
    s1, _ = _sums(moments_k, lay, v, zero)  # Σx
    mu = s1 / lay.count
    d1, d2 = _sums(moments_k, lay, v, mu)  # Σ(x − μ), Σ(x − μ)²: the centred pass keeps σ² accurate
    return mu + d1 / lay.count, np.maximum(d2 / lay.count - (d1 / lay.count) ** 2, 0.0)


def normalize(x: np.ndarray, mean, invstd, weight, bias, gelu: bool = False) -> np.ndarray:
    """y = (x − μ)·invstd·γ + β in `x`'s memory order (weight, bias may be None); with `gelu`, GELU(y)
    in the same pass (inference only: nothing is kept for a backward, kernels/gelu.py)."""
    lay = Layout(x)
    a = np.asarray(invstd, dtype=np.float64)
    if weight is not None:
        a = a * weight
    b = -a * mean if bias is None else bias - a * mean  # float64: a is
    v = lay.view(x)
    out, view = lay.new(x.dtype)
    ta, tb = a.astype(x.dtype), b.astype(x.dtype)
    if gelu:
        if not lay.last:  # (N, C, S) as (N·C, S) rows: one image's channels split over the threads
            v, out = v.reshape(-1, v.shape[2]), out.reshape(-1, out.shape[2])
        gelu_kernels.affine_forward(v, ta, tb, out, lay.last)
        return view
    affine, affine_parts = _kernels(lay)[2]
    parallel.run_compiled(affine_parts, affine, (v, ta, tb, out), lay.ranges(v))
    return view


def backward(grad: np.ndarray, x: np.ndarray, mean, invstd, weight, batch_stats: bool, needs):
    """(dx, dγ, dβ) of `normalize`; `needs` says which of the three to compute."""
    lay = Layout(x)
    v, g = lay.view(x), lay.view(grad)
    _, grad_sums, _, affine2 = _kernels(lay)
    mean = np.asarray(mean, dtype=np.float64)
    invstd = np.asarray(invstd, dtype=np.float64)
    s1, s2 = _sums(grad_sums, lay, v, g, mean)
    dx = None
    if needs[0]:
        a = invstd * (1.0 if weight is None else weight.astype(np.float64))
        if batch_stats:  # μ and σ² depend on x
            p = -a * s2 * invstd * invstd / lay.count
            q = -a * s1 / lay.count - p * mean
        else:
            p = q = np.zeros_like(a)
        out, dx = lay.new(grad.dtype)
        t = grad.dtype
        ta, tp, tq = a.astype(t), p.astype(t), q.astype(t)
        parallel.run_compiled(affine2[1], affine2[0], (g, v, ta, tp, tq, out), lay.ranges(v))
    dw = (s2 * invstd).astype(grad.dtype) if needs[1] else None
    db = s1.astype(grad.dtype) if needs[2] else None
    return dx, dw, db
