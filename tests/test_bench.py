"""The benchmark's cases are the same network on both sides: each builder called with convlens.nn and
torch.nn, weights copied, gives the same outputs and gradients (train mode, so batch norm uses the
batch's statistics) — the timings compare equal work."""

import numpy as np
import pytest

import convlens as cl
import convlens.nn.functional as F
from convlens import bench

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("index", [0, 2, 4, 5, 6, 7])
def test_case_twins_agree(index):
    case = bench.CASES[index]
    cl.manual_seed(0)
    model = bench.build_convlens(case)
    net = bench.build_torch(model, case)
    x, y = bench._data(case, 2)
    out = model(cl.tensor(x))
    tout = net(torch.from_numpy(x))
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=2e-3, atol=2e-4)
    F.cross_entropy(out, cl.tensor(y)).backward()
    torch.nn.functional.cross_entropy(tout, torch.from_numpy(y)).backward()
    ours = dict(model.named_parameters())
    for name, p in net.named_parameters():
        g, tg = ours[name].grad.numpy(), p.grad.numpy()
        np.testing.assert_allclose(g, tg, rtol=2e-3, atol=2e-4 * (1 + np.abs(tg).max()), err_msg=name)
    assert bench.forward_flops(model, case.input_shape) > 0


def test_run_case_times_both_sides_in_their_own_processes():
    """run_case drives one worker process per side; the PyTorch worker runs without convlens's malloc
    settings unless same_allocator is asked for."""
    case = bench.CASES[0]
    a, b, flops, cpu_ratio = bench.run_case(case, repeats=2, min_seconds=0.01, threads=1)
    assert len(a) == len(b) == 2 and min(a) > 0 and min(b) > 0
    assert flops == bench.forward_flops(bench.build_convlens(case), case.input_shape) and cpu_ratio > 0


def test_latency_times_each_side_in_its_own_process():
    """Single-image latency runs like training: one worker process per side, blocks interleaved."""
    ours, theirs = bench.latency(bench.CASES[0], threads=1, blocks=2, calls=3)
    assert 0 < ours < 1000 and 0 < theirs < 1000  # milliseconds
