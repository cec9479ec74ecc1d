"""Special functions NumPy lacks, as numba ufuncs: erf(x) = 2/√π ∫₀ˣ e^(−t²) dt (C's libm via `math.erf`)."""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.vectorize(["float32(float32)", "float64(float64)"], cache=True)
def _erf(x):
    return math.erf(x)


def erf(a: np.ndarray) -> np.ndarray:
    """erf element-wise, in the input's float dtype (float16 goes through float32)."""
    if a.dtype == np.float16:
        return _erf(a.astype(np.float32)).astype(np.float16)
    return _erf(a)
