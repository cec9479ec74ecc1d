"""GELU's exact forward, compiled: y = x·Φ(x) with Φ(x) = ½(1 + erf(x/√2)), one fused pass over
memory that also keeps Φ(x) for the backward, split over the threads. In float32, erf is a rational
approximation evaluated in float64 (within an ulp, `_erf_rational`); float64 keeps libm's erf.

nn/functional/nonlinearities.py holds the math (and the NumPy form, used for float16 and the tanh
approximation). NumPy has no erf, so its form costs five passes over memory plus a numba ufunc for erf,
in one thread: 0.43–0.58 s of a 3.5–4 s training step of the airbench-style net at batch 512 (benchmark
case D) went to GELU's forward. One compiled pass calling libm's erf per element (not SIMD: numba's
LLVM has no vector erf) took that to 341 ms; with the rational erf, which vectorises (error_model below),
a (4 M) float32 forward is 75 → 27 ms on one thread, 40 → 14 ms on two, before the error model's fix.

The backward, dx = g·(Φ(x) + x·φ(x)) with φ(x) = e^(−x²/2)/√(2π), is one compiled pass in float32
with its own vectorisable exp (`_backward`, below); a compiled pass calling libm's exp per element was
measured slower than NumPy's SIMD exp over five passes (295 against 158 ms per step in case D), and
float64 (gradient checks) keeps NumPy's formula in nonlinearities.py.

Arrays are taken in their memory order (a channels-last view stays channels-last): the kernel sees
them flat through ``ravel(order="K")``, which is a view when an array is dense.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from convlens import parallel
from convlens.kernels import elementwise

# error_model="numpy": a float division by zero gives inf/NaN as in NumPy instead of raising, so the
# division in `_erf_rational` carries no check and the loop vectorises (numba's default "python"
# model branches on the divisor: measured 0.33 → 0.05 ms on 61,504 float32 values, one thread)
_JIT = dict(nogil=True, cache=True, error_model="numpy")
_SQRT_HALF = 0.7071067811865476
# The forward costs ~2.4 ns a value on one thread (a rational erf in float64), as much as a pass over
# ~20 bytes of memory: split over the threads by this as if each value were that many bytes (a
# 64 × 15 × 15 map, 14,400 values: 35 µs on one thread).
_WORK_BYTES = 20


# erf(x) ≈ x·P(x²)/Q(x²) for |x| ≤ 4 (±1 beyond, as float32's erf rounds there), coefficients from
# scripts/fit_erf.py (reweighted least squares of the relative error): 2.6e-8 relative, 0.83 ulp on
# the float32 path below. libm's erf is a call per element that LLVM cannot vectorise; this is
# multiply-adds and one division, which it can.
_P = (1.1283791724773313, 0.18412549953131818, 0.0537795067850905, 0.003754791681293469,
      0.0003615202305071068, 4.222655156961528e-06, -1.0708150519261884e-08)
_Q = (1.0, 0.49651042161965453, 0.11316376106168999, 0.015208558117269741, 0.0012640582394034539,
      5.874581377048706e-05)


@numba.njit(inline="always", **_JIT)
def _erf_rational(v):  # pragma: no cover - compiled
    x = np.float64(v)  # in float64, for a float32 result within an ulp
    t = min(x * x, 16.0)
    p = ((((((_P[6] * t + _P[5]) * t + _P[4]) * t + _P[3]) * t + _P[2]) * t + _P[1]) * t + _P[0])
    q = (((((_Q[5] * t + _Q[4]) * t + _Q[3]) * t + _Q[2]) * t + _Q[1]) * t + _Q[0])
    r = x * p / q
    # exactly ±1 beyond 4, so that 1 + erf → 0 for large negative x; NaN stays NaN
    return r if abs(x) < 4.0 else (1.0 if x > 0 else (-1.0 if x < 0 else x))


@numba.njit(inline="always", **_JIT)
def _erf_libm(v):  # pragma: no cover - compiled
    return math.erf(v)


@numba.njit(inline="always", **_JIT)
def _forward_with(x, y, cdf, erf, lo, hi):  # pragma: no cover - compiled
    xs, ys, cs = x[lo:hi], y[lo:hi], cdf[lo:hi]  # slices: no index wraparound checks (elementwise.py)
    for i in range(xs.shape[0]):
        v = xs[i]
        c = 0.5 * (1.0 + erf(v * _SQRT_HALF))
        cs[i] = c
        ys[i] = v * c


@numba.njit(**_JIT)
def _forward(x, y, cdf, lo, hi):  # pragma: no cover - compiled
    # erf chosen here, not passed in: a function argument is typed again on every call from Python
    # (~10 µs, as much as the whole pass over a 64 × 15 × 15 map)
    if x.itemsize == 4:  # a constant of the compiled type: the other branch is dropped
        _forward_with(x, y, cdf, _erf_rational, lo, hi)
    else:  # float64 (gradient checks): libm's
        _forward_with(x, y, cdf, _erf_libm, lo, hi)


@numba.njit(parallel=True, **_JIT)
def _forward_parts(x, y, cdf, edges):  # pragma: no cover - compiled
    for p in numba.prange(edges.shape[0] - 1):
        _forward(x, y, cdf, edges[p], edges[p + 1])


def applies(a: np.ndarray) -> bool:
    return a.dtype in (np.float32, np.float64) and a.size > 0


def forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(y, Φ(x)) for x float32 or float64, both in x's memory order."""
    if not elementwise.dense(x):  # e.g. a strided slice: work on a dense copy
        x = np.ascontiguousarray(x)
    y, cdf = elementwise.like(x), elementwise.like(x)
    xf, yf, cf = (a.ravel(order="K") for a in (x, y, cdf))  # views: the arrays are dense
    parallel.run_compiled(_forward_parts, _forward, (xf, yf, cf), parallel.compiled_ranges(xf.size, _WORK_BYTES * xf.size))
    return y, cdf



