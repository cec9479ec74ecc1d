"""``mnist-scenes``: canvases with 1–5 real digits (or Fashion-MNIST items) at random scales and places,
with tight boxes and a per-pixel mask: data for detection and segmentation that works offline.

    from convlens.data.scenes import load_scenes, SceneConfig
    train = load_scenes("mnist-scenes", train=True)          # 10,000 64×64 scenes from MNIST's train digits
    image, target = train[0]                                   # torchvision's detection style
    target["boxes"], target["labels"], target["masks"]         # (K, 4) float32, (K,) int64, (K, H, W) uint8

Conventions (those of torchvision's detection models and COCO):

* boxes are ``(x1, y1, x2, y2)`` in pixels with ``x2``/``y2`` exclusive: a box covering columns 3..9
  is ``x1 = 3, x2 = 10``, so ``x2 - x1`` is the width. They are the tight box of the digit's mask.
* ``labels`` are ``1 + class`` (0 is background, as in torchvision), the same numbers as the semantic
  mask: 0 = background, ``1 + c`` where a pixel belongs to a digit of class ``c``.
* a digit's mask is where its resized ink is above ``mask_threshold``; a later digit is drawn over an
  earlier one (pixel = max of the two, mask = the later one), which `SceneConfig`'s overlap limits keep rare.

Training scenes are built from the source's training digits only and test scenes from its test digits,
each from its own seeded stream, so a scene set is the same on every machine. A built set is cached as
``.npy`` files under the data cache (``$CONVLENS_DATA/scenes/<key>/``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import numpy as np

from convlens.utils.data.dataset import Dataset

from .cache import atomic_save_npy, atomic_write, cache_dir, file_key, load_npy
from .errors import DataError

__all__ = ["SceneConfig", "Scenes", "make_scenes", "load_scenes", "SCENE_SETS", "collate_detection"]


@dataclass
class SceneConfig:
    """How a scene set is drawn. ``size`` is ``H`` or ``(H, W)``; ``min_scale``/``max_scale`` the side of
    the resized 28×28 digit; ``max_iou`` the largest IoU between two boxes and ``max_covered`` the largest
    fraction of a box that another may cover; ``clutter`` unlabelled digit fragments per scene (mask 0)."""

    num_scenes: int = 10000
    size: int | tuple[int, int] = 64
    min_objects: int = 1
    max_objects: int = 5
    min_scale: int = 14
    max_scale: int = 40
    max_iou: float = 0.1
    max_covered: float = 0.25
    clutter: int = 0
    mask_threshold: int = 96
    seed: int = 0

    @property
    def hw(self) -> tuple[int, int]:
        s = self.size
        return (int(s), int(s)) if isinstance(s, int | np.integer) else (int(s[0]), int(s[1]))

    def validate(self) -> None:
        h, w = self.hw
        if not (1 <= self.min_objects <= self.max_objects):
            raise DataError(f"SceneConfig: need 1 <= min_objects <= max_objects, got {self.min_objects}, "
                            f"{self.max_objects}")
        if not (4 <= self.min_scale <= self.max_scale):
            raise DataError(f"SceneConfig: need 4 <= min_scale <= max_scale, got {self.min_scale}, {self.max_scale}")
        if self.max_scale > min(h, w):
            raise DataError(f"SceneConfig: max_scale {self.max_scale} does not fit a {h}x{w} canvas")
        if self.num_scenes < 1 or self.clutter < 0:
            raise DataError(f"SceneConfig: num_scenes must be >= 1 and clutter >= 0, got {self.num_scenes}, "
                            f"{self.clutter}")


def _resize(digit: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BILINEAR), dtype=np.uint8)


def _iou_and_cover(box, others: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IoU of ``box`` with each of ``others`` and the fraction of either box that the other covers."""
    x1 = np.maximum(box[0], others[:, 0])
    y1 = np.maximum(box[1], others[:, 1])
    x2 = np.minimum(box[2], others[:, 2])
    y2 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    a = (box[2] - box[0]) * (box[3] - box[1])
    b = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / (a + b - inter), np.maximum(inter / a, inter / b)


