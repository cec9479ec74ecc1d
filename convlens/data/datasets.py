"""In-memory data sets: every one holds ``.images`` (uint8, (N, C, H, W)), ``.labels`` (int64, (N,))
and ``.classes`` (names), supports ``len()`` and indexing, and is consumed by ``DataLoader``."""

from __future__ import annotations

import importlib.resources
from functools import cached_property
from pathlib import Path

import numpy as np

from . import cifar, idx
from .cache import cache_dir
from .errors import DataError

__all__ = [
    "Dataset", "TensorDataset", "Subset", "MNIST", "FashionMNIST", "CIFAR10", "mnist_mini",
    "random_split", "split", "load", "mean_std",
]

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]


class Dataset:
    """Base: subclasses set ``images``, ``labels`` and ``classes`` (or override them as properties)."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, i):
        """``ds[i]`` → ``(image uint8 (C, H, W), label int)``; a slice or index array → a ``Subset``."""
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


def _validate(images: np.ndarray, labels: np.ndarray, classes, source: str) -> None:
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


class TensorDataset(Dataset):
    """Wrap arrays: images (N, C, H, W) or (N, H, W) uint8 (0..255), labels (N,)."""

    def __init__(self, images, labels, classes=None, name: str = "TensorDataset"):
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[:, None]
        if images.dtype != np.uint8:
            raise DataError(f"{name}: images must be uint8 (0..255), found {images.dtype}")
        labels = np.asarray(labels).astype(np.int64, copy=False)
        if classes is None:
            classes = [str(c) for c in range(int(labels.max()) + 1 if labels.size else 0)]
        _validate(images, labels, classes, name)
        self.images, self.labels, self.classes, self._name = images, labels, list(classes), name


class Subset(Dataset):
    """Some items of a parent data set, by index; arrays are gathered once, on first use."""

    def __init__(self, parent: Dataset, indices):
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


def random_split(dataset: Dataset, lengths, seed: int = 0) -> list[Subset]:
    """Split into disjoint random subsets; ``lengths`` are counts or fractions summing to 1."""
    n = len(dataset)
    lengths = list(lengths)
    if all(isinstance(x, float) for x in lengths) and abs(sum(lengths) - 1) < 1e-6:
        counts = [int(np.floor(f * n)) for f in lengths]
        for i in range(n - sum(counts)):  # hand the remainder out round-robin, like torch
            counts[i % len(counts)] += 1
    else:
        counts = [int(x) for x in lengths]
    if sum(counts) != n or min(counts) < 0:
        raise DataError(f"{dataset.name}: split lengths {lengths} must sum to {n} (or fractions to 1)")
    perm = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum([0] + counts)
    return [Subset(dataset, np.sort(perm[a:b])) for a, b in zip(bounds[:-1], bounds[1:])]


def split(dataset: Dataset, val_fraction: float = 0.1, seed: int = 0) -> tuple[Subset, Subset]:
    """``(train, val)`` with ``round(val_fraction * N)`` items held out at random (for ``--val-split``)."""
    if not 0 < val_fraction < 1:
        raise DataError(f"{dataset.name}: val_fraction must be in (0, 1), found {val_fraction}")
    n_val = int(round(val_fraction * len(dataset)))
    train, val = random_split(dataset, [len(dataset) - n_val, n_val], seed)
    return train, val


# ---- IDX data sets ------------------------------------------------------------------------------------
_IDX_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find(root: Path, stem: str) -> Path | None:
    # LeCun's current archive uses 'train-images.idx3-ubyte'; accept both spellings, gzipped or not
    alt = stem.replace("-idx", ".idx")
    for name in (stem + ".gz", stem, alt + ".gz", alt):
        if (root / name).is_file():
            return root / name
    return None


class _IDXDataset(Dataset):
    key = "mnist"
    default_classes = MNIST_CLASSES

    def __init__(self, root=None, train: bool = True, download: bool = False):
        self.train = bool(train)
        self._name = f"{type(self).__name__}({'train' if train else 'test'})"
        img_path, lab_path = self._locate(root, download)
        images = idx.load_idx(img_path, rank=3)
        labels = idx.load_idx(lab_path, rank=1)
        if images.dtype != np.uint8 or labels.dtype != np.uint8:
            raise DataError(
                f"{img_path}, {lab_path}: expected uint8 (type code 0x08), found {images.dtype}/{labels.dtype}"
            )
        if images.shape[0] != labels.shape[0]:
            raise DataError(
                f"image/label count mismatch: {img_path} has {images.shape[0]} images, "
                f"{lab_path} has {labels.shape[0]} labels"
            )
        self.classes = list(self.default_classes)
        self.images = images[:, None]
        self.labels = labels.astype(np.int64)
        _validate(self.images, self.labels, self.classes, str(lab_path))
        self.root = img_path.parent

    def _locate(self, root, download: bool) -> tuple[Path, Path]:
        stems = _IDX_FILES[self.train]
        candidates = [Path(root).expanduser()] if root is not None else [cache_dir(self.key, create=False)]
        candidates.append(candidates[0] / self.key)
        for d in candidates:
            found = [_find(d, s) for s in stems]
            if all(found):
                return found[0], found[1]
        if download:
            from .download import fetch

            d = fetch(self.key, root=root)
            found = [_find(d, s) for s in stems]
            if all(found):
                return found[0], found[1]
        where = candidates[0]
        raise DataError(
            f"{type(self).__name__}: {stems[0]}[.gz] and {stems[1]}[.gz] not found in {where}. "
            f"Pass download=True (or run `convlens data fetch {self.key}`), or point root= at the folder "
            "holding the IDX files"
        )


class MNIST(_IDXDataset):
    """MNIST digits, 28x28 grayscale; ``root`` may be the folder holding the (gzipped) IDX files."""

    key = "mnist"


class FashionMNIST(_IDXDataset):
    """Fashion-MNIST (Zalando), same layout as MNIST, ten clothing classes."""

    key = "fashion-mnist"
    default_classes = FASHION_CLASSES


def mnist_mini(train: bool = True) -> MNIST:
    """The embedded subset shipped in ``convlens/assets/mnist-mini`` (10,000 train / 2,000 test digits)."""
    res = importlib.resources.files("convlens").joinpath("assets", "mnist-mini")
    with importlib.resources.as_file(res) as folder:
        ds = MNIST(root=folder, train=train)
    ds._name = f"mnist-mini({'train' if train else 'test'})"
    return ds


# ---- CIFAR-10 binary ----------------------------------------------------------------------------------
class CIFAR10(Dataset):
    """CIFAR-10 binary version; ``root`` may hold ``cifar-10-batches-bin/`` or be that folder."""

    def __init__(self, root=None, train: bool = True, download: bool = False):
        self.train = bool(train)
        self._name = f"CIFAR10({'train' if train else 'test'})"
        folder = self._locate(root, download)
        names = cifar.TRAIN_FILES if train else cifar.TEST_FILES
        self.classes = cifar.read_cifar_meta(folder / "batches.meta.txt")
        parts = [cifar.read_cifar_batch(folder / n, len(self.classes)) for n in names]
        self.images = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
        self.labels = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
        self.root = folder

    def _locate(self, root, download: bool) -> Path:
        base = Path(root).expanduser() if root is not None else cache_dir("cifar10", create=False)
        files = cifar.TRAIN_FILES if self.train else cifar.TEST_FILES
        for d in (base, base / "cifar-10-batches-bin", base / "cifar10" / "cifar-10-batches-bin"):
            if all((d / f).is_file() for f in files):
                return d
        if download:
            from .download import fetch

            d = fetch("cifar10", root=root) / "cifar-10-batches-bin"
            if all((d / f).is_file() for f in files):
                return d
        raise DataError(
            f"CIFAR10: {', '.join(files)} not found in {base} or {base / 'cifar-10-batches-bin'}. Pass "
            "download=True (or run `convlens data fetch cifar10`), or point root= at the extracted "
            "cifar-10-binary.tar.gz"
        )


# ---- by name ------------------------------------------------------------------------------------------
def load(name: str, root=None, train: bool = True, download: bool = False, **kwargs) -> Dataset:
    """A data set by name: ``mnist``, ``fashion-mnist``, ``cifar10``, ``mnist-mini``, or a folder
    (``FOLDER/train`` / ``FOLDER/test`` used when present) or ``.tar[.gz]`` of one → ``ImageFolder``."""
    key = str(name).lower().replace("_", "-")
    if key == "mnist":
        return MNIST(root, train, download)
    if key in ("fashion-mnist", "fashionmnist"):
        return FashionMNIST(root, train, download)
    if key in ("cifar10", "cifar-10"):
        return CIFAR10(root, train, download)
    if key == "mnist-mini":
        return mnist_mini(train)
    from .folder import ImageFolder, extract_tar, is_archive

    path = Path(name).expanduser()
    if not path.exists():
        raise DataError(
            f"unknown data set {name!r}: expected mnist, fashion-mnist, cifar10, mnist-mini, "
            "or an existing image folder / .tar.gz"
        )
    if path.is_file() and is_archive(path):
        path = extract_tar(path)
        entries = list(path.iterdir())
        # an archive usually wraps everything in one top folder ("ds/train/...")
        if len(entries) == 1 and entries[0].is_dir():
            path = entries[0]
    part = path / ("train" if train else "test")
    if part.is_dir():
        path = part
    elif (path / "train").is_dir() or (path / "test").is_dir():
        raise DataError(f"{path}: has a train/ or test/ folder but no {part.name}/ folder")
    return ImageFolder(path, **kwargs)


def mean_std(dataset: Dataset, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
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
