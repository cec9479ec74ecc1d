"""nn.Sequential runs an eval-mode BatchNorm followed by an exact GELU as one pass while no gradient is
recorded (kernels/gelu.affine_forward via kernels/batchnorm.normalize); everywhere else, two modules."""

import numpy as np
import pytest

import convlens as cl
from convlens import nn


def _net(channels, dims, dtype):
    cl.manual_seed(0)
    rng = np.random.default_rng(7)
    bn = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dims](channels, dtype=dtype)
    bn.running_mean._data[...] = rng.standard_normal(channels)
    bn.running_var._data[...] = rng.uniform(0.3, 2.0, channels)
    bn.weight._data[...] = rng.standard_normal(channels)
    bn.bias._data[...] = rng.standard_normal(channels)
    return nn.Sequential(bn, nn.GELU()).eval()


def _spy(monkeypatch):
    calls = []
    real_bn, real_gelu = nn.BatchNorm2d.forward, nn.GELU.forward
    for cls in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d):
        monkeypatch.setattr(cls, "forward", lambda self, x, activation=None, _real=real_bn:
                            calls.append(("bn", activation)) or _real(self, x, activation=activation))
    monkeypatch.setattr(nn.GELU, "forward", lambda self, x: calls.append(("gelu", None)) or real_gelu(self, x))
    return calls


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,channels_last", [
    ((1, 64, 15, 15), False),   # one image: its channels split over the threads
    ((3, 8, 5, 7), False),
    ((4, 5, 6, 3), True),       # channels-last memory (a convolution's output)
    ((2, 6), False), ((2, 4, 9), False), ((2, 3, 4, 5, 6), False),
])
def test_fused_equals_batch_norm_then_gelu(dtype, shape, channels_last, monkeypatch):
    torch = pytest.importorskip("torch")
    dims = max(len(shape) - 2, 1)
    net = _net(shape[1] if not channels_last else shape[-1], dims, dtype)
    data = np.random.default_rng(1).standard_normal(shape).astype(dtype) * 3
    x = cl.tensor(data).permute(0, 3, 1, 2) if channels_last else cl.tensor(data)
    calls = _spy(monkeypatch)
    with cl.no_grad():
        fused = net(x)
    assert calls == [("bn", "gelu")], calls
    assert fused.shape == x.shape and fused.dtype == x.dtype
    calls.clear()
    with cl.no_grad():
        apart = net[1](net[0](x))
    assert calls == [("bn", None), ("gelu", None)]
    tol = 1e-12 if dtype == np.float64 else 3e-6
    np.testing.assert_allclose(fused.numpy(), apart.numpy(), rtol=tol, atol=tol)
    bn = net[0]
    t = torch.nn.functional.gelu(torch.nn.functional.batch_norm(
        torch.from_numpy(np.ascontiguousarray(x.numpy())), torch.from_numpy(bn.running_mean.numpy()),
        torch.from_numpy(bn.running_var.numpy()), torch.from_numpy(bn.weight.detach().numpy()),
        torch.from_numpy(bn.bias.detach().numpy()), False))
    np.testing.assert_allclose(fused.numpy(), t.numpy(), rtol=tol * 10, atol=tol * 10)


@pytest.mark.parametrize("case", ["grad", "train", "tanh", "hook"])
def test_no_fusion_where_it_would_change_something(case, monkeypatch):
    """Recording a graph, training mode (batch statistics), the tanh GELU, or a hook on either module:
    the two modules run one after the other."""
    net = _net(4, 2, np.float32)
    if case == "train":
        net.train()
    if case == "tanh":
        net[1] = nn.GELU(approximate="tanh")
    if case == "hook":
        net[1].register_forward_hook(lambda m, i, o: None)
    x = cl.randn(2, 4, 3, 3)
    calls = _spy(monkeypatch)
    if case == "grad":
        x.requires_grad_(True)
        net(x).sum().backward()
        assert x.grad is not None
    else:
        with cl.no_grad():
            net(x)
    assert calls == [("bn", None), ("gelu", None)], calls


def test_gelu_activation_is_refused_outside_inference():
    x = cl.randn(2, 3, 4)
    mean, var = cl.zeros(3), cl.ones(3)
    with pytest.raises(ValueError, match="activation='gelu' is for inference"):
        nn.functional.batch_norm(x, mean, var, activation="gelu")  # a gradient is being recorded
    with cl.no_grad(), pytest.raises(ValueError, match="activation='gelu' is for inference"):
        nn.functional.batch_norm(x, mean, var, training=True, activation="gelu")
    with cl.no_grad(), pytest.raises(ValueError, match="activation='gelu' is for inference"):
        nn.functional.batch_norm(x, mean, var, activation="relu")