def make_scenes(digits: np.ndarray, labels: np.ndarray, config: SceneConfig | None = None, stream: int = 0):
    """Draw ``config.num_scenes`` scenes from ``digits`` (uint8 (N, 28, 28) or (N, 1, 28, 28)) and their
    ``labels`` (N,). ``stream`` separates the random streams of the splits (train 0, test 1).

    Returns ``(images uint8 (S, 1, H, W), instances uint8 (S, H, W), boxes float32 (M, 4),
    box_labels int64 (M,), offsets int64 (S + 1,))``: scene ``i`` owns boxes ``offsets[i]:offsets[i+1]``,
    and ``instances[i] == k + 1`` marks the pixels of its ``k``-th box (0: background or clutter).
    """
    config = config or SceneConfig()
    config.validate()
    digits = np.asarray(digits)
    if digits.ndim == 4:
        digits = digits[:, 0]
    if digits.ndim != 3 or digits.dtype != np.uint8 or len(digits) != len(labels) or len(digits) == 0:
        raise DataError(f"make_scenes: expected uint8 digits (N, 28, 28) with N labels, got {digits.dtype} "
                        f"{digits.shape} and {np.shape(labels)} labels")
    h, w = config.hw
    rng = np.random.default_rng([config.seed, stream])
    clutter_rng = np.random.default_rng([config.seed, stream, 1])  # its own stream: clutter moves no digit
    s = config.num_scenes
    images = np.zeros((s, 1, h, w), np.uint8)
    instances = np.zeros((s, h, w), np.uint8)
    boxes, box_labels, offsets = [], [], [0]
    for i in range(s):
        placed: list[list[float]] = []
        canvas, inst = images[i, 0], instances[i]
        for _ in range(int(rng.integers(config.min_objects, config.max_objects + 1))):
            for _attempt in range(30):
                j = int(rng.integers(len(digits)))
                side = int(rng.integers(config.min_scale, config.max_scale + 1))
                patch = _resize(digits[j], side)
                ink = patch > config.mask_threshold
                if not ink.any():
                    break
                ys, xs = np.nonzero(ink)
                # the patch's ink box must land inside the canvas: choose the patch's top-left accordingly
                top = int(rng.integers(-ys.min(), h - ys.max()))
                left = int(rng.integers(-xs.min(), w - xs.max()))
                box = np.array([left + xs.min(), top + ys.min(), left + xs.max() + 1, top + ys.max() + 1], float)
                if placed:
                    iou, cover = _iou_and_cover(box, np.array(placed))
                    if iou.max() > config.max_iou or cover.max() > config.max_covered:
                        continue
                _paste(canvas, inst, patch, ink, top, left, len(placed) + 1)
                placed.append(box.tolist())
                box_labels.append(int(labels[j]) + 1)
                break
        for _ in range(config.clutter):
            _clutter(clutter_rng, digits, canvas, inst, np.array(placed) if placed else np.zeros((0, 4)))
        boxes.extend(placed)
        offsets.append(len(boxes))
    boxes_a = np.array(boxes, np.float32).reshape(-1, 4)
    # a later digit may have covered part of an earlier one: shrink each box to what stays visible
    for i in range(s):
        for k in range(offsets[i], offsets[i + 1]):
            ys, xs = np.nonzero(instances[i] == k - offsets[i] + 1)
            if len(ys):
                boxes_a[k] = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    return images, instances, boxes_a, np.array(box_labels, np.int64), np.array(offsets, np.int64)


def _paste(canvas, inst, patch, ink, top, left, k) -> None:
    """Draw ``patch`` with its top-left at (top, left), clipped to the canvas; ink pixels get instance k."""
    h, w = canvas.shape
    ph, pw = patch.shape
    y0, x0, y1, x1 = max(top, 0), max(left, 0), min(top + ph, h), min(left + pw, w)
    sub = patch[y0 - top : y1 - top, x0 - left : x1 - left]
    np.maximum(canvas[y0:y1, x0:x1], sub, out=canvas[y0:y1, x0:x1])
    region = inst[y0:y1, x0:x1]
    region[ink[y0 - top : y1 - top, x0 - left : x1 - left]] = k


def _clutter(rng, digits, canvas, inst, boxes) -> None:
    """An unlabelled fragment (a random 5–9 px crop of a random digit, kept off every box)."""
    h, w = canvas.shape
    for _ in range(10):
        side = int(rng.integers(5, 10))
        j = int(rng.integers(len(digits)))
        cy, cx = (int(v) for v in rng.integers(4, 24 - side + 1, size=2))
        frag = digits[j, cy : cy + side, cx : cx + side]
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        box = np.array([left, top, left + side, top + side], float)
        if len(boxes) and _iou_and_cover(box, boxes)[1].max() > 0:
            continue
        region = canvas[top : top + side, left : left + side]
        np.maximum(region, frag, out=region)
        return


