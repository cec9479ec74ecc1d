"""mnist-scenes: deterministic, boxes tight around the masks, overlap limits, splits kept apart, caching,
the torchvision-style data set and loading by name."""

import numpy as np
import pytest

from convlens.data import DataError
from convlens.data.scenes import SceneConfig, Scenes, collate_detection, load_scenes, make_scenes
from convlens.vision import ops


@pytest.fixture(scope="module")
def digits():
    from convlens.data import mnist_mini

    ds = mnist_mini(train=False)
    return ds.images[:300], ds.labels[:300]


def test_deterministic_and_seeded(digits):
    cfg = SceneConfig(num_scenes=20, seed=3)
    a, b = make_scenes(*digits, cfg), make_scenes(*digits, cfg)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    c = make_scenes(*digits, SceneConfig(num_scenes=20, seed=4))
    assert not np.array_equal(a[0], c[0])
    d = make_scenes(*digits, cfg, stream=1)  # the test split's stream differs
    assert not np.array_equal(a[0], d[0])


def test_boxes_are_tight_around_masks_and_limits_hold(digits):
    cfg = SceneConfig(num_scenes=60, size=(64, 80), seed=1)
    images, inst, boxes, labels, offsets = make_scenes(*digits, cfg)
    assert images.shape == (60, 1, 64, 80) and inst.shape == (60, 64, 80) and images.dtype == np.uint8
    counts = np.diff(offsets)
    assert counts.min() >= 1 and counts.max() <= 5 and labels.min() >= 1 and labels.max() <= 10
    for i in range(60):
        bs = boxes[offsets[i]:offsets[i + 1]]
        for k, b in enumerate(bs):
            ys, xs = np.nonzero(inst[i] == k + 1)
            # x2, y2 exclusive: the box is [min, max + 1)
            assert b.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            sides = b[2:] - b[:2]
            assert sides.max() <= cfg.max_scale and (b[:2] >= 0).all() and b[2] <= 80 and b[3] <= 64
        if len(bs) > 1:
            iou = ops.box_iou(bs, bs)
            np.fill_diagonal(iou, 0)
            assert iou.max() <= cfg.max_iou + 1e-6
        # ink under every mask pixel
        assert (images[i, 0][inst[i] > 0] > cfg.mask_threshold).all()


def test_clutter_is_unlabelled(digits):
    plain = make_scenes(*digits, SceneConfig(num_scenes=10, seed=2))
    clut = make_scenes(*digits, SceneConfig(num_scenes=10, seed=2, clutter=3))
    np.testing.assert_array_equal(plain[1], clut[1])  # the same digits and masks
    assert clut[0].astype(int).sum() > plain[0].astype(int).sum()  # more ink, none of it labelled


def test_config_errors():
    with pytest.raises(DataError, match="max_scale"):
        make_scenes(np.zeros((2, 28, 28), np.uint8), np.zeros(2), SceneConfig(size=32, max_scale=40))
    with pytest.raises(DataError, match="min_objects"):
        SceneConfig(min_objects=3, max_objects=2).validate()
    with pytest.raises(DataError, match="uint8 digits"):
        make_scenes(np.zeros((2, 28, 28), np.float32), np.zeros(2))


def test_named_set_cached_splits_and_torchvision_style_items(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVLENS_DATA", str(tmp_path))
    cfg = SceneConfig(num_scenes=12)
    train = load_scenes("mnist-scenes-mini", train=True, config=cfg)
    test = load_scenes("mnist-scenes-mini", train=False, config=cfg)
    assert not np.array_equal(train.images, test.images)
    assert list((tmp_path / "scenes").iterdir())  # written to the cache
    again = load_scenes("mnist-scenes-mini", train=True, config=cfg)
    np.testing.assert_array_equal(again.images, train.images)
    image, target = train[0]
    k = len(target["labels"])
    assert tuple(image.shape) == (1, 64, 64) and image.dtype.name == "float32" and float(image.max()) <= 1
    assert tuple(target["boxes"].shape) == (k, 4) and tuple(target["masks"].shape) == (k, 64, 64)
    sem = target["semantic"].numpy()
    assert sem.shape == (64, 64) and set(np.unique(sem)) <= {0, *target["labels"].numpy().tolist()}
    np.testing.assert_array_equal(train.semantic_masks()[0], sem)
    images, targets = collate_detection([train[0], train[1]])
    assert len(images) == 2 and len(targets) == 2
    with pytest.raises(IndexError):
        train[12]
    with pytest.raises(DataError, match="unknown scene set"):
        load_scenes("cifar-scenes")


def test_scenes_arrays_checked():
    with pytest.raises(DataError, match="inconsistent"):
        Scenes(np.zeros((2, 1, 8, 8), np.uint8), np.zeros((2, 8, 8), np.uint8), np.zeros((3, 4)),
               np.zeros(3, np.int64), np.array([0, 1, 2]), ["0"])


def test_boxes_outside_the_image_and_bad_labels_are_refused():
    args = (np.zeros((1, 1, 8, 8), np.uint8), np.zeros((1, 8, 8), np.uint8))
    with pytest.raises(DataError, match=r"box 0 \(scene 0\) is \[2.0, 1.0, 9.0, 5.0\].*inside the 8x8 image"):
        Scenes(*args, np.array([[2, 1, 9, 5]], np.float32), np.array([1]), np.array([0, 1]), ["0"])
    with pytest.raises(DataError, match="x1 < x2"):
        Scenes(*args, np.array([[4, 1, 4, 5]], np.float32), np.array([1]), np.array([0, 1]), ["0"])
    with pytest.raises(DataError, match="1 \\+ class"):
        Scenes(*args, np.array([[1, 1, 4, 5]], np.float32), np.array([0]), np.array([0, 1]), ["0"])
