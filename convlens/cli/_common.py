"""Helpers shared by the command modules: data sets, models, checkpoints, images, JSON output."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from convlens.cli import CLIError

NAMED_DATASETS = ("mnist", "fashion-mnist", "cifar10", "mnist-mini", "mnist-scenes", "fashion-scenes",
                  "mnist-scenes-mini")
_ALIASES = {"fashionmnist": "fashion-mnist", "fashion_mnist": "fashion-mnist", "cifar-10": "cifar10",
            "mnist_mini": "mnist-mini"}
DIGITS = [str(i) for i in range(10)]
MAX_IMAGE_SIDE = 8192  # pixels per side accepted by predict (the web app's limit is in convlens.web.images)


def eprint(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def print_json(obj) -> None:
    from convlens.checkpoint import jsonable

    sys.stdout.write(json.dumps(jsonable(obj)) + "\n")
    sys.stdout.flush()


def parse_shape(text: str, option: str = "--input-shape") -> tuple[int, ...]:
    """``"3,32,32"`` (or ``3x32x32``) → (3, 32, 32)."""
    try:
        shape = tuple(int(t) for t in str(text).replace("x", ",").split(",") if t.strip())
    except ValueError:
        shape = ()
    if not shape or any(s < 1 for s in shape):
        raise CLIError(f"{option}: expected positive integers like 3,32,32, got {text!r}")
    return shape


def dataset_key(name: str) -> str | None:
    """The canonical name of a built-in data set, or None for a folder / archive path."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    return key if key in NAMED_DATASETS else None


# the library's keyword arguments named in its errors, as the command line's flags
_FLAG_WORDS = (("pass size= to resize", "pass --size HxW to resize"),
               ("pass skip_bad=True", "pass --skip-bad"))


def parse_size(text: str) -> list[int]:
    """``--size``: ``64`` or ``64x48`` (H×W) → [H, W]."""
    parts = str(text).lower().replace(",", "x").split("x")
    try:
        hw = [int(t) for t in parts]
    except ValueError:
        hw = []
    if len(hw) == 1:
        hw = hw * 2
    if len(hw) != 2 or min(hw) < 1 or max(hw) > 4096:
        raise CLIError(f"--size: expected a side or HxW in pixels (1 to 4096) like 64 or 64x48, got {text!r}")
    return hw


def load_dataset(name: str, data_dir=None, train: bool = True, input_shape=None, size=None,
                 skip_bad: bool = False):
    """A data set by name or folder/archive path; folders are resized (and made grey or RGB) to
    ``input_shape`` when given, or resized to ``size`` (H, W). Data errors propagate as DataError (a
    ValueError with the file named), worded with the command line's flags."""
    from convlens import data

    key = dataset_key(name)
    if key is not None:
        if size is not None:
            raise CLIError(f"--size resizes the images of a folder; {key} has one size already")
        return data.load(key, root=data_dir, train=train)
    path = Path(name).expanduser()
    if not path.exists():
        raise CLIError(f"unknown data set {name!r}: expected {', '.join(NAMED_DATASETS)}, a folder of class "
                       "folders, or a .tar.gz of one")
    from convlens.data.archive import extracted_path, is_archive

    if path.is_file() and is_archive(path) and not extracted_path(path).is_dir():
        eprint(f"convlens: first use of {path.name}: extracting and decoding it into the cache (once; "
               "'convlens data cache' shows the cache, 'convlens data clean' empties it)")
    kwargs = {"skip_bad": True} if skip_bad else {}
    if input_shape is not None:
        kwargs.update(size=tuple(input_shape[1:]), grayscale=input_shape[0] == 1)
    elif size is not None:
        kwargs.update(size=tuple(int(s) for s in size))
    try:
        return data.load(str(path), train=train, **kwargs)
    except data.DataError as e:
        text = str(e)
        for lib, cli in _FLAG_WORDS:
            text = text.replace(lib, cli)
        raise CLIError(text) from None


def separate_test_set(train_ds, test_ds) -> bool:
    """False when a folder data set has no test/ part, so that 'test' would be the training images."""
    from convlens.data import ImageFolder

    if not (isinstance(train_ds, ImageFolder) and isinstance(test_ds, ImageFolder)):
        return True
    return Path(train_ds.root).resolve() != Path(test_ds.root).resolve()


def zoo_key(name: str) -> str | None:
    from convlens import models

    key = str(name).strip().lower().replace("_", "-")
    return key if key in models.list_models() else None


def build_model(name: str, input_shape: tuple, num_classes: int):
    """Build a zoo model (adapted to ``input_shape`` and ``num_classes``) or a spec file's model.
    Returns ``(model, description)`` where the description rebuilds it (stored in checkpoints)."""
    from convlens import models

    key = zoo_key(name)
    if key is not None:
        kwargs = {"input_shape": list(input_shape), "num_classes": int(num_classes)}
        try:
            model = models.get_model(key, **kwargs)
        except ValueError as e:
            raise CLIError(f"model {key} cannot be built for images of shape {tuple(input_shape)}: {e}") from None
        return model, {"name": key, "kwargs": kwargs}
    path = Path(name).expanduser()
    if not path.is_file():
        raise CLIError(f"unknown model {name!r}: expected one of {', '.join(models.list_models())} "
                       "or a spec file (.toml or .json)")
    from convlens.models.spec import load_spec

    declared = load_spec(path).get("input_shape")
    if isinstance(declared, list) and tuple(declared) != tuple(input_shape):
        raise CLIError(f"{path}: the spec declares input_shape {tuple(declared)}, but the data's images are "
                       f"(C, H, W) = {tuple(input_shape)}; change the spec's input_shape (or remove it to take the "
                       "data's), or train on images of that shape (--size HxW resizes a folder's)")
    model = models.from_spec(path, input_shape=tuple(input_shape))
    return model, {"spec": models.to_spec(model, tuple(input_shape))}


