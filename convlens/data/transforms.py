"""Transforms, callable two ways with one implementation (the arithmetic is in ``imageops``):

- ``t(batch, rng)`` — convlens's batch form: a NumPy batch (N, C, H, W) → another, vectorised, each
  image drawing its own random parameters from ``rng`` (the DataLoader passes the batch's stream,
  derived from (seed, epoch, batch), so an augmented run is reproducible and resumable);
- ``t(img)`` — torchvision's form: one PIL image, tensor or array (..., C, H, W) → the same kind of
  thing, random parameters drawn once (shared by any leading dimensions, as torchvision does) from
  ``convlens.utils.data.worker.sample_rng()``.

``convlens.vision.transforms`` is this module plus the conversions (ToTensor, ToPILImage, Lambda...).
A torchvision-style ``Compose`` whose steps all have a batch form runs on whole batches: a vision data
set hands the DataLoader a batch reader built by `batch_plan` (see convlens/vision/datasets).

Recipes serialise: ``t.to_dict()`` / ``from_dict(d)`` (JSON-safe), or a spec string ``from_spec("flip,shift")``.
"""

from __future__ import annotations

import enum

import numpy as np

from convlens.utils.data.worker import sample_rng

from . import imageops as ops
from .images import is_pil, on_image

__all__ = [
    "Transform", "Compose", "Normalize", "RandomHorizontalFlip", "RandomVerticalFlip", "RandomShift",
    "RandomCrop", "Pad", "CenterCrop", "Grayscale", "Resize", "InterpolationMode", "batch_plan", "from_dict",
    "from_spec",
]

_REGISTRY: dict[str, type[Transform]] = {}


class Transform:
    """Base class. Subclasses list their constructor arguments in ``_fields``, implement ``batch``
    (batch form) and ``image`` (single-image form), and say in ``accepts`` which batches they take:
    ``"pil"`` (uint8 pixels, before ToTensor) and/or ``"tensor"`` (after it)."""

    _fields: tuple[str, ...] = ()
    accepts: tuple[str, ...] = ("pil", "tensor")

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        _REGISTRY[cls.__name__] = cls

    def __call__(self, x, rng: np.random.Generator | None = None):
        return self.image(x) if rng is None else self.batch(x, rng)

    def batch(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise TypeError(f"{type(self).__name__} has no batch form; call it on one image, t(img)")

    def image(self, img):
        raise NotImplementedError

    def batch_kind(self, kind: str) -> str | None:
        """The kind of batch this step leaves (None: it cannot run on a ``kind`` batch)."""
        return kind if kind in self.accepts else None

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
    if isinstance(v, enum.Enum):
        return f"{type(v).__name__}.{v.name}"
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, list | tuple):
        return "(" + ", ".join(f"{x:.4g}" if isinstance(x, float) else repr(x) for x in v) + ")"
    return repr(v)


def _check(batch: np.ndarray, who: str) -> None:
    if not isinstance(batch, np.ndarray) or batch.ndim != 4:
        raise ValueError(f"{who}: expected a batch of shape (N, C, H, W), found shape {np.shape(batch)}")


def _pair(size, who: str) -> tuple[int, int]:
    if isinstance(size, int | np.integer):
        return int(size), int(size)
    s = tuple(int(v) for v in size)
    if len(s) == 1:
        return s[0], s[0]
    if len(s) != 2:
        raise ValueError(f"{who}: size must be an int or (h, w), found {size!r}")
    return s


