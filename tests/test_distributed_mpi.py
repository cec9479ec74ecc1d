"""convlens.distributed under a real MPI: each test launches ``mpiexec -n 2`` or ``-n 3`` in a subprocess.

The programs the ranks run are the functions at the bottom of this file (``python THIS_FILE PROGRAM
ARGS``); each writes what it found to a JSON or safetensors file that the test then checks, so the
pytest process never joins the MPI job. Skipped (with the reason) only where no MPI is installed:
``pip install "convlens[mpi]"`` brings mpi4py and the MPICH wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve()


def _mpiexec() -> str | None:
    local = Path(sys.executable).parent / "mpiexec"
    return str(local) if local.is_file() else shutil.which("mpiexec")


def _have_mpi() -> str | None:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return 'mpi4py is not installed (pip install "convlens[mpi]")'
    if _mpiexec() is None:
        return 'no mpiexec on PATH (pip install "convlens[mpi]" brings MPICH\'s)'
    return None


pytestmark = pytest.mark.skipif(_have_mpi() is not None, reason=f"no MPI: {_have_mpi()}")


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "PMIX_", "OMPI_", "MPI_"))}
    env.pop("CONVLENS_DISTRIBUTED", None)
    env.pop("CONVLENS_NUM_THREADS", None)
    return env


def launch(n: int, *args, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    """``mpiexec -n n python THIS_FILE args...`` (MPICH runs more ranks than cores without a flag)."""
    cmd = [_mpiexec(), "-n", str(n), sys.executable, str(HERE), *map(str, args)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env())
    except subprocess.TimeoutExpired as e:  # a hang is the failure this guards against
        pytest.fail(f"{' '.join(cmd)} did not finish in {timeout} s (a rank waiting forever?): {e.stderr}")
    if check and done.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def _weights(path) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(path))


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float(np.abs(a[k].astype(np.float64) - b[k]).max()) for k in a)


# ---- the tests -------------------------------------------------------------------------------------
def test_n2_and_n3_train_the_same_weights_as_one_process(tmp_path):
    """Same global batch (12), seed and data, 8 SGD steps with momentum and weight decay, a net without
    batch norm: 2 and 3 ranks (DistributedSampler + DistributedDataParallel, bucketed; overlapped or
    not, one bucket or several) end with one process's plain-loop weights, to float32 rounding."""
    run_program(["steps", tmp_path / "one.safetensors", "plain", 2, 25])  # in this process, no MPI, no DDP
    one = _weights(tmp_path / "one.safetensors")
    launch(2, "steps", tmp_path / "two.safetensors", "overlap", 2, 25)
    launch(3, "steps", tmp_path / "three.safetensors", "blocking", 2, 0.0005)  # 512-byte buckets: several
    scale = max(float(np.abs(v).max()) for v in one.values())
    for name in ("two", "three"):
        got = _weights(tmp_path / f"{name}.safetensors")
        diff = _max_diff(one, got)
        print(f"{name} ranks: largest weight difference from one process {diff:.3g} (weights up to {scale:.3g})")
        assert diff < 1e-6 * max(1.0, scale), (name, diff)
    # the runs really trained: the weights moved away from the initial ones
    run_program(["steps", tmp_path / "zero.safetensors", "plain", 0, 25])
    assert _max_diff(one, _weights(tmp_path / "zero.safetensors")) > 1e-3


def test_fit_on_two_ranks_stops_together_resumes_bit_exact_and_shards_validation(tmp_path):
    """fit() under mpiexec -n 2 with dropout (per-rank random streams): a 'stop' from rank 1's callback
    mid-epoch stops both ranks at the same batch; resuming from the checkpoint (every rank's loader
    position and RNG state) ends bit for bit where an uninterrupted run ends; the sharded validation
    equals evaluating the whole validation set in one process; ranks resuming from different
    checkpoints are refused."""
    done = launch(2, "fit", tmp_path, check=False)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["stopped_at"] == [{"epoch": 2, "batch": 2}] * 2, report  # both ranks, same batch
    assert report["status"] == "stopped"
    full, resumed = _weights(tmp_path / "full" / "last.safetensors"), _weights(tmp_path / "part" / "last.safetensors")
    model_keys = [k for k in full if k.startswith("model.")]
    assert model_keys and all(np.array_equal(full[k], resumed[k]) for k in full), _max_diff(full, resumed)
    meta = json.loads((tmp_path / "part" / "last.json").read_text())
    assert meta["distributed"]["world_size"] == 2 and len(meta["distributed"]["ranks"]) == 2
    # rank 1 draws its own dropout masks: its saved random state differs from rank 0's
    assert meta["distributed"]["ranks"][0]["rng_state"] != meta["distributed"]["ranks"][1]["rng_state"]
    val = report["validation"]
    assert val["sharded"]["n"] == val["whole"]["n"] == 30
    assert val["sharded"]["confusion_matrix"] == val["whole"]["confusion_matrix"]
    assert val["sharded"]["loss"] == pytest.approx(val["whole"]["loss"], rel=1e-5)
    # last, the program resumes rank 0 from one run and rank 1 from another: refused, the job aborts
    assert done.returncode != 0
    assert "resume: rank 1 read a different checkpoint" in done.stderr, done.stderr


