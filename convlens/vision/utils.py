"""``make_grid`` and ``save_image``, as in ``torchvision.utils``."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

__all__ = ["make_grid", "save_image"]


def _as_array(tensor) -> np.ndarray:
    from convlens.tensor import Tensor

    if isinstance(tensor, list | tuple):
        return np.stack([_as_array(t) for t in tensor])
    if isinstance(tensor, Tensor):
        return tensor.detach()._data
    if isinstance(tensor, np.ndarray):
        return tensor
    raise TypeError(f"make_grid: tensor should be a tensor, an array or a list of them, got {type(tensor).__name__}")


def make_grid(tensor, nrow: int = 8, padding: int = 2, normalize: bool = False, value_range=None,
              scale_each: bool = False, pad_value: float = 0.0):
    """Images (B, C, H, W) (or a list of (C, H, W)) tiled ``nrow`` per row with ``padding`` pixels of
    ``pad_value`` around each → one tensor (C, rows·(H + p) + p, nrow·(W + p) + p). One-channel images
    become three. ``normalize`` maps [min, max] (``value_range``, or the data's, per image with
    ``scale_each``) to [0, 1]. A single image comes back alone, without padding.

    Shape:
        (B, C, H, W) → (C', ceil(B / nrow) (H + padding) + padding, min(nrow, B) (W + padding) + padding)
    """
    from convlens.tensor import Tensor

    x = _as_array(tensor)
    if x.ndim == 2:
        x = x[None]
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"make_grid: expected images (B, C, H, W), (C, H, W) or (H, W), found shape {x.shape}")
    if x.shape[1] == 1:
        x = np.repeat(x, 3, axis=1)
    if normalize:
        if value_range is not None and not isinstance(value_range, tuple):
            raise TypeError("make_grid: value_range has to be a tuple (min, max) if specified")
        x = x.astype(np.float32) if x.dtype.kind != "f" else x.copy()
        if value_range is not None:
            low, high = (np.asarray(v, x.dtype) for v in value_range)
        elif scale_each:
            low, high = x.min(axis=(1, 2, 3), keepdims=True), x.max(axis=(1, 2, 3), keepdims=True)
        else:
            low, high = x.min(), x.max()
        x = (np.clip(x, low, high) - low) / np.maximum(high - low, np.asarray(1e-5, x.dtype))
    if x.shape[0] == 1:
        return Tensor._wrap(np.ascontiguousarray(x[0]))
    n, c, h, w = x.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    p = int(padding)
    # every image with p pixels of padding above and to its left, the missing cells all padding;
    # then one (rows, cols) mosaic by a reshape, and the last p rows / columns of padding
    cells = np.full((rows * cols, c, h + p, w + p), pad_value, dtype=x.dtype)
    cells[:n, :, p:, p:] = x
    grid = cells.reshape(rows, cols, c, h + p, w + p).transpose(2, 0, 3, 1, 4).reshape(c, rows * (h + p), cols * (w + p))
    out = np.full((c, rows * (h + p) + p, cols * (w + p) + p), pad_value, dtype=x.dtype)
    out[:, : rows * (h + p), : cols * (w + p)] = grid
    return Tensor._wrap(out)


def save_image(tensor, fp, format: str | None = None, **kwargs) -> None:  # noqa: A002 - torchvision's name
    """``make_grid(tensor, **kwargs)`` written as an image file: pixels ``x * 255 + 0.5`` clamped to
    0..255 (values in [0, 1] expected). ``fp`` is a path (written atomically; the format from its
    extension unless ``format``) or a binary file object (give ``format``)."""
    from PIL import Image

    grid = make_grid(tensor, **kwargs)._data.astype(np.float32, copy=False)
    pixels = np.clip(grid * np.float32(255) + np.float32(0.5), 0, 255).astype(np.uint8)
    image = Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0)))
    if not isinstance(fp, str | os.PathLike):
        image.save(fp, format=format)
        return
    from convlens.data.cache import atomic_write

    path = Path(fp)
    if format is None:
        format = Image.registered_extensions().get(path.suffix.lower())
        if format is None:
            raise ValueError(f"save_image: {path}: unknown image file extension {path.suffix!r}; pass format= "
                             "(e.g. 'PNG')")
    with atomic_write(path) as f:
        image.save(f, format=format)
