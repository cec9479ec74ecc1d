"""Batch slices on threads (convlens.train.data_parallel): same gradients as one pass, safe fallbacks."""

import numpy as np
import pytest

import convlens as cl
import convlens.nn.functional as F
from convlens import nn, parallel
from convlens.train import data_parallel
from convlens.train.data_parallel import SlicedStep, supported


def _net():
    cl.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))


def _batch(n=10, dtype=np.float64):
    rng = np.random.default_rng(1)
    return cl.tensor(rng.standard_normal((n, 3, 8, 8)).astype(dtype)), cl.tensor(rng.integers(0, 5, n))


def _grads(model):
    return [p.grad._data.copy() for p in model.parameters()]


@pytest.mark.parametrize("slices", [2, 3])
def test_slices_give_the_whole_batch_gradient(monkeypatch, slices):
    monkeypatch.setattr(data_parallel, "MIN_SLICE_VALUES", 1)
    monkeypatch.setattr(data_parallel, "MIN_SLICE_IMAGES", 1)
    monkeypatch.setattr(data_parallel, "MIN_SLICE_FLOPS", 1)
    net = _net().to(np.float64)
    x, y = _batch()
    loss = F.cross_entropy(net(x), y)
    loss.backward()
    expected, expected_loss = _grads(net), float(loss.item())
    net.zero_grad()
    step = SlicedStep(net, F.cross_entropy, slices=slices)
    value, logits = step(x, y)
    assert logits.shape == (10, 5)
    assert value == pytest.approx(expected_loss, rel=1e-12)
    for got, want in zip(_grads(net), expected):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # the replicas follow the model's arrays after an update, and keep no gradients of their own
    for p in net.parameters():
        p._data -= 0.1 * p.grad._data
    net.zero_grad()
    step(x, y)
    assert all(p.grad is None for r in step.replicas[1:] for p in r.parameters())
    assert all(a._data is b._data for a, b in zip(step.replicas[1].parameters(), net.parameters()))


def test_small_batches_and_batch_coupled_models_run_in_one_pass():
    net = _net()
    x, y = _batch(4, np.float32)
    assert SlicedStep(net, F.cross_entropy, slices=2)(x, y)[1].shape == (4, 5)  # 4 images: one slice
    assert supported(net)
    assert not supported(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))
    assert not supported(nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5)))
    hooked = _net()
    hooked[1].register_forward_hook(lambda m, i, o: None)
    assert not supported(hooked) and SlicedStep(hooked, F.cross_entropy, slices=2).slices == 1


def test_a_hook_added_after_construction_sees_every_image(monkeypatch):
    monkeypatch.setattr(data_parallel, "MIN_SLICE_VALUES", 1)
    monkeypatch.setattr(data_parallel, "MIN_SLICE_IMAGES", 1)
    monkeypatch.setattr(data_parallel, "MIN_SLICE_FLOPS", 1)
    net = _net()
    step = SlicedStep(net, F.cross_entropy, slices=2)
    seen = []
    net[1].register_forward_hook(lambda m, i, o: seen.append(o.shape[0]))
    step(*_batch(6, np.float32))
    assert seen == [6]  # one pass over the whole batch, through the hooked model


def test_an_error_in_a_slice_reaches_the_caller(monkeypatch):
    monkeypatch.setattr(data_parallel, "MIN_SLICE_VALUES", 1)
    monkeypatch.setattr(data_parallel, "MIN_SLICE_IMAGES", 1)
    monkeypatch.setattr(data_parallel, "MIN_SLICE_FLOPS", 1)
    net = _net()
    x, y = _batch(6, np.float32)
    bad = cl.tensor(np.array([0, 1, 2, 3, 4, 99]))  # a label out of range, in the second slice
    with pytest.raises(ValueError):
        SlicedStep(net, F.cross_entropy, slices=2)(x, bad)
    assert not getattr(parallel._local, "serial", False)  # the calling thread's pool is back to normal


def test_slices_need_enough_forward_work(monkeypatch):
    """Slicing needs MIN_SLICE_FLOPS of forward work per slice (conv and linear multiply-adds × 2,
    counted once per input shape on one image): a small net trains in one pass, where the compiled
    kernels split over the threads themselves."""
    monkeypatch.setattr(data_parallel, "MIN_SLICE_VALUES", 1)
    monkeypatch.setattr(data_parallel, "MIN_SLICE_IMAGES", 1)
    net = _net()
    x, y = _batch(8, np.float32)
    step = SlicedStep(net, F.cross_entropy, slices=2)
    calls = []
    step.replicas[1].register_forward_pre_hook(lambda m, a: calls.append(a[0].shape[0]))
    flops = step._image_flops(x)
    assert flops == 2 * 3 * 9 * (4 * 8 * 8) + 2 * 64 * 5  # the conv's 4×8×8 outputs, the linear layer
    assert step._flops == {(3, 8, 8): flops}
    calls.clear()
    monkeypatch.setattr(data_parallel, "MIN_SLICE_FLOPS", 8 * flops // 2 + 1)  # just over half the batch's work
    step(x, y)
    assert calls == []  # one pass, on the model itself
    monkeypatch.setattr(data_parallel, "MIN_SLICE_FLOPS", 8 * flops // 2)
    step(x, y)
    assert calls == [4]  # the second replica ran its half
