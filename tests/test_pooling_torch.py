"""Pooling against torch.nn.functional: forward and backward over generated grids of configurations."""

import itertools

import numpy as np
import pytest

from convlens.nn.functional import pooling as P
from convlens.nn.shape import conv_output_size
from convlens.tensor import Tensor

torch = pytest.importorskip("torch")
F = torch.nn.functional

SIZES = {1: [(2, 3, 9), (1, 2, 7)], 2: [(2, 2, 7, 6), (1, 3, 8, 5)], 3: [(1, 2, 5, 4, 6)]}
KERNELS = {1: [2, 3, (4,)], 2: [2, 3, (3, 2)], 3: [2, (2, 3, 2)]}


def _tuple(v, d):
    return (v,) * d if isinstance(v, int) else tuple(v)


def _valid(shape, kernel, stride, padding, dilation, ceil):
    d = len(shape) - 2
    k, p, s, dl = _tuple(kernel, d), _tuple(padding, d), _tuple(stride or kernel, d), _tuple(dilation, d)
    if any(pi > ki // 2 for pi, ki in zip(p, k)):
        return False
    return all(conv_output_size(n, ki, si, pi, di, ceil) >= 1 for n, ki, si, pi, di in zip(shape[2:], k, s, p, dl))


def _grid(extra_axes, valid, limit, seed):
    """A fixed random subset of the `valid` configurations in the product of the common axes and `extra_axes`."""
    configs = []
    for d in (1, 2, 3):
        for shape, kernel, stride, padding, *extra in itertools.product(
                SIZES[d], KERNELS[d], [None, 1, 2, 3], [0, 1], *extra_axes):
            if valid(shape, kernel, stride, padding, *extra):
                configs.append((shape, kernel, stride, padding, *extra))
    rng = np.random.default_rng(seed)
    picked = rng.permutation(len(configs))[:limit]
    return [configs[i] for i in sorted(picked)]


def _compare(ours_fn, torch_fn, x, rtol=1e-10, atol=1e-12):
    """Same output and same input gradient for a random output gradient."""
    t = Tensor(x, requires_grad=True)
    out = ours_fn(t)
    g = np.random.default_rng(7).standard_normal(out.shape)
    out.backward(g)
    tx = torch.tensor(x, requires_grad=True)
    tout = torch_fn(tx)
    tout.backward(torch.tensor(g))
    assert out.shape == tuple(tout.shape)
    np.testing.assert_allclose(out._data, tout.detach().numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(t.grad._data, tx.grad.numpy(), rtol=rtol, atol=atol)


def _distinct(shape, seed):
    """A permutation of 0..n−1: no ties, so every window's maximum (and its gradient) is unique."""
    return np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape).astype(np.float64)


# ---- max pooling ----------------------------------------------------------------------------------
MAX_GRID = _grid([[1, 2], [False, True]], _valid, limit=150, seed=1)


def test_max_grid_is_large_and_varied():
    assert len(MAX_GRID) >= 100
    assert {len(c[0]) for c in MAX_GRID} == {3, 4, 5}
    assert any(c[4] == 2 for c in MAX_GRID) and any(c[5] for c in MAX_GRID) and any(c[3] for c in MAX_GRID)


@pytest.mark.parametrize("config", MAX_GRID, ids=str)
def test_max_pool_matches_torch(config):
    shape, kernel, stride, padding, dilation, ceil = config
    d = len(shape) - 2
    ours = [P.max_pool1d, P.max_pool2d, P.max_pool3d][d - 1]
    theirs = [F.max_pool1d, F.max_pool2d, F.max_pool3d][d - 1]
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil)
    _compare(lambda t: ours(t, **kw), lambda t: theirs(t, **kw), _distinct(shape, MAX_GRID.index(config)))


# ---- average pooling ---------------------------------------------------------------------------------
AVG_GRID = _grid([[False, True], [True, False], [None, 5]],
                 lambda shape, k, s, p, ceil, _, divisor: _valid(shape, k, s, p, 1, ceil)
                 and not (len(shape) == 3 and divisor is not None),  # avg_pool1d has no divisor_override
                 limit=150, seed=2)


def test_avg_grid_is_large_and_varied():
    assert len(AVG_GRID) >= 100
    assert {len(c[0]) for c in AVG_GRID} == {3, 4, 5}
    assert any(c[4] and c[3] and not c[5] for c in AVG_GRID) and any(c[6] for c in AVG_GRID)


@pytest.mark.parametrize("config", AVG_GRID, ids=str)
def test_avg_pool_matches_torch(config):
    shape, kernel, stride, padding, ceil, include_pad, divisor = config
    d = len(shape) - 2
    ours = [P.avg_pool1d, P.avg_pool2d, P.avg_pool3d][d - 1]
    theirs = [F.avg_pool1d, F.avg_pool2d, F.avg_pool3d][d - 1]
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil, count_include_pad=include_pad)
    if divisor is not None:
        kw["divisor_override"] = divisor
    x = np.random.default_rng(len(AVG_GRID)).standard_normal(shape)
    _compare(lambda t: ours(t, **kw), lambda t: theirs(t, **kw), x)


