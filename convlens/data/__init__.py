"""convlens's data engine: array data sets, file formats, batch transforms, downloads.

    from convlens.data import load, DataLoader, transforms as T
    train = load("mnist-mini")
    for images, labels in DataLoader(train, 128, shuffle=True, seed=0, transform=T.from_spec("shift")):
        ...

Layers, each importing only those below it: ``convlens.utils.data`` (torch's Dataset, samplers,
DataLoader) ← ``convlens.data`` (errors, cache → idx, cifar, archive → download; imageops → transforms;
arrays → datasets, folder → catalog) ← ``convlens.vision`` (torchvision's shape).
``convlens.data.Dataset`` is the array data set base (``ArrayDataset``), a subclass of
``convlens.utils.data.Dataset``.
"""

from . import transforms
from .archive import extract_tar
from .arrays import ArrayDataset, Subset, TensorDataset, mean_std, random_split, split
from .cache import cache_dir
from .catalog import load
from .datasets import CIFAR10, MNIST, FashionMNIST, mnist_mini
from .digits import prepare_digit
from .download import fetch
from .errors import DataError, DataNotFoundError
from .folder import ImageFolder
from .loader import DataLoader

Dataset = ArrayDataset  # the name convlens has always used for its array data sets

__all__ = [
    "ArrayDataset", "CIFAR10", "MNIST", "DataError", "DataLoader", "DataNotFoundError", "Dataset", "FashionMNIST",
    "ImageFolder", "Subset", "TensorDataset", "cache_dir", "extract_tar", "fetch", "load", "mean_std",
    "mnist_mini", "prepare_digit", "random_split", "split", "transforms",
]
