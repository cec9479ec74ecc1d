"""Batch transforms: each maps a float32 NumPy batch (N, C, H, W) to another, ``t(batch, rng)``,
vectorised over the batch (no per-image Python loop). Random ones draw only from ``rng``, which the
DataLoader derives from (seed, epoch, batch), so an augmented run is reproducible.

Recipes serialise: ``t.to_dict()`` / ``from_dict(d)`` (JSON-safe), or a spec string ``from_spec("flip,shift")``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "Transform", "Compose", "Normalize", "RandomHorizontalFlip", "RandomShift", "RandomCrop", "Pad",
    "from_dict", "from_spec",
]

_REGISTRY: dict[str, type[Transform]] = {}


class Transform:
    """Base class. Subclasses list their constructor arguments in ``_fields``."""

    _fields: tuple[str, ...] = ()

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        _REGISTRY[cls.__name__] = cls

    def __call__(self, batch: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        raise NotImplementedError

    def to_dict(self) -> dict:
        d = {"name": type(self).__name__}
        for f in self._fields:
            v = getattr(self, f)
            d[f] = list(v) if isinstance(v, tuple | np.ndarray) else v
        return d

    def __repr__(self) -> str:
        args = ", ".join(f"{f}={_fmt(getattr(self, f))}" for f in self._fields)
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.to_dict() == other.to_dict()


def _fmt(v) -> str:
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, list | tuple):
        return "(" + ", ".join(f"{x:.4g}" if isinstance(x, float) else repr(x) for x in v) + ")"
    return repr(v)


def _rng(rng):
    return rng if rng is not None else np.random.default_rng()


def _check(batch: np.ndarray, who: str) -> None:
    if batch.ndim != 4:
        raise ValueError(f"{who}: expected a batch of shape (N, C, H, W), found shape {batch.shape}")


class Compose(Transform):
    """Apply transforms in order."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, batch, rng=None):
        rng = _rng(rng)
        for t in self.transforms:
            batch = t(batch, rng)
        return batch

    def to_dict(self) -> dict:
        return {"name": "Compose", "transforms": [t.to_dict() for t in self.transforms]}

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(map(repr, self.transforms)) + "])"


class Normalize(Transform):
    """``(x - mean[c]) / std[c]`` per channel."""

    _fields = ("mean", "std")

    def __init__(self, mean, std):
        self.mean = tuple(float(m) for m in np.atleast_1d(mean))
        self.std = tuple(float(s) for s in np.atleast_1d(std))
        if len(self.mean) != len(self.std) or min(self.std) <= 0:
            raise ValueError(f"Normalize: mean {self.mean} and std {self.std} must match in length, std > 0")
        self._m = np.array(self.mean, np.float32)[None, :, None, None]
        self._inv = (1 / np.array(self.std, np.float32))[None, :, None, None]

    def __call__(self, batch, rng=None):
        _check(batch, "Normalize")
        if len(self.mean) not in (1, batch.shape[1]):
            raise ValueError(f"Normalize: {len(self.mean)} channel means for a batch with {batch.shape[1]} channels")
        return ((batch - self._m) * self._inv).astype(np.float32, copy=False)


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right with probability ``p`` (one Bernoulli draw per image)."""

    _fields = ("p",)

    def __init__(self, p: float = 0.5):
        self.p = float(p)

    def __call__(self, batch, rng=None):
        _check(batch, "RandomHorizontalFlip")
        flip = np.flatnonzero(_rng(rng).random(batch.shape[0]) < self.p)
        # copy + overwrite the flipped rows: ~3x faster than np.where over the whole batch
        out = batch.copy()
        out[flip] = batch[flip, :, :, ::-1]
        return out


def _gather_windows(padded: np.ndarray, top: np.ndarray, left: np.ndarray, h: int, w: int) -> np.ndarray:
    """out[n] = padded[n, :, top[n]:top[n]+h, left[n]:left[n]+w], as one fancy-indexing gather.

    sliding_window_view is a zero-copy (N, C, Hp-h+1, Wp-w+1, h, w) view; indexing axes 0, 2, 3 with
    arrays separated by a slice puts the broadcast axis first, giving (N, C, h, w).
    """
    win = sliding_window_view(padded, (h, w), axis=(2, 3))
    return win[np.arange(padded.shape[0]), :, top, left]


_NP_MODES = {"constant": "constant", "edge": "edge", "reflect": "reflect", "symmetric": "symmetric"}


def _pad_amounts(padding) -> tuple[int, int, int, int]:
    """torchvision's convention → (left, top, right, bottom)."""
    if isinstance(padding, int):
        return (padding,) * 4
    p = tuple(int(x) for x in padding)
    if len(p) == 2:
        return (p[0], p[1], p[0], p[1])
    if len(p) == 4:
        return p
    raise ValueError(f"padding must be an int, (lr, tb) or (left, top, right, bottom), found {padding}")


