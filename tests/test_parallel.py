"""Ops split over convlens's threads give the results of one range (splitting only reorders work), on
both ways of splitting: compiled kernels on OpenMP threads (kernels/launch.py) and the Python pool."""

import os

import numpy as np
import pytest

import convlens as cl
from convlens import parallel
from convlens.kernels import launch, winograd
from convlens.nn.functional import batch_norm, gelu, relu
from convlens.nn.functional.conv import conv
from convlens.nn.functional.pooling import avg_pool2d, max_pool2d


def _run(threads, fn, arrays):
    parallel.set_num_threads(threads)
    try:
        leaves = [cl.tensor(a, requires_grad=True) for a in arrays]
        y = fn(*leaves)
        y.backward(cl.tensor(np.cos(np.arange(y._data.size)).reshape(y.shape).astype(y.dtype)))
        return [y._data] + [t.grad._data for t in leaves]
    finally:
        parallel.set_num_threads(parallel._default_threads())


CASES = {
    # name: (function of the tensors, shapes); direct tiles, im2col + GEMM, Winograd, and both 2×2 poolings
    "direct": (lambda x, w: conv(x, w, padding=2, activation="relu"), [(6, 3, 20, 20), (8, 3, 5, 5)]),
    "im2col": (lambda x, w: conv(x, w, stride=2, padding=1), [(6, 40, 12, 12), (40, 40, 3, 3)]),
    "winograd": (lambda x, w: conv(x, w, padding=1), [(16, winograd.MIN_CHANNELS, 8, 8),  # 1,024 outputs
                                                     (winograd.MIN_CHANNELS, winograd.MIN_CHANNELS, 3, 3)]),
    "im2col_columns": (lambda x, w: conv(x, w, padding=1), [(1, 96, 7, 7), (384, 96, 3, 3)]),  # one image
    "max_pool": (lambda x: max_pool2d(x, 2), [(6, 4, 20, 36)]),
    "avg_pool": (lambda x: avg_pool2d(x, 2), [(6, 4, 20, 36)]),
    "gelu": (gelu, [(6, 4, 20, 36)]),
    "relu": (relu, [(6, 4, 20, 36)]),
    # batch norm's statistics, forward and backward, on (N, C, S) images and on channels-last (M, C) rows
    "batch_norm": (lambda x, w, b: batch_norm(x, None, None, w, b, training=True), [(6, 4, 20, 36), (4,), (4,)]),
    "batch_norm_last": (lambda x, w, b: batch_norm(x.permute(0, 3, 1, 2), None, None, w, b, training=True),
                        [(6, 20, 36, 4), (4,), (4,)]),
}


@pytest.mark.parametrize("openmp", [True, False])
@pytest.mark.parametrize("name", sorted(CASES))
def test_split_ops_match_one_range(name, openmp, monkeypatch):
    if openmp and not launch.available():
        if os.environ.get("CONVLENS_REQUIRE_OPENMP") == "1":  # set in CI: the OpenMP path must be tested
            pytest.fail("CONVLENS_REQUIRE_OPENMP=1 but numba has no thread-safe threading layer (libgomp)")
        pytest.skip("numba has no thread-safe threading layer here (no libgomp)")
    monkeypatch.setattr(launch, "_available", openmp)
    monkeypatch.setattr(parallel, "MIN_BYTES", 0)  # split even small arrays over the threads
    monkeypatch.setattr(parallel, "MIN_BYTES_COMPILED", 0)
    fn, shapes = CASES[name]
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s) for s in shapes]  # float64: only the order of sums may differ
    if name == "direct":
        assert fn(*[cl.tensor(a, requires_grad=True) for a in arrays])._ctx.direct
    one = _run(1, fn, arrays)
    widths, split_ranges = [], parallel.split
    monkeypatch.setattr(parallel, "split", lambda n, parts: widths.append(len(r := split_ranges(n, parts))) or r)
    split = _run(2, fn, arrays)
    assert max(widths) == 2  # the op really was split
    for a, b in zip(one, split):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_thread_count_is_set_from_the_top_level_as_in_torch():
    import convlens

    before = convlens.get_num_threads()
    try:
        convlens.set_num_threads(1)
        assert convlens.get_num_threads() == 1
    finally:
        convlens.set_num_threads(before)
    with pytest.raises(ValueError, match="positive number of threads"):
        convlens.set_num_threads(0)
