"""``DataLoader`` with torch's signature, defaults and semantics, over any map-style or iterable data set.

    DataLoader(dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
               collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
               multiprocessing_context=None, generator=None, *, prefetch_factor=None,
               persistent_workers=False, pin_memory_device="", in_order=True,
               seed=None, transform=None, prefetch=True, as_tensor=True)

The keyword-only ``seed``, ``transform``, ``prefetch`` and ``as_tensor`` are convlens's additions.

Workers are threads. A worker *process* would need pickle to receive the data set and to send batches
back, and convlens never pickles (unpickling runs code); forking a process that has started numba's
and BLAS's thread pools is unsafe, and not available on every platform. Threads share the data set
without copying, and the work that dominates loading — decoding images (Pillow), NumPy gathers,
casts and arithmetic — releases the GIL, so ``num_workers`` threads do run in parallel. Pure-Python
``__getitem__`` code does not (the GIL), which is what the vectorised fast path is for.

Order: batch k goes to worker ``k % num_workers`` and results are read back in order, so batches come
out in sampler order (``in_order=False`` is accepted and changes nothing).

Reproducibility: the loader has one ``seed`` (given, or drawn once from ``generator``, or from
convlens's default generator, so ``convlens.manual_seed`` fixes it), drawn at the first pass. Epoch e's
shuffle is ``default_rng(SeedSequence([seed, e])).permutation(n)``; the random transforms of batch b
draw from ``SeedSequence([seed, e, b, 1])`` whichever thread builds it. So the batches do not depend on
``num_workers``, ``prefetch`` or timing, and ``state_dict()`` → ``{"seed", "epoch", "batch"}`` resumes a
run bit-exactly, mid-epoch (``convlens.train.fit`` saves it in every checkpoint). The epoch counter
advances after each complete pass; a pass abandoned early restarts the same epoch next time.
"""

from __future__ import annotations

import collections
import functools
import itertools
import queue
import threading

import numpy as np

from convlens.utils.data.collate import default_collate, default_convert
from convlens.utils.data.dataset import IterableDataset, batch_reader
from convlens.utils.data.sampler import BatchSampler, RandomSampler, SequentialSampler
from convlens.utils.data.threads import WorkerThreads, get_result, put_until
from convlens.utils.data.worker import draw_seed, sample_rng, using_rng

__all__ = ["DataLoader"]


def _epoch_seed(seed: int, epoch: int, *more) -> int:
    """A 63-bit seed derived from (seed, epoch, ...): the workers' base seed."""
    return int(np.random.SeedSequence([seed, epoch, *more]).generate_state(1, np.uint64)[0] >> np.uint64(1))