# ---- inference after batch norm: y = GELU(a[c]·x + b[c]) in one pass, no Φ kept -------------------------
# (nn.Sequential runs an eval-mode BatchNorm followed by GELU this way when no gradient is recorded and
# no hook watches either; a, b are batch norm's per-channel coefficients, kernels/batchnorm.py)
@numba.njit(inline="always", **_JIT)
def _gelu_of(t, erf):  # pragma: no cover - compiled
    return t * (0.5 * (1.0 + erf(t * _SQRT_HALF)))  # as _forward_with: y = x·Φ(x), Φ in float64


@numba.njit(inline="always", **_JIT)
def _affine_first_with(x, a, b, y, erf, lo, hi):  # pragma: no cover - compiled
    channels = a.shape[0]
    for r in range(lo, hi):  # row r of (N·C, S) is image r // C, channel r % C
        ac, bc = a[r % channels], b[r % channels]
        xs, ys = x[r], y[r]
        for i in range(xs.shape[0]):
            ys[i] = _gelu_of(ac * xs[i] + bc, erf)


@numba.njit(inline="always", **_JIT)
def _affine_last_with(x, a, b, y, erf, lo, hi):  # pragma: no cover - compiled
    for r in range(lo, hi):  # row r of (M, C): one position, every channel
        xs, ys = x[r], y[r]
        for c in range(xs.shape[0]):
            ys[c] = _gelu_of(a[c] * xs[c] + b[c], erf)


@numba.njit(inline="always", **_JIT)
def _affine_with(x, a, b, y, last, erf, lo, hi):  # pragma: no cover - compiled
    if last:
        _affine_last_with(x, a, b, y, erf, lo, hi)
    else:
        _affine_first_with(x, a, b, y, erf, lo, hi)


@numba.njit(**_JIT)
def _affine(x, a, b, y, last, lo, hi):  # pragma: no cover - compiled
    if x.itemsize == 4:
        _affine_with(x, a, b, y, last, _erf_rational, lo, hi)
    else:
        _affine_with(x, a, b, y, last, _erf_libm, lo, hi)


@numba.njit(parallel=True, **_JIT)
def _affine_parts(x, a, b, y, last, edges):  # pragma: no cover - compiled
    for p in numba.prange(edges.shape[0] - 1):
        _affine(x, a, b, y, last, edges[p], edges[p + 1])


def affine_forward(x: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray, channels_last: bool) -> None:
    """out = GELU(a[c]·x + b[c]) for batch norm's kernel views: channels-first (N·C, S) rows or
    channels-last (M, C) rows (`channels_last`), a and b of x's dtype, split over the threads."""
    parallel.run_compiled(_affine_parts, _affine, (x, a, b, out, bool(channels_last)),
                          parallel.compiled_ranges(x.shape[0], _WORK_BYTES * x.size))


