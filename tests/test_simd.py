"""The vector layer of the compiled kernels (simd.py), checked against NumPy inside tiny numba functions."""

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from convlens.nn.functional import simd  # noqa: E402
from convlens.nn.functional.simd import LANES  # noqa: E402


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
def _gather_mask_relu(x, index, m, out):
    vs = simd.mask_lanes(simd.load_many(x, index, 0, 1, (0, 0)), m)
    simd.store(out, 0, simd.relu(vs[0]))
    simd.store(out, LANES, vs[1])
    simd.add_into(out, LANES, vs[1])


def test_load_many_mask_lanes_relu_store():
    x = np.arange(-20, 20, dtype=np.float32)
    x[3] = np.nan
    out = np.zeros(2 * LANES, dtype=np.float32)
    _gather_mask_relu(x, np.array([0, 17]), 5, out)
    first = x[1:1 + LANES].copy()
    first[5:] = 0
    expect_relu = np.where(first > 0, first, first * 0)  # NaN stays NaN, negatives become 0
    np.testing.assert_array_equal(out[:LANES], expect_relu)
    assert np.isnan(out[2])
    second = x[18:18 + LANES].copy()
    second[5:] = 0
    np.testing.assert_array_equal(out[LANES:], 2 * second)