# ---- the data set ------------------------------------------------------------------------------------
class Scenes(Dataset):
    """A scene set in memory. ``ds[i]`` → ``(image, target)`` as torchvision's detection data sets: the image
    a float32 tensor (C, H, W) in [0, 1], the target a dict with ``boxes`` (K, 4) float32 (x1, y1, x2, y2,
    x2/y2 exclusive), ``labels`` (K,) int64 (1 + class), ``masks`` (K, H, W) uint8 (one per box),
    ``semantic`` (H, W) int64 (0 = background, 1 + class) and ``image_id``.

    The arrays are there for vectorised use: ``images`` (S, 1, H, W) uint8, ``instances`` (S, H, W),
    ``boxes`` (M, 4), ``box_labels`` (M,), ``offsets`` (S + 1,); ``semantic_masks()`` gives (S, H, W).
    """

    def __init__(self, images, instances, boxes, box_labels, offsets, classes, name: str = "scenes"):
        self.images, self.instances = images, instances
        self.boxes, self.box_labels, self.offsets = boxes, box_labels, offsets
        self.classes = list(classes)
        self._name = name
        _check_scene_arrays(self)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def name(self) -> str:
        return self._name

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.images.shape[1:])

    @property
    def num_classes(self) -> int:
        """Classes of objects (without background)."""
        return len(self.classes)

    def __repr__(self) -> str:
        return f"{self._name}(n={len(self)}, shape={self.shape}, boxes={len(self.boxes)}, classes={len(self.classes)})"

    def subset(self, index, name: str | None = None) -> Scenes:
        """The scenes at ``index`` (an index array) as a new `Scenes` (boxes renumbered)."""
        index = np.asarray(index, np.int64)
        counts = np.diff(self.offsets)[index]
        rows = np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in index]) if len(index) else \
            np.zeros(0, np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return Scenes(self.images[index], self.instances[index], self.boxes[rows], self.box_labels[rows], offsets,
                      self.classes, name or f"{self._name}[{len(index)}]")

    def split(self, fraction: float, seed: int = 0) -> tuple[Scenes, Scenes]:
        """A seeded random ``(train, val)`` split with ``round(fraction · len)`` scenes for validation."""
        order = np.random.default_rng(seed).permutation(len(self))
        n_val = int(round(fraction * len(self)))
        if not 0 < n_val < len(self):
            raise DataError(f"{self._name}: a validation split of {fraction} leaves {n_val} of {len(self)} scenes")
        return self.subset(np.sort(order[n_val:])), self.subset(np.sort(order[:n_val]), f"{self._name}[val]")

    def targets(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(boxes (K, 4) float32, labels (K,) int64)`` of scene ``i`` as NumPy arrays."""
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.boxes[a:b], self.box_labels[a:b]

    def semantic_masks(self, index=None) -> np.ndarray:
        """The semantic masks (0 = background, 1 + class) of all scenes, or of ``index`` (int64)."""
        inst = self.instances if index is None else self.instances[index]
        sel = np.arange(len(self)) if index is None else np.atleast_1d(np.arange(len(self))[index])
        lut = np.zeros((len(sel), 256), np.int64)  # per scene: instance number → 1 + class
        for r, i in enumerate(sel):
            _, labels = self.targets(int(i))
            lut[r, 1 : 1 + len(labels)] = labels
        out = np.take_along_axis(lut, inst.reshape(len(sel), -1).astype(np.int64), axis=1)
        return out.reshape(inst.shape)

    def __getitem__(self, i):
        from convlens.tensor import Tensor

        if not isinstance(i, int | np.integer):
            raise TypeError(f"{self._name}: index must be an integer, got {type(i).__name__}")
        i = int(i) + (len(self) if i < 0 else 0)
        if not 0 <= i < len(self):
            raise IndexError(f"{self._name}: index {i} out of range for {len(self)} scenes")
        boxes, labels = self.targets(i)
        k = np.arange(1, len(labels) + 1, dtype=np.uint8)
        masks = (self.instances[i][None] == k[:, None, None]).astype(np.uint8)
        target = {"boxes": Tensor._wrap(boxes.copy()), "labels": Tensor._wrap(labels.copy()),
                  "masks": Tensor._wrap(masks), "semantic": Tensor._wrap(self.semantic_masks(i)),
                  "image_id": i}
        return Tensor._wrap(self.images[i].astype(np.float32) / np.float32(255)), target


def collate_detection(batch):
    """torchvision's detection collate: ``tuple(zip(*batch))`` (images and targets stay lists)."""
    return tuple(zip(*batch))


def _check_scene_arrays(ds: Scenes) -> None:
    s = len(ds.images)
    ok = (ds.images.ndim == 4 and ds.instances.shape == (s, *ds.images.shape[2:]) and ds.boxes.ndim == 2
          and ds.boxes.shape[1] == 4 and ds.box_labels.shape == (len(ds.boxes),) and ds.offsets.shape == (s + 1,)
          and int(ds.offsets[-1]) == len(ds.boxes))
    if not ok:
        raise DataError(f"{ds._name}: inconsistent scene arrays: images {ds.images.shape}, instances "
                        f"{ds.instances.shape}, boxes {ds.boxes.shape}, labels {ds.box_labels.shape}, "
                        f"offsets {ds.offsets.shape}")
    h, w = ds.images.shape[2:]
    b = ds.boxes
    bad = np.nonzero((b[:, 0] < 0) | (b[:, 1] < 0) | (b[:, 2] > w) | (b[:, 3] > h) | (b[:, 2] <= b[:, 0])
                     | (b[:, 3] <= b[:, 1]))[0]
    if len(bad):
        k = int(bad[0])
        scene = int(np.searchsorted(ds.offsets, k, side="right") - 1)
        raise DataError(f"{ds._name}: box {k} (scene {scene}) is {b[k].tolist()}: expected x1 < x2 <= {w} and "
                        f"y1 < y2 <= {h} with x1, y1 >= 0 (inside the {w}x{h} image)")
    labels = ds.box_labels
    if len(labels) and (labels.min() < 1 or labels.max() > len(ds.classes)):
        raise DataError(f"{ds._name}: box labels must be 1..{len(ds.classes)} (1 + class; 0 is background), "
                        f"found {labels.min()}..{labels.max()}")


# ---- named sets and the cache ------------------------------------------------------------------------
# name → (digit source, train scenes, test scenes)
SCENE_SETS = {
    "mnist-scenes": ("mnist", 10000, 2000),
    "fashion-scenes": ("fashion-mnist", 10000, 2000),
    "mnist-scenes-mini": ("mnist-mini", 4000, 1000),
}
_FILES = ("images", "instances", "boxes", "box_labels", "offsets")


def _source(name: str, root, train: bool):
    from .datasets import MNIST, FashionMNIST, mnist_mini

    if name == "mnist-mini":
        return mnist_mini(train)
    return (MNIST if name == "mnist" else FashionMNIST)(root, train)


def load_scenes(name: str = "mnist-scenes", root=None, train: bool = True, config: SceneConfig | None = None,
                cache: bool = True) -> Scenes:
    """A named scene set (``mnist-scenes``, ``fashion-scenes``, ``mnist-scenes-mini`` from the embedded
    digits), built on first use and cached. ``root`` is where the source digits are (as for ``MNIST``);
    ``config`` overrides the drawing (``num_scenes`` defaults to the set's train/test size)."""
    key = str(name).lower().replace("_", "-")
    if key not in SCENE_SETS:
        raise DataError(f"unknown scene set {name!r}: expected one of {', '.join(SCENE_SETS)}")
    src_name, n_train, n_test = SCENE_SETS[key]
    src = _source(src_name, root, train)
    if config is None:
        config = SceneConfig(num_scenes=n_train if train else n_test)
    split = "train" if train else "test"
    ident = [key, split, dataclasses.asdict(config), src_name, int(len(src)),
             int(src.images[:64].astype(np.int64).sum()), 1]
    folder = cache_dir("scenes", f"{key}-{split}-{file_key(*ident)}", create=False)
    title = f"{key}({split})"
    if cache and (folder / "done.json").is_file():
        arrays = [load_npy(folder / f"{f}.npy") for f in _FILES]
        if all(a is not None for a in arrays):
            return Scenes(*arrays, classes=src.classes, name=title)
    arrays = make_scenes(src.images, src.labels, config, stream=0 if train else 1)
    if cache:
        for f, a in zip(_FILES, arrays):
            atomic_save_npy(folder / f"{f}.npy", a)
        with atomic_write(folder / "done.json", "w") as fh:
            json.dump({"name": key, "split": split, "config": dataclasses.asdict(config)}, fh)
    return Scenes(*arrays, classes=src.classes, name=title)
