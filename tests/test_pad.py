"""F.pad: every mode, its gradient, PyTorch parity and bad input."""

import itertools

import numpy as np
import pytest

import convlens as cl
from convlens.nn.functional.padding import pad
from convlens.testing import gradcheck

MODES = ["constant", "replicate", "reflect", "circular"]
CASES = [((2, 3, 5), (1, 2)), ((2, 3, 5, 6), (1, 2, 0, 3)), ((1, 2, 4, 5, 6), (1, 1, 2, 0, 1, 3))]


@pytest.mark.parametrize("mode,case", list(itertools.product(MODES, CASES)))
def test_pad_gradcheck(mode, case):
    shape, widths = case
    x = cl.tensor(np.random.default_rng(0).standard_normal(shape), requires_grad=True)
    assert gradcheck(lambda x: pad(x, widths, mode=mode, value=0.5), [x], max_checks=30)


def test_replicate_backward_adds_border_gradients_to_edge():
    x = cl.tensor(np.zeros((1, 1, 3)), requires_grad=True)
    pad(x, (2, 1), mode="replicate").sum().backward()
    np.testing.assert_array_equal(x.grad._data[0, 0], [3.0, 1.0, 2.0])  # left edge + 2 copies, right edge + 1


@pytest.mark.parametrize("mode,case", list(itertools.product(MODES, CASES)))
def test_pad_matches_torch(mode, case):
    torch = pytest.importorskip("torch")
    shape, widths = case
    x = np.random.default_rng(1).standard_normal(shape)
    tx = torch.tensor(x, requires_grad=True)
    if mode == "constant":
        ty = torch.nn.functional.pad(tx, widths, mode=mode, value=0.5)
    else:
        ty = torch.nn.functional.pad(tx, widths, mode=mode)
    X = cl.tensor(x, requires_grad=True)
    y = pad(X, widths, mode=mode, value=0.5)
    g = np.random.default_rng(2).standard_normal(ty.shape)
    ty.backward(torch.tensor(g))
    y.backward(cl.tensor(g))
    np.testing.assert_allclose(y._data, ty.detach().numpy())
    np.testing.assert_allclose(X.grad._data, tx.grad.numpy())


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: pad(cl.randn(1, 2, 3), (1,)), "even number"),
        (lambda: pad(cl.randn(1, 2, 3), (1, -1)), "non-negative"),
        (lambda: pad(cl.randn(1, 2, 3), (1, 1), mode="edge"), "unknown mode 'edge'"),
        (lambda: pad(cl.randn(1, 2, 3), (3, 0), mode="reflect"), "reflect padding of \\(3, 0\\)"),
        (lambda: pad(cl.randn(1, 2, 3), (4, 0), mode="circular"), "circular padding"),
    ],
)
def test_pad_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