# ---- the backward, float32: dx = g·(Φ(x) + x·φ(x)), φ(x) = e^(−x²/2)/√(2π) -----------------------------
# e^z for z = −x²/2 ≤ 0 without libm (a call per element would not vectorise): z = n·ln 2 + r with
# n = round(z / ln 2), |r| ≤ ln 2 / 2, e^r by its Taylor polynomial to r⁹ (relative error < 1e-10, far
# below float32's ulp), and 2ⁿ built from its exponent bits. Evaluated in float64; z is clamped at −700
# (x beyond ±37, where φ underflows float32 anyway). Measured on 7.4 M float32 values, one thread:
# 7.7 ms against 11.7 ms for NumPy's expression (its SIMD exp, seven passes), and it splits over the threads.
_LOG2E, _LN2_HI, _LN2_LO = 1.4426950408889634, 0.6931471803691238, 1.9082149292705877e-10
_INV_SQRT_2PI = 0.3989422804014327
_BLOCK = 512  # values per inner block (the exponent bits of 2ⁿ are written to a small buffer, then read)


@numba.njit(**_JIT)
def _backward(x, g, cdf, dx, lo, hi):  # pragma: no cover - compiled
    bits = np.empty(_BLOCK, np.int64)
    two_n = bits.view(np.float64)
    poly = np.empty(_BLOCK, np.float64)
    for start in range(lo, hi, _BLOCK):
        stop = min(start + _BLOCK, hi)
        xs, gs, cs, ds = x[start:stop], g[start:stop], cdf[start:stop], dx[start:stop]
        m = xs.shape[0]
        ps, bs = poly[:m], bits[:m]
        for i in range(m):
            a = np.float64(xs[i])
            z = max(-0.5 * a * a, -700.0)
            k = np.int64(z * _LOG2E - 0.5)  # round(z / ln 2) for z ≤ 0 (the conversion truncates)
            n = np.float64(k)
            r = (z - n * _LN2_HI) - n * _LN2_LO
            ps[i] = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (
                1.0 / 720 + r * (1.0 / 5040 + r * (1.0 / 40320 + r * (1.0 / 362880)))))))))
            bs[i] = (k + 1023) << 52  # the float64 2ⁿ: exponent field n + 1023, mantissa 0
        ts = two_n[:m]
        for i in range(m):
            a = np.float64(xs[i])
            ds[i] = gs[i] * (np.float64(cs[i]) + a * (_INV_SQRT_2PI * ps[i] * ts[i]))


@numba.njit(parallel=True, **_JIT)
def _backward_parts(x, g, cdf, dx, edges):  # pragma: no cover - compiled
    for p in numba.prange(edges.shape[0] - 1):
        _backward(x, g, cdf, dx, edges[p], edges[p + 1])


def backward_applies(x: np.ndarray, g: np.ndarray, cdf: np.ndarray) -> bool:
    """float32 x and Φ(x) dense in one memory order, g float32 of their shape (float64 keeps NumPy's exp:
    gradient checks). g in another memory order (the gradient a channels-first layer hands back to a
    channels-last one) is copied into x's first: the copy and the compiled pass cost less than NumPy's
    seven passes (D at batch 256, the first block's GELU: 22 → 18 ms a call, two threads)."""
    return (x.dtype == np.float32 and g.dtype == np.float32 and g.shape == x.shape
            and elementwise.compiled_ok(x, cdf))


def backward(x: np.ndarray, g: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """dx = g·(Φ(x) + x·φ(x)) in one compiled pass, in x's memory order (see `backward_applies`; g in
    another memory order is copied into x's first)."""
    if g.strides != x.strides:  # into x's memory order, so that one flat pass serves
        g_in_order = elementwise.like(x)
        np.copyto(g_in_order, g)
        g = g_in_order
    dx = elementwise.like(x)
    flats = [a.ravel(order="K") for a in (x, g, cdf, dx)]
    parallel.run_compiled(_backward_parts, _backward, tuple(flats), parallel.compiled_ranges(x.size, 4 * x.nbytes))
    return dx

