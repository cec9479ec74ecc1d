"""The model zoo: the course's classic CNNs, a fully-connected baseline and a modern CIFAR-10 net.

Every model is a flat `nn.Sequential` built from a spec (`convlens.models.spec`), so every layer is a
direct child with a descriptive name ("conv1", "conv1_relu", "pool1", ...) that hooks, summaries and the
visualisations can refer to, and `to_spec` writes each one back as a spec file.

Each model also carries a default training recipe (`default_recipe`) and input shape
(`default_input_shape`); `get_model(name, input_shape=...)` adapts a model to a data set's image shape.
"""

from __future__ import annotations

import math

from convlens.models.airbench import airbench, airbench93, airbench94
from convlens.models.spec import from_spec

__all__ = ["lenet5", "convnetjs_cifar10", "tiny_vgg", "mlp", "cifar_bn", "get_model", "list_models",
           "default_input_shape", "default_recipe", "describe_model"]


def _size(input_size, where: str) -> tuple[int, int]:
    """An image size given as an int or an (H, W) pair."""
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size):
        raise ValueError(f"{where}: input_size must be a positive integer or an (H, W) pair, got {input_size!r}")
    return size


def _check(where: str, **values) -> None:
    for key, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{where}: {key} must be a positive integer, got {v!r}")


def _build(where: str, layers: list, input_shape: tuple):
    try:
        return from_spec({"layers": layers}, input_shape)
    except ValueError as e:  # e.g. an image too small for the pooling stages
        raise ValueError(f"{where}: cannot build for input shape {input_shape}: {e}") from None


def lenet5(in_channels: int = 1, num_classes: int = 10, activation: str = "relu", input_size=28):
    """LeNet-5 as the course draws it; 61,706 parameters for 1×28×28 input and 10 classes.

    CONV 6@5×5 pad 2 → avg POOL 2 → CONV 16@5×5 → avg POOL 2 → CONV 120@5×5 → Linear 120→84 → Linear 84→10,
    with `activation` ("relu", or "tanh" as in the 1998 paper) after each conv and the hidden FC.

    Shape:
        (N, C, 28, 28) → 6×28×28 → 6×14×14 → 16×10×10 → 16×5×5 → 120×1×1 → 120 → 84 → (N, num_classes).
        Other input sizes work; conv3 then gives 120×k×k and fc1 takes 120·k² inputs.
    """
    where = f"lenet5(in_channels={in_channels}, num_classes={num_classes})"
    _check(where, in_channels=in_channels, num_classes=num_classes)
    if activation not in ("relu", "tanh", "sigmoid"):
        raise ValueError(f"{where}: activation must be 'relu', 'tanh' or 'sigmoid', got {activation!r}")
    layers = [
        {"type": "conv", "name": "conv1", "filters": 6, "size": 5, "pad": 2, "activation": activation},
        {"type": "pool", "name": "pool1", "kind": "avg", "size": 2},
        {"type": "conv", "name": "conv2", "filters": 16, "size": 5, "activation": activation},
        {"type": "pool", "name": "pool2", "kind": "avg", "size": 2},
        {"type": "conv", "name": "conv3", "filters": 120, "size": 5, "activation": activation},
        {"type": "flatten", "name": "flatten"},
        {"type": "fc", "name": "fc1", "units": 84, "activation": activation},
        {"type": "fc", "name": "fc2", "units": num_classes},
    ]
    return _build(where, layers, (in_channels, *_size(input_size, where)))


def convnetjs_cifar10(in_channels: int = 3, num_classes: int = 10, input_size=32):
    """The ConvNetJS CIFAR-10 demo's network; 22,466 parameters for 3×32×32 input and 10 classes.

    Three (conv 5×5 pad 2 + ReLU, max pool 2/2) stages with 16, 20 and 20 filters, then one fully connected
    layer: 32×32 → 16×16 → 8×8 → 4×4, so the classifier sees 20·4·4 = 320 features.
    """
    where = f"convnetjs_cifar10(in_channels={in_channels}, num_classes={num_classes})"
    _check(where, in_channels=in_channels, num_classes=num_classes)
    layers = []
    for k, filters in enumerate((16, 20, 20), 1):
        layers += [{"type": "conv", "name": f"conv{k}", "filters": filters, "size": 5, "pad": 2, "activation": "relu"},
                   {"type": "pool", "name": f"pool{k}", "size": 2}]
    layers += [{"type": "flatten", "name": "flatten"}, {"type": "fc", "name": "fc", "units": num_classes}]
    return _build(where, layers, (in_channels, *_size(input_size, where)))


