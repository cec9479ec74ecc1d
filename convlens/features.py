"""Features from any layer of any model: the vectors that image retrieval compares.

    from convlens import features, models
    net = models.get_model("lenet5")                       # a zoo model, a spec model or a checkpoint
    f = features.extract(net, images)                      # (N, 84): the input of the last Linear
    f = features.extract(net, images, layer="pool2")       # (N, 16·5·5) = (N, 400), flattened
    f = features.extract("runs/lenet5", dataset, normalize=True)   # a checkpoint, its normalisation applied

A layer is named as in ``model.named_modules()``; ``"NAME"`` is that module's output and ``"NAME:input"``
its input. ``"input"`` is the image itself as the model sees it (after the transform), which is the
raw-pixel baseline of retrieval. The default, ``last_linear_input(model)``, is the input of the last
``Linear``: the last hidden layer, whose nearest neighbours are AlexNet's retrieval figure.

torchvision's counterpart is ``create_feature_extractor(model, return_nodes)``, which traces the model into a
new module returning a dict of tensors. convlens models are eager modules with forward hooks, so `extract`
hooks the named module for the duration of the call instead, stops the forward pass once the layer has been
computed (later layers are not run), and returns a float32 NumPy array of shape (N, D): retrieval wants
flat vectors, not autograd tensors. With a list of layers it returns a dict {layer: array}, as torchvision.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["extract", "last_linear_input", "feature_layers", "resolve_layer", "model_fingerprint",
           "l2_normalize", "feature_shape", "FeatureError", "INPUT"]

INPUT = "input"  # the layer name of the model's own input (raw pixels, normalised as in training)


class FeatureError(ValueError):
    """A layer that is not in the model, images of the wrong shape or type: one line naming both."""


class _Stop(Exception):
    """Raised by the hook once the last wanted layer has run: the rest of the forward pass is skipped."""


def _modules(model) -> dict:
    return dict(model.named_modules())


def last_linear_input(model) -> str:
    """``"NAME:input"`` of the model's last ``Linear`` (the last hidden layer's output, after its
    activation); ``"input"`` for a model with no Linear."""
    from convlens.nn import Linear

    names = [n for n, m in model.named_modules() if isinstance(m, Linear)]
    return f"{names[-1]}:input" if names else INPUT


def feature_layers(model) -> list[str]:
    """The layers worth retrieving with, in forward order: every named module's output except the
    root's, plus ``input`` first and the default (``last_linear_input``) where it is not already an output."""
    names = [n for n, _ in model.named_modules() if n]
    out = [INPUT, *names]
    default = last_linear_input(model)
    if default != INPUT:
        linear = default.split(":")[0]
        out.insert(out.index(linear), default)
    return out


def resolve_layer(model, layer: str | None) -> tuple[str, str]:
    """``(module name, "output" | "input")`` of a layer name; FeatureError listing the model's names."""
    if layer is None:
        layer = last_linear_input(model)
    if not isinstance(layer, str):
        raise FeatureError(f"layer must be a module name (str), got {type(layer).__name__}")
    if layer == INPUT:
        return "", "model-input"
    name, _, where = layer.partition(":")
    where = where or "output"
    modules = _modules(model)
    if where not in ("input", "output") or name not in modules or name == "":
        known = ", ".join(n for n in modules if n)
        raise FeatureError(f"layer {layer!r} is not in the model: expected 'input', a module name as in "
                           f"named_modules() ({known}), or 'NAME:input'")
    return name, where


def model_fingerprint(model) -> str:
    """SHA-256 (first 16 hex digits) of the model's parameter and buffer names, shapes and values: two
    models with equal fingerprints compute the same features. An index records it; a search with another
    model is refused."""
    import hashlib

    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        a = np.ascontiguousarray(t._data if hasattr(t, "_data") else np.asarray(t))
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _load_model(model):
    """A Module as is; a zoo name → untrained model; a path → checkpoint (its normalisation as transform)."""
    if not isinstance(model, str | Path):
        if not callable(getattr(model, "named_modules", None)):
            raise FeatureError(f"model must be a convlens Module, a zoo name or a checkpoint path, "
                               f"got {type(model).__name__}")
        return model, None
    from convlens import models

    key = str(model).strip().lower().replace("_", "-")
    if isinstance(model, str) and key in models.list_models():
        return models.get_model(key), None
    from convlens.checkpoint import load_checkpoint
    from convlens.data import transforms as T

    net, info = load_checkpoint(model)
    mean, std = info.get("mean"), info.get("std")
    return net, (T.Normalize(mean, std) if mean is not None and std is not None else None)


def _as_array(images):
    """(array (N, ...), labels or None) from an array, a Tensor or an array data set; uint8 stays uint8."""
    from convlens.tensor import Tensor

    if isinstance(images, Tensor):
        return images._data, None
    if hasattr(images, "images") and hasattr(images, "labels"):  # convlens.data.ArrayDataset
        return np.asarray(images.images), np.asarray(images.labels)
    if hasattr(images, "__len__") and hasattr(images, "__getitem__") and not isinstance(images, np.ndarray):
        if len(images) and isinstance(images[0], tuple):  # a Dataset of (image, label) items (e.g. Subset)
            items = [images[i] for i in range(len(images))]
            xs = [x._data if isinstance(x, Tensor) else np.asarray(x) for x, _ in items]
            return np.stack(xs), np.asarray([int(y) for _, y in items])
    try:
        a = np.asarray(images)
    except Exception:
        a = None
    if a is None or a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise FeatureError(f"images must be a (N, C, H, W) array, a Tensor or a data set, got "
                           f"{type(images).__name__}" + (f" of {a.dtype}" if a is not None else ""))
    return a, None


