"""Data sets, samplers and the DataLoader, shaped like ``torch.utils.data``.

    from convlens.utils.data import DataLoader, TensorDataset, random_split
    train, val = random_split(TensorDataset(x, y), [0.9, 0.1], generator=convlens.Generator().manual_seed(0))
    for xb, yb in DataLoader(train, batch_size=64, shuffle=True, num_workers=2):
        ...

This package is the base layer: ``convlens.data`` (convlens's in-memory array data sets, file formats,
batch transforms) and ``convlens.vision`` (torchvision's shape) build on it, never the other way round.
Workers are threads, not processes (see ``dataloader.py`` and docs/data.md for why).
"""

from convlens.utils.data.collate import default_collate, default_convert
from convlens.utils.data.dataloader import DataLoader
from convlens.utils.data.dataset import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    StackDataset,
    Subset,
    TensorDataset,
    random_split,
)
from convlens.utils.data.distributed import DistributedSampler
from convlens.utils.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from convlens.utils.data.worker import WorkerInfo, get_worker_info

__all__ = [
    "BatchSampler", "ChainDataset", "ConcatDataset", "DataLoader", "Dataset", "IterableDataset",
    "RandomSampler", "Sampler", "SequentialSampler", "StackDataset", "Subset", "SubsetRandomSampler",
    "TensorDataset", "WeightedRandomSampler", "WorkerInfo", "default_collate", "default_convert",
    "get_worker_info", "random_split",
]
__all__ += ["DistributedSampler"]