def tiny_vgg(in_channels: int = 3, num_classes: int = 10, input_size=64):
    """CNN Explainer's Tiny VGG; 19,920 parameters for 3×64×64 input and 10 classes (5,520 at 32×32).

    Two blocks of (3×3 conv 10 + ReLU, 3×3 conv 10 + ReLU, max pool 2) with valid (no) padding, then a
    dense layer: 64 → 62 → 60 → 30 → 28 → 26 → 13, so the classifier sees 10·13·13 = 1,690 features.
    """
    where = f"tiny_vgg(in_channels={in_channels}, num_classes={num_classes})"
    _check(where, in_channels=in_channels, num_classes=num_classes)
    layers = []
    for b in (1, 2):
        layers += [{"type": "conv", "name": f"conv{b}_1", "filters": 10, "size": 3, "activation": "relu"},
                   {"type": "conv", "name": f"conv{b}_2", "filters": 10, "size": 3, "activation": "relu"},
                   {"type": "pool", "name": f"pool{b}", "size": 2}]
    layers += [{"type": "flatten", "name": "flatten"}, {"type": "fc", "name": "fc", "units": num_classes}]
    return _build(where, layers, (in_channels, *_size(input_size, where)))


def mlp(in_features: int | None = None, hidden=(256, 128), num_classes: int = 10, input_shape=None):
    """A fully-connected baseline: Flatten → Linear → ReLU → … → Linear.

    With the defaults (784 = 1×28×28 inputs, hidden layers of 256 and 128) it has 235,146 parameters,
    almost four times LeNet-5's 61,706, and still does worse on images: it sees no locality and shares
    no weights. `input_shape` defaults to (1, 28, 28), or to (in_features,) when only that is given.
    """
    where = f"mlp(in_features={in_features}, hidden={tuple(hidden)})"
    if input_shape is None:
        input_shape = (1, 28, 28) if in_features is None else (in_features,)
    input_shape = tuple(input_shape)
    _check(where, num_classes=num_classes, **{f"input_shape[{i}]": v for i, v in enumerate(input_shape)})
    if in_features is not None and in_features != math.prod(input_shape):
        raise ValueError(f"{where}: in_features={in_features} does not match input_shape={input_shape} "
                         f"({math.prod(input_shape)} values)")
    _check(where, **{f"hidden[{i}]": h for i, h in enumerate(hidden)})
    layers = [{"type": "flatten", "name": "flatten"}]
    layers += [{"type": "fc", "name": f"fc{k}", "units": h, "activation": "relu"} for k, h in enumerate(hidden, 1)]
    layers.append({"type": "fc", "name": f"fc{len(hidden) + 1}", "units": num_classes})
    return _build(where, layers, input_shape)


def cifar_bn(in_channels: int = 3, num_classes: int = 10, input_size=32, dropout: float = 0.3):
    """A small modern CIFAR-10 network with batch norm; 288,746 parameters for 3 channels, 10 classes.

    Three VGG-style stages of (3×3 conv + BatchNorm + ReLU) × 2 with 32, 64 and 128 channels, each
    followed by a 2×2 max pool (32 → 16 → 8 → 4), then global average pooling, dropout and a linear
    classifier. The convs have no bias: the BatchNorm after each one adds its own shift. Any input of
    at least 8×8 works, since global pooling makes the classifier independent of the image size.
    """
    where = f"cifar_bn(in_channels={in_channels}, num_classes={num_classes})"
    _check(where, in_channels=in_channels, num_classes=num_classes)
    layers = []
    for s, width in enumerate((32, 64, 128), 1):
        for k in (1, 2):
            layers += [{"type": "conv", "name": f"conv{s}_{k}", "filters": width, "size": 3, "pad": 1, "bias": False},
                       {"type": "batchnorm", "name": f"bn{s}_{k}"},
                       {"type": "relu", "name": f"relu{s}_{k}"}]
        layers.append({"type": "pool", "name": f"pool{s}", "size": 2})
    layers += [{"type": "global_pool", "name": "gap"},
               {"type": "dropout", "name": "dropout", "p": dropout},
               {"type": "fc", "name": "fc", "units": num_classes}]
    return _build(where, layers, (in_channels, *_size(input_size, where)))


