"""The model zoo against hand-built torch.nn twins: parameter counts, names, shapes and outputs."""

import json
from collections import OrderedDict

import numpy as np
import pytest

import convlens
from convlens import models
from convlens.summary import summary_rows

torch = pytest.importorskip("torch")
tnn = torch.nn


# ---- torch twins, written out layer by layer (not from our specs) -------------------------------------------
def torch_lenet5(c=1, classes=10, act=tnn.ReLU):
    return tnn.Sequential(OrderedDict([
        ("conv1", tnn.Conv2d(c, 6, 5, padding=2)), ("conv1_relu", act()), ("pool1", tnn.AvgPool2d(2)),
        ("conv2", tnn.Conv2d(6, 16, 5)), ("conv2_relu", act()), ("pool2", tnn.AvgPool2d(2)),
        ("conv3", tnn.Conv2d(16, 120, 5)), ("conv3_relu", act()), ("flatten", tnn.Flatten()),
        ("fc1", tnn.Linear(120, 84)), ("fc1_relu", act()), ("fc2", tnn.Linear(84, classes))]))


def torch_convnetjs(c=3, classes=10):
    return tnn.Sequential(OrderedDict([
        ("conv1", tnn.Conv2d(c, 16, 5, padding=2)), ("conv1_relu", tnn.ReLU()), ("pool1", tnn.MaxPool2d(2, 2)),
        ("conv2", tnn.Conv2d(16, 20, 5, padding=2)), ("conv2_relu", tnn.ReLU()), ("pool2", tnn.MaxPool2d(2, 2)),
        ("conv3", tnn.Conv2d(20, 20, 5, padding=2)), ("conv3_relu", tnn.ReLU()), ("pool3", tnn.MaxPool2d(2, 2)),
        ("flatten", tnn.Flatten()), ("fc", tnn.Linear(320, classes))]))


def torch_tiny_vgg(c=3, classes=10, features=10 * 13 * 13):
    return tnn.Sequential(OrderedDict([
        ("conv1_1", tnn.Conv2d(c, 10, 3)), ("conv1_1_relu", tnn.ReLU()),
        ("conv1_2", tnn.Conv2d(10, 10, 3)), ("conv1_2_relu", tnn.ReLU()), ("pool1", tnn.MaxPool2d(2)),
        ("conv2_1", tnn.Conv2d(10, 10, 3)), ("conv2_1_relu", tnn.ReLU()),
        ("conv2_2", tnn.Conv2d(10, 10, 3)), ("conv2_2_relu", tnn.ReLU()), ("pool2", tnn.MaxPool2d(2)),
        ("flatten", tnn.Flatten()), ("fc", tnn.Linear(features, classes))]))


def torch_mlp():
    return tnn.Sequential(OrderedDict([
        ("flatten", tnn.Flatten()), ("fc1", tnn.Linear(784, 256)), ("fc1_relu", tnn.ReLU()),
        ("fc2", tnn.Linear(256, 128)), ("fc2_relu", tnn.ReLU()), ("fc3", tnn.Linear(128, 10))]))


def torch_cifar_bn():
    mods, c = [], 3
    for s, w in enumerate((32, 64, 128), 1):
        for k in (1, 2):
            mods += [(f"conv{s}_{k}", tnn.Conv2d(c, w, 3, padding=1, bias=False)),
                     (f"bn{s}_{k}", tnn.BatchNorm2d(w)), (f"relu{s}_{k}", tnn.ReLU())]
            c = w
        mods.append((f"pool{s}", tnn.MaxPool2d(2)))
    mods += [("gap", tnn.AdaptiveAvgPool2d(1)), ("gap_flatten", tnn.Flatten()), ("dropout", tnn.Dropout(0.3)),
             ("fc", tnn.Linear(128, 10))]
    return tnn.Sequential(OrderedDict(mods))


ZOO = [  # name, torch twin, input shape, parameter count
    ("lenet5", torch_lenet5, (1, 28, 28), 61_706),
    ("convnetjs-cifar10", torch_convnetjs, (3, 32, 32), 22_466),
    ("tiny-vgg", torch_tiny_vgg, (3, 64, 64), 19_920),
    ("mlp", torch_mlp, (1, 28, 28), 235_146),
    ("cifar-bn", torch_cifar_bn, (3, 32, 32), 288_746),
]


def _torch_shapes(model, shape):
    """Each leaf's output shape in a real torch forward pass (batch axis dropped)."""
    out = []
    hooks = [m.register_forward_hook(lambda m, i, o: out.append(tuple(o.shape[1:])))
             for m in model.modules() if not list(m.children())]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(2, *shape))
    for h in hooks:
        h.remove()
    return out