class Compose(Transform):
    """Apply transforms in order: ``Compose([...])(img)`` (any callables, as torchvision's) or
    ``Compose([...])(batch, rng)`` (every step must have a batch form)."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x, rng=None):
        for t in self.transforms:
            if rng is None:
                x = t(x)
            elif isinstance(t, Transform):
                x = t(x, rng)
            else:
                raise TypeError(f"Compose: {t!r} has no batch form; call the Compose on one image instead")
        return x

    def batch_kind(self, kind):
        for t in self.transforms:
            kind = _step_kind(t, kind)
            if kind is None:
                return None
        return kind

    def to_dict(self) -> dict:
        return {"name": "Compose", "transforms": [t.to_dict() for t in self.transforms]}

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(map(repr, self.transforms)) + "])"


def _step_kind(t, kind: str) -> str | None:
    # only convlens's own transforms are known to have an equivalent batch form (a user subclass may
    # have overridden __call__ with something else)
    if not isinstance(t, Transform) or not type(t).__module__.startswith("convlens."):
        return None
    if type(t).__call__ is not Transform.__call__ and not isinstance(t, Compose):
        return None
    return t.batch_kind(kind)


def batch_plan(transform, kind: str = "pil"):
    """``f(batch, rng)`` running ``transform`` on whole batches of ``kind`` ("pil": uint8 pixels as a
    data set stores them), when every step has a batch form and the result is a tensor batch (it went
    through ToTensor); else None (the loader then calls the transform image by image)."""
    if transform is None or _step_kind(transform, kind) != "tensor":
        return None
    return lambda batch, rng: transform(batch, rng)


class Normalize(Transform):
    """``(x - mean[c]) / std[c]`` per channel, on tensors (torchvision's ``Normalize(mean, std)``;
    ``inplace`` is accepted, the result is always a new array)."""

    _fields = ("mean", "std")
    accepts = ("tensor",)

    def __init__(self, mean, std, inplace: bool = False):
        self.mean = tuple(float(m) for m in np.atleast_1d(mean))
        self.std = tuple(float(s) for s in np.atleast_1d(std))
        if len(self.mean) != len(self.std) or min(self.std) <= 0:
            raise ValueError(f"Normalize: mean {self.mean} and std {self.std} must match in length, std > 0")
        self.inplace = inplace

    def batch(self, x, rng):
        _check(x, "Normalize")
        return ops.normalize(x, self.mean, self.std)

    def image(self, img):
        if is_pil(img):
            raise TypeError("Normalize: img should be a tensor image, got a PIL image (put ToTensor() before "
                            "Normalize)")
        return on_image(img, lambda a: ops.normalize(a, self.mean, self.std), "Normalize")


class RandomHorizontalFlip(Transform):
    """Mirror left-right with probability ``p`` (batch form: one Bernoulli draw per image)."""

    _fields = ("p",)

    def __init__(self, p: float = 0.5):
        self.p = float(p)

    def batch(self, x, rng):
        _check(x, type(self).__name__)
        return self._flip(x, rng.random(x.shape[0]) < self.p)

    def image(self, img):
        if sample_rng().random() < self.p:
            return on_image(img, self._flip, type(self).__name__)
        return img

    _flip = staticmethod(ops.hflip)


class RandomVerticalFlip(RandomHorizontalFlip):
    """Mirror top-bottom with probability ``p``."""

    _flip = staticmethod(ops.vflip)


class Pad(Transform):
    """Pad the borders (torchvision's ``padding``, ``fill``, ``padding_mode``; fill is in the image's
    units: 0..255 on PIL images, the tensor's values after ToTensor)."""

    _fields = ("padding", "fill", "padding_mode")

    def __init__(self, padding, fill=0, padding_mode: str = "constant"):
        self.padding = padding if isinstance(padding, int) else tuple(padding)
        self.fill, self.padding_mode = fill, padding_mode
        ops.pad_amounts(self.padding)
        if padding_mode not in ops.PADDING_MODES:
            raise ValueError(f"Pad: padding_mode must be one of {', '.join(ops.PADDING_MODES)}, found {padding_mode!r}")

    def _pad(self, a):
        return ops.pad(a, self.padding, self.fill, self.padding_mode)

    def batch(self, x, rng):
        _check(x, "Pad")
        return self._pad(x)

    def image(self, img):
        return on_image(img, self._pad, "Pad")


class RandomShift(Transform):
    """Translate by integer (dx, dy) drawn uniformly in [-max_shift, max_shift], zero fill, same size
    out as in (the ConvNetJS CIFAR-10 augmentation; convlens's own)."""

    _fields = ("max_shift",)

    def __init__(self, max_shift: int = 2):
        self.max_shift = int(max_shift)

    def _shift(self, x, d):
        # out[y, x] = in[y - dy, x - dx]; in the padded frame (offset m) the window starts at m - d
        m, (h, w) = self.max_shift, x.shape[-2:]
        return ops.crop_windows(ops.pad(x, m), m - d[1], m - d[0], h, w)

    def batch(self, x, rng):
        _check(x, "RandomShift")
        if self.max_shift == 0:
            return x
        return self._shift(x, rng.integers(-self.max_shift, self.max_shift + 1, size=(2, x.shape[0])))

    def image(self, img):
        d = sample_rng().integers(-self.max_shift, self.max_shift + 1, size=2)
        m = self.max_shift

        def shift(a):
            h, w = a.shape[-2:]
            return ops.crop(ops.pad(a, m), m - int(d[1]), m - int(d[0]), h, w)

        return on_image(img, shift, "RandomShift")


class RandomCrop(Transform):
    """A random ``size`` crop after optional ``padding`` (torchvision's arguments: ``pad_if_needed``
    pads an image smaller than the crop by the difference on both sides; fill in the image's units)."""

    _fields = ("size", "padding", "pad_if_needed", "fill", "padding_mode")

    def __init__(self, size, padding=None, pad_if_needed: bool = False, fill=0, padding_mode: str = "constant"):
        self.size = _pair(size, "RandomCrop")
        self.padding = padding if padding is None or isinstance(padding, int) else tuple(padding)
        self.pad_if_needed, self.fill, self.padding_mode = bool(pad_if_needed), fill, padding_mode
        if padding is not None:
            ops.pad_amounts(self.padding)
        if padding_mode not in ops.PADDING_MODES:
            raise ValueError(f"RandomCrop: padding_mode must be one of {', '.join(ops.PADDING_MODES)}, found "
                             f"{padding_mode!r}")

    def _padded(self, a):
        if self.padding is not None:
            a = ops.pad(a, self.padding, self.fill, self.padding_mode)
        (h, w), (th, tw) = a.shape[-2:], self.size
        if self.pad_if_needed and (w < tw or h < th):
            dw, dh = max(tw - w, 0), max(th - h, 0)
            a = ops.pad(a, (dw, dh), self.fill, self.padding_mode)
        (h, w) = a.shape[-2:]
        if th > h or tw > w:
            raise ValueError(f"RandomCrop: required crop size {(th, tw)} is larger than the (padded) input image "
                             f"size {(h, w)}")
        return a

    def batch(self, x, rng):
        _check(x, "RandomCrop")
        x = self._padded(x)
        (n, _, h, w), (th, tw) = x.shape, self.size
        top = rng.integers(0, h - th + 1, size=n)
        left = rng.integers(0, w - tw + 1, size=n)
        return ops.crop_windows(x, top, left, th, tw)

    def image(self, img):
        def crop(a):
            a = self._padded(a)
            (h, w), (th, tw) = a.shape[-2:], self.size
            rng = sample_rng()
            top, left = int(rng.integers(0, h - th + 1)), int(rng.integers(0, w - tw + 1))
            return ops.crop(a, top, left, th, tw)

        return on_image(img, crop, "RandomCrop")


class CenterCrop(Transform):
    """The central ``size`` window (zero-padded first where the image is smaller), as torchvision."""

    _fields = ("size",)

    def __init__(self, size):
        self.size = _pair(size, "CenterCrop")

    def _crop(self, a):
        return ops.center_crop(a, *self.size)

    def batch(self, x, rng):
        _check(x, "CenterCrop")
        return np.ascontiguousarray(self._crop(x))

    def image(self, img):
        return on_image(img, self._crop, "CenterCrop")


class Grayscale(Transform):
    """RGB → luma, 1 or 3 channels out (bit-identical to Pillow's ``convert("L")`` on uint8 images)."""

    _fields = ("num_output_channels",)

    def __init__(self, num_output_channels: int = 1):
        if num_output_channels not in (1, 3):
            raise ValueError(f"Grayscale: num_output_channels should be either 1 or 3, got {num_output_channels!r}")
        self.num_output_channels = num_output_channels

    def _gray(self, a):
        return ops.rgb_to_grayscale(a, self.num_output_channels)

    def batch(self, x, rng):
        _check(x, "Grayscale")
        return self._gray(x)

    def image(self, img):
        if is_pil(img):
            from .images import chw_to_pil, pil_to_chw

            rgb = img if img.mode in ("L", "RGB") else img.convert("RGB")
            return chw_to_pil(self._gray(pil_to_chw(rgb)), "L" if self.num_output_channels == 1 else "RGB")
        return on_image(img, self._gray, "Grayscale")


class InterpolationMode(enum.Enum):
    """torchvision's interpolation names; PIL images take all of them, tensors nearest and bilinear."""

    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


def _interpolation(value) -> InterpolationMode:
    if isinstance(value, InterpolationMode):
        return value
    try:
        return InterpolationMode(str(value).lower())
    except ValueError:
        raise ValueError(f"unknown interpolation {value!r}: expected one of "
                         f"{', '.join(m.value for m in InterpolationMode)}") from None


def resize_image(img, height: int, width: int, interpolation: InterpolationMode, antialias: bool = True):
    """A PIL image resized with Pillow's filter (what torchvision does for PIL images); a tensor or
    array with ``imageops.resize``."""
    if is_pil(img):
        from PIL import Image

        if (img.height, img.width) == (height, width):
            return img
        filters = {"nearest": Image.Resampling.NEAREST, "nearest-exact": Image.Resampling.NEAREST,
                   "bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
                   "box": Image.Resampling.BOX, "hamming": Image.Resampling.HAMMING,
                   "lanczos": Image.Resampling.LANCZOS}
        return img.resize((width, height), filters[interpolation.value])
    return on_image(img, lambda a: ops.resize(a, height, width, interpolation.value, antialias), "Resize")


class Resize(Transform):
    """Resize to ``size`` (h, w), or make the shorter edge ``size`` (an int) keeping the aspect ratio.
    PIL images go through Pillow; tensors (and batches) through separable antialiased bilinear
    weights, as torchvision's ``antialias=True``."""

    _fields = ("size", "max_size", "antialias")
    accepts = ("tensor",)

    def __init__(self, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias: bool = True):
        self.size = size if isinstance(size, int) else tuple(int(s) for s in size)
        if not isinstance(self.size, int) and len(self.size) not in (1, 2):
            raise ValueError(f"Resize: size must be an int or a sequence of length 1 or 2, got {size!r}")
        self.interpolation, self.max_size, self.antialias = _interpolation(interpolation), max_size, antialias

    def _target(self, h, w):
        return ops.resize_output_size(h, w, self.size, self.max_size)

    def batch(self, x, rng):
        _check(x, "Resize")
        th, tw = self._target(*x.shape[-2:])
        return ops.resize(x, th, tw, self.interpolation.value, self.antialias)

    def image(self, img):
        from .images import image_size

        return resize_image(img, *self._target(*image_size(img)), self.interpolation, self.antialias)


def from_dict(d: dict) -> Transform:
    """Inverse of ``to_dict``."""
    d = dict(d)
    name = d.pop("name")
    if name == "Compose":
        return Compose([from_dict(x) for x in d["transforms"]])
    if name not in _REGISTRY:
        raise ValueError(f"unknown transform {name!r}: expected one of {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**d)


_SPEC = {"flip": RandomHorizontalFlip, "vflip": RandomVerticalFlip, "shift": RandomShift, "crop": RandomCrop,
         "pad": Pad}


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
            raise ValueError(f"transform spec {tok!r}: unknown name {name!r}, expected {', '.join(_SPEC)}, "
                             "normalize")
    return Compose(out)
