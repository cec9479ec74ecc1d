"""The image arithmetic behind every transform, written once for batches ``(..., C, H, W)``.

Each function works on a NumPy array of any leading shape and any dtype that makes sense (the
geometric ones move data and so work on uint8 images as well as on float tensors), vectorised over the
leading dimensions: no Python loop over images or pixels. ``convlens.data.transforms`` calls them on
batches (``t(batch, rng)``, per-image random parameters) and on single images (torchvision's
``t(img)``), so a transform has one implementation whichever way it is called.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "to_float", "pad_amounts", "pad", "crop", "crop_windows", "center_crop", "hflip", "vflip", "normalize",
    "rgb_to_grayscale", "resize", "resize_output_size", "PADDING_MODES",
]

PADDING_MODES = ("constant", "edge", "reflect", "symmetric")


def to_float(x: np.ndarray) -> np.ndarray:
    """uint8 → float32 ``x / 255`` (a division, not a multiplication by 1/255: bit-identical to
    torchvision's ``ToTensor``, and 255 maps to exactly 1.0)."""
    out = x.astype(np.float32)
    np.divide(out, np.float32(255), out=out)
    return out


def pad_amounts(padding) -> tuple[int, int, int, int]:
    """torchvision's ``padding`` (int, ``(left/right, top/bottom)`` or ``(left, top, right, bottom)``)
    → ``(left, top, right, bottom)``."""
    if isinstance(padding, int | np.integer):
        return (int(padding),) * 4
    p = tuple(int(x) for x in padding)
    if len(p) == 1:
        return p * 4
    if len(p) == 2:
        return (p[0], p[1], p[0], p[1])
    if len(p) == 4:
        return p
    raise ValueError(f"padding must be an int, (lr, tb) or (left, top, right, bottom), found {padding!r}")


def pad(x: np.ndarray, padding, fill=0, mode: str = "constant") -> np.ndarray:
    """Pad the last two dimensions. ``fill`` (constant mode) is a number or one per channel; the other
    modes are NumPy's: edge (repeat the border), reflect (mirror without it), symmetric (with it)."""
    l, t, r, b = pad_amounts(padding)
    if mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {', '.join(PADDING_MODES)}, found {mode!r}")
    if min(l, t, r, b) < 0:
        raise ValueError(f"padding must be non-negative, found {(l, t, r, b)} (left, top, right, bottom)")
    if not any((l, t, r, b)):
        return x
    if mode != "constant":
        widths = [(0, 0)] * (x.ndim - 2) + [(t, b), (l, r)]
        return np.pad(x, widths, mode=mode)
    h, w = x.shape[-2:]
    out = np.empty(x.shape[:-2] + (h + t + b, w + l + r), dtype=x.dtype)
    fill = np.asarray(fill, dtype=np.float64)
    if fill.ndim == 1 and fill.size not in (1, x.shape[-3]):
        raise ValueError(f"fill has {fill.size} values for images with {x.shape[-3]} channels")
    out[...] = fill.reshape(-1, 1, 1).astype(x.dtype) if fill.ndim else fill.astype(x.dtype)
    out[..., t : t + h, l : l + w] = x
    return out


def crop(x: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    """The same window of every image (torchvision's ``crop``; the window must lie inside)."""
    return x[..., top : top + height, left : left + width]


def crop_windows(x: np.ndarray, top: np.ndarray, left: np.ndarray, height: int, width: int) -> np.ndarray:
    """``out[n] = x[n, :, top[n]:top[n]+height, left[n]:left[n]+width]`` for a batch (N, C, H, W), as one
    gather: sliding_window_view is a zero-copy (N, C, H-h+1, W-w+1, h, w) view, and indexing axes 0, 2
    and 3 with arrays separated by a slice puts the broadcast axis first, giving (N, C, h, w)."""
    win = sliding_window_view(x, (height, width), axis=(2, 3))
    return win[np.arange(x.shape[0]), :, top, left]


def center_crop(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """The central ``height x width`` window, zero-padded first where the image is smaller
    (torchvision's rounding: top = round((H - h) / 2), left = round((W - w) / 2))."""
    h, w = x.shape[-2:]
    if height > h or width > w:
        pl, pt = max(width - w, 0) // 2, max(height - h, 0) // 2
        x = pad(x, (pl, pt, max(width - w, 0) - pl, max(height - h, 0) - pt))
        h, w = x.shape[-2:]
    top, left = int(round((h - height) / 2.0)), int(round((w - width) / 2.0))
    return crop(x, top, left, height, width)


def hflip(x: np.ndarray, which: np.ndarray | None = None) -> np.ndarray:
    """Mirror left-right: every image, or the images where ``which`` (bool, one per image) is set
    (copy + overwrite those rows: ~3x faster than np.where over the whole batch)."""
    if which is None:
        return x[..., ::-1]
    out = x.copy()
    out[which] = x[which][..., ::-1]
    return out


def vflip(x: np.ndarray, which: np.ndarray | None = None) -> np.ndarray:
    """Mirror top-bottom, as ``hflip``."""
    if which is None:
        return x[..., ::-1, :]
    out = x.copy()
    out[which] = x[which][..., ::-1, :]
    return out


def normalize(x: np.ndarray, mean, std) -> np.ndarray:
    """``(x - mean[c]) / std[c]`` per channel in float32, the order torchvision computes it in."""
    m = np.asarray(mean, np.float32).reshape(-1, 1, 1)
    s = np.asarray(std, np.float32).reshape(-1, 1, 1)
    if m.shape[0] not in (1, x.shape[-3]):
        raise ValueError(f"Normalize: {m.shape[0]} channel means for images with {x.shape[-3]} channels")
    return ((x - m) / s).astype(np.float32, copy=False)


def rgb_to_grayscale(x: np.ndarray, num_output_channels: int = 1) -> np.ndarray:
    """ITU-R 601-2 luma of RGB images (..., 3, H, W) → (..., 1 or 3, H, W). uint8 images use Pillow's
    fixed-point formula, ``(19595 R + 38470 G + 7471 B + 2^15) >> 16``, so the result is bit-identical
    to ``Image.convert("L")``; float images use torchvision's ``0.2989 R + 0.587 G + 0.114 B``."""
    if x.shape[-3] == 1:
        gray = x
    elif x.shape[-3] not in (3, 4):
        raise ValueError(f"Grayscale: expected 1, 3 or 4 (RGBA) channels, found {x.shape[-3]}")
    elif x.dtype == np.uint8:
        r, g, b = (x[..., c : c + 1, :, :].astype(np.uint32) for c in range(3))
        gray = ((19595 * r + 38470 * g + 7471 * b + 0x8000) >> 16).astype(np.uint8)
    else:
        r, g, b = (x[..., c : c + 1, :, :] for c in range(3))
        gray = (0.2989 * r + 0.587 * g + 0.114 * b).astype(x.dtype, copy=False)
    if num_output_channels == 3:
        return np.repeat(gray, 3, axis=-3)
    return gray


def resize_output_size(h: int, w: int, size, max_size: int | None = None) -> tuple[int, int]:
    """torchvision's rule: ``size`` (h, w) is taken as is; an int (or a 1-sequence) is the new
    *shorter* edge, the longer one keeping the aspect ratio (truncated), capped at ``max_size``."""
    if isinstance(size, int | np.integer) or len(size) == 1:
        requested = int(size if isinstance(size, int | np.integer) else size[0])
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = requested, int(requested * long / short)
        if max_size is not None:
            if max_size <= requested:
                raise ValueError(f"max_size = {max_size} must be strictly greater than the requested size "
                                 f"for the smaller edge, size = {requested}")
            if new_long > max_size:
                new_short, new_long = int(max_size * new_short / new_long), max_size
        return (new_long, new_short) if w <= h else (new_short, new_long)
    if max_size is not None:
        raise ValueError("max_size should only be passed if size specifies the length of the smaller edge")
    return int(size[0]), int(size[1])


@functools.lru_cache(maxsize=64)
def _linear_weights(n_in: int, n_out: int, antialias: bool) -> np.ndarray:
    """(n_out, n_in) matrix of Pillow's bilinear ("triangle") resampling: output pixel i is centred at
    (i + 0.5) * scale in input coordinates; when shrinking with antialias the triangle is widened by
    the scale so that every input pixel contributes; each row is normalised to sum to 1. This is what
    torchvision computes for tensors with ``antialias=True`` and plain bilinear (align_corners=False)
    without it."""
    scale = n_in / n_out
    support = max(scale, 1.0) if antialias else 1.0
    center = (np.arange(n_out) + 0.5) * scale
    lo = np.maximum((center - support + 0.5).astype(np.int64), 0)
    hi = np.minimum((center + support + 0.5).astype(np.int64), n_in)
    j = np.arange(n_in)
    w = np.clip(1.0 - np.abs((j[None, :] + 0.5 - center[:, None]) / support), 0.0, None)
    w[(j[None, :] < lo[:, None]) | (j[None, :] >= hi[:, None])] = 0.0
    return w / w.sum(axis=1, keepdims=True)


def resize(x: np.ndarray, height: int, width: int, interpolation: str = "bilinear",
           antialias: bool = True) -> np.ndarray:
    """Resize the last two dimensions. ``bilinear``: two matrix products with `_linear_weights`
    (``out = Wy @ x @ Wxᵀ``, float); ``nearest``: torchvision's (and torch's ``interpolate``) index rule
    ``src = floor(dst * in / out)``. uint8 input is resized in float32 and rounded back."""
    h, w = x.shape[-2:]
    if (h, w) == (height, width):
        return x
    if interpolation == "nearest":
        rows = np.minimum((np.arange(height) * (h / height)).astype(np.int64), h - 1)
        cols = np.minimum((np.arange(width) * (w / width)).astype(np.int64), w - 1)
        return x[..., rows[:, None], cols[None, :]]
    if interpolation != "bilinear":
        raise ValueError(f"resize: interpolation {interpolation!r} is not implemented for arrays and tensors "
                         "(expected nearest or bilinear; PIL images support every Pillow filter)")
    dtype = x.dtype
    xf = x.astype(np.float32, copy=False)
    out = _linear_weights(h, height, antialias).astype(np.float32) @ xf
    out = out @ _linear_weights(w, width, antialias).astype(np.float32).T
    if dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.astype(dtype, copy=False)