class DataLoader:
    """Batches from a data set, as ``torch.utils.data.DataLoader`` (see the module docstring).

    Args (torch's, in torch's order):
        dataset: a map-style (``len`` + ``[i]``) or iterable (``IterableDataset``) data set.
        batch_size: samples per batch (default 1); None turns batching off (each sample is passed
            through ``default_convert``).
        shuffle: a new random order every epoch (map-style only).
        sampler / batch_sampler: the order of indices / of index lists (exclusive with shuffle, and
            batch_sampler with batch_size, sampler and drop_last).
        num_workers: worker threads loading batches in parallel (0: in the calling thread).
        collate_fn: merges a list of samples into a batch (default ``default_collate``).
        pin_memory, pin_memory_device: accepted for torch code; no meaning on the CPU.
        drop_last: drop the last, incomplete batch.
        timeout: seconds to wait for a worker's batch before raising (0: forever).
        worker_init_fn: called as ``worker_init_fn(worker_id)`` in each worker thread when it starts.
        multiprocessing_context: accepted for torch code; ignored (workers are threads).
        generator: a ``convlens.Generator``; the loader's seed is drawn from it (else from convlens's
            default generator).
        prefetch_factor: batches each worker loads ahead (default 2 when num_workers > 0; torch's error
            when given with num_workers=0).
        persistent_workers: keep the worker threads between epochs.
        in_order: accepted; batches always come in order.
    convlens's additions (keyword only):
        seed: fixes the loader's seed (shuffle order and per-batch random streams).
        transform: a batch transform ``t(x, rng)`` (``convlens.data.transforms``) applied to the first
            element of each batch, a float32 (N, C, H, W) array, with the batch's random stream.
        prefetch: with num_workers=0, build the next batches of a vectorised (fast-path) data set in one
            background thread (no user code runs there).
        as_tensor: False yields NumPy arrays instead of tensors.
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None, sampler=None,
                 batch_sampler=None, num_workers: int = 0, collate_fn=None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn=None, multiprocessing_context=None,
                 generator=None, *, prefetch_factor: int | None = None, persistent_workers: bool = False,
                 pin_memory_device: str = "", in_order: bool = True, seed: int | None = None, transform=None,
                 prefetch: bool = True, as_tensor: bool = True):
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers option should be a non-negative integer; use num_workers=0 to "
                             f"load in the calling thread, got {num_workers!r}")
        if timeout < 0:
            raise ValueError(f"DataLoader: timeout option should be non-negative, got {timeout!r}")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("DataLoader: prefetch_factor option could only be specified with num_workers > 0, "
                             "otherwise set prefetch_factor to None")
        if prefetch_factor is None:
            prefetch_factor = 2 if num_workers > 0 else None
        elif isinstance(prefetch_factor, bool) or not isinstance(prefetch_factor, int) or prefetch_factor < 1:
            raise ValueError(f"DataLoader: prefetch_factor should be a positive integer, got {prefetch_factor!r}")
        if persistent_workers and num_workers == 0:
            raise ValueError("DataLoader: persistent_workers option needs num_workers > 0")
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader: transform must be a batch transform t(x, rng), got {transform!r} "
                            "(for a spec string use convlens.data.transforms.from_spec)")

        iterable = isinstance(dataset, IterableDataset)
        if iterable:
            for name, value in (("shuffle", shuffle), ("sampler", sampler), ("batch_sampler", batch_sampler)):
                if value not in (None, False):
                    raise ValueError(f"DataLoader with IterableDataset: expected unspecified {name} option, but got "
                                     f"{name}={value!r}")
        shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler option is mutually exclusive with batch_size, shuffle, "
                                 "sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("DataLoader: batch_size=None option disables auto-batching and is mutually exclusive "
                             "with drop_last")

        self._own_shuffle = shuffle and not iterable
        self._shuffle_generator = None
        if sampler is None and not iterable:
            if shuffle:
                from convlens.tensor import Generator

                # re-seeded from (seed, epoch) at the start of every pass: the resumable order
                self._shuffle_generator = Generator()
                sampler = RandomSampler(dataset, generator=self._shuffle_generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and not iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, bool(drop_last)
        self.sampler, self.batch_sampler = sampler, batch_sampler
        self.num_workers, self.prefetch_factor, self.timeout = num_workers, prefetch_factor, timeout
        self.collate_fn = collate_fn if collate_fn is not None else (
            default_collate if self._auto_collation else default_convert)
        self.pin_memory, self.pin_memory_device, self.in_order = pin_memory, pin_memory_device, in_order
        self.worker_init_fn, self.multiprocessing_context = worker_init_fn, multiprocessing_context
        self.generator, self.persistent_workers = generator, persistent_workers
        self.transform, self.prefetch, self.as_tensor = transform, prefetch, as_tensor
        self._seed = None if seed is None else int(seed)
        self.epoch = 0
        self._pos = 0  # batches of the current epoch already handed out (what state_dict saves)
        self._resume = 0  # where the next pass starts; set only by load_state_dict
        self._workers: WorkerThreads | None = None  # kept between passes when persistent_workers
        self._reader()  # a data set that cannot be loaded (e.g. an empty convlens array set) says so now

    # ---- what kind of loading ---------------------------------------------------------------------
    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None or (isinstance(self.dataset, IterableDataset)
                                                  and self.batch_size is not None)

    @property
    def shuffle(self) -> bool:
        return self._own_shuffle

    def _reader(self):
        """The data set's vectorised batch reader when it gives what the per-sample path would."""
        if isinstance(self.dataset, IterableDataset) or self.batch_sampler is None:
            return None
        if self.collate_fn is not default_collate:
            return None
        return batch_reader(self.dataset)

    def __len__(self) -> int:
        if isinstance(self.dataset, IterableDataset):
            n = len(self.dataset)  # TypeError when the stream has no length, as in torch
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self.batch_sampler) if self.batch_sampler is not None else len(self.sampler)

    # ---- seed, epoch and resumable state ----------------------------------------------------------
    @property
    def seed(self) -> int:
        """The loader's seed: ``seed=``, else one draw from ``generator`` / convlens's default
        generator, made the first time it is needed and then kept (so an unseeded run resumes too)."""
        if self._seed is None:
            self._seed = draw_seed(self.generator, "DataLoader")
        return self._seed

    @seed.setter
    def seed(self, value: int) -> None:
        self._seed = int(value)

    def set_epoch(self, epoch: int) -> None:
        """Start the next iteration at the beginning of epoch ``epoch``."""
        self.epoch, self._pos, self._resume = int(epoch), 0, 0

    def state_dict(self) -> dict:
        """``{"seed", "epoch", "batch"}``: where this loader is (batch = next batch of ``epoch``)."""
        return {"seed": self.seed, "epoch": self.epoch, "batch": self._pos}

    def load_state_dict(self, state: dict) -> None:
        """The next pass yields exactly the batches a run in ``state`` would have yielded next."""
        missing = {"seed", "epoch"} - set(state)
        if missing:
            raise ValueError(f"DataLoader.load_state_dict: expected keys seed, epoch, batch; missing {sorted(missing)}")
        self._seed, self.epoch = int(state["seed"]), int(state["epoch"])
        self._pos = self._resume = int(state.get("batch", 0))

    def permutation(self, epoch: int | None = None) -> np.ndarray | None:
        """The item order of ``epoch`` when the loader shuffles itself (None otherwise)."""
        if not self._own_shuffle:
            return None
        epoch = self.epoch if epoch is None else epoch
        return np.random.default_rng(np.random.SeedSequence([self.seed, epoch])).permutation(len(self.dataset))

    # ---- one batch --------------------------------------------------------------------------------
    def _finish(self, batch):
        """The loader-level batch transform and the NumPy option, applied to a collated batch."""
        from convlens.tensor import Tensor

        if self.transform is not None:
            first = batch[0] if isinstance(batch, list | tuple) else batch
            if not isinstance(first, Tensor) or first.ndim != 4:
                raise TypeError("DataLoader: transform= applies to batches whose first element is an image tensor "
                                f"(N, C, H, W); got {type(first).__name__} of shape {getattr(first, 'shape', None)}")
            x = np.ascontiguousarray(self.transform(first._data.astype(np.float32, copy=False), sample_rng()),
                                     dtype=np.float32)
            batch = [Tensor._wrap(x), *batch[1:]] if isinstance(batch, list | tuple) else Tensor._wrap(x)
        if not self.as_tensor:
            batch = _to_numpy(batch)
        return batch

    def _fetch(self, reader, indices, key):
        """Batch ``indices`` (a list/array of indices, or one index without batching) under the random
        stream ``key``."""
        with using_rng(key):
            if reader is not None:
                batch = reader(np.asarray(indices, dtype=np.int64))
            elif self._auto_collation:
                keys = indices.tolist() if isinstance(indices, np.ndarray) else list(indices)
                getitems = getattr(self.dataset, "__getitems__", None)
                data = getitems(keys) if callable(getitems) else [self.dataset[i] for i in keys]
                batch = self.collate_fn(data)
            else:
                batch = self.collate_fn(self.dataset[indices])
            return self._finish(batch)

    def _index_batches(self):
        if self.batch_sampler is None:
            return iter(self.sampler)
        bs = self.batch_sampler
        if isinstance(bs, BatchSampler) and type(bs).__iter__ is BatchSampler.__iter__:
            return bs._batches()
        return iter(bs)

    # ---- passes -----------------------------------------------------------------------------------
    def __iter__(self):
        return _LoaderIterator(self._pass(), self)

    def _pass(self):
        epoch, start = self.epoch, self._resume
        self._resume, self._pos = 0, start
        if callable(getattr(self.dataset, "set_epoch", None)):  # epoch-dependent data sets (AlternatingFlip)
            self.dataset.set_epoch(epoch)
        seed = self.seed
        if self._shuffle_generator is not None:
            self._shuffle_generator.rng = np.random.default_rng(np.random.SeedSequence([seed, epoch]))
        if isinstance(self.dataset, IterableDataset):
            batches = self._iterable_batches(seed, epoch)
            batches = itertools.islice(batches, start, None)  # a resumed stream is replayed up to the batch
        else:
            batches = self._map_batches(seed, epoch, start)
        b = start
        try:
            for batch in batches:
                b += 1
                self._pos = b
                yield batch
        finally:
            if hasattr(batches, "close"):
                batches.close()
        self.epoch, self._pos = epoch + 1, 0

    def _pool(self, seed: int, epoch: int, n: int, info: bool) -> tuple[WorkerThreads, bool]:
        """(worker threads, whether this pass owns them and must close them)."""
        if self.persistent_workers and info:
            if self._workers is None:
                self._workers = WorkerThreads(n, self.dataset, _epoch_seed(seed, 0, 2), self.worker_init_fn)
            return self._workers, False
        return WorkerThreads(n, self.dataset, _epoch_seed(seed, epoch, 2), self.worker_init_fn, info), True

    def _map_batches(self, seed: int, epoch: int, start: int):
        reader = self._reader()
        indices = itertools.islice(self._index_batches(), start, None)  # skipped batches are never fetched
        jobs = ((b, functools.partial(self._fetch, reader, idx, (seed, epoch, b, 1)))
                for b, idx in enumerate(indices, start))
        if reader is not None and (self.num_workers > 0 or self.prefetch):
            # vectorised batches of a few items cost less than handing them to a thread (~50 us a batch
            # at batch_size=4): a worker builds a run of consecutive batches per task, ~_CHUNK items
            per_task = max(1, _CHUNK // self.batch_size) if self.batch_size else 1  # a batch_sampler's size is unknown
            runs = _runs(jobs, per_task)
            n, depth = (self.num_workers, self.prefetch_factor) if self.num_workers > 0 else (1, 2)
            for run in self._run_on_workers(runs, seed, epoch, n, depth, info=self.num_workers > 0):
                yield from run
        elif self.num_workers > 0:
            yield from self._run_on_workers(jobs, seed, epoch, self.num_workers, self.prefetch_factor, info=True)
        else:
            for _, job in jobs:
                yield job()

    def _run_on_workers(self, jobs, seed, epoch, n: int, depth: int, info: bool):
        pool, owned = self._pool(seed, epoch, n, info)
        outs = [queue.SimpleQueue() for _ in range(n)]
        cancel = threading.Event()
        pending: collections.deque[int] = collections.deque()
        sent = 0

        def top_up():
            nonlocal sent
            while len(pending) < n * depth:
                job = next(jobs, None)
                if job is None:
                    return
                w = sent % n
                pool.submit(w, job[1], outs[w], cancel)
                pending.append(w)
                sent += 1

        try:
            top_up()
            while pending:
                w = pending.popleft()
                ok, value = get_result(outs[w], self.timeout)
                if not ok:
                    raise value
                top_up()
                yield value
        finally:
            cancel.set()
            if owned:
                pool.close()

    def _iterable_batches(self, seed: int, epoch: int):
        if self.num_workers == 0:
            yield from self._stream(seed, epoch, 0)
            return
        pool, owned = self._pool(seed, epoch, self.num_workers, True)
        cancel = threading.Event()
        outs = [queue.Queue(maxsize=self.prefetch_factor) for _ in range(self.num_workers)]
        done = object()

        def produce(w):
            try:
                for batch in self._stream(seed, epoch, w):
                    if not put_until(outs[w], (True, batch), cancel):
                        return
            except BaseException as e:
                put_until(outs[w], (False, e), cancel)
                return
            put_until(outs[w], (True, done), cancel)

        try:
            for w in range(self.num_workers):
                pool.submit(w, functools.partial(produce, w), queue.SimpleQueue(), cancel)
            live = list(range(self.num_workers))
            while live:  # round-robin over the workers still producing, as torch does
                for w in list(live):
                    ok, value = get_result(outs[w], self.timeout)
                    if not ok:
                        raise value
                    if value is done:
                        live.remove(w)
                        continue
                    yield value
        finally:
            cancel.set()
            if owned:
                pool.close()

    def _stream(self, seed: int, epoch: int, worker: int):
        """Batches of one pass over ``iter(dataset)`` (in worker ``worker``'s thread when workers run)."""
        it = iter(self.dataset)
        for b in itertools.count():
            with using_rng((seed, epoch, b, 1, worker)):
                if self.batch_size is None:
                    try:
                        sample = next(it)
                    except StopIteration:
                        return
                    yield self._finish(self.collate_fn(sample))
                    continue
                data = list(itertools.islice(it, self.batch_size))
                if not data or (self.drop_last and len(data) < self.batch_size):
                    return
                yield self._finish(self.collate_fn(data))

    def __repr__(self) -> str:
        name = getattr(self.dataset, "name", type(self.dataset).__name__)
        return (f"DataLoader({name}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"num_workers={self.num_workers}, drop_last={self.drop_last})")

    def __del__(self):
        workers = getattr(self, "_workers", None)
        if workers is not None:
            workers.close(timeout=0)


_CHUNK = 256  # items per worker task on the vectorised path


def _runs(jobs, k: int):
    """Group ``(b, job)`` pairs into ``(b0, run)`` where ``run()`` returns the list of k batches."""
    while True:
        group = list(itertools.islice(jobs, k))
        if not group:
            return
        yield group[0][0], functools.partial(lambda g: [job() for _, job in g], group)


class _LoaderIterator:
    """What ``iter(loader)`` returns: an iterator with ``len()`` (as torch's), closable."""

    def __init__(self, gen, loader: DataLoader):
        self._gen, self._loader = gen, loader

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._gen)

    def __len__(self) -> int:
        return len(self._loader)

    def close(self) -> None:
        self._gen.close()


def _to_numpy(batch):
    from convlens.tensor import Tensor

    if isinstance(batch, Tensor):
        return batch._data
    if isinstance(batch, dict):
        return {k: _to_numpy(v) for k, v in batch.items()}
    if isinstance(batch, list | tuple) and not hasattr(batch, "_fields"):
        return type(batch)(_to_numpy(v) for v in batch)
    return batch
