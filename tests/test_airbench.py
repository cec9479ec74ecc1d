"""airbench-style nets: shapes, the patch whitening, and forward/backward against a torch twin."""

from __future__ import annotations

import numpy as np
import pytest

import convlens
from convlens import nn
from convlens.models import get_model
from convlens.models.airbench import (
    Mul,
    PatchWhitening,
    airbench,
    airbench93,
    airbench94,
    patch_moments,
    prepare_model,
)

torch = pytest.importorskip("torch")


def test_airbench94_size_and_shapes():
    m = airbench94()
    assert sum(p.numel() for p in m.parameters()) == 1_972_792
    frozen = [n for n, p in m.named_parameters() if not p.requires_grad]
    assert frozen == ["whiten.weight"] + [f"bn{b}_{k}.weight" for b in (1, 2, 3) for k in (1, 2)]
    assert m(convlens.randn(2, 3, 32, 32)).shape == (2, 10)
    assert sum(p.numel() for p in airbench93().parameters()) == 569_656
    assert get_model("airbench94", input_shape=(3, 32, 32), num_classes=7)(convlens.randn(1, 3, 32, 32)).shape == (1, 7)


def test_airbench_rejects_bad_arguments():
    with pytest.raises(ValueError, match="widths\\[1\\] must be a positive integer"):
        airbench((8, 0))
    with pytest.raises(ValueError, match="input_size must be at least 9×9"):
        airbench((8, 8, 8), input_size=8)
    with pytest.raises(ValueError, match="expected images of shape \\(N, 3, H, W\\)"):
        PatchWhitening(3).fit(np.zeros((2, 1, 8, 8)))


def test_whitening_decorrelates_patches():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((40, 3, 12, 12))
    images = (base + np.roll(base, 1, axis=-1) + 0.5 * base[:, :1]).astype(np.float32)  # correlated pixels
    layer = PatchWhitening(3, 2, eps=0.0).fit(images)
    vals = layer.eigenvalues._data
    assert np.all(np.diff(vals) <= 0) and vals[-1] > 0
    with convlens.no_grad():
        out = layer(convlens.tensor(images))._data.astype(np.float64)
    half = out[:, :12].transpose(0, 2, 3, 1).reshape(-1, 12)  # the first 12 channels: v_i·p/sqrt(λ_i)
    np.testing.assert_allclose(half.T @ half / len(half), np.eye(12), atol=2e-3)
    np.testing.assert_allclose(out[:, 12:], -out[:, :12], atol=1e-6)
    # second moments from the chunked accumulation = all patches at once
    torch_patches = torch.nn.functional.unfold(torch.tensor(images, dtype=torch.float64), 2)  # (N, 12, L)
    p = torch_patches.transpose(1, 2).reshape(-1, 12).numpy()
    np.testing.assert_allclose(patch_moments(images, 2, chunk=7), p.T @ p / len(p), rtol=1e-10)


class _TorchMul(torch.nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return x * self.scale


def _torch_twin(model):
    """The same net in torch, with the same weights and buffers (a flat nn.Sequential)."""
    tn = torch.nn
    mods = []
    for name, m in model.named_children():
        cls = type(m).__name__
        if isinstance(m, nn.Conv2d):
            t = tn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, padding=m.padding, bias=m.bias is not None)
        elif cls == "BatchNorm2d":
            t = tn.BatchNorm2d(m.num_features, eps=m.eps, momentum=m.momentum)
        elif cls == "GELU":
            t = tn.GELU()
        elif cls == "MaxPool2d":
            t = tn.MaxPool2d(2)
        elif cls == "AdaptiveMaxPool2d":
            t = tn.AdaptiveMaxPool2d(1)
        elif cls == "Flatten":
            t = tn.Flatten()
        elif cls == "Linear":
            t = tn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
        elif isinstance(m, Mul):
            t = _TorchMul(m.scale)
        else:  # pragma: no cover - a layer this test does not know
            raise AssertionError(f"no torch twin for {name} ({cls})")
        mods.append((name, t))
    from collections import OrderedDict

    net = tn.Sequential(OrderedDict(mods)).double()
    own = net.state_dict()
    twin = {k: (v if k.endswith("num_batches_tracked") else torch.tensor(np.asarray(model.state_dict()[k], dtype=np.float64)))
            for k, v in own.items()}
    net.load_state_dict(twin)
    return net