def _copy_weights(src, dst):
    dst.load_state_dict({k: convlens.tensor(v.detach().numpy()) for k, v in src.state_dict().items()})


@pytest.mark.parametrize("name,twin,shape,count", ZOO)
def test_zoo_matches_torch_twin(name, twin, shape, count):
    ours, ref = models.get_model(name), twin()
    assert sum(p.numel() for p in ours.parameters()) == count
    assert sum(p.numel() for p in ref.parameters()) == count
    assert models.default_input_shape(name) == shape
    # same names, so the same state_dict keys and shapes: weights move between the two
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == \
           {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    rows = summary_rows(ours, shape)["rows"]
    assert [r["module"] for r in rows] == [n for n, m in ref.named_modules() if n and not list(m.children())]
    assert [tuple(r["output_shape"]) for r in rows] == _torch_shapes(ref, shape)


@pytest.mark.parametrize("name,twin,shape,count", ZOO)
def test_zoo_forward_matches_torch(name, twin, shape, count):
    torch.manual_seed(0)
    ref = twin().eval()
    ours = models.get_model(name).eval()
    _copy_weights(ref, ours)
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy()
    with convlens.no_grad():
        got = ours(convlens.tensor(x))
    assert got.shape == (2, 10)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-5)


def test_lenet5_course_shapes_and_tanh():
    rows = summary_rows(models.lenet5(), (1, 28, 28))["rows"]
    shapes = [tuple(r["output_shape"]) for r in rows if r["type"] not in ("ReLU", "Flatten")]
    assert shapes == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120, 1, 1), (84,), (10,)]
    tanh = models.lenet5(activation="tanh")
    assert [type(m).__name__ for m in tanh].count("Tanh") == 4
    assert sum(p.numel() for p in tanh.parameters()) == 61_706
    assert [type(m).__name__ for m in tanh] == [type(m).__name__ for m in torch_lenet5(act=tnn.Tanh)]
    with pytest.raises(ValueError, match=r"lenet5\(in_channels=1, num_classes=10\): activation must be"):
        models.lenet5(activation="gelu")


@pytest.mark.parametrize("kwargs,count", [
    (dict(name="lenet5", in_channels=3, num_classes=5), 61_706 + 2 * 150 - 85 * 5),
    (dict(name="convnetjs_cifar10", num_classes=100), 22_466 + 90 * 321),
    (dict(name="tiny_vgg", input_size=32), 5_520),
    (dict(name="mlp", hidden=(100,)), 784 * 100 + 100 + 1010),
    (dict(name="mlp", in_features=20, hidden=(8, 8)), 20 * 8 + 8 + 72 + 90),
    (dict(name="cifar_bn", in_channels=1), 288_746 - 2 * 9 * 32),
])
def test_builder_arguments(kwargs, count):
    model = models.get_model(**kwargs)
    assert sum(p.numel() for p in model.parameters()) == count


def test_tiny_vgg_at_32_matches_torch():
    ours, ref = models.get_model("tiny-vgg", input_shape=(3, 32, 32)), torch_tiny_vgg(features=10 * 5 * 5)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters()) == 5_520
    assert ours.output_shape((3, 32, 32)) == (10,)


def _classifiers() -> list[str]:
    """The zoo's classification models (the dense-prediction ones have their own tests: tests/test_dense*.py)."""
    return [n for n in models.list_models() if getattr(models.get_model(n), "task", "classify") == "classify"]


def test_get_model_input_shape_adapts_every_model():
    for name in _classifiers():
        model = models.get_model(name, input_shape=(1, 32, 32), num_classes=7)
        assert model(convlens.zeros(2, 1, 32, 32)).shape == (2, 7)
    assert models.get_model("mlp", input_shape=(3, 8, 8)).fc1.in_features == 192


def test_zoo_config_rebuilds():
    model = models.get_model("MLP", input_shape=(1, 8, 8), hidden=(16, 8), num_classes=3)
    assert model.zoo_config == {"name": "mlp", "kwargs": {"hidden": [16, 8], "num_classes": 3, "input_shape": [1, 8, 8]}}
    config = json.loads(json.dumps(model.zoo_config))
    again = models.get_model(config["name"], **config["kwargs"])
    assert again.load_state_dict(model.state_dict()) is not None and again.output_shape((1, 8, 8)) == (3,)


