"""Strided convolutions through the direct kernels on the input's phases (kernels/polyphase.py): the same
outputs and gradients as PyTorch, over strides that do and do not divide the kernel, per-axis strides,
every padding mode, 1-, 2- and 3-d, the fused ReLU, float64 and float32."""

import itertools
import zlib

import numpy as np
import pytest

import convlens as cl
from convlens.kernels import direct, polyphase
from convlens.nn.functional.conv import ConvNd, algorithm, conv
from convlens.testing import gradcheck

CASES = [
    # (input shape, out channels, kernel, stride, padding, mode)
    ((3, 1, 203), 8, (20,), (4,), (0,), "zeros"),  # the speech net's first layer, smaller
    ((2, 2, 37), 5, (7,), (3,), (2,), "zeros"),  # the stride does not divide the kernel
    ((2, 1, 50), 3, (2,), (4,), (0,), "zeros"),  # kernel shorter than the stride: inputs skipped
    ((2, 2, 37), 5, (7,), (3,), (2,), "replicate"),
    ((2, 3, 40), 4, (5,), (2,), (3,), "circular"),
    ((2, 3, 17, 19), 6, (5, 5), (2, 2), (1, 1), "zeros"),
    ((2, 3, 16, 16), 4, (4, 3), (2, 3), (1, 2), "reflect"),
    ((2, 2, 15, 12), 4, (3, 3), (1, 2), (1, 1), "zeros"),  # strided along one axis only
    ((2, 2, 9, 10, 11), 4, (3, 3, 3), (2, 2, 2), (1, 1, 1), "zeros"),
    ((1, 1, 8, 12, 9), 3, (2, 5, 3), (2, 3, 1), (0, 2, 1), "replicate"),
]


def _torch_conv(torch, x, w, b, stride, padding, mode, relu):
    tf = getattr(torch.nn.functional, f"conv{x.ndim - 2}d")
    if mode != "zeros":
        x = torch.nn.functional.pad(x, [v for p in reversed(padding) for v in (p, p)], mode=mode)
        padding = 0
    y = tf(x, w, b, stride=stride, padding=padding)
    return torch.relu(y) if relu else y


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-s{c[3]}-{c[5]}" for c in CASES])
def test_polyphase_matches_torch(case, dtype, relu):
    torch = pytest.importorskip("torch")
    shape, k, kernel, stride, padding, mode = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((k, shape[1], *kernel)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    X, W, B = (cl.tensor(a, requires_grad=True) for a in (x, w, b))
    y = conv(X, W, B, stride=stride, padding=padding, padding_mode=mode, activation="relu" if relu else None)
    assert y._ctx.polyphase is not None  # the path under test was taken
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = _torch_conv(torch, tx, tw, tb, stride, padding, mode, relu)
    g = rng.standard_normal(ty.shape).astype(dtype)
    y.backward(cl.tensor(g))
    ty.backward(torch.tensor(g))
    tol = 1e-10 if dtype == np.float64 else 2e-4
    for ours, theirs in ((y, ty), (X.grad, tx.grad), (W.grad, tw.grad), (B.grad, tb.grad)):
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("case", CASES[:3] + CASES[5:6] + CASES[8:9], ids=lambda c: f"{c[0]}-s{c[3]}")
def test_polyphase_gradcheck(case, monkeypatch):
    monkeypatch.setattr(direct, "MIN_USEFUL", 0.0)  # the direct tiles even for the short rows of a small input
    shape, k, kernel, stride, padding, mode = case
    rng = np.random.default_rng(3)
    small = (1, shape[1], *(min(s, max(12, f + 2 * st)) for s, f, st in zip(shape[2:], kernel, stride)))
    inputs = [cl.tensor(rng.standard_normal(s), requires_grad=True) for s in (small, (k, shape[1], *kernel), (k,))]
    assert conv(*inputs, stride=stride, padding=padding, padding_mode=mode)._ctx.polyphase is not None
    assert gradcheck(lambda x, w, b: conv(x, w, b, stride=stride, padding=padding, padding_mode=mode), inputs,
                     max_checks=40)


def test_speech_first_layer_takes_the_phases_and_wide_layers_do_not():
    # 1 channel, F = 80, stride 4 → 4 channels, F' = 20: the direct tiles
    assert algorithm((64, 1, 8000), (32, 1, 80), (4,), ((0, 0),), (1,), 1, False, (1981,)) == "polyphase"
    # 16 channels × 4 phases is past the phases' channel limit: im2col
    assert 16 * 4 > polyphase.MAX_CHANNELS
    assert algorithm((8, 16, 100), (32, 16, 8), (4,), ((0, 0),), (1,), 1, False, (24,)) == "im2col"
    # dilation and groups stay on im2col
    assert polyphase.plan((2, 1, 50), (4, 1, 3), (2,), (2,), 1, (23,)) is None
    assert polyphase.plan((2, 2, 50), (4, 1, 3), (2,), (1,), 2, (24,)) is None


def test_first_layer_skips_the_input_gradient():
    rng = np.random.default_rng(0)
    x = cl.tensor(rng.standard_normal((2, 1, 64)).astype(np.float32))  # no gradient wanted
    w = cl.tensor(rng.standard_normal((4, 1, 8)).astype(np.float32), requires_grad=True)
    y = conv(x, w, stride=4)
    assert isinstance(y._ctx, ConvNd) and y._ctx.polyphase is not None
    y.sum().backward()
    assert x.grad is None and w.grad is not None and w.grad.shape == (4, 1, 8)


def test_split_and_merge_are_inverse():
    rng = np.random.default_rng(1)
    for stride in itertools.product((1, 2, 3), (1, 4)):
        a = rng.standard_normal((2, 3, 6 * stride[0], 2 * stride[1]))
        s = polyphase._split(a, stride)
        assert s.shape == (2, 3 * stride[0] * stride[1], 6, 2)
        # phase (r1, r2) of channel c holds a[:, c, i·s1 + r1, j·s2 + r2]
        r1, r2 = stride[0] - 1, stride[1] - 1
        np.testing.assert_array_equal(s[:, 2 * stride[0] * stride[1] + r1 * stride[1] + r2], a[:, 2, r1::stride[0], r2::stride[1]])
        np.testing.assert_array_equal(polyphase._merge(s, stride, 3), a)
