"""Checking a Train-page request before a job starts: numbers, the model (a zoo name or a spec, sized
for the data set), whether it fits the data set's images and classes, and the quick first-run
settings per zoo model. Every problem is an `HTTPError` 422 with a message naming what was wrong."""

from __future__ import annotations

import math

import numpy as np

from convlens.web.images import HTTPError

__all__ = ["QUICK", "MAX_PARAMS", "build_model", "check_input_matches"]

MAX_PARAMS = 5_000_000

# The Train page's first-run settings per zoo model (what the form starts with; the zoo's full recipes
# are for long runs). lenet5: ≥ 95 % validation accuracy on mnist-mini in about 15 s on 2 busy cores
# (measured 96.4 % in 15.6 s wall at load 12; docs/web.md). Batch 128: per-batch overhead dominates small
# batches on a loaded machine (batch 32 took 4× longer per epoch). convnetjs-cifar10: 53.6 % validation on
# CIFAR-10 (JPEG copy) in 88.8 s at load ~23.
QUICK = {
    "lenet5": {"optimizer": "adam", "lr": 0.006, "schedule": "onecycle", "batch_size": 128, "epochs": 3, "augment": "",
               "limit": None, "val_split": 0.1},
    "mlp": {"optimizer": "adam", "lr": 0.004, "schedule": "onecycle", "batch_size": 128, "epochs": 3, "augment": "",
            "limit": None, "val_split": 0.1},
    "convnetjs-cifar10": {"optimizer": "adam", "lr": 0.003, "schedule": "onecycle", "batch_size": 64, "epochs": 2,
                          "augment": "flip", "limit": 20000, "val_split": 0.1},
    "cifar-bn": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "schedule": "onecycle", "batch_size": 128, "epochs": 2,
                 "augment": "flip", "limit": 20000, "val_split": 0.1},
}

def _number(body: dict, key: str, kind):
    v = body.get(key)
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        raise HTTPError(422, f"{key} must be a number, got {v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError, OverflowError):
        raise HTTPError(422, f"{key} must be a number, got {v!r}") from None
    if not math.isfinite(f):
        raise HTTPError(422, f"{key} must be a finite number, got {v!r}")
    if kind is int:
        if f != int(f):
            raise HTTPError(422, f"{key} must be an integer, got {v!r}")
        return int(f)
    return f


def _planned_params(planned) -> int:
    total = 0
    for _, cls, kw, _ in planned:
        if cls.startswith("Conv"):
            k = kw.get("kernel_size", 1)
            size = math.prod(k) if isinstance(k, tuple | list) else int(k) ** (int(cls[4]) if cls[4:5].isdigit() else 2)
            total += int(kw["out_channels"]) * (int(kw["in_channels"]) // int(kw.get("groups", 1))) * size
        elif cls == "Linear":
            total += int(kw["in_features"]) * int(kw["out_features"])
    return total


def build_model(body: dict, shape: tuple, num_classes: int):
    """``(model, architecture description, label)`` from a request's ``model`` / ``spec``."""
    from convlens import models

    name = str(body.get("model") or "lenet5").strip().lower()
    if name == "spec":
        spec = body.get("spec")
        if isinstance(spec, str):
            from convlens.web.http import loads

            spec = loads(spec, "spec: not valid JSON:", 422)
        if not isinstance(spec, dict | list):  # never a str: from_spec would read it as a file path
            raise HTTPError(422, "spec: expected a JSON object {\"layers\": [...]} or a list of layer tables")
        try:
            planned, _, out = models.plan_spec(spec, shape)
            if len(planned) > 100 or _planned_params(planned) > MAX_PARAMS:
                raise HTTPError(422, f"spec: too large for the web app (at most 100 modules and "
                                     f"{MAX_PARAMS:,} parameters)")
            model = models.from_spec(spec, input_shape=shape)
        except (ValueError, TypeError, KeyError) as e:
            raise HTTPError(422, f"spec: {e}") from None
        return model, {"spec": models.to_spec(model, shape)}, "custom spec"
    if name not in models.list_models():
        raise HTTPError(422, f"unknown model {name!r}: expected one of {', '.join(models.list_models())} or 'spec'")
    try:
        model = models.get_model(name, input_shape=shape, num_classes=num_classes)
    except ValueError as e:
        raise HTTPError(422, f"model {name} cannot be built for images of shape {shape}: {e}") from None
    return model, {"name": name, "kwargs": {"input_shape": list(shape), "num_classes": num_classes}}, name


def _check_fits(model, shape: tuple, num_classes: int, label: str) -> None:
    from convlens.autograd import no_grad
    from convlens.summary import summary_rows
    from convlens.tensor import Tensor

    try:
        totals = summary_rows(model, shape)["totals"]
    except ValueError as e:
        raise HTTPError(422, f"model {label} does not accept images of shape {shape}: {e}") from None
    if totals["total"] > MAX_PARAMS:
        raise HTTPError(422, f"model {label} has {totals['total']:,} parameters; the web app trains at most "
                             f"{MAX_PARAMS:,}")
    model.eval()
    try:
        with no_grad():
            out = model(Tensor._wrap(np.zeros((1, *shape), np.float32)))
    except ValueError as e:
        raise HTTPError(422, f"model {label} does not accept images of shape {shape}: {e}") from None
    finally:
        model.train()
    if tuple(out.shape) != (1, num_classes):
        raise HTTPError(422, f"model {label} gives outputs of shape {tuple(out.shape[1:])} per image, but the data "
                             f"set has {num_classes} classes: the last layer needs {num_classes} units")


def check_input_matches(name: str, shape: tuple, dataset: str) -> None:
    """Refuse a zoo model made for images with another number of channels than the data set's (the
    CIFAR-10 network on grey 28×28 digits, LeNet-5 on colour photos): 422 naming the models that fit."""
    from convlens import models

    if name not in models.list_models():
        return
    want = tuple(models.default_input_shape(name))
    if want[0] != shape[0]:
        fits = [m for m in models.list_models() if models.default_input_shape(m)[0] == shape[0]]
        fmt = "×".join
        raise HTTPError(422, f"model {name} takes {fmt(map(str, want))} images ({want[0]} channel{'s' if want[0] > 1 else ''}), "
                             f"but data set {dataset} has {fmt(map(str, shape))} images: pick a model made for "
                             f"{shape[0]}-channel images ({', '.join(fits) or 'a custom spec'}) or another data set")