def _pad(batch, padding, fill=0.0, mode="constant"):
    l, t, r, b = _pad_amounts(padding)
    if not any((l, t, r, b)):
        return batch
    if mode not in _NP_MODES:
        raise ValueError(f"padding_mode must be one of {', '.join(_NP_MODES)}, found {mode!r}")
    widths = ((0, 0), (0, 0), (t, b), (l, r))
    if mode == "constant":
        return np.pad(batch, widths, mode="constant", constant_values=fill)
    return np.pad(batch, widths, mode=_NP_MODES[mode])


class Pad(Transform):
    """Pad the borders (torchvision's ``padding``, ``fill``, ``padding_mode``)."""

    _fields = ("padding", "fill", "padding_mode")

    def __init__(self, padding, fill: float = 0.0, padding_mode: str = "constant"):
        self.padding = padding if isinstance(padding, int) else tuple(padding)
        self.fill, self.padding_mode = fill, padding_mode
        _pad_amounts(self.padding)

    def __call__(self, batch, rng=None):
        _check(batch, "Pad")
        return _pad(batch, self.padding, self.fill, self.padding_mode)


class RandomShift(Transform):
    """Translate each image by integer (dx, dy) drawn uniformly in [-max_shift, max_shift], zero fill
    (the ConvNetJS CIFAR-10 augmentation). Same size out as in."""

    _fields = ("max_shift",)

    def __init__(self, max_shift: int = 2):
        self.max_shift = int(max_shift)

    def __call__(self, batch, rng=None):
        _check(batch, "RandomShift")
        m = self.max_shift
        if m == 0:
            return batch
        n, _, h, w = batch.shape
        d = _rng(rng).integers(-m, m + 1, size=(2, n))
        # out[y, x] = in[y - dy, x - dx]; in the padded frame (offset m) the window starts at m - d
        padded = np.pad(batch, ((0, 0), (0, 0), (m, m), (m, m)))
        return _gather_windows(padded, m - d[1], m - d[0], h, w)


class RandomCrop(Transform):
    """A random ``size`` crop per image after optional padding (torchvision's arguments)."""

    _fields = ("size", "padding", "fill", "padding_mode")

    def __init__(self, size, padding=0, fill: float = 0.0, padding_mode: str = "constant"):
        self.size = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
        self.padding = padding if isinstance(padding, int) else tuple(padding)
        self.fill, self.padding_mode = fill, padding_mode
        _pad_amounts(self.padding)

    def __call__(self, batch, rng=None):
        _check(batch, "RandomCrop")
        padded = _pad(batch, self.padding, self.fill, self.padding_mode)
        n, _, hp, wp = padded.shape
        h, w = self.size
        if h > hp or w > wp:
            raise ValueError(f"RandomCrop: crop {h}x{w} is larger than the (padded) image {hp}x{wp}")
        rng = _rng(rng)
        top = rng.integers(0, hp - h + 1, size=n)
        left = rng.integers(0, wp - w + 1, size=n)
        return _gather_windows(padded, top, left, h, w)


def from_dict(d: dict) -> Transform:
    """Inverse of ``to_dict``."""
    d = dict(d)
    name = d.pop("name")
    if name == "Compose":
        return Compose([from_dict(x) for x in d["transforms"]])
    if name not in _REGISTRY:
        raise ValueError(f"unknown transform {name!r}: expected one of {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**d)


_SPEC = {"flip": RandomHorizontalFlip, "shift": RandomShift, "crop": RandomCrop, "pad": Pad}


def from_spec(spec: str | None) -> Compose:
    """``"flip,shift"``, ``"flip:0.3,shift:4,crop:32:4,pad:2,normalize:0.1307:0.3081"`` → Compose.

    Arguments follow the name, separated by ':' in constructor order; normalize takes all means then
    all stds (``normalize:m1:m2:m3:s1:s2:s3``).
    """
    out: list[Transform] = []
    for tok in (spec or "").split(","):
        tok = tok.strip()
        if not tok or tok == "none":
            continue
        name, *args = tok.split(":")
        name = name.lower()
        if name == "normalize":
            vals = [float(a) for a in args]
            if not vals or len(vals) % 2:
                raise ValueError(f"transform spec {tok!r}: normalize needs means then stds, as many of each")
            out.append(Normalize(vals[: len(vals) // 2], vals[len(vals) // 2 :]))
        elif name in _SPEC:
            conv = [float(a) if "." in a else int(a) for a in args]
            out.append(_SPEC[name](*conv))
        else:
            raise ValueError(f"transform spec {tok!r}: unknown name {name!r}, expected flip, shift, crop, pad, "
                             "normalize")
    return Compose(out)
