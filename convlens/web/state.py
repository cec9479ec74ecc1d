"""What the web app holds: the data sets it may train on (`DataRegistry`) and the model the Explain and
Draw pages use (`ModelHandle`). Neither ever takes a file-system path from a request: data sets are
registered when the server starts and picked by name; the model comes from the server's checkpoint or
from the server's own training job."""

from __future__ import annotations

import importlib.resources
import threading
import time
from pathlib import Path

import numpy as np

from convlens.web.images import HTTPError

__all__ = ["DataRegistry", "ModelHandle", "default_checkpoint", "shipped_checkpoints", "discover_datasets",
           "BUILTIN_DATASETS", "DEFAULT_DATA_ROOTS"]

BUILTIN_DATASETS = ("mnist-mini",)
_NAMED_ROOTS = ("mnist", "fashion-mnist", "cifar10")  # NAME=DIR with one of these names reads that format
# where the server looks for data sets on disk when none are named (relative to the working directory:
# the project's own data/ folder and the shared data folder beside a checkout)
DEFAULT_DATA_ROOTS = ("data", "../shared/data")
DESCRIPTIONS = {"mnist-mini": "10,000 MNIST digits shipped with convlens", "mnist": "MNIST (60,000 digits)",
                "fashion-mnist": "Fashion-MNIST (60,000 clothing images)", "cifar10": "CIFAR-10 (50,000 colour images)"}


def default_checkpoint():
    """The checkpoint shipped in the package (LeNet-5 trained on mnist-mini)."""
    return importlib.resources.files("convlens").joinpath("assets", "lenet5-mnist-mini", "best.safetensors")


def shipped_checkpoints(assets=None) -> dict[str, Path]:
    """The trained checkpoints shipped in ``assets`` (default: the package's ``convlens/assets``): every
    sub-folder holding a complete ``best.safetensors`` + ``best.json`` pair, by folder name
    (``lenet5-mnist-mini``; ``convnetjs-cifar10`` once the CIFAR-10 run is shipped)."""
    root = Path(str(importlib.resources.files("convlens").joinpath("assets"))) if assets is None else Path(assets)
    out: dict[str, Path] = {}
    if root.is_dir():
        for d in sorted(root.iterdir()):
            if (d / "best.safetensors").is_file() and (d / "best.json").is_file():
                out[d.name] = d / "best.safetensors"
    return out


