"""GELU's exact forward, compiled: y = x·Φ(x) with Φ(x) = ½(1 + erf(x/√2)), one fused pass over
memory that also keeps Φ(x) for the backward, split over the thread pool.

nn/functional/nonlinearities.py holds the math (and the NumPy form, used for float16 and the tanh
approximation). NumPy has no erf, so its form costs five passes over memory plus a numba ufunc for erf,
in one thread: 0.43–0.58 s of a 3.5–4 s training step of the airbench-style net at batch 512 (benchmark
case D) went to GELU's forward. Here erf is libm's per element (not SIMD: numba's LLVM has no vector
erf), but the pass is single and runs on every core: 466 → 341 ms per step in case D.

The backward, dx = g·(Φ(x) + x·φ(x)) with φ(x) = e^(−x²/2)/√(2π), stays in NumPy (nonlinearities.py):
a compiled pass calling libm's exp per element was measured slower than NumPy's SIMD exp over five
passes (295 against 158 ms per step in case D).

Arrays are taken in their memory order (a channels-last view stays channels-last): the kernel sees
them flat through ``ravel(order="K")``, which is a view when an array is dense.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from convlens import parallel
from convlens.kernels import elementwise

_JIT = dict(nogil=True, cache=True)
_SQRT_HALF = 0.7071067811865476


@numba.njit(**_JIT)
def _forward(x, y, cdf, lo, hi):  # pragma: no cover - compiled
    xs, ys, cs = x[lo:hi], y[lo:hi], cdf[lo:hi]  # slices: no index wraparound checks (elementwise.py)
    for i in range(xs.shape[0]):
        v = xs[i]
        c = 0.5 * (1.0 + math.erf(v * _SQRT_HALF))
        cs[i] = c
        ys[i] = v * c


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
    parallel.run_compiled(_forward_parts, _forward, (xf, yf, cf), parallel.compiled_ranges(xf.size, 3 * x.nbytes))
    return y, cdf

