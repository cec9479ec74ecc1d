"""convlens.features.extract: any layer's output or input, batched, flattened, optionally L2-normalised;
zoo, spec and checkpoint models; torch's features from the same weights."""

from __future__ import annotations

import numpy as np
import pytest

from convlens import features, models
from convlens.autograd import no_grad
from convlens.data import transforms as T
from convlens.features import FeatureError, extract
from convlens.tensor import Tensor
from convlens.web.state import default_checkpoint

SHIPPED = str(default_checkpoint())


def _images(n=7, shape=(1, 28, 28), seed=0):
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def _upto(model, name: str, x: np.ndarray) -> np.ndarray:
    """The output of child ``name`` by running the Sequential's children by hand (no hooks)."""
    out = Tensor._wrap(x)
    with no_grad():
        for child_name, child in model.named_children():
            out = child(out)
            if child_name == name:
                return out._data.reshape(x.shape[0], -1)
    raise AssertionError(name)


def test_default_layer_is_the_input_of_the_last_linear():
    net = models.get_model("lenet5")
    assert features.last_linear_input(net) == "fc2:input"
    x = _images()
    f = extract(net, x, progress=False)
    assert f.shape == (7, 84) and f.dtype == np.float32
    np.testing.assert_allclose(f, _upto(net, "fc1_relu", x), rtol=1e-6, atol=1e-6)
    assert (f >= 0).all()  # after the ReLU, not fc1's own output
    assert (extract(net, x, layer="fc1", progress=False) < 0).any()


@pytest.mark.parametrize("layer", ["conv1", "pool1", "pool2", "conv3_relu", "flatten", "fc1", "fc2"])
def test_every_named_output_matches_a_manual_forward(layer):
    net = models.get_model("lenet5")
    x = _images(5, seed=1)
    np.testing.assert_allclose(extract(net, x, layer=layer, progress=False), _upto(net, layer, x), rtol=1e-6, atol=1e-6)


