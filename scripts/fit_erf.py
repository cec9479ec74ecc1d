"""Fit the rational erf of kernels/gelu.py and check it against math.erf.

    erf(x) ≈ x·P(x²)/Q(x²) on |x| ≤ 4, P of degree 6, Q of degree 5 with Q(0) = 1

by iteratively reweighted linear least squares of x·P(t) − erf(x)·Q(t) on Chebyshev-spaced points of
[0, 4] (weights 1/(erf·Q), which makes the residual the relative error), then reports the error of
the float32 GELU path as it runs: float32 input, the rational evaluated in float64, rounded to float32.
Beyond |x| = 4, erf(x) rounds to ±1 in float32 (1 − erf(4) = 1.5e-8, under half an ulp of 1).

    python scripts/fit_erf.py
"""

from __future__ import annotations

import math

import numpy as np


def fit(num_terms: int = 7, den_terms: int = 5, iterations: int = 40):
    x = np.cos(np.linspace(0, np.pi, 20001)) * 2 + 2
    x = x[x > 1e-6]
    f = np.array([math.erf(v) for v in x])
    t = x * x
    w = np.ones_like(x)
    for _ in range(iterations):
        a = np.hstack([x[:, None] * t[:, None] ** np.arange(num_terms),
                       -f[:, None] * t[:, None] ** np.arange(1, den_terms + 1)])
        sol, *_ = np.linalg.lstsq(a * w[:, None], f * w, rcond=None)
        p, q = sol[:num_terms], np.concatenate([[1.0], sol[num_terms:]])
        den = np.polyval(q[::-1], t)
        rel = (x * np.polyval(p[::-1], t) / den - f) / f
        w = (1 + 50 * np.abs(rel) / np.abs(rel).max()) / np.abs(f * den)
    return p, q, float(np.abs(rel).max())


def float32_error(p, q, n: int = 400_001) -> tuple[float, float]:
    """Max error in float32 ulps and absolute, over n points of [−4.5, 4.5]."""
    xs = np.linspace(-4.5, 4.5, n).astype(np.float32)
    xc = np.clip(xs.astype(np.float64), -4.0, 4.0)
    t = xc * xc
    approx = (xc * np.polyval(p[::-1], t) / np.polyval(q[::-1], t)).astype(np.float32)
    ref = np.array([math.erf(float(v)) for v in xs])
    keep = ref != 0
    ulps = np.abs(approx[keep] - ref[keep]) / np.spacing(np.abs(ref[keep]).astype(np.float32))
    return float(ulps.max()), float(np.abs(approx - ref).max())


if __name__ == "__main__":
    p, q, rel = fit()
    print(f"max relative error (float64): {rel:.3g}")
    print("P =", tuple(float(v) for v in p))
    print("Q =", tuple(float(v) for v in q))
    ulps, absolute = float32_error(p, q)
    print(f"float32 path: max error {ulps:.2f} ulp, {absolute:.3g} absolute")
