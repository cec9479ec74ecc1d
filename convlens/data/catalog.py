"""``load(name)``: a convlens array data set by name or path (what the CLI, the web app and recipes use)."""

from __future__ import annotations

from pathlib import Path

from .archive import extract_tar, is_archive
from .arrays import ArrayDataset
from .datasets import CIFAR10, MNIST, FashionMNIST, mnist_mini
from .errors import DataError
from .folder import ImageFolder

__all__ = ["load"]


def load(name: str, root=None, train: bool = True, download: bool = False, **kwargs) -> ArrayDataset:
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
    from .scenes import SCENE_SETS, load_scenes  # detection / segmentation scenes (a Scenes data set)

    if key in SCENE_SETS:
        return load_scenes(key, root, train)
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
