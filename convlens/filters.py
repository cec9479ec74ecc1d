"""Hand-designed convolution kernels, the ones a course shows before any learning happens.

Each kernel is a float32 NumPy array (Fh, Fw). They are applied with ``F.conv2d``, which like every deep
learning library computes a cross-correlation (the kernel is not flipped): ``out[y, x] = Σ k[i, j] ·
in[y + i, x + j]``. So ``sobel-x`` is large where the image gets brighter from left to right, and a
kernel is read the way it is printed.

    from convlens.filters import KERNELS, apply_kernel
    fmap = apply_kernel(gray_image, KERNELS["sobel-x"], padding=1)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

__all__ = ["KERNELS", "get_kernel", "load_kernel_file", "apply_kernel", "output_size_formula"]


def _k(rows, scale: float = 1.0) -> np.ndarray:
    return (np.array(rows, dtype=np.float64) * scale).astype(np.float32)


KERNELS: dict[str, np.ndarray] = {
    # horizontal gradient (responds to vertical edges), smoothed vertically with weights 1, 2, 1
    "sobel-x": _k([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]),
    # vertical gradient (responds to horizontal edges): brighter below → positive
    "sobel-y": _k([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]),
    # the same gradients with uniform smoothing
    "prewitt-x": _k([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]]),
    "prewitt-y": _k([[-1, -1, -1], [0, 0, 0], [1, 1, 1]]),
    # 3x3 box blur: the mean of the neighbourhood (weights sum to 1, so brightness is kept)
    "blur": _k([[1, 1, 1], [1, 1, 1], [1, 1, 1]], 1 / 9),
    # identity plus a negative Laplacian: 5·centre − 4 neighbours (weights sum to 1)
    "sharpen": _k([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
    # discrete Laplacian (second derivative): zero on flat areas and linear ramps, large at edges/points
    "laplacian": _k([[0, 1, 0], [1, -4, 1], [0, 1, 0]]),
}


def load_kernel_file(path) -> np.ndarray:
    """A kernel from a file: JSON (a nested list, or ``{"kernel": [[...]]}``), or text/CSV with one row
    per line and numbers separated by commas, semicolons or white space. Lines starting with # are
    comments."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read the kernel file ({type(e).__name__}: {e})") from None
    rows: list
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except ValueError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
        rows = data.get("kernel") if isinstance(data, dict) else data
    else:
        rows = []
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                rows.append([t for t in re.split(r"[,;\s]+", line) if t])
    try:
        kernel = np.array(rows, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{path}: expected a rectangular table of numbers (one kernel row per line), got {str(rows)[:80]}"
        ) from None
    if kernel.ndim == 1:
        kernel = kernel[None, :]
    if kernel.ndim != 2 or kernel.size == 0:
        raise ValueError(f"{path}: expected a 2-d kernel (rows of numbers), got shape {kernel.shape}")
    if not np.all(np.isfinite(kernel)):
        raise ValueError(f"{path}: the kernel contains non-finite values")
    return kernel.astype(np.float32)


def get_kernel(name_or_path) -> np.ndarray:
    """A kernel by name (see `KERNELS`) or from a file (`load_kernel_file`); a copy, safe to modify."""
    key = str(name_or_path).lower()
    if key in KERNELS:
        return KERNELS[key].copy()
    path = Path(name_or_path)
    if path.is_file():
        return load_kernel_file(path)
    raise ValueError(
        f"unknown kernel {str(name_or_path)!r}: expected one of {', '.join(KERNELS)} or a file of numbers"
    )


def apply_kernel(image: np.ndarray, kernel: np.ndarray, stride: int = 1, padding: int = 0,
                 padding_mode: str = "zeros") -> np.ndarray:
    """Convolve a grayscale image (H, W) with a kernel (Fh, Fw) through ``F.conv2d``; returns (H₂, W₂)
    float32 with H₂ = (H − Fh + 2P)/S + 1 (rounded down), likewise W₂."""
    from convlens.nn import functional as F
    from convlens.tensor import Tensor

    image = np.asarray(image, dtype=np.float32)
    kernel = np.asarray(kernel, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"apply_kernel: expected a grayscale image (H, W), got shape {image.shape}")
    if kernel.ndim != 2:
        raise ValueError(f"apply_kernel: expected a kernel (Fh, Fw), got shape {kernel.shape}")
    x = Tensor._wrap(image[None, None])
    w = Tensor._wrap(kernel[None, None])
    out = F.conv2d(x, w, stride=stride, padding=padding, padding_mode=padding_mode)
    return out._data[0, 0]


def output_size_formula(size: int, kernel: int, padding: int, stride: int) -> str:
    """The course's formula with the numbers filled in, e.g. ``(28 − 3 + 2·1)/1 + 1 = 28``."""
    from convlens.nn.shape import conv_output_size

    out = conv_output_size(size, kernel, stride, padding)
    exact = (size - kernel + 2 * padding) / stride + 1
    note = "" if exact == out else f" (rounded down from {exact:g})"
    return f"({size} − {kernel} + 2·{padding})/{stride} + 1 = {out}{note}"
