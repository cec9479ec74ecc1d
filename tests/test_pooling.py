"""Pooling without PyTorch: gradient checks, an independent reference for weighted pooling, the course's
properties of max pooling, dtypes, strided inputs and the validation messages."""

import itertools

import numpy as np
import pytest

from convlens.nn.functional import pooling as P
from convlens.nn.shape import conv_output_size
from convlens.tensor import Tensor
from convlens.testing import gradcheck


def distinct(shape, seed=0, scale=0.1):
    """Values without ties (and 0.1 apart, far beyond gradcheck's eps) so every maximum is unique."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(int(np.prod(shape))).reshape(shape) * scale).astype(np.float64)


def leaf(array):
    return Tensor(array, requires_grad=True)


# ---- gradient checks ------------------------------------------------------------------------------
MAX_CASES = [
    (P.max_pool1d, (2, 2, 9), dict(kernel_size=3, stride=2)),
    (P.max_pool1d, (1, 2, 8), dict(kernel_size=3, stride=1, padding=1)),  # overlapping windows
    (P.max_pool1d, (1, 2, 10), dict(kernel_size=2, stride=3, dilation=3, ceil_mode=True)),
    (P.max_pool2d, (2, 2, 6, 6), dict(kernel_size=2)),
    (P.max_pool2d, (1, 2, 7, 5), dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1))),
    (P.max_pool2d, (1, 1, 7, 8), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (P.max_pool2d, (1, 2, 7, 7), dict(kernel_size=2, stride=1, dilation=2)),
    (P.max_pool3d, (1, 2, 4, 5, 5), dict(kernel_size=(2, 3, 2), stride=(1, 2, 2), padding=(1, 1, 0))),
    (P.max_pool3d, (1, 1, 5, 5, 5), dict(kernel_size=2, stride=2, ceil_mode=True)),
]

AVG_CASES = [
    (P.avg_pool1d, (2, 2, 9), dict(kernel_size=3, stride=2, padding=1)),
    (P.avg_pool1d, (1, 2, 8), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    (P.avg_pool2d, (2, 2, 6, 6), dict(kernel_size=2)),
    (P.avg_pool2d, (1, 2, 7, 5), dict(kernel_size=(3, 2), stride=1, padding=(1, 0))),
    (P.avg_pool2d, (1, 1, 7, 8), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (P.avg_pool2d, (1, 1, 7, 8), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    (P.avg_pool2d, (1, 2, 5, 5), dict(kernel_size=2, stride=1, divisor_override=3)),
    (P.avg_pool3d, (1, 2, 4, 5, 5), dict(kernel_size=(2, 3, 2), stride=(1, 2, 2), padding=(1, 1, 0))),
    (P.avg_pool3d, (1, 1, 5, 5, 5), dict(kernel_size=2, stride=2, ceil_mode=True, count_include_pad=False)),
]

WEIGHTED_CASES = [
    (P.weighted_avg_pool1d, (2, 2, 9), dict(kernel_size=3, stride=2, padding=1)),
    (P.weighted_avg_pool2d, (2, 2, 6, 6), dict(kernel_size=2)),
    (P.weighted_avg_pool2d, (1, 2, 7, 5), dict(kernel_size=(3, 2), stride=1, padding=(1, 1))),
    (P.weighted_avg_pool2d, (1, 1, 7, 8), dict(kernel_size=3, stride=2, weights=np.arange(9.0).reshape(3, 3))),
    (P.weighted_avg_pool3d, (1, 2, 4, 5, 5), dict(kernel_size=(2, 3, 2), stride=(1, 2, 2), padding=(1, 1, 0))),
]

ADAPTIVE_CASES = [
    (fn, shape, dict(output_size=out))
    for fn in (P.adaptive_avg_pool1d, P.adaptive_max_pool1d)
    for shape, out in [((2, 2, 9), 4), ((1, 2, 8), 4), ((1, 2, 3), 5), ((1, 2, 7), 1)]
] + [
    (fn, shape, dict(output_size=out))
    for fn in (P.adaptive_avg_pool2d, P.adaptive_max_pool2d)
    for shape, out in [((2, 2, 7, 5), (3, 2)), ((1, 2, 6, 6), 3), ((1, 1, 3, 4), (5, None)), ((1, 2, 5, 6), 1)]
] + [
    (fn, shape, dict(output_size=out))
    for fn in (P.adaptive_avg_pool3d, P.adaptive_max_pool3d)
    for shape, out in [((1, 2, 4, 5, 3), (2, 3, None)), ((1, 1, 3, 4, 4), 1)]
]


def _id(case):
    fn, shape, kw = case
    return f"{fn.__name__}-{shape}-" + ",".join(f"{k}={v}" for k, v in kw.items() if k != "weights")


@pytest.mark.parametrize("case", MAX_CASES + AVG_CASES + WEIGHTED_CASES + ADAPTIVE_CASES, ids=_id)
def test_gradcheck(case):
    fn, shape, kw = case
    x = leaf(distinct(shape))
    assert gradcheck(lambda t: fn(t, **kw), [x])


# ---- weighted average pooling against a loop-based reference ----------------------------------------
def weighted_reference(x, kernel, stride, padding, w):
    """out[n, c, o] = Σ_k w[k]·x_pad[n, c, o·s + k], written as plain loops over every output cell."""
    d = len(kernel)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])
    out_shape = tuple((xp.shape[2 + a] - kernel[a]) // stride[a] + 1 for a in range(d))
    out = np.zeros(x.shape[:2] + out_shape)
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for o in itertools.product(*(range(s) for s in out_shape)):
            window = xp[(n, c) + tuple(slice(o[a] * stride[a], o[a] * stride[a] + kernel[a]) for a in range(d))]
            out[(n, c) + o] = (window * w).sum()
    return out


@pytest.mark.parametrize("dims,kernel,stride,padding", [
    (1, (3,), (2,), (1,)), (2, (3, 3), (2, 2), (1, 1)), (2, (2, 3), (1, 3), (0, 1)), (3, (2, 2, 3), (2, 1, 2), (1, 0, 1)),
])
@pytest.mark.parametrize("user_weights", [False, True])
def test_weighted_avg_pool_matches_loop_reference(dims, kernel, stride, padding, user_weights):
    fn = [P.weighted_avg_pool1d, P.weighted_avg_pool2d, P.weighted_avg_pool3d][dims - 1]
    rng = np.random.default_rng(dims)
    x = rng.standard_normal((2, 3) + (7, 6, 5)[:dims])
    raw = rng.random(kernel) if user_weights else None
    w = raw / raw.sum() if user_weights else P.gaussian_pool_weights(kernel)
    out = fn(Tensor(x), kernel, stride, padding, weights=raw)
    np.testing.assert_allclose(out._data, weighted_reference(x, kernel, stride, padding, w), rtol=1e-12, atol=1e-12)


def test_gaussian_weights_definition():
    w = P.gaussian_pool_weights((3, 4))
    assert w.shape == (3, 4) and np.isclose(w.sum(), 1.0)
    np.testing.assert_allclose(w, w[::-1, ::-1])  # centred on the window
    # separable, σ = k/4 per axis: w[i, j] ∝ exp(−(i − 1)²/(2·0.75²))·exp(−(j − 1.5)²/(2·1²))
    gi = np.exp(-((np.arange(3) - 1.0) ** 2) / (2 * 0.75**2))
    gj = np.exp(-((np.arange(4) - 1.5) ** 2) / 2)
    np.testing.assert_allclose(w, np.outer(gi, gj) / np.outer(gi, gj).sum())
    assert P.gaussian_pool_weights((1,)).tolist() == [1.0]


def test_weighted_avg_pool_of_constant_is_constant_and_user_weights_are_normalised():
    x = Tensor(np.full((1, 2, 6, 6), 3.0))
    assert np.allclose(P.weighted_avg_pool2d(x, 2)._data, 3.0)
    one_hot = np.zeros((2, 2))
    one_hot[1, 0] = 5.0  # normalised to 1: picks the bottom-left cell of each window
    out = P.weighted_avg_pool2d(Tensor(np.arange(36.0).reshape(1, 1, 6, 6)), 2, weights=one_hot)
    np.testing.assert_array_equal(out._data[0, 0], np.arange(36.0).reshape(6, 6)[1::2, 0::2])


# ---- the course's properties ----------------------------------------------------------------------------
def test_max_pooling_ignores_a_one_pixel_shift_inside_the_window():
    base = np.zeros((1, 1, 4, 4))
    feature = [(0, 0), (2, 3), (3, 1)]  # one bright pixel in three different 2×2 windows
    expected = None
    for shift in [(0, 0), (1, 0), (0, 1), (1, 1)]:  # within its 2×2 window wherever the pixel is
        image = base.copy()
        for r, c in feature:
            rr, cc = (r // 2) * 2 + (r % 2 + shift[0]) % 2, (c // 2) * 2 + (c % 2 + shift[1]) % 2
            image[0, 0, rr, cc] = 9.0
        pooled = P.max_pool2d(Tensor(image), 2)._data
        expected = pooled if expected is None else expected
        np.testing.assert_array_equal(pooled, expected)
    assert expected[0, 0].tolist() == [[9.0, 0.0], [9.0, 9.0]]


ALL_OPS = [
    lambda t: P.max_pool2d(t, 2), lambda t: P.avg_pool2d(t, 3, 1, 1), lambda t: P.weighted_avg_pool2d(t, 3, 2),
    lambda t: P.adaptive_avg_pool2d(t, (2, 3)), lambda t: P.adaptive_max_pool2d(t, 1),
]


@pytest.mark.parametrize("op", ALL_OPS)
def test_pooling_keeps_the_maps_and_has_no_parameters(op):
    x = leaf(distinct((2, 5, 6, 6)))
    y = op(x)
    assert y.shape[:2] == (2, 5)  # one pooled map per input map
    assert y._ctx.parents == (x,)  # the input is the only thing the output depends on
    np.testing.assert_array_equal(op(Tensor(x._data))._data, y._data)  # nothing changes between calls


# ---- dtypes, strided inputs, identities -----------------------------------------------------------------
@pytest.mark.parametrize("op", ALL_OPS)
def test_float32_stays_float32(op):
    x = leaf(distinct((2, 3, 6, 6)).astype(np.float32))
    y = op(x)
    y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


@pytest.mark.parametrize("op", ALL_OPS + [lambda t: P.adaptive_max_pool2d(t, (4, 5)),
                                          lambda t: P.max_pool2d(t, 3, 2, 1, ceil_mode=True)])
def test_non_contiguous_input(op):
    nhwc = distinct((2, 7, 6, 3))
    strided = leaf(nhwc.transpose(0, 3, 1, 2))  # a view with the channels innermost
    contiguous = leaf(np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2)))
    g = np.random.default_rng(1).standard_normal(op(contiguous).shape)
    for t in (strided, contiguous):
        op(t).backward(g)
    np.testing.assert_array_equal(op(strided)._data, op(contiguous)._data)
    np.testing.assert_array_equal(strided.grad._data, contiguous.grad._data)


def test_max_pool_overlapping_windows_accumulate_and_ties_pick_the_first():
    x = leaf(np.array([[[0.0, 5.0, 1.0, 2.0]]]))
    y = P.max_pool1d(x, kernel_size=2, stride=1)  # windows (0,5) (5,1) (1,2): 5 wins twice
    y.backward(np.ones(y.shape))
    assert y._data.tolist() == [[[5.0, 5.0, 2.0]]] and x.grad._data.tolist() == [[[0.0, 2.0, 0.0, 1.0]]]
    ties = leaf(np.ones((1, 1, 2, 2)))
    P.max_pool2d(ties, 2).sum().backward()
    assert ties.grad._data.tolist() == [[[[1.0, 0.0], [0.0, 0.0]]]]


def test_max_pool_propagates_nan_and_routes_its_gradient_to_it():
    x = leaf(np.array([[[1.0, np.nan, 3.0, 2.0]]]))
    y = P.max_pool1d(x, 2)
    y.backward(np.ones(y.shape))
    assert np.isnan(y._data[0, 0, 0]) and y._data[0, 0, 1] == 3.0
    assert x.grad._data.tolist() == [[[0.0, 1.0, 1.0, 0.0]]]


def test_max_pool_padding_is_never_the_maximum():
    x = Tensor(-np.arange(1.0, 10.0).reshape(1, 1, 3, 3))
    assert P.max_pool2d(x, 3, stride=1, padding=1)._data.max() == -1.0


def test_avg_pool_divisors():
    x = Tensor(np.ones((1, 1, 5)))
    np.testing.assert_allclose(P.avg_pool1d(x, 3, 2, 1)._data, [[[2 / 3, 1.0, 2 / 3]]])
    np.testing.assert_allclose(P.avg_pool1d(x, 3, 2, 1, count_include_pad=False)._data, [[[1.0, 1.0, 1.0]]])
    # ceil_mode: the last window starts at 5 and runs past the padded input (cells −1..6), so it is clipped
    # to the 2 cells 5 and 6 (one real, one padding): 1/2 with the padding counted, 1/1 without
    x = Tensor(np.ones((1, 1, 6)))
    np.testing.assert_allclose(P.avg_pool1d(x, 3, 2, 1, ceil_mode=True)._data, [[[2 / 3, 1.0, 1.0, 0.5]]])
    np.testing.assert_allclose(P.avg_pool1d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)._data,
                               [[[1.0, 1.0, 1.0, 1.0]]])


def test_adaptive_pooling_global_and_identity():
    x = distinct((2, 3, 5, 7))
    np.testing.assert_allclose(P.adaptive_avg_pool2d(Tensor(x), 1)._data, x.mean(axis=(2, 3), keepdims=True))
    np.testing.assert_array_equal(P.adaptive_max_pool2d(Tensor(x), 1)._data, x.max(axis=(2, 3), keepdims=True))
    np.testing.assert_allclose(P.adaptive_avg_pool2d(Tensor(x), (None, None))._data, x)
    np.testing.assert_array_equal(P.adaptive_max_pool2d(Tensor(x), (5, 7))._data, x)


def test_pool_output_shape_uses_the_shared_formula():
    for size, k, s, p, ceil in itertools.product(range(3, 12), (2, 3), (1, 2, 3), (0, 1), (False, True)):
        expected = conv_output_size(size, k, s, p, 1, ceil_mode=ceil)
        assert P.pool_output_shape((2, 3, size, size), k, s, p, ceil_mode=ceil) == (2, 3, expected, expected)
        assert P.max_pool2d(Tensor(np.zeros((2, 3, size, size))), k, s, p, ceil_mode=ceil).shape == (2, 3, expected,
                                                                                                   expected)


# ---- validation --------------------------------------------------------------------------------------
X2 = Tensor(np.zeros((1, 3, 6, 6)))


@pytest.mark.parametrize("call,message", [
    (lambda: P.max_pool2d(Tensor(np.zeros((1, 28, 28))), 2),
     r"max_pool2d: expected a 4-d input \(N, C, H, W\), got a 3-d input of shape \(1, 28, 28\)"),
    (lambda: P.avg_pool1d(X2, 2), r"avg_pool1d: expected a 3-d input \(N, C, L\), got a 4-d input"),
    (lambda: P.max_pool3d(X2, 2), r"max_pool3d: expected a 5-d input \(N, C, D, H, W\)"),
    (lambda: P.max_pool2d(X2, 7), r"max_pool2d: kernel_size=\(7, 7\) is larger than the padded input"),
    (lambda: P.max_pool2d(X2, 4, dilation=2), r"max_pool2d: kernel_size=\(4, 4\) with dilation=\(2, 2\) is larger"),
    (lambda: P.avg_pool2d(X2, 2, stride=0), r"avg_pool2d: stride must be >= 1, got 0"),
    (lambda: P.max_pool2d(X2, 2, stride=(1, -1)), r"max_pool2d: stride must be >= 1, got \(1, -1\)"),
    (lambda: P.max_pool2d(X2, 3, padding=2), r"max_pool2d: padding must be at most half the kernel size .* "
                                             r"got padding=\(2, 2\) for kernel_size=\(3, 3\)"),
    (lambda: P.avg_pool2d(X2, 2, padding=-1), r"avg_pool2d: padding must be >= 0, got -1"),
    (lambda: P.max_pool2d(X2, 2.5), r"max_pool2d: kernel_size must be an integer .* got 2.5"),
    (lambda: P.max_pool2d(X2, (2, 2.0)), r"max_pool2d: kernel_size entries must be integers, got \(2, 2.0\)"),
    (lambda: P.max_pool2d(X2, (2, 2, 2)), r"max_pool2d: kernel_size must have 2 entries"),
    (lambda: P.max_pool2d(X2, 0), r"max_pool2d: kernel_size must be >= 1, got 0"),
    (lambda: P.adaptive_max_pool2d(X2, 2, return_indices=True), r"adaptive_max_pool2d: return_indices=True is not supported"),
    (lambda: P.avg_pool2d(X2, 2, divisor_override=0), r"avg_pool2d: divisor_override must be a positive integer"),
    (lambda: P.avg_pool2d(Tensor(np.zeros((1, 3, 6, 6), np.int64)), 2),
     r"avg_pool2d: expected a floating-point input, got dtype int64"),
    (lambda: P.weighted_avg_pool2d(X2, 3, weights=np.ones((3, 2))),
     r"weighted_avg_pool2d: weights must have the kernel's shape \(3, 3\), got shape \(3, 2\)"),
    (lambda: P.weighted_avg_pool2d(X2, 2, weights=np.zeros((2, 2))), r"weighted_avg_pool2d: weights must not be all zero"),
    (lambda: P.weighted_avg_pool1d(Tensor(np.zeros((1, 1, 5))), 2, weights=[1.0, -1.0]),
     r"weighted_avg_pool1d: weights must be finite and non-negative"),
    (lambda: P.weighted_avg_pool2d(X2, 3, padding=2), r"weighted_avg_pool2d: padding must be at most half"),
    (lambda: P.adaptive_avg_pool2d(X2, 0), r"adaptive_avg_pool2d: output_size must be >= 1, got 0"),
    (lambda: P.adaptive_max_pool2d(X2, (2, 2, 2)), r"adaptive_max_pool2d: output_size must have 2 entries, got \(2, 2, 2\)"),
    (lambda: P.adaptive_avg_pool3d(X2, 2), r"adaptive_avg_pool3d: expected a 5-d input \(N, C, D, H, W\)"),
    (lambda: P.adaptive_max_pool1d(Tensor(np.zeros((1, 2, 5))), 2.0), r"adaptive_max_pool1d: output_size must be"),
    (lambda: P.pool_output_shape((28, 28), 2), r"pool_output_shape: expected an input shape \(N, C, \*spatial\)"),
])
def test_validation_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_non_tensor_input_is_a_type_error():
    with pytest.raises(TypeError, match="max_pool2d: expected a Tensor input, got ndarray"):
        P.max_pool2d(np.zeros((1, 1, 4, 4)), 2)


# ---- the compiled 2×2/2 path (fastpool.py) --------------------------------------------------------
def test_fast_2x2_path_is_taken_only_where_it_applies():
    x = leaf(distinct((2, 3, 6, 6)))
    assert P.max_pool2d(x, 2)._ctx.fast and P.avg_pool2d(x, 2)._ctx.fast
    assert not P.max_pool2d(x, 3)._ctx.fast and not P.max_pool2d(x, 2, padding=1)._ctx.fast
    channels_last = leaf(np.moveaxis(distinct((2, 6, 6, 3)), -1, 1))  # the im2col convolution's output
    assert P.max_pool2d(channels_last, 2)._ctx.fast and P.avg_pool2d(channels_last, 2)._ctx.fast
    strided = Tensor._wrap(distinct((2, 3, 6, 12))[..., ::2], requires_grad=True)  # a view, not a copy
    assert not P.max_pool2d(strided, 2)._ctx.fast  # neither memory order: the general code


# even and odd sizes (last row/column dropped); rows of 16+ windows take the vector loop, with a scalar tail
# 20 channels: channels-last takes the vector loop (8 channels at a time) and a scalar tail
@pytest.mark.parametrize("shape", [(2, 3, 6, 8), (1, 2, 7, 5), (2, 3, 4, 40), (1, 2, 5, 35), (1, 1, 2, 16), (2, 20, 5, 6)])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_fast_2x2_matches_the_general_code(shape, kind):
    op = P.max_pool2d if kind == "max" else P.avg_pool2d
    rng = np.random.default_rng(3)
    data = np.maximum(rng.standard_normal(shape), 0).astype(np.float32)  # ReLU output: many tied zeros
    g = rng.standard_normal((shape[0], shape[1], shape[2] // 2, shape[3] // 2)).astype(np.float32)
    results = []
    # C-contiguous and channels-last: the compiled loops; Fortran order: the general code
    channels_last = np.moveaxis(np.ascontiguousarray(np.moveaxis(data, 1, -1)), -1, 1)
    for array, fast in ((data, True), (channels_last, True), (np.asfortranarray(data), False)):
        x = leaf(array)
        y = op(x, 2)
        assert y._ctx.fast == fast
        y.backward(g)
        results.append((y._data, x.grad._data))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_2x2_max_nan_and_ties_in_the_vector_loop(dtype):
    """One window per case across a row of 8 windows (the vector loop): a NaN in each cell position wins,
    and ties go to the first cell in row-major order."""
    x = np.zeros((1, 1, 2, 16), dtype=dtype)
    x[0, 0, 0, 2 * 1] = np.nan  # window 1: NaN at (0, 0)
    x[0, 0, 1, 2 * 2 + 1] = np.nan  # window 2: NaN at (1, 1), after a larger value
    x[0, 0, 0, 2 * 2] = 5
    x[0, 0, :, 2 * 3:2 * 3 + 2] = 7  # window 3: four tied cells
    x[0, 0, 1, 2 * 4] = 3  # window 4: maximum at (1, 0)
    t = leaf(x)
    y = P.max_pool2d(t, 2)
    assert y._ctx.fast
    y.backward(np.arange(1, 9, dtype=dtype).reshape(1, 1, 1, 8))
    assert np.isnan(y._data[0, 0, 0, [1, 2]]).all() and y._data[0, 0, 0, [0, 3, 4]].tolist() == [0, 7, 3]
    grad = t.grad._data[0, 0]
    assert grad[0, 2] == 2 and grad[1, 5] == 3 and grad[0, 4] == 0  # the NaN cells get the gradient
    assert grad[:, 6:8].tolist() == [[4, 0], [0, 0]] and grad[1, 8] == 5 and grad[0, 0] == 1
    assert grad.sum() == sum(range(1, 9))


def test_fast_2x2_max_ties_and_nan_in_2d():
    ties = leaf(np.zeros((1, 1, 2, 4)))
    P.max_pool2d(ties, 2).sum().backward()
    assert ties.grad._data.tolist() == [[[[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]]
    x = leaf(np.array([[[[1.0, 2.0], [np.nan, np.nan]]]]))
    y = P.max_pool2d(x, 2)
    y.backward(np.ones(y.shape))
    assert np.isnan(y._data).all() and x.grad._data.tolist() == [[[[0.0, 0.0], [1.0, 0.0]]]]
