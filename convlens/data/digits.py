"""Prepare a photo or drawing of one digit the way MNIST's were: white ink on black, the ink's
bounding box fitted into 20x20 (aspect kept, antialiased), pasted into 28x28 with its centre of mass
at the centre (LeCun et al.: "centered in a 28x28 image by computing the center of mass")."""

from __future__ import annotations

import numpy as np

from .errors import DataError

__all__ = ["prepare_digit"]


def _to_gray(image) -> np.ndarray:
    from PIL import Image

    if isinstance(image, Image.Image):
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            # transparent areas count as paper: composite over white
            rgba = image.convert("RGBA")
            bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(bg, rgba)
        return np.asarray(image.convert("L"), dtype=np.float32)
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)  # (C, H, W) → (H, W, C)
    if a.ndim == 3:
        a = a[..., :3].astype(np.float32)
        # ITU-R 601-2 luma, what Pillow's convert("L") uses
        a = a @ np.array([0.299, 0.587, 0.114], np.float32)[: a.shape[-1]] if a.shape[-1] == 3 else a[..., 0]
    if a.ndim != 2:
        raise DataError(f"prepare_digit: expected an image (H, W) or (H, W, C), found shape {np.shape(image)}")
    a = a.astype(np.float32)
    if a.size and a.max() <= 1.0 and np.issubdtype(np.asarray(image).dtype, np.floating):
        a = a * 255  # a float image in [0, 1]
    return a


def prepare_digit(image) -> np.ndarray:
    """PIL image or array → uint8 (1, 28, 28), white digit on black, MNIST-style. A blank image → zeros."""
    from PIL import Image

    g = _to_gray(image)
    if g.size == 0:
        raise DataError("prepare_digit: empty image")
    border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    bg = float(np.median(border))
    if bg > 127:  # dark ink on bright paper: invert so ink is bright, like MNIST
        g, bg = 255 - g, 255 - bg
    g = np.clip(g - bg, 0, None)  # remove the paper's grey level
    peak = float(g.max())
    out = np.zeros((1, 28, 28), np.uint8)
    if peak < 1:
        return out
    g *= 255 / peak
    ys, xs = np.nonzero(g > 0.2 * 255)  # the 20% threshold ignores faint noise and shadows
    crop = g[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = crop.shape
    s = 20 / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    patch = np.asarray(
        Image.fromarray(np.clip(crop, 0, 255).astype(np.uint8)).resize((nw, nh), Image.Resampling.LANCZOS),
        dtype=np.float32,
    )
    total = patch.sum()
    if total <= 0:
        return out
    cy = (patch.sum(axis=1) @ np.arange(nh)) / total
    cx = (patch.sum(axis=0) @ np.arange(nw)) / total
    # put the centre of mass on pixel-centre 13.5 (the middle of 0..27), keeping the patch inside
    top = int(np.clip(round(13.5 - cy), 0, 28 - nh))
    left = int(np.clip(round(13.5 - cx), 0, 28 - nw))
    out[0, top : top + nh, left : left + nw] = np.clip(patch, 0, 255).astype(np.uint8)
    return out
