"""MNIST, Fashion-MNIST and CIFAR-10 as convlens array data sets, and where their files are found.

Files are looked for in convlens's layout (``root`` itself, ``root/mnist``, ``root/fashion-mnist``,
``root/cifar10``) and in torchvision's (``root/MNIST/raw``, ``root/FashionMNIST/raw``,
``root/cifar-10-batches-bin``); ``convlens.vision.datasets`` uses the same finders.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np

from . import cifar, idx
from .arrays import ArrayDataset, validate_arrays
from .cache import cache_dir
from .download import SOURCES, fetch
from .errors import DataError, DataNotFoundError

__all__ = [
    "MNIST", "FashionMNIST", "CIFAR10", "mnist_mini", "find_idx_files", "find_cifar_folder", "read_idx_pair",
    "read_cifar", "MNIST_CLASSES", "FASHION_CLASSES",
]

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]

# ---- IDX data sets ------------------------------------------------------------------------------------
_IDX_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# the folder names each layout uses: convlens's key, then torchvision's class name
_IDX_FOLDERS = {"mnist": ("mnist", "MNIST"), "fashion-mnist": ("fashion-mnist", "FashionMNIST")}


def _find(root: Path, stem: str) -> Path | None:
    # LeCun's current archive uses 'train-images.idx3-ubyte'; accept both spellings, gzipped or not
    alt = stem.replace("-idx", ".idx")
    for name in (stem + ".gz", stem, alt + ".gz", alt):
        if (root / name).is_file():
            return root / name
    return None


def idx_folders(root: Path, key: str) -> list[Path]:
    """Where the IDX files of data set ``key`` may be, in the order searched."""
    ours, theirs = _IDX_FOLDERS[key]
    return [root, root / theirs / "raw", root / ours, root / theirs, root / ours / "raw"]


def find_idx_files(root: Path, key: str, train: bool) -> tuple[Path, Path] | None:
    """``(images, labels)`` of the train or test split of ``key`` under ``root``, or None."""
    stems = _IDX_FILES[train]
    for d in idx_folders(root, key):
        found = [_find(d, s) for s in stems]
        if all(found):
            return found[0], found[1]
    return None


def missing_idx_message(who: str, root: Path, key: str, train: bool) -> str:
    stems = _IDX_FILES[train]
    theirs = _IDX_FOLDERS[key][1]
    msg = (f"{who}: {stems[0]}[.gz] and {stems[1]}[.gz] not found in {root} (nor in {root / theirs / 'raw'}, "
           f"torchvision's layout, or {root / key}). Pass download=True (or run `convlens data fetch {key}`), "
           "or point root= at the folder holding the IDX files")
    if (root / theirs / "processed").is_dir():
        msg += (f"; {root / theirs / 'processed'} holds torchvision's old .pt files, which are pickles that "
                "convlens does not read")
    return msg


def read_idx_pair(img_path: Path, lab_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (N, H, W), labels int64 (N,))`` from an IDX pair, checked against each other."""
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
    return images, labels.astype(np.int64)


class _IDXDataset(ArrayDataset):
    key = "mnist"
    default_classes = MNIST_CLASSES

    def __init__(self, root=None, train: bool = True, download: bool = False):
        self.train = bool(train)
        self._name = f"{type(self).__name__}({'train' if train else 'test'})"
        base = Path(root).expanduser() if root is not None else cache_dir(self.key, create=False)
        found = find_idx_files(base, self.key, self.train)
        if found is None and download:
            fetch(self.key, root=root)
            found = find_idx_files(base, self.key, self.train)
        if found is None:
            raise DataNotFoundError(missing_idx_message(type(self).__name__, base, self.key, self.train))
        images, labels = read_idx_pair(*found)
        self.classes = list(self.default_classes)
        self.images, self.labels = images[:, None], labels
        validate_arrays(self.images, self.labels, self.classes, str(found[1]))
        self.root = found[0].parent


class MNIST(_IDXDataset):
    """MNIST digits, 28x28 grayscale; ``root`` may be the folder holding the (gzipped) IDX files or
    its parent (``root/mnist`` or torchvision's ``root/MNIST/raw``)."""

    key = "mnist"


class FashionMNIST(_IDXDataset):
    """Fashion-MNIST (Zalando), same layout as MNIST (``root/fashion-mnist``, ``root/FashionMNIST/raw``),
    ten clothing classes."""

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
_CIFAR_BIN = "cifar-10-batches-bin"
_CIFAR_PY = "cifar-10-batches-py"


def find_cifar_folder(root: Path, train: bool) -> Path | None:
    """The folder holding CIFAR-10's binary batches for the split, under ``root``, or None."""
    files = cifar.TRAIN_FILES if train else cifar.TEST_FILES
    for d in (root, root / _CIFAR_BIN, root / "cifar10" / _CIFAR_BIN, root / "cifar10"):
        if all((d / f).is_file() for f in files):
            return d
    return None


def missing_cifar_message(who: str, root: Path, train: bool) -> str:
    files = cifar.TRAIN_FILES if train else cifar.TEST_FILES
    url = SOURCES["cifar10"].mirrors[0] + SOURCES["cifar10"].files[0][0]
    for d in (root, root / "cifar10"):
        if (d / _CIFAR_PY).is_dir() or (d / "cifar-10-python.tar.gz").is_file():
            return (f"{who}: {d} holds CIFAR-10's python version ({_CIFAR_PY}, pickled batches), which convlens "
                    f"never reads: unpickling can run code. Get the binary version: pass download=True, run "
                    f"`convlens data fetch cifar10 --root {d}`, or download {url} and extract it into {d} "
                    f"(it unpacks to {_CIFAR_BIN}/)")
    return (f"{who}: {', '.join(files)} not found in {root} or {root / _CIFAR_BIN}. Pass download=True (or run "
            f"`convlens data fetch cifar10`), or point root= at the folder where {url} was extracted")


def read_cifar(folder: Path, train: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(images uint8 (N, 3, 32, 32), labels int64 (N,), classes)`` from the binary batches."""
    names = cifar.TRAIN_FILES if train else cifar.TEST_FILES
    classes = cifar.read_cifar_meta(folder / "batches.meta.txt")
    parts = [cifar.read_cifar_batch(folder / n, len(classes)) for n in names]
    images = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    labels = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    return images, labels, classes


def locate_cifar(who: str, root, train: bool, download: bool) -> Path:
    base = Path(root).expanduser() if root is not None else cache_dir("cifar10", create=False)
    folder = find_cifar_folder(base, train)
    if folder is None and download:
        fetch("cifar10", root=root)
        folder = find_cifar_folder(base, train)
    if folder is None:
        raise DataNotFoundError(missing_cifar_message(who, base, train))
    return folder


class CIFAR10(ArrayDataset):
    """CIFAR-10 binary version; ``root`` may hold ``cifar-10-batches-bin/`` or be that folder."""

    def __init__(self, root=None, train: bool = True, download: bool = False):
        self.train = bool(train)
        self._name = f"CIFAR10({'train' if train else 'test'})"
        folder = locate_cifar("CIFAR10", root, self.train, download)
        self.images, self.labels, self.classes = read_cifar(folder, self.train)
        self.root = folder
