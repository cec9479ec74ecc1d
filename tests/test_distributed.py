"""convlens.distributed in one process (no MPI launcher), and DistributedSampler against torch's.

The multi-process behaviour (mpiexec -n 2 / -n 3) is in tests/test_distributed_mpi.py.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import convlens
from convlens import distributed as dist
from convlens import nn
from convlens.nn import functional as F
from convlens.utils.data import DataLoader, DistributedSampler, TensorDataset


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "PMIX_", "OMPI_", "MPI_"))}
    env.pop("CONVLENS_DISTRIBUTED", None)
    return {**env, **extra}


# ---- DistributedSampler --------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 7, 10, 12, 13])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4, 16])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_shards_match_torch_without_shuffle(n, replicas, drop_last):
    """Same lengths, padding and interleaving as torch's DistributedSampler (shuffle=False: the order
    is 0..n-1 in both, so the indices must agree exactly)."""
    torch = pytest.importorskip("torch")
    from torch.utils.data import DistributedSampler as TorchSampler

    data = list(range(n))
    for rank in range(replicas):
        ours = DistributedSampler(data, num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
        theirs = TorchSampler(data, num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
        assert len(ours) == len(theirs)
        assert list(ours) == list(theirs), (rank, list(ours), list(theirs))
    del torch


@pytest.mark.parametrize("n, replicas", [(48, 2), (48, 3), (50, 4), (5, 3)])
def test_shuffled_shards_are_disjoint_cover_the_epoch_and_change_with_set_epoch(n, replicas):
    data = list(range(n))
    samplers = [DistributedSampler(data, num_replicas=replicas, rank=r, seed=11) for r in range(replicas)]
    epoch0 = [list(s) for s in samplers]
    assert len({len(s) for s in epoch0}) == 1  # every rank takes the same number of steps
    flat = sum(epoch0, [])
    assert sorted(set(flat)) == data  # the whole data set, each index once plus the padding
    assert len(flat) - len(set(flat)) == (-n) % replicas
    for s in samplers:
        s.set_epoch(1)
    assert [list(s) for s in samplers] != epoch0
    for s in samplers:
        s.set_epoch(0)
    assert [list(s) for s in samplers] == epoch0  # the order is a function of (seed, epoch)


def test_global_batches_hold_the_images_of_one_processs_batches():
    """Batch k over N ranks (batch B/N each) = batch k of one process's DataLoader(shuffle=True, seed)."""
    ds = TensorDataset(convlens.tensor(np.arange(48, dtype=np.float32)))
    one = [sorted(b[0].numpy().tolist()) for b in DataLoader(ds, 12, shuffle=True, seed=4)]
    for replicas in (2, 3, 4):
        parts = [list(DataLoader(ds, 12 // replicas, sampler=DistributedSampler(ds, replicas, r, seed=4)))
                 for r in range(replicas)]
        merged = [sorted(sum((p[k][0].numpy().tolist() for p in parts), [])) for k in range(len(one))]
        assert merged == one


def test_sampler_rejects_a_rank_outside_the_job():
    with pytest.raises(ValueError, match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"):
        DistributedSampler(list(range(4)), num_replicas=2, rank=2)


# ---- the single-process group --------------------------------------------------------------------
def test_without_a_launcher_the_group_is_one_process():
    assert dist.world_size() == 1 and dist.rank() == 0 and not dist.is_mpi()
    a = np.arange(6, dtype=np.float32)
    assert dist.all_reduce(a) is a and a.tolist() == list(range(6))
    dist.barrier()
    assert dist.all_gather_json({"x": 1}) == [{"x": 1}]
    with pytest.raises(ValueError, match="op must be one of sum, max, min, prod"):
        dist.all_reduce(a, op="mean")
    with pytest.raises(ValueError, match="C-contiguous"):
        dist.all_reduce(np.zeros((4, 4), np.float32)[:, ::2])
    # the sampler's defaults come from the group
    s = DistributedSampler(list(range(5)))
    assert (s.num_replicas, s.rank, len(s)) == (1, 0, 5)


def test_ddp_in_one_process_is_the_plain_model():
    convlens.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    model = dist.DistributedDataParallel(net)
    x, y = convlens.randn(5, 4), convlens.tensor([0, 1, 1, 0, 1])
    F.cross_entropy(model(x), y).backward()
    grads = [p.grad.numpy().copy() for p in net.parameters()]
    for p in net.parameters():
        p.grad = None
    F.cross_entropy(net(x), y).backward()
    for g, p in zip(grads, net.parameters()):
        np.testing.assert_array_equal(g, p.grad.numpy())
    assert list(model.state_dict()) == ["module." + k for k in net.state_dict()]  # torch's key names
    with model.no_sync():
        assert not model.require_backward_grad_sync


def test_buckets_pack_parameters_in_reverse_order_up_to_the_cap():
    from convlens.distributed.ddp import DistributedDataParallel

    params = [nn.Parameter(convlens.zeros(n)) for n in (300, 300, 300, 10)]
    buckets = DistributedDataParallel._make_buckets(params, cap=2500)  # bytes: 625 float32 values
    assert [[e[0] for e in b.entries] for b in buckets] == [[3, 2, 1], [0]]
    assert [b.buffer.size for b in buckets] == [610, 300]


def test_a_launcher_without_mpi4py_names_the_extra_to_install():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "from convlens import distributed\n"
            "try:\n    distributed.init()\n"
            "except distributed.MPIUnavailableError as e:\n    print(e)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=_env(PMI_RANK="0", PMI_SIZE="1"))
    assert "started by an MPI launcher (PMI_RANK is set) but mpi4py is not installed" in done.stdout, done.stderr
    assert 'pip install "convlens[mpi]"' in done.stdout


def test_fit_refuses_a_loader_that_does_not_shard(monkeypatch):
    """On N > 1 ranks a plain loader would train every rank on the whole data set."""
    from convlens.distributed import comm
    from convlens.distributed.training import Job

    class FakeGroup:
        rank, size, comm = 0, 2, None

    monkeypatch.setattr(comm, "_group", FakeGroup())
    monkeypatch.setattr("convlens.distributed.ddp.DistributedDataParallel._broadcast_state", lambda self, params: None)
    ds = TensorDataset(convlens.randn(8, 4), convlens.tensor([0, 1] * 4))
    with pytest.raises(ValueError, match="not a DistributedSampler over 2 replicas"):
        Job(nn.Linear(4, 2), DataLoader(ds, 4, shuffle=True))
