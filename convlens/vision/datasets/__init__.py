"""``convlens.vision.datasets``, shaped like ``torchvision.datasets``."""

from convlens.vision.datasets.cifar import CIFAR10
from convlens.vision.datasets.folder import (
    IMG_EXTENSIONS,
    DatasetFolder,
    ImageFolder,
    default_loader,
    pil_loader,
)
from convlens.vision.datasets.mnist import MNIST, FashionMNIST
from convlens.vision.datasets.vision import StandardTransform, VisionDataset

__all__ = [
    "CIFAR10", "DatasetFolder", "FashionMNIST", "IMG_EXTENSIONS", "ImageFolder", "MNIST", "StandardTransform",
    "VisionDataset", "default_loader", "pil_loader",
]
