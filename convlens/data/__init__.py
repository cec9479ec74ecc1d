"""Data sets, transforms and a fast loader.

    from convlens.data import load, DataLoader, transforms as T
    train = load("mnist-mini")
    for images, labels in DataLoader(train, 128, shuffle=True, seed=0, transform=T.from_spec("shift")):
        ...
"""

from . import transforms
from .cache import cache_dir
from .datasets import (
    CIFAR10,
    MNIST,
    Dataset,
    FashionMNIST,
    Subset,
    TensorDataset,
    load,
    mean_std,
    mnist_mini,
    random_split,
    split,
)
from .digits import prepare_digit
from .download import fetch
from .errors import DataError
from .folder import ImageFolder, extract_tar
from .loader import DataLoader

__all__ = [
    "CIFAR10", "MNIST", "DataError", "DataLoader", "Dataset", "FashionMNIST", "ImageFolder", "Subset",
    "TensorDataset", "cache_dir", "extract_tar", "fetch", "load", "mean_std", "mnist_mini", "prepare_digit",
    "random_split", "split", "transforms",
]