def check_model_fits(model, input_shape: tuple, num_classes: int, model_name: str, dataset_name: str) -> None:
    """One dry forward pass: the model must take (1, *input_shape) and give (1, num_classes)."""
    from convlens.autograd import no_grad
    from convlens.tensor import Tensor

    was_training = model.training
    model.eval()
    try:
        with no_grad():
            out = model(Tensor._wrap(np.zeros((1, *input_shape), np.float32)))
    except ValueError as e:
        raise CLIError(f"model {model_name} does not accept the images of {dataset_name}, of shape "
                       f"(C, H, W) = {tuple(input_shape)}: {e}") from None
    finally:
        model.train(was_training)
    if tuple(out.shape) != (1, num_classes):
        raise CLIError(f"model {model_name} gives outputs of shape {tuple(out.shape[1:])} per image, but "
                       f"{dataset_name} has {num_classes} classes: the last layer needs {num_classes} units")


def load_model(ckpt):
    """``(model, info)`` from a run directory or checkpoint file (CheckpointError names the file), or
    from an .onnx file (imported by `convlens.onnx.load_with_info`)."""
    from convlens.checkpoint import load_checkpoint

    if str(ckpt).lower().endswith(".onnx"):
        from convlens.onnx import load_with_info

        model, info = load_with_info(ckpt)
        return model, dict(info, checkpoint=str(ckpt))

    return load_checkpoint(ckpt)


def eval_transform(info: dict):
    """The checkpoint's normalisation as a transform (None when the model was trained without one)."""
    from convlens.data import transforms as T

    mean, std = info.get("mean"), info.get("std")
    return T.Normalize(mean, std) if mean is not None and std is not None else None


# ---- single images --------------------------------------------------------------------------------------
def open_image(path):
    """A decoded Pillow image; a missing or non-image file → CLIError naming it."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise CLIError(f"{p}: no such image file")
    try:
        with warnings.catch_warnings():
            # Pillow warns above 89 Mpixels and raises above twice that; both are refused here, as in the web app
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:  # lazy: the header only
                w, h = im.size
                if max(w, h) > MAX_IMAGE_SIDE:
                    raise CLIError(f"{p}: image is {w}×{h} pixels, at most {MAX_IMAGE_SIDE}×{MAX_IMAGE_SIDE} are "
                                   f"accepted (decoding it would take {w * h * 4 / 1e9:.1f} GB); shrink it first")
                if w < 1 or h < 1:
                    raise CLIError(f"{p}: image has no pixels ({w}×{h})")
                im.load()
                return im.copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise CLIError(f"{p}: image rejected as a decompression bomb (too many pixels)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as e:
        raise CLIError(f"{p}: not a readable image ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None


def is_digit_model(info: dict) -> bool:
    return tuple(info.get("input_shape") or ()) == (1, 28, 28) and list(info.get("classes") or []) == DIGITS


def prepare_image(image, input_shape, info: dict | None = None, mode: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """A Pillow image → ``(x, pixels)``: x the float32 (1, C, H, W) model input (scaled to [0, 1] and
    normalised as in training), pixels the uint8 (C, H, W) image before normalisation.

    ``mode``: "digit" prepares a photo or drawing of a digit the MNIST way (`prepare_digit`: white ink on
    black, fitted into 20×20, centred by mass in 28×28); "resize" converts and resizes; "auto" picks
    "digit" for a 1×28×28 model with classes 0..9.
    """
    from PIL import Image

    from convlens.data.digits import prepare_digit

    info = info or {}
    c, h, w = (int(v) for v in input_shape)
    if mode == "auto":
        mode = "digit" if is_digit_model(info) else "resize"
    if mode == "digit":
        if (c, h, w) != (1, 28, 28):
            raise CLIError(f"--prepare digit needs a model with 1×28×28 input, this one takes {c}×{h}×{w}")
        pixels = prepare_digit(image)
    else:
        if c not in (1, 3):
            raise CLIError(f"the model takes {c}-channel images; only 1 (grey) or 3 (RGB) can be made from a file")
        im = image.convert("L" if c == 1 else "RGB")
        if im.size != (w, h):
            im = im.resize((w, h), Image.Resampling.BILINEAR)
        a = np.asarray(im, dtype=np.uint8)
        pixels = a[None] if c == 1 else np.moveaxis(a, -1, 0)
    x = pixels[None].astype(np.float32) / np.float32(255)
    t = eval_transform(info)
    if t is not None:
        x = t(x)
    return np.ascontiguousarray(x, dtype=np.float32), pixels
