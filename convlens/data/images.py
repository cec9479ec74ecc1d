"""One image in, one image out: how a transform called on a single image (torchvision's ``t(img)``)
turns a PIL image, a tensor or a NumPy array into the ``(..., C, H, W)`` array that ``imageops``
works on, and back into the same kind of thing."""

from __future__ import annotations

import numpy as np

__all__ = ["is_pil", "image_size", "on_image", "pil_to_chw", "chw_to_pil"]


def is_pil(img) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        return False
    return isinstance(img, Image.Image)


def pil_to_chw(img) -> np.ndarray:
    """(C, H, W) view of a PIL image's pixels (uint8 for L/RGB/RGBA/P..., int32 for I, float32 for F,
    bool for 1)."""
    a = np.asarray(img)
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def chw_to_pil(a: np.ndarray, mode: str, palette=None):
    """A PIL image of ``mode`` from (C, H, W) pixels of the matching dtype (a palette image keeps
    ``palette``)."""
    from PIL import Image

    hwc = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    if mode == "1":
        return Image.fromarray(np.ascontiguousarray(hwc, dtype=bool))
    img = Image.frombytes(mode, (hwc.shape[1], hwc.shape[0]), np.ascontiguousarray(hwc).tobytes())
    if palette is not None:
        img.putpalette(palette)
    return img


def image_size(img) -> tuple[int, int]:
    """(H, W) of a PIL image, or of the last two dimensions of a tensor / array."""
    if is_pil(img):
        return img.height, img.width
    shape = getattr(img, "shape", None)
    if shape is None or len(shape) < 2:
        raise TypeError(f"expected a PIL image, a tensor or an array (..., H, W), got {type(img).__name__}")
    return int(shape[-2]), int(shape[-1])


def on_image(img, fn, who: str):
    """``fn`` applied to the image's pixels as (..., C, H, W), returned as the same kind of image: PIL
    in → PIL out (same mode), tensor → tensor, array → array. A 2-d (H, W) tensor is one channel."""
    from convlens.tensor import Tensor

    if is_pil(img):
        palette = img.getpalette() if img.mode == "P" else None
        return chw_to_pil(fn(pil_to_chw(img)), img.mode, palette)
    if isinstance(img, Tensor):
        a = img._data
        out = fn(a[None]) if a.ndim == 2 else fn(a)
        return Tensor._wrap(np.ascontiguousarray(out[0] if a.ndim == 2 else out))
    if isinstance(img, np.ndarray):
        out = fn(img[None]) if img.ndim == 2 else fn(img)
        return np.ascontiguousarray(out[0] if img.ndim == 2 else out)
    raise TypeError(f"{who}: expected a PIL image, a tensor or a NumPy array (..., C, H, W), got "
                    f"{type(img).__name__}")