def test_an_error_on_one_rank_aborts_the_job_with_rank_and_message(tmp_path):
    """Rank 1's loss function raises at its second step while rank 0 goes on into the all-reduce: the
    job ends (no hang) with a non-zero status and a line naming rank 1 and the error."""
    done = launch(2, "fail", tmp_path, timeout=60, check=False)
    assert done.returncode != 0
    assert "convlens: rank 1 of 2 failed: ValueError: bad labels on rank 1" in done.stderr, done.stderr


def test_unused_parameters_raise_at_the_next_forward_or_count_as_zero(tmp_path):
    """A layer the forward never uses: with find_unused_parameters=True the step completes and its
    gradient is zero; without, the next forward raises naming it (and the job aborts with that)."""
    done = launch(2, "unused", timeout=60, check=False)
    assert "find_unused_parameters=True: ok" in done.stdout, done.stdout + done.stderr
    assert done.returncode != 0
    assert "produced no gradient for 2 parameter(s) (extra.weight, extra.bias)" in done.stderr, done.stderr


def test_convlens_train_under_mpiexec_matches_one_process(tmp_path):
    """`mpiexec -n 2 convlens train` (LeNet-5, embedded mnist-mini, global batch 24, SGD): rank 0 writes
    the run directory; the weights equal those of the same command in one process, to float32 rounding."""
    args = ["--model", "lenet5", "--dataset", "mnist-mini", "--limit", "96", "--batch-size", "24", "--epochs", "1",
            "--val-split", "0.25", "--augment", "none", "--optimizer", "sgd", "--schedule", "none", "--lr", "0.05",
            "--json"]
    one = subprocess.run([sys.executable, "-m", "convlens", "train", *args, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, timeout=120, env=_env())
    assert one.returncode == 0, one.stderr
    two = subprocess.run([_mpiexec(), "-n", "2", sys.executable, "-m", "convlens", "train", *args, "--out",
                          str(tmp_path / "two")], capture_output=True, text=True, timeout=120, env=_env())
    assert two.returncode == 0, two.stderr
    assert "2 MPI ranks × 12 images per step, 1 thread(s) each" in two.stderr
    assert two.stderr.count("epoch 1/1:") == 1  # rank 0 alone reports
    report = json.loads(two.stdout)
    assert report["test_accuracy"] == pytest.approx(json.loads(one.stdout)["test_accuracy"], abs=1e-3)
    diff = _max_diff(_weights(tmp_path / "one" / "last.safetensors"), _weights(tmp_path / "two" / "last.safetensors"))
    print(f"convlens train, 2 ranks vs 1 process: largest difference {diff:.3g}")
    assert diff < 1e-6


def test_batch_that_does_not_split_is_refused_on_every_rank(tmp_path):
    done = subprocess.run([_mpiexec(), "-n", "3", sys.executable, "-m", "convlens", "train", "--limit", "60",
                           "--batch-size", "32", "--epochs", "1", "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=60, env=_env())
    assert done.returncode != 0
    assert "--batch-size 32 (the global batch) does not split evenly over 3 processes" in done.stderr


# ---- the programs the ranks run ----------------------------------------------------------------------
def _tiny_data(n: int = 48, seed: int = 0):
    import convlens
    from convlens.utils.data import TensorDataset

    g = np.random.default_rng(seed)
    x = g.standard_normal((n, 1, 8, 8)).astype(np.float32)
    y = g.integers(0, 5, n)
    return TensorDataset(convlens.tensor(x), convlens.tensor(y))


def _tiny_net(dropout: float = 0.0):
    from convlens import nn

    layers = [nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Linear(4 * 4 * 4, 16), nn.Tanh(), nn.Linear(16, 5))


def program_steps(out, mode, epochs, bucket_mb) -> None:
    """Two epochs (or none) of 4 steps at global batch 12; rank 0 saves the weights."""
    import convlens
    from convlens import distributed as dist
    from convlens.nn import functional as F
    from convlens.utils.data import DataLoader, DistributedSampler

    dist.init()
    n, r = dist.world_size(), dist.rank()
    convlens.manual_seed(0 if r == 0 else 100 + r)  # other ranks start elsewhere: DDP copies rank 0's weights
    net = _tiny_net()
    ds = _tiny_data()
    if mode == "plain":  # the ordinary one-process loop, no wrapper
        model, sampler = net, None
        loader = DataLoader(ds, 12, shuffle=True, seed=3)
    else:
        model = dist.DistributedDataParallel(net, bucket_cap_mb=float(bucket_mb), overlap=mode == "overlap")
        assert mode == "overlap" or len(model._buckets) > 1
        sampler = DistributedSampler(ds, seed=3)
        loader = DataLoader(ds, 12 // n, sampler=sampler)
    opt = convlens.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for epoch in range(int(epochs)):
        if sampler is not None:
            sampler.set_epoch(epoch)
        for x, y in loader:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    if r == 0:
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(v._data) for k, v in net.state_dict().items()}, str(out))


def program_fit(folder) -> None:
    import convlens
    from convlens import distributed as dist
    from convlens.distributed.training import evaluate
    from convlens.train import evaluate as evaluate_whole
    from convlens.train import fit
    from convlens.utils.data import DataLoader, DistributedSampler

    dist.init()
    n, r = dist.world_size(), dist.rank()
    folder = Path(folder)
    train, val = _tiny_data(48, 0), _tiny_data(30, 1)
    stops = []

    def run(run_dir, stop_at=None, resume=None):
        convlens.manual_seed(0)
        net = _tiny_net(dropout=0.25)
        convlens.manual_seed(1000 + r)  # per-rank dropout masks
        sampler = DistributedSampler(train, seed=5)
        loader = DataLoader(train, 12 // n, sampler=sampler, seed=7 + r)
        opt = convlens.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)

        def on_batch_end(s):
            if stop_at and r == n - 1 and (s["epoch"], s["batch"]) == stop_at:
                return "stop"

        # a seeded validation loader: an unseeded one draws its seed from the global generator at its
        # first pass, which a resumed run does at another point of the dropout stream
        result = fit(net, loader, DataLoader(val, 8, seed=0), optimizer=opt, epochs=3, run_dir=run_dir, progress=False,
                     on_batch_end=on_batch_end, resume=resume, handle_sigint=False)
        return net, result

    run(folder / "full")
    _, stopped = run(folder / "part", stop_at=(2, 2))
    stops = dist.all_gather_json({"epoch": stopped.epochs_completed + 1, "batch": stopped.batch})
    net, _ = run(folder / "part", resume=folder / "part")
    sharded = evaluate(net, DataLoader(val, 8))
    whole = evaluate_whole(net, DataLoader(val, 8))
    if r == 0:
        (folder / "report.json").write_text(json.dumps({
            "stopped_at": stops, "status": stopped.status,
            "validation": {"sharded": sharded, "whole": whole}}))
    dist.barrier()
    run(folder / "other", resume=folder / ("full" if r == 0 else "part"))  # raises on every rank


def program_fail(folder) -> None:
    import convlens
    from convlens import distributed as dist
    from convlens.nn import functional as F
    from convlens.train import fit
    from convlens.utils.data import DataLoader, DistributedSampler

    dist.init()
    r = dist.rank()
    train = _tiny_data(48, 0)
    calls = []

    def loss_fn(out, y):
        calls.append(1)
        if r == 1 and len(calls) == 2:
            raise ValueError("bad labels on rank 1")
        return F.cross_entropy(out, y)

    convlens.manual_seed(0)
    net = _tiny_net()
    fit(net, DataLoader(train, 6, sampler=DistributedSampler(train)), epochs=2, loss_fn=loss_fn, progress=False)


def program_unused() -> None:
    import convlens
    from convlens import distributed as dist
    from convlens import nn
    from convlens.nn import functional as F

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.extra = nn.Linear(4, 3), nn.Linear(4, 3)

        def forward(self, x):
            return self.used(x)

    dist.init()
    x, y = convlens.randn(6, 4), convlens.tensor([0, 1, 2, 0, 1, 2])
    for find in (True, False):
        convlens.manual_seed(0)
        net = Net()
        model = dist.DistributedDataParallel(net, find_unused_parameters=find)
        for _ in range(2):
            net.zero_grad()
            F.cross_entropy(model(x), y).backward()
        if find:
            assert float(abs(net.extra.weight.grad.numpy()).max()) == 0.0
            assert net.used.weight.grad is not None
            if dist.rank() == 0:
                print("find_unused_parameters=True: ok", flush=True)


def run_program(argv: list) -> None:
    globals()[f"program_{argv[0]}"](*argv[1:])


if __name__ == "__main__":
    run_program(sys.argv[1:])
