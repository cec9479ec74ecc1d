"""kernels/blas.py: one product split over the OpenMP threads, each part NumPy's own BLAS, and the
compiled channels-first im2col that feeds it (kernels/im2col.columns_channels_first)."""

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

import convlens as cl
from convlens.kernels import blas, im2col

needs_split = pytest.mark.skipif(not blas.available(np.float32) or cl.get_num_threads() < 2,
                                 reason="no ILP64 OpenBLAS under NumPy, no OpenMP layer, or one thread")


@needs_split
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", [(256, 2304, 49), (64, 216, 961), (7, 5, 3001), (301, 33, 2), (3, 4, 5)])
@pytest.mark.parametrize("views", [False, True])
def test_split_product_equals_numpy(dtype, m, k, n, views, monkeypatch):
    """Rows or columns split (the longer side), odd sizes (unequal parts), and row-major views with a
    leading dimension larger than the row: the same numbers as one np.matmul, and really split."""
    monkeypatch.setattr(blas, "MIN_SPLIT", 0)
    splits = []
    real = blas.parallel.split
    monkeypatch.setattr(blas.parallel, "split", lambda size, parts: splits.append((size, parts)) or real(size, parts))
    rng = np.random.default_rng(3)
    if views:  # every operand a column slice of a wider array
        a = rng.standard_normal((m, k + 3)).astype(dtype)[:, 1:k + 1]
        b = rng.standard_normal((k, n + 2)).astype(dtype)[:, :n]
        out = np.full((m, n + 5), np.nan, dtype)[:, 2:n + 2]
    else:
        a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
        out = np.full((m, n), np.nan, dtype)
    assert blas.matmul(a, b, out) is out
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(out, a @ b, rtol=tol, atol=tol * np.sqrt(k))
    assert splits == [(max(m, n), cl.get_num_threads())]
    if views:
        assert np.isnan(out.base[:, :2]).all() and np.isnan(out.base[:, n + 2:]).all()  # nothing outside


def test_small_or_unsupported_products_are_one_numpy_call(monkeypatch):
    """Below MIN_SPLIT, in another dtype, or column-major: np.matmul, never the split."""
    monkeypatch.setattr(blas, "_gemm_parts", lambda *a: pytest.fail("split a product it should not"))
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((8, 9)).astype(np.float32), rng.standard_normal((9, 10)).astype(np.float32)
    out = np.empty((8, 10), np.float32)
    np.testing.assert_allclose(blas.matmul(a, b, out), a @ b, rtol=1e-6)
    monkeypatch.setattr(blas, "MIN_SPLIT", 0)
    ai, bi = a.astype(np.int64), b.astype(np.int64)
    np.testing.assert_array_equal(blas.matmul(ai, bi, np.empty((8, 10), np.int64)), ai @ bi)
    af = np.asfortranarray(a)
    np.testing.assert_allclose(blas.matmul(af, b, out), a @ b, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,kernel,stride,dilation", [
    ((1, 24, 33, 33), (3, 3), (1, 1), (1, 1)),
    ((2, 5, 11, 13), (3, 2), (2, 3), (1, 2)),  # strided on the last axis: the gather loop
    ((3, 4, 17), (5,), (1,), (2,)),
    ((1, 3, 6, 7, 9), (2, 3, 3), (1, 2, 1), (2, 1, 1)),
])
@pytest.mark.parametrize("padded", [False, True])
def test_compiled_columns_equal_the_strided_view(dtype, shape, kernel, stride, dilation, padded):
    """The compiled channels-first im2col against NumPy's copy of the same strided view, 1-, 2- and 3-D;
    with zero padding read as zeros by the kernel (uneven, wider than a stride, wider than the input's
    reach on one side) against the view of np.pad's copy."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(dtype)
    pads = [(1, 2), (3, 0), (0, 1)][:len(kernel)] if padded else None
    xp = np.pad(x, ((0, 0), (0, 0), *pads)) if padded else x
    shape = xp.shape
    n, c = shape[:2]
    out = tuple((s - d * (f - 1) - 1) // st + 1 for s, f, st, d in zip(shape[2:], kernel, stride, dilation))
    s = xp.strides
    view = as_strided(xp, (c, *kernel, n, *out), (s[1], *(a * d for a, d in zip(s[2:], dilation)), s[0],
                                                  *(a * st for a, st in zip(s[2:], stride))))
    expected = np.ascontiguousarray(view).reshape(c * int(np.prod(kernel)), -1)
    cols = np.full(expected.shape, np.nan, dtype)
    im2col.columns_channels_first(x, cols, out, kernel, stride, dilation, pads)
    np.testing.assert_array_equal(cols, expected)
