"""torchvision's ``CIFAR10`` over CIFAR-10's *binary* version: ``(root, train=True, transform=None,
target_transform=None, download=False)``, items ``(PIL image 'RGB' 32x32, int)``, ``.data`` (uint8
(N, 32, 32, 3), as torchvision), ``.targets`` (list of int), ``.classes``, ``.class_to_idx``.

The batches are found in ``root/cifar-10-batches-bin/`` (what cifar-10-binary.tar.gz unpacks to) or in
``root`` itself. torchvision reads the *python* version (``cifar-10-batches-py``), whose batches are
pickles; convlens never unpickles (it can run code), and says so when only that version is there.
``download=True`` fetches cifar-10-binary.tar.gz (MD5-checked) into ``root`` and unpacks it, only when
the batches are not found.
"""

from __future__ import annotations

import numpy as np

from convlens.data.datasets import find_cifar_folder, missing_cifar_message, read_cifar
from convlens.data.download import fetch
from convlens.data.errors import DataNotFoundError

from .vision import ArrayVisionDataset, as_path

__all__ = ["CIFAR10"]


class CIFAR10(ArrayVisionDataset):
    """CIFAR-10, binary version (see the module docstring)."""

    base_folder = "cifar-10-batches-bin"
    _mode = "RGB"

    def __init__(self, root, train: bool = True, transform=None, target_transform=None, download: bool = False):
        super().__init__(root, transform=transform, target_transform=target_transform)
        self.train = bool(train)
        base = as_path(root)
        folder = find_cifar_folder(base, self.train)
        if folder is None and download:
            self.download()
            folder = find_cifar_folder(base, self.train)
        if folder is None:
            raise DataNotFoundError(missing_cifar_message(type(self).__name__, base, self.train))
        chw, labels, self.classes = read_cifar(folder, self.train)
        self._chw = chw  # the file's own layout, what the batch reader gathers from
        self.data = self._hwc = chw.transpose(0, 2, 3, 1)  # torchvision's (N, H, W, C), a view
        self.targets = labels.tolist()
        self._targets_cache = (None, None)

    def download(self) -> None:
        """Fetch and unpack cifar-10-binary.tar.gz into ``root`` unless the batches are already there."""
        base = as_path(self.root)
        if find_cifar_folder(base, True) and find_cifar_folder(base, False):
            return
        fetch("cifar10", root=base)

    def _pixels(self) -> np.ndarray:
        if self.data is self._hwc:
            return self._chw
        return np.asarray(self.data).transpose(0, 3, 1, 2)

    def _targets(self) -> np.ndarray:
        # .targets is a list (torchvision's type); its array is cached while the list object is the same
        key = (id(self.targets), len(self.targets))
        if self._targets_cache[0] != key:
            self._targets_cache = (key, np.asarray(self.targets, dtype=np.int64))
        return self._targets_cache[1]

    def extra_repr(self) -> str:
        return f"Split: {'Train' if self.train else 'Test'}"
