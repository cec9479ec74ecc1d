from __future__ import annotations

import json

import numpy as np
import pytest

from convlens.data import transforms as T


def _batch(n=6, c=2, h=5, w=7, seed=0):
    return np.random.default_rng(seed).random((n, c, h, w), dtype=np.float32)


def test_flip_per_image_mask():
    x = _batch()
    np.testing.assert_array_equal(T.RandomHorizontalFlip(0.0)(x, np.random.default_rng(0)), x)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(x, np.random.default_rng(0)), x[..., ::-1])
    x = _batch(n=200)
    y = T.RandomHorizontalFlip(0.5)(x, np.random.default_rng(1))
    flipped = np.array([np.array_equal(y[i], x[i, :, :, ::-1]) for i in range(200)])
    kept = np.array([np.array_equal(y[i], x[i]) for i in range(200)])
    assert (flipped ^ kept).all() and 70 < flipped.sum() < 130
    mask = np.random.default_rng(1).random(200) < 0.5  # the documented draw
    np.testing.assert_array_equal(flipped, mask)


def _shift_ref(x, dx, dy):
    out = np.zeros_like(x)
    n, _, h, w = x.shape
    for i in range(n):
        for yy in range(h):
            for xx in range(w):
                sy, sx = yy - dy[i], xx - dx[i]
                if 0 <= sy < h and 0 <= sx < w:
                    out[i, :, yy, xx] = x[i, :, sy, sx]
    return out


def test_shift_matches_reference_loop():
    x = _batch(n=40)
    y = T.RandomShift(2)(x, np.random.default_rng(5))
    d = np.random.default_rng(5).integers(-2, 3, size=(2, 40))
    np.testing.assert_array_equal(y, _shift_ref(x, d[0], d[1]))
    assert y.shape == x.shape and y.dtype == np.float32
    assert set(np.unique(d)) == {-2, -1, 0, 1, 2}


def test_shift_direction():
    x = np.zeros((1, 1, 5, 5), np.float32)
    x[0, 0, 2, 2] = 1
    rng = np.random.default_rng(0)
    dx, dy = np.random.default_rng(0).integers(-2, 3, size=(2, 1))[:, 0]
    y = T.RandomShift(2)(x, rng)
    assert y[0, 0, 2 + dy, 2 + dx] == 1 and y.sum() == 1


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric"])
def test_random_crop_matches_reference(mode):
    x = _batch(n=10)
    y = T.RandomCrop((5, 7), padding=2, fill=0.5, padding_mode=mode)(x, np.random.default_rng(2))
    kw = {"constant_values": 0.5} if mode == "constant" else {}
    p = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), mode=mode, **kw)
    rng = np.random.default_rng(2)
    top, left = rng.integers(0, 5, size=10), rng.integers(0, 5, size=10)
    for i in range(10):
        np.testing.assert_array_equal(y[i], p[i, :, top[i] : top[i] + 5, left[i] : left[i] + 7])


def test_crop_smaller_and_too_big():
    x = _batch()
    assert T.RandomCrop(3)(x, np.random.default_rng(0)).shape == (6, 2, 3, 3)
    with pytest.raises(ValueError, match="larger than"):
        T.RandomCrop(9)(x, np.random.default_rng(0))


def test_pad_torchvision_convention():
    x = _batch()
    assert T.Pad(1)(x).shape == (6, 2, 7, 9)
    y = T.Pad((1, 2, 3, 4), fill=9)(x)  # left, top, right, bottom
    assert y.shape == (6, 2, 5 + 2 + 4, 7 + 1 + 3)
    np.testing.assert_array_equal(y[:, :, 2:7, 1:8], x)
    assert (y[:, :, :2] == 9).all()
    assert T.Pad((1, 2))(x).shape == (6, 2, 9, 9)


def test_normalize():
    x = _batch(c=3)
    y = T.Normalize([0.1, 0.2, 0.3], [0.5, 0.25, 2.0])(x)
    ref = (x - np.array([0.1, 0.2, 0.3])[:, None, None]) / np.array([0.5, 0.25, 2.0])[:, None, None]
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)
    assert y.dtype == np.float32
    with pytest.raises(ValueError):
        T.Normalize([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="2 channel means"):
        T.Normalize([0.1, 0.2], [1, 1])(x)


def test_compose_json_roundtrip_and_repr():
    t = T.Compose([T.RandomHorizontalFlip(0.3), T.RandomShift(3), T.RandomCrop(32, padding=(4, 2)),
                   T.Pad(1, padding_mode="reflect"), T.Normalize([0.5], [0.25])])
    d = json.loads(json.dumps(t.to_dict()))
    t2 = T.from_dict(d)
    assert t2.to_dict() == t.to_dict() and repr(t2) == repr(t)
    assert repr(t).startswith("Compose([RandomHorizontalFlip(p=0.3), RandomShift(max_shift=3), RandomCrop(size=(32, 32)")
    x = _batch(c=1, h=32, w=32)
    np.testing.assert_array_equal(t(x, np.random.default_rng(4)), t2(x, np.random.default_rng(4)))
    with pytest.raises(ValueError, match="unknown transform"):
        T.from_dict({"name": "Rotate"})


def test_spec_strings():
    assert T.from_spec("flip,shift") == T.Compose([T.RandomHorizontalFlip(), T.RandomShift(2)])
    t = T.from_spec("flip:0.25, shift:4, crop:28:2, pad:1, normalize:0.1307:0.3081")
    assert [type(s).__name__ for s in t.transforms] == ["RandomHorizontalFlip", "RandomShift", "RandomCrop",
                                                         "Pad", "Normalize"]
    assert t.transforms[0].p == 0.25 and t.transforms[2].padding == 2 and t.transforms[4].std == (0.3081,)
    assert T.from_spec("").transforms == [] and T.from_spec(None).transforms == []
    with pytest.raises(ValueError, match="unknown name 'rotate'"):
        T.from_spec("rotate")


def test_bad_batch_shape():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        T.RandomShift()(np.zeros((3, 4, 4), np.float32), np.random.default_rng(0))