# ---- adaptive pooling ----------------------------------------------------------------------------------
def _adaptive_grid():
    configs = []
    for length in range(1, 14):
        for out in sorted({1, 2, 3, 4, 5, length, length + 2}):
            configs.append(((2, 2, length), out))
    for (h, w), (oh, ow) in itertools.product([(5, 7), (6, 6), (3, 9), (8, 4), (1, 1), (2, 11)], [(1, 1), (2, 3), (3, None), (7, 5)]):
        configs.append(((1, 2, h, w), (oh, ow)))
    for shape, out in itertools.product([(1, 2, 4, 5, 3), (1, 1, 6, 3, 7)], [1, (2, 3, 2), (None, 2, 5), (5, 4, 3)]):
        configs.append((shape, out))
    return configs


ADAPTIVE_GRID = _adaptive_grid()


def test_adaptive_grid_is_large():
    assert len(ADAPTIVE_GRID) >= 100


@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("config", ADAPTIVE_GRID, ids=str)
def test_adaptive_pool_matches_torch(config, kind):
    shape, out = config
    d = len(shape) - 2
    ours = getattr(P, f"adaptive_{kind}_pool{d}d")
    theirs = getattr(F, f"adaptive_{kind}_pool{d}d")
    x = _distinct(shape, d) if kind == "max" else np.random.default_rng(d).standard_normal(shape)
    _compare(lambda t: ours(t, out), lambda t: theirs(t, out), x)


# ---- weighted average pooling: a depthwise convolution with the weight kernel ------------------------------
def _weighted_grid():
    """Over 100 geometries, like the other pooling families: 1-d, 2-d and 3-d, kernels even and odd and
    non-square, strides (default = kernel, 1, 2), paddings up to half the window, odd and even sizes."""
    cases = [((2, 3, 9), 3, 2, 1), ((2, 3, 8, 7), 2, None, 0), ((1, 4, 9, 8), 3, 2, 1),
             ((1, 2, 7, 9), (3, 2), 1, (1, 0)), ((1, 2, 5, 6, 7), (2, 3, 3), (1, 2, 2), (1, 1, 0))]
    for shape, kernels in (((2, 3, 11), (2, 3, 4, 5)), ((1, 2, 9, 8), (2, 3, (3, 2))), ((1, 2, 6, 5, 7), (2, (2, 3, 2)))):
        d = len(shape) - 2
        for kernel, stride, pad in itertools.product(kernels, (None, 1, 2), (0, 1)):
            if pad and min(_tuple(kernel, d)) < 2:
                continue
            cases.append((shape, kernel, stride, pad))
    return cases


@pytest.mark.parametrize("shape,kernel,stride,padding", _weighted_grid())
@pytest.mark.parametrize("user_weights", [False, True])
def test_weighted_avg_pool_is_a_depthwise_convolution(shape, kernel, stride, padding, user_weights):
    d = len(shape) - 2
    k = _tuple(kernel, d)
    rng = np.random.default_rng(d)
    raw = rng.random(k) if user_weights else None
    w = raw / raw.sum() if user_weights else P.gaussian_pool_weights(k)
    channels = shape[1]
    conv = [F.conv1d, F.conv2d, F.conv3d][d - 1]
    kernel_t = torch.tensor(w).expand(channels, 1, *k)
    ours = [P.weighted_avg_pool1d, P.weighted_avg_pool2d, P.weighted_avg_pool3d][d - 1]
    _compare(lambda t: ours(t, kernel, stride, padding, weights=raw),
             lambda t: conv(t, kernel_t, stride=stride or kernel, padding=padding, groups=channels),
             rng.standard_normal(shape))


def test_float32_matches_torch():
    x = np.random.default_rng(0).standard_normal((4, 8, 13, 11)).astype(np.float32)
    for ours, theirs in [(lambda t: P.max_pool2d(t, 3, 2, 1, ceil_mode=True), lambda t: F.max_pool2d(t, 3, 2, 1, ceil_mode=True)),
                         (lambda t: P.avg_pool2d(t, 3, 2, 1), lambda t: F.avg_pool2d(t, 3, 2, 1)),
                         (lambda t: P.adaptive_avg_pool2d(t, (4, 3)), lambda t: F.adaptive_avg_pool2d(t, (4, 3))),
                         (lambda t: P.adaptive_max_pool2d(t, (4, 3)), lambda t: F.adaptive_max_pool2d(t, (4, 3)))]:
        _compare(ours, theirs, x, rtol=1e-5, atol=1e-6)
