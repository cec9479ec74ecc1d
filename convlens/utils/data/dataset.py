"""Data sets as in ``torch.utils.data``: the `Dataset` / `IterableDataset` bases and the wrappers.

A map-style data set answers ``len(ds)`` and ``ds[i]``; an iterable one answers ``iter(ds)``. That is
the whole contract, so any class written for torch works here unchanged.

Fast path: a data set may also offer ``_batch_reader()`` → ``reader(indices, rng)`` returning the whole
batch that ``default_collate([ds[i] for i in indices])`` would build, gathered with one fancy index per
array instead of one Python call per item. `TensorDataset`, `Subset` of such a data set, convlens's
array data sets (``convlens.data``) and convlens.vision's MNIST / CIFAR-10 with a batchable transform
offer it; the DataLoader uses it only where the result is the same as the per-item path.
"""

from __future__ import annotations

import bisect
import math
import warnings
from collections.abc import Sequence

import numpy as np

from convlens.utils.data.worker import numpy_rng

__all__ = [
    "Dataset", "IterableDataset", "TensorDataset", "StackDataset", "ConcatDataset", "ChainDataset", "Subset",
    "random_split", "batch_reader",
]


class Dataset:
    """A map-style data set: subclasses define ``__getitem__(index)`` and (for the default samplers)
    ``__len__``. ``a + b`` is ``ConcatDataset([a, b])``."""

    def __getitem__(self, index):
        raise NotImplementedError("Subclasses of Dataset should implement __getitem__.")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A data set read as a stream: subclasses define ``__iter__``. With ``num_workers > 0`` every
    worker thread calls ``iter(dataset)``; shard the stream with ``get_worker_info()`` as in torch."""

    def __iter__(self):
        raise NotImplementedError("Subclasses of IterableDataset should implement __iter__.")

    def __add__(self, other) -> ChainDataset:
        return ChainDataset([self, other])


def batch_reader(dataset):
    """The data set's vectorised batch reader (see the module docstring), or None."""
    make = getattr(dataset, "_batch_reader", None)
    return make() if callable(make) else None


def _length(t) -> int:
    shape = getattr(t, "shape", None)
    if shape is None or len(shape) == 0:
        raise ValueError(f"TensorDataset: expected tensors or arrays with a first dimension, got {type(t).__name__}"
                         + (f" of shape {tuple(shape)}" if shape is not None else ""))
    return int(shape[0])


class TensorDataset(Dataset):
    """Items are ``tuple(t[i] for t in tensors)``: tensors (or NumPy arrays) of any dtype, sharing their
    first dimension. ``TensorDataset(x, y)`` with ``x`` float (N, C, H, W) and ``y`` int64 (N,).

    Shape:
        every tensor (N, *): item i is (t₀[i], t₁[i], ...).
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor")
        n = _length(tensors[0])
        bad = [tuple(t.shape) for t in tensors if _length(t) != n]
        if bad:
            raise ValueError(f"TensorDataset: size mismatch between tensors: first dimension {n} for the first, "
                             f"found shapes {[tuple(t.shape) for t in tensors]}")
        self.tensors = tuple(tensors)

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return _length(self.tensors[0])

    def _batch_reader(self):
        from convlens.tensor import Tensor

        arrays = []
        for t in self.tensors:
            if isinstance(t, Tensor) and not t.requires_grad:
                arrays.append(t._data)
            elif isinstance(t, np.ndarray) and t.dtype.kind in "biuf":
                arrays.append(t)
            else:
                return None  # e.g. a tensor that records gradients: stacking its rows builds a graph

        def read(indices, rng=None):
            # one gather per tensor = default_collate's stack of the rows (same values, dtype, shape)
            return [Tensor._wrap(a[indices]) for a in arrays]

        return read


class StackDataset(Dataset):
    """Items are tuples (positional data sets) or dicts (keyword data sets) of the items of each."""

    def __init__(self, *args, **kwargs):
        if args and kwargs:
            raise ValueError("StackDataset: supported either tuple-like (positional) or dict-like (keyword) "
                             "input, but both were given")
        self._datasets = args or kwargs
        sets = args or tuple(kwargs.values())
        if not sets:
            raise ValueError("StackDataset: at least one data set should be passed")
        lengths = {len(d) for d in sets}
        if len(lengths) != 1:
            raise ValueError(f"StackDataset: size mismatch between data sets: lengths {[len(d) for d in sets]}")
        self._length = lengths.pop()

    def __getitem__(self, index):
        if isinstance(self._datasets, dict):
            return {k: d[index] for k, d in self._datasets.items()}
        return tuple(d[index] for d in self._datasets)

    def __len__(self) -> int:
        return self._length


class ConcatDataset(Dataset):
    """The concatenation of map-style data sets; ``cumulative_sizes[k]`` is the length of the first k+1."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset (use ChainDataset)")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        if idx < 0:
            if -idx > len(self):
                raise ValueError(f"ConcatDataset: absolute value of index {idx} should not exceed dataset length "
                                 f"{len(self)}")
            idx = len(self) + idx
        k = bisect.bisect_right(self.cumulative_sizes, idx)
        return self.datasets[k][idx - (self.cumulative_sizes[k - 1] if k else 0)]


class ChainDataset(IterableDataset):
    """Iterable data sets read one after the other."""

    def __init__(self, datasets):
        self.datasets = list(datasets)

    def __iter__(self):
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise TypeError(f"ChainDataset only supports IterableDataset, got {type(d).__name__}")
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)


class Subset(Dataset):
    """Items ``indices`` of ``dataset``, in that order (``random_split`` returns these)."""

    def __init__(self, dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices: list[int]) -> list:
        getitems = getattr(self.dataset, "__getitems__", None)
        if callable(getitems):
            return getitems([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self) -> int:
        return len(self.indices)

    def _batch_reader(self):
        parent = batch_reader(self.dataset)
        if parent is None:
            return None
        index = np.asarray(self.indices, dtype=np.int64)
        return lambda indices, rng=None: parent(index[indices], rng)


def split_lengths(n: int, lengths, who: str = "random_split") -> list[int]:
    """Counts for ``lengths`` given as counts summing to ``n`` or fractions summing to 1 (torch's rule:
    ``floor(n * f)`` each, the remainder handed out one by one from the first)."""
    lengths = list(lengths)
    if lengths and math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        if any(f < 0 or f > 1 for f in lengths):
            raise ValueError(f"{who}: fractions must lie in [0, 1], got {lengths}")
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for i, c in enumerate(counts):
            if c == 0:
                warnings.warn(f"{who}: length of split at index {i} is 0; this might result in an empty dataset",
                              stacklevel=3)
    else:
        if any(int(x) != x or x < 0 for x in lengths):
            raise ValueError(f"{who}: lengths must be non-negative integers or fractions summing to 1, got {lengths}")
        counts = [int(x) for x in lengths]
    if sum(counts) != n:
        raise ValueError(f"{who}: sum of input lengths {lengths} ({sum(counts)}) does not equal the length of the "
                         f"input dataset ({n})")
    return counts


def random_split(dataset, lengths, generator=None) -> list[Subset]:
    """Disjoint random `Subset`s of the given lengths (ints summing to ``len(dataset)``, or fractions
    summing to 1). ``generator``: a ``convlens.Generator``; by default convlens's default generator,
    so ``convlens.manual_seed`` fixes the split (as ``torch.default_generator`` does)."""
    counts = split_lengths(len(dataset), lengths)
    perm = numpy_rng(generator, "random_split").permutation(sum(counts)).tolist()
    bounds = np.cumsum([0] + counts).tolist()
    return [Subset(dataset, perm[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