def discover_datasets(roots) -> dict[str, str]:
    """The standard data sets found under ``roots`` (nothing is read yet): ``mnist`` and
    ``fashion-mnist`` (IDX files in ROOT/mnist, ROOT/fashion-mnist), ``cifar10`` (the binary version in
    ROOT/cifar-10-batches-bin or ROOT/cifar10/..., else the JPEG copy ROOT/cifar10-jpeg.tar.gz or a
    ROOT/cifar10-jpeg/ folder). The first root that has one wins."""
    found: dict[str, str] = {}
    for r in roots or ():
        root = Path(r).expanduser()
        if not root.is_dir():
            continue
        for name in ("mnist", "fashion-mnist"):
            d = root / name
            if name not in found and d.is_dir() and any(d.glob("train-images-idx3-ubyte*")):
                found[name] = str(d)
        if "cifar10" not in found:
            for d in (root / "cifar-10-batches-bin", root / "cifar10" / "cifar-10-batches-bin", root / "cifar10"):
                if (d / "data_batch_1.bin").is_file():
                    found["cifar10"] = str(d)
                    break
            else:
                for f in (root / "cifar10-jpeg.tar.gz", root / "cifar10-jpeg"):
                    if f.exists():
                        found["cifar10"] = str(f)
                        break
    return found


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
        self._has_test: dict[str, bool] = {}
        self._loading: dict[str, dict] = {}  # name → {"phase", "started", "error", "thread"}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return list(self._sources)

    def _check(self, name) -> None:
        if not isinstance(name, str) or name not in self._sources:
            raise HTTPError(422, f"unknown data set {name!r}: expected one of {', '.join(self._sources)} "
                                 "(other data sets are registered when the server starts: --data NAME=DIR)")

    def state(self, name: str) -> dict:
        """``{"state": "unloaded" | "loading" | "ready" | "failed", "phase", "seconds", "error"}``."""
        with self._lock:
            if name in self._loaded:
                return {"state": "ready"}
            job = self._loading.get(name)
        if job is None:
            return {"state": "unloaded"}
        out = {"state": "failed" if job["error"] else "loading", "phase": job["phase"],
               "seconds": round(time.monotonic() - job["started"], 1)}
        if job["error"]:
            out["error"] = job["error"]
        return out

    def describe(self) -> list[dict]:
        out = []
        for name in self._sources:
            src = self._sources[name]
            entry = {"name": name, "builtin": name in BUILTIN_DATASETS, **self.state(name)}
            desc = DESCRIPTIONS.get(name)
            if isinstance(src, str) and ("jpeg" in Path(src).name.lower()):
                desc = f"{DESCRIPTIONS.get(name, name)}, JPEG copy"
            if desc:
                entry["description"] = desc
            if name in self._loaded:
                train, test = self._loaded[name]
                entry.update(shape=list(train.shape), classes=list(train.classes), train=len(train), test=len(test),
                             test_part="test" if self._has_test[name] else "train")
            out.append(entry)
        return out

    def _instant(self, name: str) -> bool:
        src = self._sources[name]
        return not isinstance(src, str) or src in BUILTIN_DATASETS

    def load_async(self, name: str) -> dict:
        """Start loading ``name`` in a background thread (once); returns its `state`."""
        self._check(name)
        with self._lock:
            if name in self._loaded:
                return {"state": "ready"}
            job = self._loading.get(name)
            if job is None or job["error"]:
                job = {"phase": "starting", "started": time.monotonic(), "error": None}
                job["thread"] = threading.Thread(target=self._background, args=(name, job), daemon=True,
                                                 name=f"convlens-load-{name}")
                self._loading[name] = job
                job["thread"].start()
        return self.state(name)

    def _background(self, name: str, job: dict) -> None:
        def phase(text):
            job["phase"] = text

        try:
            loaded = self._load(name, self._sources[name], phase)
        except HTTPError as e:
            job["error"] = e.message
            return
        except Exception as e:  # an unreadable file: shown on the page, never a dead thread
            job["error"] = f"data set {name}: {type(e).__name__}: {e}"
            return
        with self._lock:
            self._loaded[name], self._has_test[name] = loaded[:2], loaded[2]
            self._loading.pop(name, None)

    def get(self, name: str, wait: bool = True) -> tuple:
        """``(train, test)`` Datasets (test is train when the source has no separate test part). With
        ``wait=False`` a data set that takes a while to load (a folder or an archive) is loaded in the
        background and a 409 saying how far it got is raised until it is ready."""
        self._check(name)
        if not wait and not self._instant(name):
            with self._lock:
                if name in self._loaded:
                    return self._loaded[name]
            st = self.load_async(name)
            if st["state"] == "ready":
                return self._loaded[name]
            if st["state"] == "failed":
                with self._lock:
                    self._loading.pop(name, None)  # the next request tries again
                raise HTTPError(422, st["error"])
            raise HTTPError(409, f"data set {name} is still loading ({st['phase']}, {st['seconds']:.0f} s so far); "
                                 "it is ready in a moment")
        with self._lock:
            if name not in self._loaded:
                train, test, has_test = self._load(name, self._sources[name])
                self._loaded[name], self._has_test[name] = (train, test), has_test
            return self._loaded[name]

    def has_test(self, name: str) -> bool:
        return self._has_test.get(name, False)

    @staticmethod
    def _load(name: str, source, phase=lambda text: None) -> tuple:
        """``(train, test, has_test)``."""
        from convlens import data

        if isinstance(source, tuple | list):
            train, test = source
            return train, test, True
        if isinstance(source, data.Dataset):
            return source, source, False
        try:
            if source in BUILTIN_DATASETS:
                return data.load(source, train=True), data.load(source, train=False), True
            path = Path(source)
            if name.lower() in _NAMED_ROOTS and path.is_dir() and not (path / "train").is_dir():
                phase("reading the training images")
                train = data.load(name, root=path, train=True)
                phase("reading the test images")
                return train, data.load(name, root=path, train=False), True
            root = path
            if path.is_file():
                phase(f"extracting {path.name} (the first time only)")
                from convlens.data.archive import extract_tar

                root = extract_tar(path, progress=False)
                entries = list(root.iterdir())
                if len(entries) == 1 and entries[0].is_dir():  # what data.load does with an archive
                    root = entries[0]
            phase("decoding the training images (the first time only; then cached)")
            train = data.load(str(path), train=True)
            if not (root / "test").is_dir():  # no separate test part: the training images stand in
                return train, train, False
            phase("decoding the test images")
            test = data.load(str(path), train=False, size=tuple(train.shape[1:]), grayscale=train.shape[0] == 1)
            return train, test, True
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
