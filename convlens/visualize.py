"""Pictures of what a network computes: feature maps and kernels as image grids (Pillow), training
curves (matplotlib, Agg backend, so no display is needed).

    from convlens.visualize import feature_map_grid, kernel_grid, plot_history
    feature_map_grid(fmaps[0]).save("conv1.png")      # fmaps: (N, C, H, W) from a forward hook
    kernel_grid(model.conv1.weight.detach().numpy()).save("kernels.png")
    plot_history(history, "curves.png")
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["to_uint8", "tile", "feature_map_grid", "kernel_grid", "vector_strip", "plot_history"]


def to_uint8(a: np.ndarray, symmetric: bool = False) -> np.ndarray:
    """Scale values to 0..255 for display: min..max → 0..255, or with ``symmetric`` −m..m → 0..255
    (m = max |a|, so zero is mid-grey: how signed kernels and pre-activation maps are shown).
    A constant array becomes mid-grey (or black when it is all zeros and not symmetric)."""
    a = np.asarray(a, dtype=np.float64)
    finite = np.isfinite(a)
    if not finite.any():
        return np.zeros(a.shape, np.uint8)
    a = np.where(finite, a, 0.0)
    if symmetric:
        m = float(np.abs(a).max())
        scaled = 0.5 + 0.5 * a / m if m > 0 else np.full(a.shape, 0.5)
    else:
        lo, hi = float(a.min()), float(a.max())
        if hi > lo:
            scaled = (a - lo) / (hi - lo)
        else:
            scaled = np.full(a.shape, 0.0 if hi == 0 else 0.5)
    return np.clip(np.rint(scaled * 255), 0, 255).astype(np.uint8)


def tile(images: np.ndarray, columns: int | None = None, pad: int = 1, background: int = 40) -> np.ndarray:
    """Arrange uint8 tiles (N, h, w) or (N, h, w, 3) in a grid with ``pad`` pixels between them.
    The grid is as square as possible unless ``columns`` is given."""
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"tile: expected tiles (N, h, w) or (N, h, w, 3), got shape {images.shape}")
    n, h, w = images.shape[:3]
    cols = columns or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    shape = (rows * (h + pad) + pad, cols * (w + pad) + pad) + images.shape[3:]
    out = np.full(shape, background, dtype=np.uint8)
    for i in range(n):  # one copy per tile (tens of tiles), not per pixel
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y : y + h, x : x + w] = images[i]
    return out


def _upscale(a: np.ndarray, min_size: int) -> np.ndarray:
    """Nearest-neighbour enlargement by an integer factor so the short side reaches ``min_size``."""
    factor = max(1, math.ceil(min_size / max(1, min(a.shape[:2]))))
    return np.repeat(np.repeat(a, factor, axis=0), factor, axis=1) if factor > 1 else a


def feature_map_grid(maps: np.ndarray, per_map: bool = True, min_tile: int = 48, columns: int | None = None):
    """A grid image of one example's feature maps (C, H, W), one grey tile per channel. Each map is
    scaled on its own (``per_map``) or all on one scale (to compare strengths). Returns a PIL image."""
    from PIL import Image

    maps = np.asarray(maps)
    if maps.ndim == 1:
        return vector_strip(maps)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3:
        raise ValueError(f"feature_map_grid: expected maps (C, H, W), got shape {maps.shape}")
    if per_map:
        tiles = np.stack([to_uint8(m) for m in maps])
    else:
        tiles = to_uint8(maps)
    tiles = np.stack([_upscale(t, min_tile) for t in tiles])
    return Image.fromarray(tile(tiles, columns))


def kernel_grid(weight: np.ndarray, min_tile: int = 40, columns: int | None = None):
    """A grid image of convolution kernels (K, C, Fh, Fw): colour tiles when C == 3 (the RGB filters of a
    first layer), otherwise one grey tile per (output, input) channel pair. Signed values are shown with
    zero as mid-grey. Returns a PIL image."""
    from PIL import Image

    w = np.asarray(weight)
    if w.ndim != 4:
        raise ValueError(f"kernel_grid: expected a weight (K, C, Fh, Fw), got shape {w.shape}")
    k, c = w.shape[:2]
    if c == 3:
        tiles = np.stack([to_uint8(np.moveaxis(w[i], 0, -1), symmetric=True) for i in range(k)])
        tiles = np.stack([_upscale(t, min_tile) for t in tiles])
        return Image.fromarray(tile(tiles, columns))
    flat = w.reshape(k * c, *w.shape[2:])
    tiles = np.stack([_upscale(to_uint8(f, symmetric=True), min_tile) for f in flat])
    return Image.fromarray(tile(tiles, columns or (c if c > 1 else None)))


def vector_strip(values: np.ndarray, cell: int = 16):
    """A 1-row image of a vector (a fully connected layer's output), one grey cell per entry."""
    from PIL import Image

    v = to_uint8(np.asarray(values).reshape(1, -1))
    return Image.fromarray(np.repeat(np.repeat(v, cell, axis=0), cell, axis=1))


def plot_history(history: list[dict], path, title: str | None = None) -> Path:
    """Loss and accuracy per epoch (training and, when present, validation) side by side, as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'convlens[plot]'") from None
    if not history:
        raise ValueError("plot_history: the history is empty (no completed epoch)")
    epochs = [h["epoch"] for h in history]

    def series(key):
        return [h.get(key) if h.get(key) is not None else float("nan") for h in history]

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    try:
        for ax, key, label in ((ax_loss, "loss", "loss"), (ax_acc, "accuracy", "accuracy")):
            ax.plot(epochs, series(f"train_{key}"), "o-", label=f"training {label}")
            if any(h.get(f"val_{key}") is not None for h in history):
                ax.plot(epochs, series(f"val_{key}"), "s-", label=f"validation {label}")
            ax.set_xlabel("epoch")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend()
        ax_acc.set_ylim(top=1.0)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path