def test_registry_names():
    assert models.list_models()[:5] == ["lenet5", "convnetjs-cifar10", "tiny-vgg", "mlp", "cifar-bn"]
    assert {"resnet20", "unet-small", "centernet-small"} <= set(models.list_models())
    assert {"airbench94", "airbench93", "airbench-fmnist"} <= set(models.list_models())
    for alias in ("convnetjs_cifar10", "Tiny_VGG", " cifar-bn "):
        assert isinstance(models.get_model(alias), convlens.nn.Sequential)
    assert models.default_input_shape("tiny_vgg") == (3, 64, 64)
    assert models.describe_model("lenet5").startswith("LeNet-5")
    known = "known models: " + ", ".join(models.list_models())
    for fn in (models.get_model, models.default_recipe, models.default_input_shape):
        with pytest.raises(ValueError, match=f"unknown model 'resnet50'; {known}"):
            fn("resnet50")


@pytest.mark.parametrize("call,message", [
    (lambda: models.get_model("lenet5", input_shape=(1, 28)), r"get_model\('lenet5'\): expected an image input shape"),
    (lambda: models.get_model("lenet5", input_shape=(3, 28, 28), in_channels=1), r"in_channels=1 contradicts"),
    (lambda: models.lenet5(num_classes=0), r"num_classes must be a positive integer, got 0"),
    (lambda: models.tiny_vgg(input_size=8), r"tiny_vgg\(.*\): cannot build for input shape \(3, 8, 8\): "
                                               r"spec layer 4 \(conv\): the 3×3 kernel is larger than the 2×2 input "
                                               r"\(input shape \(10, 2, 2\)\)$"),
    (lambda: models.cifar_bn(input_size=(32,)), r"input_size must be a positive integer or an \(H, W\) pair"),
    (lambda: models.mlp(in_features=100), None),
    (lambda: models.mlp(in_features=100, input_shape=(1, 28, 28)), r"in_features=100 does not match"),
    (lambda: models.mlp(hidden=(64, 0)), r"hidden\[1\] must be a positive integer, got 0"),
])
def test_builder_errors(call, message):
    if message is None:
        call()
        return
    with pytest.raises(ValueError, match=message):
        call()


def test_default_recipes():
    from convlens.data import transforms

    keys = {"dataset", "optimizer", "lr", "momentum", "weight_decay", "schedule", "batch_size", "epochs",
            "augment", "normalize", "label_smoothing", "val_split"}
    for name in models.list_models():
        r = models.default_recipe(name)
        fast = {"nesterov", "decoupled_weight_decay", "bias_lr_scale", "warmup", "lr_start", "lr_end", "lookahead",
                "whiten_bias_epochs", "tta"}  # the airbench entries' extra Recipe fields
        assert set(r) == keys or (name.startswith("airbench") and set(r) == keys | fast)
        assert r["dataset"] in ("mnist-mini", "mnist", "fashion-mnist", "cifar10", "mnist-scenes-mini", "mnist-scenes")
        assert r["optimizer"] in ("sgd", "adadelta", "adam", "adamw", "adagrad", "rmsprop")
        assert r["schedule"] in ("none", "step", "cosine", "onecycle", "linear")
        assert isinstance(r["batch_size"], int) and isinstance(r["epochs"], int) and isinstance(r["normalize"], bool)
        for key in ("lr", "momentum", "weight_decay", "label_smoothing", "val_split"):
            assert isinstance(r[key], float) and r[key] >= 0
        assert r["val_split"] < 1
        if name.startswith("airbench"):  # recipe-level augmentations (convlens.train.parts)
            from convlens.train import Recipe

            assert r["augment"] == "altflip,translate:2" and len(Recipe.for_model(name).augmentation()) == 1
        else:
            assert set(filter(None, r["augment"].split(","))) <= {"flip", "shift"}
        if r["augment"] and not name.startswith("airbench"):
            transforms.from_spec(r["augment"])
        # a model's recipe data fits its default input shape's channel count
        channels = 1 if "mnist" in r["dataset"] else 3
        assert models.default_input_shape(name)[0] == channels
    assert models.default_recipe("lenet5")["dataset"] == "mnist-mini"
    assert models.default_recipe("convnetjs-cifar10")["optimizer"] == "adadelta"
    r = models.default_recipe("cifar-bn")
    assert (r["optimizer"], r["momentum"], r["weight_decay"], r["augment"]) == ("sgd", 0.9, 5e-4, "flip,shift")
    r["lr"] = 123.0  # a fresh dict each time
    assert models.default_recipe("cifar-bn")["lr"] == 0.05
