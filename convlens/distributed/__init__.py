"""Data-parallel training over MPI: the same script on one process or on many.

    mpiexec -n 4 python train.py        # or: srun python train.py, or: mpiexec -n 4 convlens train ...

    from convlens import distributed as dist
    from convlens.utils.data import DataLoader, DistributedSampler
    dist.init()                                            # a one-process group when not under MPI
    model = dist.DistributedDataParallel(net)              # rank 0's weights everywhere
    sampler = DistributedSampler(train_set, seed=0)        # this rank's shard
    loader = DataLoader(train_set, batch_size=64 // dist.world_size(), sampler=sampler)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for x, y in loader:
            opt.zero_grad(); F.cross_entropy(model(x), y).backward(); opt.step()  # gradients averaged

MPI itself comes from mpi4py (``pip install "convlens[mpi]"`` brings mpi4py and the MPICH wheel);
see docs/distributed.md for Slurm, a cluster's own MPI, the cost model and measurements.
"""

from convlens.distributed.comm import (
    MPIUnavailableError,
    abort,
    all_gather_json,
    all_reduce,
    barrier,
    broadcast,
    broadcast_json,
    get_rank,
    get_world_size,
    init,
    is_initialized,
    is_mpi,
    rank,
    world_size,
)
from convlens.distributed.ddp import DistributedDataParallel

__all__ = [
    "init", "is_initialized", "is_mpi", "rank", "world_size", "get_rank", "get_world_size", "barrier",
    "all_reduce", "broadcast", "all_gather_json", "broadcast_json", "abort", "MPIUnavailableError",
    "DistributedDataParallel",
]
