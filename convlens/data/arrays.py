"""convlens's in-memory array data sets: every one holds ``.images`` (uint8, (N, C, H, W)), ``.labels``
(int64, (N,)) and ``.classes`` (names). They are `convlens.utils.data.Dataset`s, and the DataLoader
reads them vectorised: a batch is one gather of ``images[indices]``, scaled to float32 in [0, 1]
(``uint8 / 255``, bit-identical to torchvision's ``ToTensor``), with no per-item Python call.

``ds[i]`` → ``(image uint8 (C, H, W), label int)``; a slice or index array → a `Subset`.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from convlens.utils.data.dataset import Dataset as _BaseDataset
from convlens.utils.data.dataset import split_lengths

from .errors import DataError
from .imageops import to_float

__all__ = ["ArrayDataset", "TensorDataset", "Subset", "random_split", "split", "mean_std", "validate_arrays"]


class ArrayDataset(_BaseDataset):
    """Base: subclasses set ``images``, ``labels`` and ``classes`` (or define them as properties)."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, i):
        if isinstance(i, slice | list | np.ndarray):
            return Subset(self, np.arange(len(self))[i])
        return self.images[i], int(self.labels[i])

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of one image, (C, H, W)."""
        return tuple(self.images.shape[1:])

    def check_shape(self, expected: tuple[int, ...], what: str = "the model") -> None:
        """Raise DataError if one image's (C, H, W) is not what ``what`` expects."""
        if tuple(expected) != self.shape:
            raise DataError(
                f"{self.name}: images are (C, H, W) = {self.shape}, but {what} expects {tuple(expected)}"
            )

    @property
    def name(self) -> str:
        return getattr(self, "_name", type(self).__name__)

    def __repr__(self) -> str:
        return f"{self.name}(n={len(self)}, shape={self.shape}, classes={len(self.classes)})"

    def _batch_reader(self):
        """``reader(indices)`` → ``[images float32 (n, C, H, W) in [0, 1], labels int64 (n,)]``."""
        from convlens.tensor import Tensor

        if len(self) == 0:
            raise DataError(f"DataLoader: {self.name} is empty")
        images, labels = self.images, self.labels

        def read(indices: np.ndarray):
            n = len(indices)
            if n and indices[-1] - indices[0] == n - 1 and (np.diff(indices) == 1).all():
                a = int(indices[0])  # a run of consecutive items (no shuffling): a slice, no gather
                x, y = images[a : a + n], labels[a : a + n]
            else:
                x, y = images[indices], labels[indices]
            return [Tensor._wrap(to_float(x)), Tensor._wrap(np.asarray(y, dtype=np.int64))]

        return read


def validate_arrays(images: np.ndarray, labels: np.ndarray, classes, source: str) -> None:
    """Raise DataError unless images are (N, C, H, W), labels (N,) and every label names a class."""
    if images.ndim != 4:
        raise DataError(f"{source}: expected images of shape (N, C, H, W), found shape {images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataError(
            f"{source}: image/label count mismatch: {images.shape[0]} images but labels of shape {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
        raise DataError(
            f"{source}: labels must lie in 0..{len(classes) - 1} ({len(classes)} classes), "
            f"found {labels.min()}..{labels.max()}"
        )


class TensorDataset(ArrayDataset):
    """Wrap arrays: images (N, C, H, W) or (N, H, W) uint8 (0..255), labels (N,). (For tensors of any
    dtype, torch's ``TensorDataset(*tensors)``, use ``convlens.utils.data.TensorDataset``.)"""

    def __init__(self, images, labels, classes=None, name: str = "TensorDataset"):
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[:, None]
        if images.dtype != np.uint8:
            raise DataError(f"{name}: images must be uint8 (0..255), found {images.dtype} (for float tensors use "
                            "convlens.utils.data.TensorDataset)")
        labels = np.asarray(labels).astype(np.int64, copy=False)
        if classes is None:
            classes = [str(c) for c in range(int(labels.max()) + 1 if labels.size else 0)]
        validate_arrays(images, labels, classes, name)
        self.images, self.labels, self.classes, self._name = images, labels, list(classes), name


class Subset(ArrayDataset):
    """Some items of a parent array data set, by index; arrays are gathered once, on first use."""

    def __init__(self, parent: ArrayDataset, indices):
        self.parent = parent
        self.indices = np.asarray(indices, dtype=np.int64)
        self.classes = parent.classes
        self._name = f"{parent.name}[subset]"

    @cached_property
    def images(self) -> np.ndarray:
        return self.parent.images[self.indices]

    @cached_property
    def labels(self) -> np.ndarray:
        return self.parent.labels[self.indices]

    def __len__(self) -> int:
        return int(self.indices.shape[0])


def random_split(dataset: ArrayDataset, lengths, seed: int = 0) -> list[Subset]:
    """Split into disjoint random subsets (each in the parent's order); ``lengths`` are counts or
    fractions summing to 1, shared out as ``convlens.utils.data.random_split`` does. Seeded by ``seed``
    (that one takes a ``generator``)."""
    try:
        counts = split_lengths(len(dataset), lengths)
    except ValueError as e:
        raise DataError(f"{dataset.name}: {e}") from None
    perm = np.random.default_rng(seed).permutation(len(dataset))
    bounds = np.cumsum([0] + counts)
    return [Subset(dataset, np.sort(perm[a:b])) for a, b in zip(bounds[:-1], bounds[1:])]


def split(dataset: ArrayDataset, val_fraction: float = 0.1, seed: int = 0) -> tuple[Subset, Subset]:
    """``(train, val)`` with ``round(val_fraction * N)`` items held out at random (for ``--val-split``)."""
    if not 0 < val_fraction < 1:
        raise DataError(f"{dataset.name}: val_fraction must be in (0, 1), found {val_fraction}")
    n_val = int(round(val_fraction * len(dataset)))
    train, val = random_split(dataset, [len(dataset) - n_val, n_val], seed)
    return train, val


def mean_std(dataset: ArrayDataset, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of the pixels scaled to [0, 1] (float64 sums over chunks, then float32)."""
    images = dataset.images
    c = images.shape[1]
    s = np.zeros(c)
    s2 = np.zeros(c)
    for a in range(0, images.shape[0], chunk):
        x = images[a : a + chunk].astype(np.float64)
        s += x.sum(axis=(0, 2, 3))
        s2 += np.square(x).sum(axis=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = s / count
    var = np.maximum(s2 / count - mean**2, 0.0)
    return (mean / 255).astype(np.float32), (np.sqrt(var) / 255).astype(np.float32)
