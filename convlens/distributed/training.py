"""What `convlens.train.fit` does differently on N > 1 ranks, in one object (`Job`), so that the loop
itself stays one loop. In one process every method is the identity and fit behaves as it always did.

Per step: the gradients are averaged by `DistributedDataParallel` inside ``backward()``; then one small
all-reduce sums ``[loss·n, n, correct]`` so that every rank sees the global batch's loss (the NaN
guard then fires on all ranks together) and rank 0 reports global numbers; a second one agrees on
stopping (a callback's or Ctrl-C's "stop" on one rank stops all of them at the same batch).

Checkpoints: rank 0 writes them (atomically, as in one process), holding every rank's random state
and loader position (``meta["distributed"]``); all ranks take part in gathering those. Resuming, every
rank reads the checkpoint itself and the ranks compare its token: a job whose ranks see different
files (no shared folder, a copy overwritten halfway) stops with a message instead of diverging.

Validation: each rank evaluates every N-th image of the validation set (no padding, so no image counts
twice) and the confusion matrices and loss sums are added up.
"""

from __future__ import annotations

import numpy as np

from convlens.distributed import comm
from convlens.utils.data.sampler import Sampler

__all__ = ["Job", "prepare", "evaluate"]

_REASONS = ("", "stopped", "early_stopped", "interrupted")


class _ShardSampler(Sampler):
    """Indices rank, rank + N, ... of a sequential pass (validation shards: no padding, no repeats)."""

    def __init__(self, n: int, rank: int, world: int):
        self.n, self.rank, self.world = n, rank, world

    def _index_array(self) -> np.ndarray:
        return np.arange(self.rank, self.n, self.world, dtype=np.int64)

    def __iter__(self):
        return iter(self._index_array().tolist())

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world))


class Job:
    """The ranks of one fit (``prepare`` builds it)."""

    def __init__(self, model, train_loader):
        from convlens.distributed.ddp import DistributedDataParallel

        g = comm.init()
        self.rank, self.world = g.rank, g.size
        self.main = self.rank == 0
        if self.world > 1 and not isinstance(model, DistributedDataParallel):
            model = DistributedDataParallel(model)  # rank 0's weights on every rank from here on
        self.model = model
        self.net = model.module if isinstance(model, DistributedDataParallel) else model
        # Batch slices on threads would deep-copy the wrapper's hooks: one pass per rank, threads per op
        self.slices = 1 if isinstance(model, DistributedDataParallel) else None
        if self.world > 1:
            from convlens.utils.data.distributed import DistributedSampler

            sampler = getattr(train_loader, "sampler", None)
            if not isinstance(sampler, DistributedSampler) or sampler.num_replicas != self.world:
                raise ValueError(
                    f"fit: running on {self.world} MPI ranks, but the train_loader's sampler is "
                    f"{type(sampler).__name__}, not a DistributedSampler over {self.world} replicas; build it "
                    "as DataLoader(ds, batch_size=B // world_size, sampler=DistributedSampler(ds, seed=...)) so "
                    "that each rank trains on its own shard")

    # ---- per step ---------------------------------------------------------------------------------
    def batch_totals(self, value: float, n: int, correct: int) -> tuple[float, int, int]:
        """(mean loss, images, correct predictions) of the global batch."""
        if self.world == 1:
            return value, n, correct
        t = np.array([value * n, n, correct], dtype=np.float64)
        comm.all_reduce(t)
        return float(t[0] / t[1]), int(t[1]), int(t[2])

    def sync_stop(self, control) -> bool:
        """Whether any rank wants to stop; all ranks then stop (with the strongest reason)."""
        if self.world == 1:
            return control.stopped
        code = _REASONS.index(control.reason) if control.stopped and control.reason in _REASONS else int(
            control.stopped)
        t = np.array([code], dtype=np.int64)
        comm.all_reduce(t, op="max")
        if t[0] and not control.stopped:
            control.stop(_REASONS[int(t[0])])
        return control.stopped

    def set_epoch(self, loader, epoch: int) -> None:
        """Tell the loader's sampler the epoch (a DistributedSampler's shuffle depends on it)."""
        sampler = getattr(loader, "sampler", None)
        if callable(getattr(sampler, "set_epoch", None)):
            sampler.set_epoch(epoch)

    # ---- checkpoints ------------------------------------------------------------------------------
    def states(self, loader_state: dict, rng_state) -> dict | None:
        """Every rank's loader position and random state (collective; call on every rank)."""
        if self.world == 1:
            return None
        ranks = comm.all_gather_json({"loader": loader_state, "rng_state": rng_state})
        return {"world_size": self.world, "ranks": ranks}

    def check_resume(self, src, saved: dict) -> None:
        """All ranks read the same checkpoint (compared by its token)."""
        if self.world == 1:
            return
        tokens = comm.all_gather_json([str(saved.get("token")), str(src)])
        if any(t[0] != tokens[0][0] for t in tokens):
            bad = next(r for r, t in enumerate(tokens) if t[0] != tokens[0][0])
            raise RuntimeError(f"resume: rank {bad} read a different checkpoint ({tokens[bad][1]}) than rank 0 "
                               f"({tokens[0][1]}); every rank must see the same run directory (a shared folder)")

    def restore(self, saved: dict, train_loader, set_rng_state) -> None:
        """This rank's loader position and random state, from a checkpoint of this or another job."""
        dist = saved.get("distributed") or {"world_size": 1, "ranks": [
            {"loader": saved["loader"], "rng_state": saved["rng_state"]}]}
        if int(dist["world_size"]) == self.world:
            mine = dist["ranks"][self.rank]
            train_loader.load_state_dict(mine["loader"])
            set_rng_state(mine["rng_state"])
            return
        if int(saved["loader"].get("batch", 0)) != 0:
            raise ValueError(f"resume: the checkpoint was saved mid-epoch by a job of {dist['world_size']} "
                             f"process(es); resume it with {dist['world_size']} (this job has {self.world})")
        # another N at an epoch boundary: same epoch, this job's own shuffles (not bit-exact with the old N)
        train_loader.load_state_dict({"seed": train_loader.seed, "epoch": saved["loader"]["epoch"], "batch": 0})
        set_rng_state(dist["ranks"][0]["rng_state"])

    # ---- validation -------------------------------------------------------------------------------
    def evaluate(self, val_loader, **kw) -> dict:
        return evaluate(self.net, val_loader, **kw)

    def finish(self) -> None:
        """Every rank leaves fit together (rank 0's files are written by then)."""
        if self.world > 1:
            comm.barrier()


