"""unet-small and centernet-small: shapes at any size, CenterNet targets, loss against a torch-written
reference, decoding (peaks, boxes, NMS) scored by COCOeval, a few training steps."""

import numpy as np
import pytest

import convlens as cl
from convlens import models
from convlens.data.scenes import SceneConfig, Scenes, make_scenes
from convlens.models.dense import decode_centernet, upsample2
from convlens.nn import functional as F
from convlens.train.recipe import Recipe
from convlens.train.tasks import centernet_loss, centernet_targets, evaluate_task, fit_task, gaussian_radius


@pytest.fixture(scope="module")
def scenes():
    from convlens.data import mnist_mini

    d = mnist_mini(train=False)
    arrays = make_scenes(d.images[:200], d.labels[:200], SceneConfig(num_scenes=16, seed=5))
    return Scenes(*arrays, classes=d.classes, name="tiny")


@pytest.mark.parametrize("name,channels,stride", [("unet-small", 11, 1), ("centernet-small", 14, 4)])
@pytest.mark.parametrize("hw", [(64, 64), (40, 72), (97, 50)])
def test_fully_convolutional_any_size(name, channels, stride, hw):
    m = models.get_model(name, input_shape=(1, 64, 64), num_classes=10)
    m.eval()
    with cl.no_grad():
        out = m(cl.zeros(2, 1, *hw))
    assert tuple(out.shape) == (2, channels, -(-hw[0] // stride), -(-hw[1] // stride))
    assert m.task == {"unet-small": "segment", "centernet-small": "detect"}[name]


def test_upsample2_is_nearest_interpolate():
    x = cl.randn(2, 3, 4, 5, requires_grad=True)
    np.testing.assert_array_equal(upsample2(x).detach().numpy(),
                                  F.interpolate(x, scale_factor=2, mode="nearest").detach().numpy())
    upsample2(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3, 4, 5), 4.0))


def test_gaussian_radius_matches_centernet_formula():
    # CenterNet's reference for a 10×10 box at min_overlap 0.7: the smallest of the three roots
    h = w = 10.0
    b1, c1 = h + w, w * h * 0.3 / 1.7
    b2, c2 = 2 * (h + w), 0.3 * w * h
    b3, c3 = -2 * 0.7 * (h + w), -0.3 * w * h
    r = min((b1 + np.sqrt(b1**2 - 4 * c1)) / 2, (b2 + np.sqrt(b2**2 - 16 * c2)) / 2,
            (b3 + np.sqrt(b3**2 - 4 * 2.8 * c3)) / 2)
    assert gaussian_radius(h, w) == pytest.approx(r)


def test_centernet_targets(scenes):
    idx = np.arange(4)
    heat, box, mask, n = centernet_targets(scenes, idx, 10, (16, 16), 4)
    assert n == int(scenes.offsets[4]) and mask.sum() <= n and heat.max() == 1.0
    for i in idx:
        boxes, labels = scenes.targets(i)
        for b, lab in zip(boxes / 4, labels):
            cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
            x, y = int(cx), int(cy)
            assert heat[i, lab - 1, y, x] == 1.0
            if mask[i, 0, y, x] and (heat[i, :, y, x] == 1).sum() == 1:
                np.testing.assert_allclose(box[i, :, y, x], [b[2] - b[0], b[3] - b[1], cx - x, cy - y], rtol=1e-5)


def test_centernet_loss_matches_torch(scenes):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    idx = np.arange(3)
    targets = centernet_targets(scenes, idx, 10, (16, 16), 4)
    out = rng.standard_normal((3, 14, 16, 16))
    co = cl.tensor(out, requires_grad=True)
    loss = centernet_loss(co, targets, 10)
    loss.backward()
    heat, box, mask, n = (torch.tensor(t) if isinstance(t, np.ndarray) else t for t in targets)
    to = torch.tensor(out, requires_grad=True)
    p = torch.sigmoid(to[:, :10])
    pos = (heat == 1).double()
    focal = pos * (1 - p) ** 2 * torch.log(p) + (1 - pos) * (1 - heat) ** 4 * p**2 * torch.log(1 - p)
    l1 = ((to[:, 10:] - box).abs() * mask)
    ref = -focal.sum() / n + 0.1 * l1[:, :2].sum() / n + l1[:, 2:].sum() / n
    ref.backward()
    assert float(loss.item()) == pytest.approx(float(ref.detach()), rel=1e-9)
    np.testing.assert_allclose(co.grad.numpy(), to.grad.numpy(), rtol=1e-7, atol=1e-12)


def test_decode_perfect_map_scores_map_one(scenes):
    from convlens.metrics import coco_map

    idx = np.arange(len(scenes))
    heat, box, mask, _ = centernet_targets(scenes, idx, 10, (16, 16), 4)
    logits = np.log(np.clip(heat, 1e-6, 1 - 1e-6) / (1 - np.clip(heat, 1e-6, 1 - 1e-6)))
    # spread the size/offset regression to every cell so that a shifted peak still reads a box
    out = np.concatenate([logits, box], 1).astype(np.float32)
    dets = decode_centernet(out, 10, 4, image_size=(64, 64))
    targets = [scenes.targets(i) for i in idx]
    r = coco_map(targets, dets, (64, 64), scenes.classes)
    assert r["map_50"] > 0.95
    assert all(np.all(np.diff(d[1]) <= 0) for d in dets)  # scores sorted


def test_decode_suppresses_duplicates_with_nms():
    out = np.zeros((1, 5, 8, 8), np.float32)  # one class: heat, width, height, x offset, y offset
    out[0, 0] = -10.0
    out[0, 0, 2, 2], out[0, 0, 2, 4] = 3.0, 2.0  # two peaks, 2 cells apart
    out[0, 1:3] = 6.0  # boxes 6 cells (24 px) wide: the two overlap with IoU 0.5
    dets_all = decode_centernet(out, 1, 4, iou_threshold=None)[0]
    dets_nms = decode_centernet(out, 1, 4, iou_threshold=0.4)[0]
    assert len(dets_all[0]) == 2 and len(dets_nms[0]) == 1 and dets_nms[2].tolist() == [1]
    np.testing.assert_allclose(dets_nms[0][0], [(2 - 3) * 4, (2 - 3) * 4, (2 + 3) * 4, (2 + 3) * 4])
    assert dets_nms[1][0] == pytest.approx(1 / (1 + np.exp(-3.0)))


@pytest.mark.parametrize("name", ["unet-small", "centernet-small"])
def test_a_few_steps_lower_the_loss_and_evaluate(scenes, name, tmp_path):
    cl.manual_seed(0)
    m = models.get_model(name, input_shape=(1, 64, 64), num_classes=10)
    recipe = Recipe(model=name, optimizer="adam", lr=3e-3, epochs=4, batch_size=16, schedule="none")
    r = fit_task(m, scenes, scenes, recipe, run_dir=tmp_path, progress=False)
    losses = [h["train_loss"] for h in r["history"]]
    assert losses[-1] < losses[0]
    assert (tmp_path / "best.safetensors").is_file() and (tmp_path / "last.safetensors").is_file()
    metrics = evaluate_task(m, scenes)
    key = "mean_iou" if name == "unet-small" else "map_50"
    assert 0 <= metrics[key] <= 1