def _to_float(batch: np.ndarray) -> np.ndarray:
    if batch.dtype == np.uint8:
        return batch.astype(np.float32) / np.float32(255)  # as the DataLoader and torchvision's ToTensor
    return batch.astype(np.float32, copy=False)


def extract(model, images, layer: str | list[str] | None = None, *, batch_size: int = 256,
            normalize: bool = False, transform=None, progress: bool | None = None, desc: str = "features"):
    """Features of ``images`` at ``layer`` of ``model``: float32 (N, D), flattened per image.

    Args:
        model: a convlens Module (zoo, spec or loaded checkpoint), a zoo model name (untrained), or a
            checkpoint path (run directory or .safetensors), whose training normalisation is then applied.
        images: (N, C, H, W) array or Tensor (uint8 is scaled to [0, 1] as the DataLoader does), or an
            array data set (``convlens.data.load(...)``, whose ``.images`` are used).
        layer: a module name as in ``named_modules()`` (its output), ``"NAME:input"``, ``"input"``, or a
            list of those (→ dict). Default: the input of the last Linear (`last_linear_input`).
        batch_size: images per forward pass.
        normalize: L2-normalise each feature vector (inner product is then cosine similarity).
        transform: applied to each float batch before the model (e.g. ``T.Normalize(mean, std)``);
            default: the checkpoint's normalisation when ``model`` is a path, else none.
        progress: a tqdm bar over the batches (None: only on a terminal).

    Shape:
        images (N, *input_shape) → (N, D) with D the product of the layer's per-image output shape.
    """
    from tqdm.auto import tqdm

    from convlens.autograd import no_grad
    from convlens.tensor import Tensor

    net, ckpt_transform = _load_model(model)
    transform = ckpt_transform if transform is None else transform
    layers = [layer] if layer is None or isinstance(layer, str) else list(layer)
    if not layers:
        raise FeatureError("layer: an empty list of layers")
    resolved = [resolve_layer(net, name) for name in layers]
    names = [name if name is not None else last_linear_input(net) for name in layers]
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise FeatureError(f"batch_size must be a positive integer, got {batch_size!r}")
    x_all, _ = _as_array(images)
    if x_all.ndim < 2:
        raise FeatureError(f"images must be a batch (N, C, H, W), got an array of shape {x_all.shape}")

    modules = _modules(net)
    captured: dict[int, np.ndarray] = {}
    wanted_modules = {i for i, (m, _) in enumerate(resolved) if m}
    handles = []

    def hook_for(i: int, where: str):
        def keep(value):
            captured[i] = np.asarray(value._data if isinstance(value, Tensor) else value)
            if len(captured) == len(resolved):
                raise _Stop

        if where == "input":
            return lambda mod, inputs: keep(inputs[0])
        return lambda mod, inputs, output: keep(output)

    for i, (mname, where) in enumerate(resolved):
        if not mname:
            continue
        mod = modules[mname]
        h = (mod.register_forward_pre_hook(hook_for(i, where)) if where == "input"
             else mod.register_forward_hook(hook_for(i, where)))
        handles.append(h)

    n = x_all.shape[0]
    outs: list[list[np.ndarray]] = [[] for _ in resolved]
    was_training = getattr(net, "training", False)
    net.eval()
    try:
        with no_grad():
            for a in tqdm(range(0, n, batch_size), desc=desc, unit="batch", disable=None if progress is None else not progress, leave=False):
                x = _to_float(x_all[a : a + batch_size])
                if transform is not None:
                    x = np.asarray(transform(x), dtype=np.float32)
                captured.clear()
                for i, (mname, _) in enumerate(resolved):
                    if not mname:
                        captured[i] = x
                if wanted_modules:
                    try:
                        net(Tensor._wrap(np.ascontiguousarray(x)))
                    except _Stop:
                        pass
                    except ValueError as e:  # a layer's shape error: name what was passed
                        raise FeatureError(f"images of shape {tuple(x_all.shape[1:])} do not fit the model: "
                                           f"{str(e).splitlines()[0]}") from None
                for i in range(len(resolved)):
                    f = captured[i]
                    outs[i].append(f.reshape(f.shape[0], -1).astype(np.float32, copy=False))
    finally:
        for h in handles:
            h.remove()
        net.train(was_training)

    result = {}
    for name, parts in zip(names, outs):
        f = np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
        if normalize and f.size:
            f = l2_normalize(f)
        result[name] = np.ascontiguousarray(f, dtype=np.float32)
    return result[names[0]] if (layer is None or isinstance(layer, str)) else result


def l2_normalize(f: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Each row divided by its Euclidean norm (rows of zeros stay zero), float32."""
    f = np.asarray(f, dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", f, f, dtype=np.float64)).astype(np.float32)
    return f / np.maximum(norms, np.float32(eps))[:, None]


def feature_shape(model, layer: str | None, input_shape) -> int:
    """D of `extract` for one image of ``input_shape`` (one dry forward pass)."""
    f = extract(model, np.zeros((1, *input_shape), np.float32), layer=layer, progress=False)
    return int(math.prod(f.shape[1:]))
