"""``convlens.vision``, shaped like torchvision: ``datasets`` (MNIST, FashionMNIST, CIFAR10,
ImageFolder), ``transforms`` and ``utils`` (make_grid, save_image). Code written for torchvision runs
with ``torchvision`` → ``convlens.vision`` in its imports.

Underneath it is convlens's data engine (``convlens.data``): the same file readers, the same transform
arithmetic, and a batch fast path that the DataLoader takes when a data set's whole transform has a
batch form (e.g. ``Compose([ToTensor(), Normalize(...)])`` on MNIST).
"""

from convlens.vision import datasets, ops, transforms, utils

__all__ = ["datasets", "ops", "transforms", "utils"]
