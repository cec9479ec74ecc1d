"""DataLoader: batches of (images float32 Tensor (N, C, H, W) in [0, 1] then transformed, labels int64).

Reproducibility and resuming: every random choice comes from NumPy generators seeded by
``SeedSequence([seed, epoch])`` (the shuffle permutation) and ``SeedSequence([seed, epoch, batch])``
(that batch's augmentation). Nothing depends on history, so a run resumes bit-exactly from
``(seed, epoch, batch)``: save ``loader.state_dict()`` with the checkpoint, restore with
``loader.load_state_dict(state)`` (or ``loader.set_epoch(k)`` at an epoch boundary). The epoch counter
advances by one after each complete pass.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import asdict, dataclass

import numpy as np

from .errors import DataError

__all__ = ["DataLoader", "LoaderState"]

@dataclass
class LoaderState:
    seed: int
    epoch: int = 0
    batch: int = 0  # index of the next batch within the epoch


def _to_tensor(array: np.ndarray):
    from convlens.tensor import Tensor

    # _wrap (when the engine has it) avoids the constructor's defensive copy of a freshly made array
    wrap = getattr(Tensor, "_wrap", None)
    return wrap(array) if wrap is not None else Tensor(array)


class DataLoader:
    def __init__(self, dataset, batch_size: int = 64, shuffle: bool = False, drop_last: bool = False,
                 seed: int | None = None, transform=None, prefetch: bool = True, as_tensor: bool = True):
        if batch_size < 1:
            raise DataError(f"DataLoader: batch_size must be >= 1, found {batch_size}")
        if len(dataset) == 0:
            raise DataError(f"DataLoader: {getattr(dataset, 'name', dataset)} is empty")
        if isinstance(transform, str):
            from .transforms import from_spec

            transform = from_spec(transform)
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, int(batch_size), shuffle, drop_last
        self.transform, self.prefetch, self.as_tensor = transform, prefetch, as_tensor
        # with no seed, draw one from OS entropy but keep it, so even an unseeded run can be resumed
        self.seed = int(seed) if seed is not None else int(np.random.SeedSequence().entropy % (1 << 63))
        self.epoch = 0
        self._pos = 0  # batches of the current epoch already handed out (what state_dict saves)
        self._resume = 0  # where the next pass starts; set only by load_state_dict

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    # ---- resumable state --------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Start the next iteration at the beginning of epoch ``epoch``."""
        self.epoch, self._pos, self._resume = int(epoch), 0, 0

    def state_dict(self) -> dict:
        """``{"seed", "epoch", "batch"}``: where this loader is (batch = next batch of ``epoch``)."""
        return asdict(LoaderState(self.seed, self.epoch, self._pos))

    def load_state_dict(self, state: dict) -> None:
        """The next pass yields exactly the batches a run in ``state`` would have yielded next."""
        s = LoaderState(**state)
        self.seed, self.epoch, self._pos, self._resume = int(s.seed), int(s.epoch), int(s.batch), int(s.batch)

    def permutation(self, epoch: int | None = None) -> np.ndarray | None:
        """Order of items in ``epoch`` (None when not shuffling: dataset order)."""
        if not self.shuffle:
            return None
        epoch = self.epoch if epoch is None else epoch
        return np.random.default_rng(np.random.SeedSequence([self.seed, epoch])).permutation(len(self.dataset))

    # ---- batches ----------------------------------------------------------------------------------
    def _batch(self, images, labels, order, epoch: int, b: int):
        a = b * self.batch_size
        z = min(a + self.batch_size, len(labels))
        if order is None:
            x, y = images[a:z], labels[a:z]
        else:
            sel = order[a:z]
            x, y = images[sel], labels[sel]
        x = x.astype(np.float32)
        # divide, not multiply by 1/255: bit-identical to torchvision's ToTensor, and 255 maps to exactly 1.0
        np.divide(x, np.float32(255), out=x)
        if self.transform is not None:
            # a distinct stream per (epoch, batch): independent of prefetch timing and of earlier batches
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch, b, 1]))
            x = np.ascontiguousarray(self.transform(x, rng), dtype=np.float32)
        y = np.asarray(y, dtype=np.int64)
        if self.as_tensor:
            return _to_tensor(x), _to_tensor(y)
        return x, y

    def __iter__(self):
        # a pass that is abandoned early does not advance the epoch; the next one restarts it
        epoch, start = self.epoch, self._resume
        self._resume, self._pos = 0, start
        order = self.permutation(epoch)
        images, labels = self.dataset.images, self.dataset.labels
        nb = len(self)
        batches = range(start, nb)
        if self.prefetch and len(batches) > 1:
            it = _prefetch(lambda b: self._batch(images, labels, order, epoch, b), batches)
        else:
            it = (self._batch(images, labels, order, epoch, b) for b in batches)
        try:
            for b, item in zip(batches, it):
                self._pos = b + 1
                yield item
        finally:
            if hasattr(it, "close"):
                it.close()
        self.epoch, self._pos = epoch + 1, 0

    def __repr__(self) -> str:
        return (f"DataLoader({getattr(self.dataset, 'name', type(self.dataset).__name__)}, batch_size="
                f"{self.batch_size}, shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed}, "
                f"transform={self.transform!r})")


_DONE = object()


def _prefetch(make, batches, depth: int = 2):
    """Build batches in one background thread, up to ``depth`` ahead (NumPy releases the GIL in
    the copies, casts and gathers, so this overlaps with the training step)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def worker():
        try:
            for b in batches:
                if stop.is_set() or not put((True, make(b))):
                    return
        except BaseException as e:  # handed to the consumer, re-raised there
            put((False, e))
            return
        put((True, _DONE))

    t = threading.Thread(target=worker, name="convlens-prefetch", daemon=True)
    t.start()
    try:
        while True:
            ok, item = q.get()
            if not ok:
                raise item
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        t.join(timeout=5)
