"""``DistributedSampler``: each process of a data-parallel job reads its own shard of the data set.

torch's semantics: the epoch's order (a permutation when ``shuffle``) is padded by repeating its
start until its length divides by ``num_replicas`` (or cut down to that with ``drop_last``), and rank
r takes every ``num_replicas``-th index from position r. Every rank therefore runs the same number of
steps, and the shards of one epoch are disjoint (apart from the padding). ``set_epoch(e)`` before each
epoch gives a new order; without it every epoch repeats epoch 0's, as in torch.

Where convlens differs: the permutation of epoch e is
``default_rng(SeedSequence([seed, e])).permutation(n)``, the same one ``DataLoader(shuffle=True,
seed=seed)`` uses (torch seeds a ``torch.Generator`` with ``seed + epoch``). Together with the
interleaved shards this makes batch k of a job of N ranks, each with batch size B/N, hold exactly the
images of batch k of one process with batch size B — the property behind "N processes train the same
weights as one" (docs/distributed.md).
"""

from __future__ import annotations

import math

import numpy as np

from convlens.utils.data.sampler import Sampler

__all__ = ["DistributedSampler"]


class DistributedSampler(Sampler):
    """The indices of shard ``rank`` of ``num_replicas`` (see the module docstring).

    Args (torch's): dataset (map-style, with a length), num_replicas (default: the world size of
    `convlens.distributed`), rank (default: this process's rank), shuffle (default True), seed (default
    0; must be the same on every rank), drop_last (drop the tail instead of padding it).
    """

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False):
        if num_replicas is None or rank is None:
            from convlens import distributed

            num_replicas = distributed.world_size() if num_replicas is None else num_replicas
            rank = distributed.rank() if rank is None else rank
        num_replicas, rank = int(num_replicas), int(rank)
        if num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas should be a positive integer, got {num_replicas}")
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.epoch, self.drop_last, self.shuffle, self.seed = 0, bool(drop_last), bool(shuffle), int(seed)
        n = len(dataset)
        if self.drop_last and n % num_replicas != 0:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def _index_array(self) -> np.ndarray:
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch])).permutation(n)
        else:
            order = np.arange(n, dtype=np.int64)
        order = order.astype(np.int64, copy=False)
        if not self.drop_last:
            pad = self.total_size - n
            if pad > 0:  # repeat the start of the order (all of it, several times, for a tiny data set)
                order = np.concatenate([order, np.resize(order, pad)])
        else:
            order = order[:self.total_size]
        return order[self.rank:self.total_size:self.num_replicas]

    def __iter__(self):
        return iter(self._index_array().tolist())

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s order on the next pass (call it before every epoch, on every rank)."""
        self.epoch = int(epoch)
