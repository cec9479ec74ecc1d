"""``VisionDataset`` (torchvision's base) and the base of the in-memory vision data sets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from convlens.data.images import chw_to_pil
from convlens.data.transforms import batch_plan
from convlens.utils.data.dataset import Dataset
from convlens.utils.data.worker import deferred_rng

__all__ = ["VisionDataset", "StandardTransform", "ArrayVisionDataset"]


class StandardTransform:
    """``transform`` on the input and ``target_transform`` on the target, as torchvision pairs them."""

    def __init__(self, transform=None, target_transform=None):
        self.transform, self.target_transform = transform, target_transform

    def __call__(self, input, target):  # noqa: A002 - torchvision's name
        if self.transform is not None:
            input = self.transform(input)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return input, target

    def __repr__(self) -> str:
        body = [type(self).__name__]
        if self.transform is not None:
            body.append(f"Transform: {self.transform!r}")
        if self.target_transform is not None:
            body.append(f"Target transform: {self.target_transform!r}")
        return "\n".join(body)


class VisionDataset(Dataset):
    """torchvision's base: ``root``, and either ``transforms`` (a joint ``f(input, target)``) or
    ``transform`` / ``target_transform``."""

    def __init__(self, root=None, transforms=None, transform=None, target_transform=None):
        if isinstance(root, str | os.PathLike):
            root = os.path.expanduser(root)
        self.root = root
        separate = transform is not None or target_transform is not None
        if transforms is not None and separate:
            raise ValueError(f"{type(self).__name__}: only transforms or transform/target_transform can be passed "
                             "as argument")
        self.transform, self.target_transform = transform, target_transform
        self.transforms = StandardTransform(transform, target_transform) if separate else transforms

    def __len__(self) -> int:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"Number of datapoints: {self.__len__()}"]
        if self.root is not None:
            lines.append(f"Root location: {self.root}")
        lines += self.extra_repr().splitlines()
        if self.transforms is not None:
            lines += repr(self.transforms).splitlines()
        return "\n".join([f"Dataset {type(self).__name__}"] + ["    " + line for line in lines])


class ArrayVisionDataset(VisionDataset):
    """A vision data set held in memory as uint8 pixels (MNIST, FashionMNIST, CIFAR10).

    ``ds[i]`` is torchvision's ``(PIL image, int)`` put through ``transform`` / ``target_transform``.
    When the whole ``transform`` has a batch form and ends as a tensor (e.g. ``Compose([ToTensor(),
    Normalize(...)])``, optionally with RandomCrop / RandomHorizontalFlip before ToTensor) and there is
    no target transform, the DataLoader reads batches with one gather and runs the transform on the
    batch: the same values as image by image for the deterministic transforms, and the same
    distribution (each image its own draws) for the random ones. Subclasses define ``_pixels()`` →
    uint8 (N, C, H, W), ``_targets()`` → int64 (N,), read from ``.data`` / ``.targets`` each time so
    that replacing those (a common way to take a subset) is seen.
    """

    _mode = "L"

    def _pixels(self) -> np.ndarray:
        raise NotImplementedError

    def _targets(self) -> np.ndarray:
        raise NotImplementedError

    def __getitem__(self, index: int):
        img = chw_to_pil(self._pixels()[index], self._mode)
        target = int(self._targets()[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __len__(self) -> int:
        return len(self._targets())

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}

    def _batch_reader(self):
        from convlens.tensor import Tensor

        if type(self).__getitem__ is not ArrayVisionDataset.__getitem__ or self.target_transform is not None:
            return None
        if self.transforms is not None and not isinstance(self.transforms, StandardTransform):
            return None
        plan = batch_plan(self.transform, "pil")
        if plan is None:
            return None
        pixels, targets = self._pixels(), self._targets()

        def read(indices: np.ndarray):
            x = plan(pixels[indices], deferred_rng)
            return [Tensor._wrap(np.ascontiguousarray(x)), Tensor._wrap(targets[indices])]

        return read


def as_path(root) -> Path:
    if root is None:
        raise TypeError("root must be a folder (str or Path), got None")
    return Path(root).expanduser()