def prepare(model, train_loader) -> Job:
    return Job(model, train_loader)


def evaluate(model, loader, **kw) -> dict:
    """`convlens.train.evaluate` on this rank's shard of ``loader``'s data set (every N-th image, no
    padding, unless the loader already has a DistributedSampler), summed over the ranks: the same
    ``{n, loss, accuracy, per_class_accuracy, confusion_matrix}`` on every rank."""
    from convlens.train.metrics import evaluate as evaluate_local
    from convlens.train.metrics import per_class_accuracy
    from convlens.utils.data.distributed import DistributedSampler

    g = comm.init()
    if g.size == 1:
        return evaluate_local(model, loader, **kw)
    if not isinstance(getattr(loader, "sampler", None), DistributedSampler):
        from convlens.utils.data import DataLoader

        loader = DataLoader(loader.dataset, loader.batch_size or 1,
                            sampler=_ShardSampler(len(loader.dataset), g.rank, g.size),
                            collate_fn=loader.collate_fn, transform=loader.transform,
                            num_workers=loader.num_workers, seed=loader.seed)
    kw["progress"] = kw.get("progress", False) and g.rank == 0
    local = evaluate_local(model, loader, **kw)
    parts = comm.all_gather_json({"n": local["n"], "loss": local["loss"] * local["n"] if local["n"] else 0.0,
                                  "cm": local["confusion_matrix"]})
    k = max(len(p["cm"]) for p in parts)
    cm = np.zeros((k, k), np.int64)
    for p in parts:
        c = np.asarray(p["cm"], np.int64).reshape(len(p["cm"]), -1) if p["cm"] else np.zeros((0, 0), np.int64)
        cm[:c.shape[0], :c.shape[1]] += c
    n = sum(p["n"] for p in parts)
    per_class = per_class_accuracy(cm)
    return {"n": n, "loss": sum(p["loss"] for p in parts) / n if n else float("nan"),
            "accuracy": float(np.trace(cm) / n) if n else float("nan"),
            "per_class_accuracy": [None if np.isnan(a) else float(a) for a in per_class],
            "confusion_matrix": cm.tolist()}