def test_input_layer_is_the_transformed_pixels_and_uint8_is_scaled():
    net = models.get_model("lenet5")
    x = np.random.default_rng(2).integers(0, 256, (4, 1, 28, 28), dtype=np.uint8)
    f = extract(net, x, layer="input", transform=T.Normalize([0.5], [0.25]), progress=False)
    np.testing.assert_allclose(f, ((x / 255.0 - 0.5) / 0.25).reshape(4, -1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(extract(net, x, layer="pool2", progress=False),
                               extract(net, x.astype(np.float32) / 255, layer="pool2", progress=False), atol=1e-6)


def test_batches_normalisation_and_several_layers():
    net = models.get_model("convnetjs-cifar10")
    x = _images(9, (3, 32, 32), seed=3)
    whole = extract(net, x, layer="pool2", progress=False)
    np.testing.assert_allclose(extract(net, x, layer="pool2", batch_size=4, progress=False), whole, rtol=1e-6, atol=1e-6)
    assert whole.shape == (9, 20 * 8 * 8)
    unit = extract(net, x, layer="pool3", normalize=True, progress=False)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)
    both = extract(net, x, layer=["pool2", "fc:input", "input"], progress=False)
    assert list(both) == ["pool2", "fc:input", "input"]
    np.testing.assert_allclose(both["pool2"], whole, rtol=1e-6, atol=1e-6)
    assert both["fc:input"].shape == (9, 320) and both["input"].shape == (9, 3072)
    np.testing.assert_allclose(unit, features.l2_normalize(both["fc:input"]), rtol=1e-5, atol=1e-6)


def test_stops_after_the_layer_and_restores_the_mode():
    net = models.get_model("lenet5")
    calls = []
    handle = net.fc2.register_forward_hook(lambda m, i, o: calls.append(1))
    net.train()
    extract(net, _images(3), layer="pool2", progress=False)
    assert calls == [] and net.training  # fc2 never ran; training mode back
    extract(net, _images(3), layer="fc2", progress=False)
    assert calls == [1]
    handle.remove()
    assert not net._forward_hooks and not net.pool2._forward_hooks and not net.fc2._forward_pre_hooks


def test_eval_mode_inside_batchnorm_and_dropout():
    net = models.get_model("cifar-bn")
    x = _images(4, (3, 32, 32), seed=4)
    a = extract(net, x, progress=False)
    b = extract(net, x, progress=False)
    np.testing.assert_array_equal(a, b)  # dropout off, running statistics used
    assert a.shape == (4, 128)


def test_checkpoint_path_applies_its_normalisation():
    from convlens.checkpoint import load_checkpoint

    net, info = load_checkpoint(SHIPPED)
    x = _images(6, seed=5)
    by_path = extract(SHIPPED, x, progress=False)
    by_module = extract(net, x, transform=T.Normalize(info["mean"], info["std"]), progress=False)
    np.testing.assert_allclose(by_path, by_module, rtol=1e-6, atol=1e-6)
    assert not np.allclose(by_path, extract(net, x, progress=False))


def test_spec_model_and_data_set_input():
    from convlens.data import mnist_mini

    spec = {"layers": [{"type": "conv", "name": "c", "filters": 3, "size": 3, "activation": "relu"},
                       {"type": "pool", "name": "p", "size": 2}, {"type": "fc", "name": "head", "units": 4}]}
    net = models.from_spec(spec, input_shape=(1, 28, 28))
    assert features.last_linear_input(net) == "head:input"
    ds = mnist_mini(train=False)[:20]
    f = extract(net, ds, progress=False)
    assert f.shape == (20, 3 * 13 * 13)
    np.testing.assert_allclose(f, extract(net, ds.images, progress=False))
    assert "head:input" in features.feature_layers(net)


def test_fingerprint_follows_the_weights():
    a, b = models.get_model("lenet5"), models.get_model("lenet5")
    b.load_state_dict(a.state_dict())
    assert features.model_fingerprint(a) == features.model_fingerprint(b)
    b.fc2.bias._data[0] += 1.0
    assert features.model_fingerprint(a) != features.model_fingerprint(b)


def test_bad_layer_and_bad_images_are_one_line_errors():
    net = models.get_model("lenet5")
    with pytest.raises(FeatureError, match=r"layer 'fc9' is not in the model.*conv1, conv1_relu") as e:
        extract(net, _images(2), layer="fc9")
    assert "\n" not in str(e.value)
    with pytest.raises(FeatureError, match="layer 'fc1:weights'"):
        extract(net, _images(2), layer="fc1:weights")
    with pytest.raises(FeatureError, match=r"images of shape \(3, 32, 32\) do not fit the model: Conv2d"):
        extract(net, _images(2, (3, 32, 32)))
    with pytest.raises(FeatureError, match="images must be a .*got list of <U"):
        extract(net, ["a.png", "b.png"])
    with pytest.raises(FeatureError, match="batch_size must be a positive integer"):
        extract(net, _images(2), batch_size=0)
    with pytest.raises(FeatureError, match="model must be a convlens Module"):
        extract(object(), _images(2))


def test_same_features_as_torch_from_the_same_weights():
    torch = pytest.importorskip("torch")
    net = models.get_model("lenet5")
    tnet = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
        torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
        torch.nn.Conv2d(16, 120, 5), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(120, 84), torch.nn.ReLU(), torch.nn.Linear(84, 10))
    ours = [v._data for v in net.state_dict().values()]
    with torch.no_grad():
        for p, v in zip(tnet.state_dict().values(), ours):
            p.copy_(torch.from_numpy(v))
    x = _images(5, seed=6)
    got = {}
    # torch hooks that return a value replace the input/output: these return None
    tnet[11].register_forward_pre_hook(lambda m, inp: got.update({"fc2:input": inp[0].numpy().copy()}))
    tnet[5].register_forward_hook(lambda m, inp, out: got.update({"pool2": out.flatten(1).numpy().copy()}))
    with torch.no_grad():
        tnet(torch.from_numpy(x))
    mine = extract(net, x, layer=["fc2:input", "pool2"], progress=False)
    assert sorted(got) == ["fc2:input", "pool2"]
    for k in got:
        np.testing.assert_allclose(mine[k], got[k], rtol=1e-4, atol=1e-5)
