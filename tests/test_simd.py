"""The vector layer of the compiled kernels (simd.py), checked against NumPy inside tiny numba functions."""

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from convlens.kernels import simd  # noqa: E402
from convlens.kernels.simd import LANES  # noqa: E402


@numba.njit
def _outer(a, b, tile_rows, tile_cols):
    # tile = Σ over r of a[r·LANES …] ⊗ b[r·LANES …]: 3 × 2 vectors, returned lane by lane
    acc = simd.splat(np.zeros(4, dtype=a.dtype), 0, tile_rows, tile_cols)
    for r in range(a.shape[0] // (3 * LANES)):
        va = simd.load_strided(a, r * 3 * LANES, LANES, tile_rows)
        vb = simd.load_strided(b, r * 2 * LANES, LANES, tile_cols)
        acc = simd.outer_fma(acc, va, vb)
    out = np.empty((6, LANES), dtype=a.dtype)
    for i in range(6):
        for j in range(LANES):
            out[i, j] = simd.lane(acc[i], j)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_outer_fma_sums_outer_products(dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(5 * 3 * LANES).astype(dtype)
    b = rng.standard_normal(5 * 2 * LANES).astype(dtype)
    got = _outer(a, b, (0,) * 3, (0,) * 2)
    va, vb = a.reshape(5, 3, LANES), b.reshape(5, 2, LANES)
    want = np.einsum("ril,rjl->ijl", va, vb).reshape(6, LANES)
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert got.dtype == dtype


@numba.njit
def _gather_relu_store(x, index, out):
    vs = simd.load_many(x, index, 0, 1, (0, 0))
    simd.store(out, 0, simd.relu(vs[0]))
    simd.store(out, LANES, vs[1])
    simd.add_into(out, LANES, vs[1])
    b = simd.splat_many(x, index, 0, 1, (0, 0))
    for i in range(LANES):
        out[2 * LANES + i] = simd.lane(b[1], i)


def test_load_many_splat_many_relu_store():
    x = np.arange(-20, 20, dtype=np.float32)
    x[3] = np.nan
    out = np.zeros(3 * LANES, dtype=np.float32)
    _gather_relu_store(x, np.array([0, 17]), out)
    first = x[1:1 + LANES]
    np.testing.assert_array_equal(out[:LANES], np.where(first > 0, first, first * 0))  # NaN stays, negatives → 0
    assert np.isnan(out[2])
    np.testing.assert_array_equal(out[LANES:2 * LANES], 2 * x[18:18 + LANES])
    np.testing.assert_array_equal(out[2 * LANES:], np.full(LANES, x[18]))