# ---- the registry -----------------------------------------------------------------------------------------
def _image_kwargs(shape: tuple) -> dict:
    if len(shape) != 3:
        raise ValueError(f"expected an image input shape (C, H, W), got {shape}")
    return {"in_channels": shape[0], "input_size": tuple(shape[1:])}


def _recipe(dataset, optimizer, lr, *, momentum=0.0, weight_decay=0.0, schedule="none", batch_size=64,
            epochs=10, augment="", normalize=True, label_smoothing=0.0, val_split=0.1, **fast) -> dict:
    return {**fast, "dataset": dataset, "optimizer": optimizer, "lr": lr, "momentum": momentum,
            "weight_decay": weight_decay, "schedule": schedule, "batch_size": batch_size, "epochs": epochs,
            "augment": augment, "normalize": normalize, "label_smoothing": label_smoothing, "val_split": val_split}


# name → (builder, default input shape, input shape → builder kwargs, default recipe).
# Recipes (the lead tunes the numbers): datasets are `convlens.data.load` names; `momentum` is SGD's and
# RMSprop's (ignored by Adam, AdamW, Adadelta and Adagrad); `augment` is a `convlens.data.transforms` spec.
_MODELS = {
    # Adam + one-cycle with small random shifts: ≥ 99.0% on full MNIST within 8 epochs. The default data set
    # is the embedded MNIST subset, so `convlens train` runs with no download.
    "lenet5": (lenet5, (1, 28, 28), _image_kwargs,
               _recipe("mnist-mini", "adam", 2e-3, schedule="onecycle", batch_size=64, epochs=8, augment="shift")),
    # ConvNetJS trained this net with Adadelta (lr 1, ρ 0.95, ε 1e-8), L2 decay 1e-4, batch 4 and random
    # flips and 2-pixel shifts; batches of 32 keep NumPy busy on a CPU, and torch's ρ 0.9, ε 1e-6 learned
    # faster here (a sweep of 8 recipes, docs/performance.md). At a constant lr it stalls near 62%
    # (measured); a cosine decay of Adadelta's lr lets it settle. The net underfits, so every image
    # trains (no validation split; the test set is still used once, at the end) for as many epochs as
    # fit an hour on 2 cores (README results, CIFAR-10 JPEG copy).
    "convnetjs-cifar10": (convnetjs_cifar10, (3, 32, 32), _image_kwargs,
                          _recipe("cifar10", "adadelta", 1.0, weight_decay=1e-4, schedule="cosine", batch_size=32,
                                  epochs=125, augment="flip,shift", val_split=0.0)),
    # CNN Explainer's 64×64 Tiny ImageNet subset is not available: on CIFAR-10 the model is built for 32×32.
    "tiny-vgg": (tiny_vgg, (3, 64, 64), _image_kwargs,
                 _recipe("cifar10", "adadelta", 1.0, weight_decay=1e-4, batch_size=32, epochs=15,
                         augment="flip,shift")),
    # The FC-vs-CNN comparison: LeNet-5's recipe unchanged.
    "mlp": (mlp, (1, 28, 28), lambda shape: {"input_shape": tuple(shape)},
            _recipe("mnist-mini", "adam", 2e-3, schedule="onecycle", batch_size=64, epochs=8, augment="shift")),
    # SGD with momentum and one-cycle, weight decay and flips + shifts: the standard CIFAR-10 recipe.
    "cifar-bn": (cifar_bn, (3, 32, 32), _image_kwargs,
                 _recipe("cifar10", "sgd", 0.05, momentum=0.9, weight_decay=5e-4, schedule="onecycle",
                         batch_size=128, epochs=30, augment="flip,shift")),
}

# ---- dense prediction (convlens.models.dense): fully convolutional, for mnist-scenes -------------------------
from convlens.models import dense as _dense  # noqa: E402  (the registry above stays the module's first part)


def _dense_kwargs(shape: tuple) -> dict:
    if len(shape) != 3:
        raise ValueError(f"expected an image input shape (C, H, W), got {shape}")
    return {"in_channels": shape[0]}  # any H, W: the nets are fully convolutional


# Adam + one-cycle on the embedded scenes (4,000 training scenes of mnist-mini's digits), no augmentation
# (flips would change digits); the metric of the validation split picks the best epoch.
_MODELS["unet-small"] = (_dense.unet_small, (1, 64, 64), _dense_kwargs,
                         _recipe("mnist-scenes-mini", "adam", 3e-3, schedule="onecycle", batch_size=16, epochs=10,
                                 normalize=False, val_split=0.1))
