"""torchvision's ``MNIST`` and ``FashionMNIST``: ``(root, train=True, transform=None,
target_transform=None, download=False)``, items ``(PIL image 'L' 28x28, int)``, ``.data`` (uint8 tensor
(N, 28, 28)), ``.targets`` (int64 tensor), ``.classes``, ``.class_to_idx``.

The IDX files (gzipped or not) are found in torchvision's layout, ``root/MNIST/raw/`` (FashionMNIST:
``root/FashionMNIST/raw/``), or convlens's: ``root/`` itself or ``root/mnist/`` (``root/fashion-mnist/``).
``download=True`` fetches the official files (MD5-checked, with a progress bar) into
``root/MNIST/raw/`` only when they are not found.
"""

from __future__ import annotations

import numpy as np

from convlens.data.datasets import FASHION_CLASSES, find_idx_files, missing_idx_message, read_idx_pair
from convlens.data.download import fetch
from convlens.data.errors import DataNotFoundError

from .vision import ArrayVisionDataset, as_path

__all__ = ["MNIST", "FashionMNIST"]


class MNIST(ArrayVisionDataset):
    """The MNIST digits (see the module docstring)."""

    key = "mnist"
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
               "8 - eight", "9 - nine"]

    def __init__(self, root, train: bool = True, transform=None, target_transform=None, download: bool = False):
        from convlens.tensor import Tensor

        super().__init__(root, transform=transform, target_transform=target_transform)
        self.train = bool(train)
        base = as_path(root)
        found = find_idx_files(base, self.key, self.train)
        if found is None and download:
            self.download()
            found = find_idx_files(base, self.key, self.train)
        if found is None:
            raise DataNotFoundError(missing_idx_message(type(self).__name__, base, self.key, self.train))
        images, labels = read_idx_pair(*found)
        self.data, self.targets = Tensor._wrap(images), Tensor._wrap(labels)

    @property
    def raw_folder(self) -> str:
        return str(as_path(self.root) / type(self).__name__ / "raw")

    def download(self) -> None:
        """Fetch the four IDX files into ``raw_folder`` unless they are already there."""
        if find_idx_files(as_path(self.root), self.key, True) and find_idx_files(as_path(self.root), self.key, False):
            return
        fetch(self.key, root=self.raw_folder)

    def _pixels(self) -> np.ndarray:
        return np.asarray(getattr(self.data, "_data", self.data))[:, None]

    def _targets(self) -> np.ndarray:
        return np.asarray(getattr(self.targets, "_data", self.targets), dtype=np.int64)

    def extra_repr(self) -> str:
        return f"Split: {'Train' if self.train else 'Test'}"


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: MNIST's layout, ten clothing classes."""

    key = "fashion-mnist"
    classes = list(FASHION_CLASSES)