@pytest.mark.parametrize("widths,size", [((8, 16, 16), 32), ((4, 8), 20)])
def test_forward_backward_match_torch(widths, size):
    convlens.manual_seed(0)
    model = airbench(widths, input_size=size).double()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 3, size, size))
    y = rng.integers(0, 10, 6)
    prepare_model(model, x)
    net = _torch_twin(model)
    model.train()
    net.train()
    out = model(convlens.tensor(x))
    loss = nn.functional.cross_entropy(out, convlens.tensor(y), label_smoothing=0.2)
    loss.backward()
    tx = torch.tensor(x)
    tout = net(tx)
    tloss = torch.nn.functional.cross_entropy(tout, torch.tensor(y), label_smoothing=0.2)
    tloss.backward()
    np.testing.assert_allclose(out._data, tout.detach().numpy(), rtol=1e-7, atol=1e-9)
    assert abs(float(loss._data) - tloss.item()) < 1e-10
    tparams = dict(net.named_parameters())
    for name, p in model.named_parameters():
        tp = tparams[name]
        if not p.requires_grad:
            assert p.grad is None
            continue
        np.testing.assert_allclose(p.grad._data, tp.grad.numpy(), rtol=1e-6, atol=1e-9, err_msg=name)
    # running statistics follow torch's momentum (0.4)
    for name, buf in model.named_buffers():
        if name.endswith("running_mean"):
            np.testing.assert_allclose(buf._data, net.state_dict()[name].numpy(), rtol=1e-7, atol=1e-12)


def test_whitening_travels_in_the_state_dict():
    a, b = airbench((4, 4, 4)), airbench((4, 4, 4))
    prepare_model(a, np.random.default_rng(0).standard_normal((5, 3, 16, 16)).astype(np.float32))
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(b.whiten.weight._data, a.whiten.weight._data)
    np.testing.assert_array_equal(b.whiten.eigenvectors._data, a.whiten.eigenvectors._data)
    assert not np.array_equal(a.whiten.weight._data, airbench((4, 4, 4)).whiten.weight._data)


@pytest.mark.parametrize("name", ["airbench94", "airbench93"])
def test_spec_files_build_the_zoo_nets(name):
    from pathlib import Path

    from convlens.models import from_spec, load_spec, to_spec

    path = Path(__file__).resolve().parent.parent / "examples" / "specs" / f"{name}.json"
    zoo = get_model(name)
    built = from_spec(path)
    assert [(n, type(m).__name__) for n, m in built.named_children()] == \
        [(n, type(m).__name__) for n, m in zoo.named_children()]
    assert {n: p.shape for n, p in built.named_parameters()} == {n: p.shape for n, p in zoo.named_parameters()}
    assert [n for n, p in built.named_parameters() if not p.requires_grad] == \
        [n for n, p in zoo.named_parameters() if not p.requires_grad]
    spec = load_spec(path)
    assert to_spec(zoo, (3, 32, 32))["layers"] == spec["layers"]


def test_spec_whiten_and_scale_errors():
    from convlens.models import SpecError, from_spec

    with pytest.raises(SpecError, match="spec layer 1 \\(whiten\\): the 5×5 patches are larger than the 4×4 input"):
        from_spec({"input_shape": [3, 4, 4], "layers": [{"type": "whiten", "size": 5}]})
    with pytest.raises(SpecError, match="spec layer 2 \\(scale\\): missing required key 'factor'"):
        from_spec({"input_shape": [3, 8, 8], "layers": [{"type": "whiten"}, {"type": "scale"}]})
    with pytest.raises(SpecError, match="'learn_scale' must be true or false"):
        from_spec({"input_shape": [3, 8, 8], "layers": [{"type": "batchnorm", "learn_scale": 1}]})


def test_the_shipped_cifar10_checkpoint_loads():
    import importlib.resources

    from convlens.checkpoint import load_checkpoint

    folder = importlib.resources.files("convlens").joinpath("assets", "convnetjs-cifar10")
    st = folder.joinpath("best.safetensors")
    assert st.stat().st_size + folder.joinpath("best.json").stat().st_size <= 10 * 2**20
    model, info = load_checkpoint(str(st))
    assert info["classes"][0] == "airplane" and len(info["mean"]) == 3 and info["test_accuracy"] > 0.7
    assert "JPEG copy" in info["test_set"]
    assert model(convlens.randn(2, 3, 32, 32)).shape == (2, 10)