_MODELS["centernet-small"] = (_dense.centernet_small, (1, 64, 64), _dense_kwargs,
                              _recipe("mnist-scenes-mini", "adam", 3e-3, schedule="onecycle", batch_size=32,
                                      epochs=6, normalize=False, val_split=0.1))


# ---- airbench-style nets (convlens/models/airbench.py; docs/recipes.md) ----------------------------------
def airbench_fmnist(in_channels: int = 1, num_classes: int = 10, input_size=28):
    """An airbench-style net for 28×28 Fashion-MNIST: whitening + 3 batch-norm blocks of 32, 64, 64."""
    return airbench((32, 64, 64), in_channels, num_classes, input_size)


# airbench94's published hyper-parameters, converted to a mean (not summed) batch loss: lr 11.5 per 1024
# images with its "kilostep" scale 1024·(1 + 1/(1 − 0.85)) → torch SGD lr 1.5 at batch 1024; weight decay
# 0.0153·1024/7850.7 = 2.0e-3 shrink per step (decoupled: each group gets 2.0e-3 / its lr); batch-norm biases
# at 64× the lr; warm-up from 0.2× over 23 % of the steps, then down to 0.07×; label smoothing 0.2; Lookahead
# every 5 steps; the whitening bias trained for 3 epochs; alternating flips and ±2-pixel reflect shifts;
# TTA level 2. 10 epochs (airbench94 stops at 9.9). All 50,000 training images train (no validation split).
_AIRBENCH = dict(momentum=0.85, nesterov=True, weight_decay=0.0153 * 1024 / (1024 * (1 + 1 / 0.15)),
                 decoupled_weight_decay=True, bias_lr_scale=64.0, schedule="linear", warmup=0.23, lr_start=0.2,
                 lr_end=0.07, label_smoothing=0.2, lookahead=5, whiten_bias_epochs=3, tta=2,
                 augment="altflip,translate:2", val_split=0.0)
_MODELS.update({
    "airbench94": (airbench94, (3, 32, 32), _image_kwargs,
                   _recipe("cifar10", "sgd", 1.5, batch_size=1024, epochs=10, **_AIRBENCH)),
    "airbench93": (airbench93, (3, 32, 32), _image_kwargs,
                   _recipe("cifar10", "sgd", 1.5, batch_size=1024, epochs=10, **_AIRBENCH)),
    # the same recipe at batch 256 (more steps for a small data set), 10 epochs
    "airbench-fmnist": (airbench_fmnist, (1, 28, 28), _image_kwargs,
                        _recipe("fashion-mnist", "sgd", 1.5 / 4, batch_size=256, epochs=10,
                                **{**_AIRBENCH, "weight_decay": _AIRBENCH["weight_decay"] / 4})),
})


def _entry(name: str, where: str):
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else None
    if key not in _MODELS:
        raise ValueError(f"{where}: unknown model {name!r}; known models: {', '.join(_MODELS)}")
    return key, _MODELS[key]


def list_models() -> list[str]:
    """The zoo's model names, as written on the command line."""
    return list(_MODELS)


def describe_model(name: str) -> str:
    """The first line of a model's docstring."""
    _, (builder, *_) = _entry(name, "describe_model")
    return builder.__doc__.strip().splitlines()[0]


def default_input_shape(name: str) -> tuple[int, ...]:
    """The input shape (C, H, W) a zoo model is built for by default."""
    return _entry(name, "default_input_shape")[1][1]


def default_recipe(name: str) -> dict:
    """A model's default training recipe (a fresh dict): dataset, optimizer, lr, momentum, weight_decay,
    schedule, batch_size, epochs, augment, normalize, label_smoothing, val_split."""
    return dict(_entry(name, "default_recipe")[1][3])


def get_model(name: str, input_shape=None, **kwargs):
    """Build a zoo model by name ("lenet5", "convnetjs-cifar10", "tiny-vgg", "mlp", "cifar-bn"; underscores
    work too). `input_shape` (C, H, W) adapts it to a data set (in_channels and input size); other keyword
    arguments go to the builder, e.g. ``get_model("lenet5", activation="tanh")``. The model's ``zoo_config``
    records the call, ``{"name": ..., "kwargs": ...}`` (JSON-safe), so that checkpoints can rebuild it."""
    key, (builder, _, adapt, _) = _entry(name, "get_model")
    config = {"name": key, "kwargs": _json_safe({**kwargs, "input_shape": input_shape})}
    if input_shape is not None:
        try:
            derived = adapt(tuple(input_shape))
        except ValueError as e:
            raise ValueError(f"get_model({name!r}): {e}") from None
        for k, v in derived.items():
            if k in kwargs and kwargs[k] != v:
                raise ValueError(f"get_model({name!r}): {k}={kwargs[k]!r} contradicts input_shape={tuple(input_shape)}")
            kwargs[k] = v
    model = builder(**kwargs)
    model.zoo_config = config  # how to rebuild it: get_model(config["name"], **config["kwargs"]) (checkpoints)
    return model


