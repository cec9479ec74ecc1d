from __future__ import annotations

import numpy as np
import pytest

from convlens.data import DataError, DataLoader, TensorDataset
from convlens.data import transforms as T
from convlens.tensor import Tensor


def _ds(n=103, c=3, h=6, w=6):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, c, h, w), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(n) % 256  # an id per item (n < 256)
    return TensorDataset(images, np.arange(n) % 5)


def _ids(x):
    return np.rint(x[:, 0, 0, 0] * 255).astype(int)


def _collect(loader):
    return [(x._data.copy(), y._data.copy()) for x, y in loader]


def test_batches_types_and_len():
    ds = _ds()
    loader = DataLoader(ds, batch_size=10)
    assert len(loader) == 11 and len(DataLoader(ds, 10, drop_last=True)) == 10
    batches = list(loader)
    assert len(batches) == 11
    x, y = batches[0]
    assert isinstance(x, Tensor) and isinstance(y, Tensor)
    assert x._data.dtype == np.float32 and x.shape == (10, 3, 6, 6) and y._data.dtype == np.int64
    assert batches[-1][0].shape == (3, 3, 6, 6)
    np.testing.assert_array_equal(x._data, ds.images[:10] / np.float32(255))
    assert 0 <= x._data.min() and x._data.max() <= 1
    assert [b[0].shape[0] for b in DataLoader(ds, 10, drop_last=True)] == [10] * 10


def test_shuffle_covers_everything_once_and_is_seeded():
    ds = _ds()
    loader = DataLoader(ds, 16, shuffle=True, seed=7)
    e0 = _collect(loader)
    ids = np.concatenate([_ids(x) for x, _ in e0])
    assert sorted(ids.tolist()) == list(range(103)) and ids.tolist() != list(range(103))
    np.testing.assert_array_equal(np.concatenate([y for _, y in e0]), ds.labels[ids])
    e1 = _collect(loader)
    assert loader.epoch == 2
    assert not np.array_equal(e0[0][0], e1[0][0])  # a new permutation each epoch
    again = DataLoader(ds, 16, shuffle=True, seed=7)
    for (a, _), (b, _) in zip(e0, _collect(again)):
        np.testing.assert_array_equal(a, b)
    again.set_epoch(1)
    for (a, _), (b, _) in zip(e1, _collect(again)):
        np.testing.assert_array_equal(a, b)


def test_resume_mid_epoch_bit_exact_with_augmentation():
    ds = _ds()
    aug = T.Compose([T.RandomHorizontalFlip(), T.RandomShift(2)])
    ref = DataLoader(ds, 8, shuffle=True, seed=3, transform=aug)
    _collect(ref)
    full_epoch1 = _collect(ref)
    run = DataLoader(ds, 8, shuffle=True, seed=3, transform=aug)
    _collect(run)
    it = iter(run)
    for _ in range(5):
        next(it)
    state = run.state_dict()
    assert state == {"seed": 3, "epoch": 1, "batch": 5}
    it.close()
    resumed = DataLoader(ds, 8, shuffle=True, seed=None, transform=aug)
    resumed.load_state_dict(state)
    rest = _collect(resumed)
    assert len(rest) == len(full_epoch1) - 5
    for (a, la), (b, lb) in zip(full_epoch1[5:], rest):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)
    assert resumed.epoch == 2


def test_abandoned_pass_restarts_the_epoch():
    loader = DataLoader(_ds(), 8, shuffle=True, seed=1)
    first = next(iter(loader))[0]._data.copy()
    assert loader.epoch == 0
    np.testing.assert_array_equal(next(iter(loader))[0]._data, first)


def test_prefetch_gives_identical_batches():
    ds = _ds()
    aug = T.from_spec("flip,shift")
    a = _collect(DataLoader(ds, 8, shuffle=True, seed=2, transform=aug, prefetch=True))
    b = _collect(DataLoader(ds, 8, shuffle=True, seed=2, transform=aug, prefetch=False))
    assert len(a) == len(b) == 13
    for (x, y), (u, v) in zip(a, b):
        np.testing.assert_array_equal(x, u)
        np.testing.assert_array_equal(y, v)


def test_transform_applied_and_error_propagates_through_prefetch():
    ds = _ds()
    x, _ = next(iter(DataLoader(ds, 4, transform=T.Normalize([0.5] * 3, [0.5] * 3))))
    np.testing.assert_allclose(x._data, ds.images[:4] / 255 * 2 - 1, atol=1e-6)

    class Boom(T.Transform):
        def __call__(self, batch, rng=None):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        list(DataLoader(ds, 4, transform=Boom(), prefetch=True))


def test_unseeded_loader_still_exposes_its_seed():
    loader = DataLoader(_ds(), 8, shuffle=True)
    assert isinstance(loader.state_dict()["seed"], int)


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        DataLoader(_ds(), 0)
    with pytest.raises(DataError, match="empty"):
        DataLoader(TensorDataset(np.zeros((0, 1, 2, 2), np.uint8), np.zeros(0)), 4)
