"""What the web app holds: the data sets it may train on (`DataRegistry`) and the model the Explain and
Draw pages use (`ModelHandle`). Neither ever takes a file-system path from a request: data sets are
registered when the server starts and picked by name; the model comes from the server's checkpoint or
from the server's own training job."""

from __future__ import annotations

import importlib.resources
import threading
from pathlib import Path

import numpy as np

from convlens.web.images import HTTPError

__all__ = ["DataRegistry", "ModelHandle", "default_checkpoint", "BUILTIN_DATASETS"]

BUILTIN_DATASETS = ("mnist-mini",)
_NAMED_ROOTS = ("mnist", "fashion-mnist", "cifar10")  # NAME=DIR with one of these names reads that format


def default_checkpoint():
    """The checkpoint shipped in the package (LeNet-5 trained on mnist-mini)."""
    return importlib.resources.files("convlens").joinpath("assets", "lenet5-mnist-mini", "best.safetensors")


class DataRegistry:
    """Data sets by name: the built-in ``mnist-mini`` and those given to the server, each either a folder
    (``NAME=DIR``: an image folder, or the files of mnist / fashion-mnist / cifar10 when NAME is one of
    those), a `Dataset`, or a ``(train, test)`` pair of Datasets. Loaded on first use and kept."""

    def __init__(self, extra: dict | None = None):
        self._sources: dict[str, object] = {name: name for name in BUILTIN_DATASETS}
        for name, source in (extra or {}).items():
            key = str(name).strip()
            if not key or any(c in key for c in "/\\") or len(key) > 64:
                raise ValueError(f"data set name {name!r}: expected a short name without slashes")
            self._sources[key] = source
        self._loaded: dict[str, tuple] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return list(self._sources)

    def describe(self) -> list[dict]:
        out = []
        for name in self._sources:
            entry = {"name": name, "builtin": name in BUILTIN_DATASETS}
            if name in self._loaded:
                train, test = self._loaded[name]
                entry.update(shape=list(train.shape), classes=list(train.classes), train=len(train), test=len(test))
            out.append(entry)
        return out

    def get(self, name: str) -> tuple:
        """``(train, test)`` Datasets (test is train when the source has no separate test part)."""
        if not isinstance(name, str) or name not in self._sources:
            raise HTTPError(422, f"unknown data set {name!r}: expected one of {', '.join(self._sources)} "
                                 "(other data sets are registered when the server starts: --data NAME=DIR)")
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = self._load(name, self._sources[name])
            return self._loaded[name]

    @staticmethod
    def _load(name: str, source) -> tuple:
        from convlens import data

        if isinstance(source, tuple | list):
            train, test = source
            return train, test
        if isinstance(source, data.Dataset):
            return source, source
        try:
            if source in BUILTIN_DATASETS:
                return data.load(source, train=True), data.load(source, train=False)
            path = Path(source)
            if name.lower() in _NAMED_ROOTS:
                return data.load(name, root=path, train=True), data.load(name, root=path, train=False)
            train = data.load(str(path), train=True)
            has_test = (path / "test").is_dir()
            test = data.load(str(path), train=False, size=train.shape[1:], grayscale=train.shape[0] == 1) \
                if has_test else train
            return train, test
        except ValueError as e:  # DataError
            raise HTTPError(422, f"data set {name}: {e}") from None


class ModelHandle:
    """The model the Explain and Draw pages run, with its metadata and a lock (hooks are per call, so
    two requests must not run it at once)."""

    def __init__(self, model, info: dict, label: str):
        self.model, self.info, self.label = model, dict(info), label
        self.lock = threading.Lock()
        self.input_shape = tuple(int(v) for v in info.get("input_shape") or (1, 28, 28))
        classes = info.get("classes")
        self.classes = [str(c) for c in classes] if classes else None
        mean, std = info.get("mean"), info.get("std")
        self.mean = np.asarray(mean, np.float32).reshape(-1, 1, 1) if mean is not None else None
        self.std = np.asarray(std, np.float32).reshape(-1, 1, 1) if std is not None else None

    @classmethod
    def from_checkpoint(cls, path) -> ModelHandle:
        from convlens.checkpoint import load_checkpoint

        if str(path).lower().endswith(".onnx"):  # an ONNX model from elsewhere, imported (convlens.onnx)
            from convlens.onnx import load_with_info

            model, info = load_with_info(path)
            return cls(model, dict(info, checkpoint=str(path)), Path(str(path)).name)
        model, info = load_checkpoint(path)
        label = Path(str(info.get("checkpoint", path))).parent.name + "/" + Path(str(path)).name
        info.pop("optimizer_state", None)
        info.pop("scheduler_state", None)
        return cls(model, info, label)

    @property
    def is_digit_model(self) -> bool:
        return self.input_shape == (1, 28, 28) and self.classes == [str(i) for i in range(10)]

    def normalise(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (C, H, W) → the model's float32 input (1, C, H, W): /255, then (x − mean)/std."""
        x = pixels.astype(np.float32) / np.float32(255)
        if self.mean is not None and self.std is not None:
            x = (x - self.mean) / self.std
        return np.ascontiguousarray(x[None], dtype=np.float32)

    def prepare(self, image, mode: str = "auto") -> np.ndarray:
        """A Pillow image → uint8 (C, H, W) pixels for this model. "digit" (the default for a 1×28×28
        model with classes 0..9) is `convlens.data.digits.prepare_digit`, what `convlens predict` uses;
        "resize" converts to grey/RGB and resizes."""
        from PIL import Image

        from convlens.data.digits import prepare_digit

        c, h, w = self.input_shape
        if mode == "auto":
            mode = "digit" if self.is_digit_model else "resize"
        if mode == "digit":
            if (c, h, w) != (1, 28, 28):
                raise HTTPError(422, f"digit preparation needs a 1×28×28 model; this one takes {c}×{h}×{w}")
            return prepare_digit(image)
        if c not in (1, 3):
            raise HTTPError(422, f"the model takes {c}-channel images; only grey or RGB can be made from a file")
        im = image.convert("L" if c == 1 else "RGB")
        if im.size != (w, h):
            im = im.resize((w, h), Image.Resampling.BILINEAR)
        a = np.asarray(im, dtype=np.uint8)
        return a[None] if c == 1 else np.ascontiguousarray(np.moveaxis(a, -1, 0))