def _json_safe(kwargs: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items() if v is not None}


# ---- issue 17: a graph (residual) model ------------------------------------------------------------------
def _basic_block(name: str, src: str, width: int, stride: int, project: bool) -> list:
    """He et al.'s basic block: conv3×3-BN-ReLU-conv3×3-BN, plus the shortcut, then ReLU. The shortcut is
    the identity, or a 1×1 conv + BN (option B) where the block changes width or resolution."""
    layers = [
        {"name": f"{name}_conv1", "type": "conv", "filters": width, "size": 3, "stride": stride, "pad": 1,
         "bias": False, "inputs": [src]},
        {"name": f"{name}_bn1", "type": "batchnorm"},
        {"name": f"{name}_relu1", "type": "relu"},
        {"name": f"{name}_conv2", "type": "conv", "filters": width, "size": 3, "pad": 1, "bias": False},
        {"name": f"{name}_bn2", "type": "batchnorm"},
    ]
    shortcut = src
    if project:
        layers += [{"name": f"{name}_proj", "type": "conv", "filters": width, "size": 1, "stride": stride,
                    "bias": False, "inputs": [src]},
                   {"name": f"{name}_proj_bn", "type": "batchnorm"}]
        shortcut = f"{name}_proj_bn"
    layers += [{"name": f"{name}_add", "type": "add", "inputs": [f"{name}_bn2", shortcut]},
               {"name": f"{name}_relu", "type": "relu"}]
    return layers


def resnet20(in_channels: int = 3, num_classes: int = 10, input_size=32, blocks_per_stage: int = 3):
    """ResNet-20 for CIFAR-10 (He et al. 2016, §4.2), a graph model; 272,474 parameters for 3 channels.

    A 3×3 conv with 16 filters, then three stages of `blocks_per_stage` basic blocks (two 3×3 convs with
    batch norm and a skip connection each) at 16, 32 and 64 channels (32 → 16 → 8 by stride-2 first
    convs, with 1×1 projection shortcuts there), global average pooling and a linear classifier:
    6·3 + 2 = 20 weight layers. Built from a graph spec (`convlens.models.graph_spec`), so it saves,
    exports to ONNX and explains like any spec model.
    """
    from convlens.models.graph_spec import from_graph_spec

    where = f"resnet20(in_channels={in_channels}, num_classes={num_classes})"
    _check(where, in_channels=in_channels, num_classes=num_classes, blocks_per_stage=blocks_per_stage)
    layers = [{"name": "conv1", "type": "conv", "filters": 16, "size": 3, "pad": 1, "bias": False},
              {"name": "bn1", "type": "batchnorm"}, {"name": "relu1", "type": "relu"}]
    src, width = "relu1", 16
    for s, w in enumerate((16, 32, 64), 1):
        for b in range(1, blocks_per_stage + 1):
            stride = 2 if s > 1 and b == 1 else 1
            name = f"s{s}b{b}"
            layers += _basic_block(name, src, w, stride, project=stride != 1 or w != width)
            src, width = f"{name}_relu", w
    layers += [{"name": "gap", "type": "global_pool"}, {"name": "fc", "type": "fc", "units": num_classes}]
    shape = (in_channels, *_size(input_size, where))
    try:
        return from_graph_spec({"layers": layers}, shape)
    except ValueError as e:
        raise ValueError(f"{where}: cannot build for input shape {shape}: {e}") from None


__all__ += ["resnet20"]
# SGD with momentum, weight decay 1e-4 (the paper's 1e-4, 0.9, batch 128) and one-cycle, flips + shifts.
_MODELS["resnet20"] = (resnet20, (3, 32, 32), _image_kwargs,
                       _recipe("cifar10", "sgd", 0.1, momentum=0.9, weight_decay=1e-4, schedule="onecycle",
                               batch_size=128, epochs=30, augment="flip,shift"))
