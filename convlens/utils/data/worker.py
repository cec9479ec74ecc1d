"""Worker threads' view of the world: ``get_worker_info()`` and the random stream a transform draws from.

convlens's DataLoader workers are threads (``dataloader.py`` says why), so what torch keeps per worker
*process* — the worker's id and seed, its seeded random generator — is kept per *thread* here.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass

import numpy as np

__all__ = ["WorkerInfo", "get_worker_info", "sample_rng", "deferred_rng", "using_rng", "numpy_rng"]

_local = threading.local()


@dataclass(frozen=True)
class WorkerInfo:
    """What ``get_worker_info()`` returns inside a worker, as in torch: ``id`` (0..num_workers-1),
    ``num_workers``, ``seed`` (the loader's base seed + id) and ``dataset`` (the loader's data set, the
    same object in every worker: threads share memory)."""

    id: int
    num_workers: int
    seed: int
    dataset: object


def get_worker_info() -> WorkerInfo | None:
    """The current worker's `WorkerInfo`, or None in the main thread (as torch returns None in the
    main process). Use it to shard an `IterableDataset` across workers."""
    return getattr(_local, "info", None)


def _set_worker_info(info: WorkerInfo | None) -> None:
    _local.info = info


def sample_rng() -> np.random.Generator:
    """The generator a random transform draws from: while a DataLoader fetches batch ``b`` of epoch
    ``e`` it is a stream seeded from ``(seed, e, b)`` — the same whichever thread fetches the batch, so
    the result does not depend on ``num_workers`` — made on first use; elsewhere it is convlens's
    default generator, which ``convlens.manual_seed`` seeds (torchvision's transforms draw from
    torch's global generator)."""
    rng = getattr(_local, "rng", None)
    if rng is not None:
        return rng
    key = getattr(_local, "rng_key", None)
    if key is not None:
        _local.rng = rng = np.random.default_rng(np.random.SeedSequence(key))
        return rng
    from convlens.tensor import default_generator

    return default_generator()


@contextlib.contextmanager
def using_rng(key):
    """Inside the ``with`` block, this thread's ``sample_rng()`` is ``default_rng(SeedSequence(key))``
    (created only if something draws: most batches need no random numbers)."""
    saved = getattr(_local, "rng_key", None), getattr(_local, "rng", None)
    _local.rng_key, _local.rng = key, None
    try:
        yield
    finally:
        _local.rng_key, _local.rng = saved


class _DeferredRng:
    """Stands for ``sample_rng()`` of the thread that uses it, made only when a method is called: a
    batch transform gets it as ``rng`` and a deterministic one never pays for creating a generator."""

    def __getattr__(self, name):
        return getattr(sample_rng(), name)


deferred_rng = _DeferredRng()


def numpy_rng(generator, who: str) -> np.random.Generator:
    """The NumPy generator behind ``generator=``: None → convlens's default generator, a
    ``convlens.Generator`` → its PCG64 stream, a NumPy Generator as it is."""
    if generator is None:
        from convlens.tensor import default_generator

        return default_generator()
    if isinstance(generator, np.random.Generator):
        return generator
    rng = getattr(generator, "rng", None)
    if isinstance(rng, np.random.Generator):
        return rng
    raise TypeError(f"{who}: generator must be a convlens.Generator (or None), got {type(generator).__name__}")


def draw_seed(generator=None, who: str = "DataLoader") -> int:
    """One 63-bit seed drawn from ``generator`` (torch draws an int64 the same way for its base seed)."""
    return int(numpy_rng(generator, who).integers(0, 1 << 63))
