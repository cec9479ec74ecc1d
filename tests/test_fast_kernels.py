"""The compiled fast paths of issue 12 (convlens/kernels/), each against torch in float64 and float32
over a grid that covers its layouts, thresholds and tails, plus a float64 gradcheck."""

import numpy as np
import pytest

import convlens as cl
import convlens.nn.functional as F
from convlens.kernels import batchnorm
from convlens.testing import gradcheck

torch = pytest.importorskip("torch")
TF = torch.nn.functional

TOL = {np.float64: (1e-10, 1e-10), np.float32: (2e-5, 2e-5)}


def channels_last(x: np.ndarray) -> np.ndarray:
    """The same values as an (N, C, *S) view of (N, *S, C) memory (what the im2col convolution returns)."""
    return np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1)


def close(ours, theirs, dtype):
    rtol, atol = TOL[dtype]
    t = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    np.testing.assert_allclose(np.asarray(ours), t, rtol=rtol, atol=atol * (1 + np.abs(t).max()))


# ---- batch norm ------------------------------------------------------------------------------------
BN_SHAPES = [(4, 3), (2, 5, 7), (2, 5, 1), (3, 4, 5, 6), (2, 3, 2, 3, 4), (1, 2, 2), (33, 17, 19), (2, 9, 3, 11)]


# (shape, channels-last): an (N, C) input has one memory order
BN_CASES = [(s, last) for s in BN_SHAPES for last in (False, True) if len(s) > 2 or not last]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape,last", BN_CASES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_matches_torch(dtype, shape, last, training, affine):
    rng = np.random.default_rng(sum(shape))
    c = shape[1]
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    x = channels_last(x) if last else x
    g = rng.standard_normal(shape).astype(dtype)
    w, b = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    rm, rv = rng.standard_normal(c).astype(dtype), (rng.random(c) + 0.5).astype(dtype)
    xc = cl.tensor(x, requires_grad=True)
    wc, bc = (cl.tensor(w, requires_grad=True), cl.tensor(b, requires_grad=True)) if affine else (None, None)
    xt = torch.tensor(x, requires_grad=True)
    wt, bt = (torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)) if affine else (None, None)
    rmc, rvc, rmt, rvt = rm.copy(), rv.copy(), torch.tensor(rm), torch.tensor(rv)
    y = F.batch_norm(xc, rmc, rvc, wc, bc, training=training, momentum=0.2, eps=1e-3)
    yt = TF.batch_norm(xt, rmt, rvt, wt, bt, training=training, momentum=0.2, eps=1e-3)
    close(y.detach().numpy(), yt, dtype)
    assert y.shape == tuple(yt.shape) and y.dtype == dtype
    y.backward(cl.tensor(g))
    yt.backward(torch.tensor(g))
    close(xc.grad.numpy(), xt.grad, dtype)
    close(rmc, rmt, dtype)
    close(rvc, rvt, dtype)
    if affine:
        close(wc.grad.numpy(), wt.grad, dtype)
        close(bc.grad.numpy(), bt.grad, dtype)


@pytest.mark.parametrize("last", [False, True])
def test_batch_norm_gradcheck(last):
    # channels-last: the input is (N, H, W, C) memory and the function permutes it (a view), because
    # gradcheck perturbs its inputs' own memory
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5, 2, 4) if last else (3, 4, 5, 2))
    w, b = rng.standard_normal(4), rng.standard_normal(4)
    inputs = [cl.tensor(a, requires_grad=True) for a in (x, w, b)]

    def fn(x, w, b):
        x = x.permute(0, 3, 1, 2) if last else x
        assert not last or not x.detach().numpy().flags.c_contiguous
        return F.batch_norm(x, None, None, w, b, training=True)

    assert gradcheck(fn, inputs)


