"""The torchvision transforms that convert or that only make sense one image at a time: ToTensor,
PILToTensor, ToPILImage, Lambda, RandomResizedCrop. The arithmetic ones (flips, crops, pads, Normalize,
Resize, Grayscale) live in ``convlens.data.transforms`` with their batch forms."""

from __future__ import annotations

import math

import numpy as np

from convlens.data import imageops as ops
from convlens.data.images import chw_to_pil, image_size, is_pil, on_image
from convlens.data.transforms import InterpolationMode, Transform, _interpolation, _pair, resize_image
from convlens.utils.data.worker import sample_rng

__all__ = ["ToTensor", "PILToTensor", "ToPILImage", "Lambda", "RandomResizedCrop", "to_tensor", "to_pil_image"]

# torchvision's dtypes for PIL modes that are not 8-bit
_MODE_DTYPES = {"I": np.int32, "I;16": np.int16, "F": np.float32}


def _pixels_hwc(pic, who: str) -> np.ndarray:
    if is_pil(pic):
        a = np.array(pic, dtype=_MODE_DTYPES.get(pic.mode, np.uint8), copy=True)
        if pic.mode == "1":
            a = a * np.uint8(255)
        return a.reshape(pic.height, pic.width, len(pic.getbands()))
    if isinstance(pic, np.ndarray):
        if pic.ndim not in (2, 3):
            raise ValueError(f"{who}: pic should be 2/3 dimensional (H, W[, C]), got {pic.ndim} dimensions")
        return pic[:, :, None] if pic.ndim == 2 else pic
    raise TypeError(f"{who}: pic should be a PIL Image or an ndarray (H, W[, C]), got {type(pic).__name__}")


def to_tensor(pic):
    """PIL image or ndarray (H, W, C) → tensor (C, H, W); uint8 becomes float32 ``x / 255`` in [0, 1],
    other dtypes keep their values (torchvision's ``to_tensor``)."""
    from convlens.tensor import Tensor

    chw = np.ascontiguousarray(_pixels_hwc(pic, "ToTensor").transpose(2, 0, 1))
    return Tensor._wrap(ops.to_float(chw) if chw.dtype == np.uint8 else chw)


class ToTensor(Transform):
    """PIL image / ndarray (H, W, C) in 0..255 → float tensor (C, H, W) in [0, 1]. Batch form: a uint8
    batch (N, C, H, W) → float32 ``x / 255`` (bit-identical)."""

    accepts = ("pil",)

    def batch_kind(self, kind):
        return "tensor" if kind == "pil" else None

    def batch(self, x, rng):
        return ops.to_float(x) if x.dtype == np.uint8 else x

    def image(self, pic):
        return to_tensor(pic)

    def __repr__(self) -> str:
        return "ToTensor()"


class PILToTensor(Transform):
    """PIL image → tensor (C, H, W) of the same dtype, unscaled."""

    accepts = ("pil",)

    def batch_kind(self, kind):
        return "tensor" if kind == "pil" else None

    def batch(self, x, rng):
        return x

    def image(self, pic):
        from convlens.tensor import Tensor

        if not is_pil(pic):
            raise TypeError(f"PILToTensor: pic should be a PIL Image, got {type(pic).__name__}")
        return Tensor._wrap(np.ascontiguousarray(_pixels_hwc(pic, "PILToTensor").transpose(2, 0, 1)))


_CHANNEL_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
_DTYPE_MODES = {np.dtype(np.int16): "I;16", np.dtype(np.int32): "I", np.dtype(np.float32): "F"}


def to_pil_image(pic, mode: str | None = None):
    """Tensor (C, H, W) or ndarray (H, W, C) → PIL image. Float pixels are taken as [0, 1] and become
    uint8 ``x * 255`` truncated, as torchvision (``pic.mul(255).byte()``)."""
    from convlens.tensor import Tensor

    if isinstance(pic, Tensor):
        a = pic.detach()._data
        if a.ndim not in (2, 3):
            raise ValueError(f"ToPILImage: pic should be 2/3 dimensional (C, H, W), got {a.ndim} dimensions")
        chw = a[None] if a.ndim == 2 else a
    elif isinstance(pic, np.ndarray):
        if pic.ndim not in (2, 3):
            raise ValueError(f"ToPILImage: pic should be 2/3 dimensional (H, W, C), got {pic.ndim} dimensions")
        chw = pic[None] if pic.ndim == 2 else pic.transpose(2, 0, 1)
    else:
        raise TypeError(f"ToPILImage: pic should be a tensor or an ndarray, got {type(pic).__name__}")
    if chw.dtype.kind == "f" and mode != "F":
        chw = (chw * np.float32(255)).astype(np.uint8)
    if chw.dtype == np.float64:
        chw = chw.astype(np.float32)
    c = chw.shape[0]
    if mode is None:
        mode = _CHANNEL_MODES.get(c) if chw.dtype == np.uint8 else _DTYPE_MODES.get(chw.dtype)
        if mode is None or (chw.dtype != np.uint8 and c != 1):
            raise TypeError(f"ToPILImage: cannot infer a mode for {c} channel(s) of {chw.dtype}; pass mode=")
    return chw_to_pil(chw, mode)


class ToPILImage(Transform):
    """Tensor (C, H, W) / ndarray (H, W, C) → PIL image (see ``to_pil_image``)."""

    _fields = ("mode",)
    accepts = ()

    def __init__(self, mode: str | None = None):
        self.mode = mode

    def image(self, pic):
        return to_pil_image(pic, self.mode)


class Lambda(Transform):
    """A function as a transform (one image at a time)."""

    accepts = ()

    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"Lambda: argument lambd should be callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def image(self, img):
        return self.lambd(img)

    def __repr__(self) -> str:
        return "Lambda()"


class RandomResizedCrop(Transform):
    """A crop of random area (``scale`` of the image) and aspect ratio (``ratio``), resized to
    ``size`` (torchvision's algorithm: 10 tries, then a central crop clamped to the ratio range)."""

    _fields = ("size", "scale", "ratio")
    accepts = ()

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0),
                 interpolation=InterpolationMode.BILINEAR, antialias: bool = True):
        self.size = _pair(size, "RandomResizedCrop")
        self.scale, self.ratio = tuple(float(s) for s in scale), tuple(float(r) for r in ratio)
        if self.scale[0] > self.scale[1] or self.ratio[0] > self.ratio[1]:
            raise ValueError(f"RandomResizedCrop: scale and ratio should be of kind (min, max), got {scale}, {ratio}")
        self.interpolation, self.antialias = _interpolation(interpolation), antialias

    @staticmethod
    def get_params(img, scale, ratio) -> tuple[int, int, int, int]:
        """``(top, left, height, width)`` of a random crop of ``img``."""
        height, width = image_size(img)
        area, rng = height * width, sample_rng()
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        for _ in range(10):
            target_area = area * rng.uniform(scale[0], scale[1])
            aspect = math.exp(rng.uniform(*log_ratio))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
        in_ratio = width / height
        if in_ratio < min(ratio):
            w, h = width, int(round(width / min(ratio)))
        elif in_ratio > max(ratio):
            h, w = height, int(round(height * max(ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def image(self, img):
        top, left, h, w = self.get_params(img, self.scale, self.ratio)
        cropped = on_image(img, lambda a: ops.crop(a, top, left, h, w), "RandomResizedCrop")
        return resize_image(cropped, *self.size, self.interpolation, self.antialias)
