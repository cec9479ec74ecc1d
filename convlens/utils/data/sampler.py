"""Samplers as in ``torch.utils.data``: what order the DataLoader reads a map-style data set in.

Each sampler also offers ``_index_array()``, the epoch's indices as one NumPy array (the same ones
``iter()`` yields), so the DataLoader can slice batches out of it instead of collecting indices one
Python object at a time. Random samplers draw from their ``generator`` (a ``convlens.Generator``);
without one, from a generator seeded by one draw from convlens's default generator at each pass, as
torch does, so ``convlens.manual_seed`` fixes the order.
"""

from __future__ import annotations

import warnings

import numpy as np

from convlens.utils.data.worker import draw_seed, numpy_rng

__all__ = [
    "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler",
    "BatchSampler",
]


class Sampler:
    """Base class: subclasses define ``__iter__`` (indices, or lists of indices for a batch sampler)
    and usually ``__len__``."""

    def __init__(self, data_source=None):
        if data_source is not None:
            warnings.warn("`data_source` argument is not used and will be removed in a future release",
                          UserWarning, stacklevel=2)

    def __iter__(self):
        raise NotImplementedError

    def _index_array(self) -> np.ndarray | None:
        return None


def _positive_int(value, name: str, who: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{who}: {name} should be a positive integer value, but got {name}={value!r}")
    return int(value)


def _pass_rng(generator, who: str) -> np.random.Generator:
    # torch: with no generator, seed a fresh one from one draw of the global generator per pass
    if generator is None:
        return np.random.default_rng(draw_seed(None, who))
    return numpy_rng(generator, who)


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def _index_array(self) -> np.ndarray:
        return np.arange(len(self.data_source), dtype=np.int64)

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random permutation (``replacement=False``) or ``num_samples`` uniform draws with replacement."""

    def __init__(self, data_source, replacement: bool = False, num_samples: int | None = None, generator=None):
        if not isinstance(replacement, bool):
            raise TypeError(f"RandomSampler: replacement should be a boolean value, but got replacement={replacement!r}")
        self.data_source, self.replacement, self._num_samples, self.generator = (
            data_source, replacement, num_samples, generator)
        if num_samples is not None:
            _positive_int(num_samples, "num_samples", "RandomSampler")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def _index_array(self) -> np.ndarray:
        n, rng = len(self.data_source), _pass_rng(self.generator, "RandomSampler")
        if self.replacement:
            return rng.integers(0, n, size=self.num_samples, dtype=np.int64)
        # num_samples > n: whole permutations one after the other, then part of one more (as torch)
        reps = -(-self.num_samples // n) if n else 0
        perms = [rng.permutation(n) for _ in range(max(reps, 1))]
        return np.concatenate(perms)[: self.num_samples].astype(np.int64, copy=False)

    def __iter__(self):
        return iter(self._index_array().tolist())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in a random order (a new one each pass)."""

    def __init__(self, indices, generator=None):
        self.indices, self.generator = indices, generator

    def _index_array(self) -> np.ndarray:
        index = np.asarray(self.indices, dtype=np.int64)
        return index[_pass_rng(self.generator, "SubsetRandomSampler").permutation(len(index))]

    def __iter__(self):
        return iter(self._index_array().tolist())

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices in 0..len(weights)-1 drawn with probability ``weights[i] / sum(weights)``
    (weights need not sum to 1), with or without replacement."""

    def __init__(self, weights, num_samples: int, replacement: bool = True, generator=None):
        _positive_int(num_samples, "num_samples", "WeightedRandomSampler")
        if not isinstance(replacement, bool):
            raise ValueError(f"WeightedRandomSampler: replacement should be a boolean value, but got "
                             f"replacement={replacement!r}")
        w = np.asarray(getattr(weights, "_data", weights), dtype=np.float64)
        if w.ndim != 1:
            raise ValueError(f"WeightedRandomSampler: weights should be a 1-d sequence, but given weights have "
                             f"shape {w.shape}")
        if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ValueError("WeightedRandomSampler: weights must be finite, non-negative and not all zero")
        if not replacement and num_samples > np.count_nonzero(w):
            raise ValueError(f"WeightedRandomSampler: cannot draw {num_samples} samples without replacement from "
                             f"{np.count_nonzero(w)} non-zero weights")
        self.weights, self.num_samples, self.replacement, self.generator = w, int(num_samples), replacement, generator

    def _index_array(self) -> np.ndarray:
        rng = _pass_rng(self.generator, "WeightedRandomSampler")
        return rng.choice(len(self.weights), size=self.num_samples, replace=self.replacement,
                          p=self.weights / self.weights.sum()).astype(np.int64)

    def __iter__(self):
        return iter(self._index_array().tolist())

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Lists of ``batch_size`` indices from ``sampler`` (the last one shorter unless ``drop_last``)."""

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        self.batch_size = _positive_int(batch_size, "batch_size", "BatchSampler")
        if not isinstance(drop_last, bool):
            raise ValueError(f"BatchSampler: drop_last should be a boolean value, but got drop_last={drop_last!r}")
        self.sampler, self.drop_last = sampler, drop_last

    def _batches(self):
        """One batch at a time: slices of the sampler's index array when it has one, else lists of what
        the sampler yields (which may be any keys the data set understands)."""
        index = self.sampler._index_array() if isinstance(self.sampler, Sampler) else None
        b = self.batch_size
        if index is not None:
            stop = len(index) - len(index) % b if self.drop_last else len(index)
            for a in range(0, stop, b):
                yield index[a : a + b]
            return
        batch: list = []
        for i in self.sampler:
            batch.append(i)
            if len(batch) == b:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __iter__(self):
        return (b.tolist() if isinstance(b, np.ndarray) else b for b in self._batches())

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