def test_batch_norm_layout_is_kept_and_stats_accurate():
    # channels-last in, channels-last out (no copy between an im2col conv and the next layer); the
    # centred second pass keeps the variance of values far from 0 accurate in float32
    x = channels_last(np.random.default_rng(0).standard_normal((8, 16, 6, 6)).astype(np.float32) + 1000)
    out = batchnorm.normalize(x, *[np.zeros(16)] * 2, None, None)
    assert np.moveaxis(out, 1, -1).flags.c_contiguous
    mean, var = batchnorm.moments(x)
    ref = x.astype(np.float64)
    np.testing.assert_allclose(mean, ref.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(var, ref.var(axis=(0, 2, 3)), rtol=1e-6)


# ---- max pooling over disjoint blocks (kernel = stride) -------------------------------------------
# (input shape, kernel): whole blocks and tails past the last block, 1-d to 3-d, kernels of 1 to 8 taps
POOL_CASES = [
    ((2, 3, 16), 4), ((2, 3, 18), 4), ((1, 5, 7), 3), ((3, 2, 9), (1,)), ((2, 4, 6), 2),
    ((2, 3, 6, 9), (3, 3)), ((2, 3, 7, 5), (2, 1)), ((1, 9, 4, 6), (1, 3)),
    ((2, 3, 4, 6, 6), 2), ((1, 4, 5, 7, 9), 2), ((2, 3, 4, 4, 6), (1, 2, 3)), ((1, 2, 3, 3, 3), 3),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape,kernel", POOL_CASES)
@pytest.mark.parametrize("last", [False, True])
def test_block_max_pool_matches_torch(dtype, shape, kernel, last):
    from convlens.kernels import blockpool
    from convlens.nn.functional._windows import pool_window

    d = len(shape) - 2
    rng = np.random.default_rng(len(shape) * 7 + shape[-1])
    x = (np.round(rng.standard_normal(shape) * 2) / 2).astype(dtype)  # half-integers: many ties
    x = channels_last(x) if last else x
    assert blockpool.applies(x, pool_window("t", x.shape, d, kernel, None, 0))
    ours = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[d - 1]
    theirs = (TF.max_pool1d, TF.max_pool2d, TF.max_pool3d)[d - 1]
    xc, xt = cl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, yt = ours(xc, kernel), theirs(xt, kernel)
    np.testing.assert_array_equal(y.detach().numpy(), yt.detach().numpy())
    g = rng.standard_normal(tuple(yt.shape)).astype(dtype)
    y.backward(cl.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_array_equal(xc.grad.numpy(), xt.grad.numpy())


def test_block_max_pool_nan_wins_and_gradcheck():
    x = np.arange(24, dtype=np.float64).reshape(1, 2, 12)
    x[0, 0, 5] = np.nan
    y = F.max_pool1d(cl.tensor(x), 4).numpy()
    yt = TF.max_pool1d(torch.tensor(x), 4).numpy()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(yt))
    for k in (2, 3):  # the constant-width (2, 4) and general rows, forward and backward, NaN among ties
        x = np.round(np.random.default_rng(k).standard_normal((2, 3, 4, 6, 6 * k)) * 2) / 2
        x[0, 1, 2, 3, 5] = x[1, 2, 0, 0, 0] = np.nan
        xc, xt = cl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        y, yt = F.max_pool3d(xc, (1, 2, k)), TF.max_pool3d(xt, (1, 2, k))
        np.testing.assert_array_equal(y.detach().numpy(), yt.detach().numpy())
        y.sum().backward()
        yt.sum().backward()
        np.testing.assert_array_equal(xc.grad.numpy(), xt.grad.numpy())
    xs = cl.tensor(np.random.default_rng(0).permutation(60).reshape(1, 3, 4, 5).astype(np.float64), requires_grad=True)
    assert gradcheck(lambda a: F.max_pool2d(a, (2, 5)), [xs])


# ---- compiled element-wise ops (ReLU's backward, GELU) --------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("last", [False, True])
@pytest.mark.parametrize("op", ["relu", "gelu"])
def test_elementwise_match_torch(dtype, last, op):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((3, 4, 5, 7)) * 4).astype(dtype)
    x.reshape(-1)[:6] = [0.0, -0.0, 12.0, -12.0, 1e-8, -1e-8]  # the kink, the saturated tails
    x = channels_last(x) if last else x
    g = rng.standard_normal(x.shape).astype(dtype)
    g = channels_last(g) if last else g
    xc, xt = cl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, yt = getattr(F, op)(xc), getattr(TF, op)(xt)
    close(y.detach().numpy(), yt, dtype)
    assert y.dtype == dtype
    y.backward(cl.tensor(g))
    yt.backward(torch.tensor(g))
    close(xc.grad.numpy(), xt.grad, dtype)
    from convlens.kernels import elementwise

    if op == "relu":
        assert np.moveaxis(elementwise.relu_backward(g, x), 1, -1).flags.c_contiguous == last  # memory order kept


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relu_keeps_nan_and_memory_order_as_torch(dtype):
    x = np.array([[np.nan, -1.0, 0.0, -0.0, 2.0, np.inf, -np.inf, 3.0]], dtype=dtype).repeat(4, 0)
    xl = channels_last(x.reshape(2, 2, 2, 4))  # a channels-last view: the output keeps that order
    for a in (x, xl):
        y = F.relu(cl.tensor(a)).numpy()
        np.testing.assert_array_equal(y, TF.relu(torch.tensor(np.ascontiguousarray(a))).numpy())
        assert y.strides == a.strides


def test_gelu_gradcheck():
    x = cl.tensor(np.linspace(-5, 5, 41).reshape(1, 41), requires_grad=True)
    assert gradcheck(F.gelu, [x])


def test_gelu_float32_rational_erf_is_within_an_ulp_of_the_exact_one():
    """float32 GELU computes erf as a rational function in float64 (kernels/gelu.py, fitted by
    scripts/fit_erf.py): against the exact float64 formula over a dense grid, through the thresholds at
    |x/√2| = 4 and the saturated tails; NaN stays NaN, +∞ → +∞, and Φ(x) is 0 for large negative x."""
    import math

    from convlens.kernels import gelu

    x = np.concatenate([np.linspace(-12, 12, 200_001), [-4 * math.sqrt(2), 4 * math.sqrt(2), 0.0, -0.0, 1e-30]])
    x = x.astype(np.float32)
    y, cdf = gelu.forward(x)
    erf = np.vectorize(math.erf)(x.astype(np.float64) / math.sqrt(2))
    exact_cdf = 0.5 * (1 + erf)
    exact = x.astype(np.float64) * exact_cdf
    assert y.dtype == cdf.dtype == np.float32
    assert np.abs(cdf - exact_cdf).max() <= 6e-8  # an ulp of values near 1
    assert np.all(np.abs(y - exact) <= 6e-8 * np.maximum(np.abs(x), 1) + np.spacing(np.abs(exact).astype(np.float32)))
    assert np.all(cdf[x < -6] == 0) and np.all(cdf[x > 6] == 1)
    y, cdf = gelu.forward(np.array([np.nan, np.inf, -np.inf], np.float32))
    assert np.isnan(y[0]) and np.isnan(cdf[0]) and y[1] == np.inf and cdf[1] == 1 and cdf[2] == 0


@pytest.mark.parametrize("n", [1, 511, 512, 513, 300_001])  # the inner block's tail; one range and several
def test_gelu_float32_backward_kernel_against_the_exact_formula(n):
    """float32 GELU's backward is one compiled pass with its own exp (kernels/gelu.py): against
    g·(Φ(x) + x·e^(−x²/2)/√(2π)) in float64 with the same Φ, over the clamp at z = −700 and the tails;
    NaN stays NaN."""
    import math

    from convlens.kernels import gelu

    x = np.linspace(-40, 40, n).astype(np.float32)
    x[: min(n, 4)] = [0.0, -0.75179, 1e-30, 37.5][: min(n, 4)]
    g = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    _, cdf = gelu.forward(x)
    assert gelu.backward_applies(x, g, cdf)
    dx = gelu.backward(x, g, cdf)
    a = x.astype(np.float64)
    exact = g * (cdf.astype(np.float64) + a * np.exp(-0.5 * a * a) / math.sqrt(2 * math.pi))
    assert dx.dtype == np.float32
    np.testing.assert_allclose(dx, exact, rtol=2e-7, atol=1e-12)  # atol: the cancellation where Φ + xφ = 0
    nan = gelu.backward(np.array([np.nan], np.float32), np.ones(1, np.float32), np.array([np.nan], np.float32))
    assert np.isnan(nan[0])


def test_gelu_backward_with_mixed_memory_orders_matches_torch():
    """x channels-last, the incoming gradient contiguous: g is copied into x's order for the compiled pass."""
    from convlens.kernels import gelu

    rng = np.random.default_rng(9)
    x = channels_last((rng.standard_normal((2, 3, 4, 5)) * 3).astype(np.float32))
    g = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    y, cdf = gelu.forward(x)
    assert g.strides != x.strides and gelu.backward_applies(x, g, cdf)  # the compiled pass serves
    dx = gelu.backward(x, g, cdf)
    assert dx.strides == x.strides  # in x's memory order
    xc, xt = cl.tensor(x, requires_grad=True), torch.tensor(np.ascontiguousarray(x), requires_grad=True)
    F.gelu(xc).backward(cl.tensor(g))
    TF.gelu(xt).backward(torch.tensor(g))
    close(xc.grad.numpy(), xt.grad, np.float32)
