"""convlens.vision.ops against torchvision.ops's formulas: torchvision cannot be installed here, so the
references are torchvision's algorithms written out in torch (float64), plus hand-computed cases and
float64 gradient checks of the losses."""

import numpy as np
import pytest

import convlens as cl
from convlens.testing import gradcheck
from convlens.vision import ops

torch = pytest.importorskip("torch")


def _boxes(rng, n, scale=50.0):
    xy = rng.uniform(0, scale, (n, 2))
    wh = rng.uniform(1, scale / 2, (n, 2))
    return np.concatenate([xy, xy + wh], 1)


# ---- torch references (torchvision.ops.boxes / giou_loss / focal_loss, re-expressed) -------------------
def _t_iou(b1, b2):
    a1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    a2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    lt = torch.max(b1[:, None, :2], b2[:, :2])
    rb = torch.min(b1[:, None, 2:], b2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = a1[:, None] + a2 - inter
    return inter / union, union


def _t_giou(b1, b2):
    iou, union = _t_iou(b1, b2)
    lt = torch.min(b1[:, None, :2], b2[:, :2])
    rb = torch.max(b1[:, None, 2:], b2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    area = wh[..., 0] * wh[..., 1]
    return iou - (area - union) / area


def _t_giou_loss(b1, b2, eps=1e-7):
    x1, y1, x2, y2 = b1.unbind(-1)
    x1g, y1g, x2g, y2g = b2.unbind(-1)
    xk1, yk1, xk2, yk2 = torch.max(x1, x1g), torch.max(y1, y1g), torch.min(x2, x2g), torch.min(y2, y2g)
    inter = torch.zeros_like(x1)
    mask = (yk2 > yk1) & (xk2 > xk1)
    inter[mask] = (xk2[mask] - xk1[mask]) * (yk2[mask] - yk1[mask])
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
    iou = inter / (union + eps)
    area_c = (torch.max(x2, x2g) - torch.min(x1, x1g)) * (torch.max(y2, y2g) - torch.min(y1, y1g))
    return 1 - (iou - (area_c - union) / (area_c + eps))


def _t_focal(x, t, alpha, gamma):
    p = torch.sigmoid(x)
    ce = torch.nn.functional.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return loss


def _t_nms(b, s, thr):  # the greedy definition, one box at a time
    order = torch.argsort(s, descending=True, stable=True).tolist()
    keep, dead = [], set()
    iou, _ = _t_iou(b, b)
    for i in order:
        if i in dead:
            continue
        keep.append(i)
        dead.update(j for j in order if iou[i, j] > thr)
    return keep


# ---- tests ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,m", [(1, 1), (5, 7), (20, 3), (0, 4)])
def test_iou_giou_area_match_torch(n, m):
    rng = np.random.default_rng(n * 10 + m)
    a, b = _boxes(rng, n), _boxes(rng, m)
    ta, tb = torch.tensor(a), torch.tensor(b)
    np.testing.assert_allclose(ops.box_iou(a, b), _t_iou(ta, tb)[0].numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ops.generalized_box_iou(a, b), _t_giou(ta, tb).numpy(), rtol=1e-12, atol=1e-14)
    out = ops.box_iou(cl.tensor(a), cl.tensor(b))
    assert isinstance(out, cl.Tensor) and tuple(out.shape) == (n, m)
    np.testing.assert_allclose(ops.box_area(a), (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))


def test_iou_hand_cases():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30]], float)
    iou = ops.box_iou(a, b)
    assert iou[0, 0] == pytest.approx(50 / 150) and iou[0, 1] == 0
    giou = ops.generalized_box_iou(a, b)
    # disjoint: enclosing box 30×30 = 900, union 200 → GIoU = 0 − 700/900
    assert giou[1, 1] == pytest.approx(-700 / 900)
    assert ops.generalized_box_iou(a[:1], a[:1])[0, 0] == pytest.approx(1.0)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_giou_loss_forward_backward_match_torch(reduction):
    rng = np.random.default_rng(3)
    a, b = _boxes(rng, 9), _boxes(rng, 9)
    b[0] = a[0] + 100  # disjoint pair
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    ref = _t_giou_loss(ta, tb)
    ref = {"none": ref, "mean": ref.mean(), "sum": ref.sum()}[reduction]
    ref.sum().backward()
    ca, cb = cl.tensor(a, requires_grad=True), cl.tensor(b, requires_grad=True)
    out = ops.generalized_box_iou_loss(ca, cb, reduction=reduction)
    out.sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ca.grad.numpy(), ta.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(cb.grad.numpy(), tb.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_giou_loss_gradcheck():
    rng = np.random.default_rng(4)
    a, b = _boxes(rng, 5), _boxes(rng, 5)
    assert gradcheck(lambda x, y: ops.generalized_box_iou_loss(x, y, reduction="sum"),
                     [cl.tensor(a, requires_grad=True), cl.tensor(b, requires_grad=True)])


@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (-1.0, 2.0), (0.5, 0.0), (0.25, 1.5)])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_focal_loss_matches_torch(alpha, gamma, reduction):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 4, 5)) * 3
    t = (rng.uniform(size=x.shape) < 0.3).astype(float)
    tx = torch.tensor(x, requires_grad=True)
    ref = _t_focal(tx, torch.tensor(t), alpha, gamma)
    ref = {"none": ref, "mean": ref.mean(), "sum": ref.sum()}[reduction]
    ref.sum().backward()
    cx = cl.tensor(x, requires_grad=True)
    out = ops.sigmoid_focal_loss(cx, cl.tensor(t), alpha=alpha, gamma=gamma, reduction=reduction)
    out.sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-12)


def test_focal_loss_gradcheck_and_errors():
    rng = np.random.default_rng(6)
    x = cl.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    t = cl.tensor((rng.uniform(size=(3, 4)) < 0.5).astype(float))
    assert gradcheck(lambda v: ops.sigmoid_focal_loss(v, t, reduction="sum"), [x])
    with pytest.raises(ValueError, match="shape"):
        ops.sigmoid_focal_loss(x, cl.zeros(3, 5, dtype=cl.float64))
    with pytest.raises(ValueError, match="reduction"):
        ops.sigmoid_focal_loss(x, t, reduction="avg")


@pytest.mark.parametrize("n,thr", [(1, 0.5), (30, 0.5), (60, 0.3), (60, 0.7), (0, 0.5)])
def test_nms_matches_greedy_definition(n, thr):
    rng = np.random.default_rng(n)
    b = _boxes(rng, n, scale=40)
    s = rng.uniform(size=n)
    keep = ops.nms(b, s, thr)
    assert keep.dtype == np.int64
    assert keep.tolist() == _t_nms(torch.tensor(b), torch.tensor(s), thr)
    kt = ops.nms(cl.tensor(b), cl.tensor(s), thr)
    assert isinstance(kt, cl.Tensor) and kt.numpy().tolist() == keep.tolist()


def test_nms_threshold_is_strict_and_batched_keeps_categories_apart():
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [0, 0, 10, 10]], float)  # IoU(0,1)=1/3, IoU(0,2)=1
    s = np.array([0.9, 0.8, 0.7])
    assert ops.nms(b, s, 1 / 3).tolist() == [0, 1, 0][:2]  # IoU exactly at the threshold is kept
    assert ops.nms(b, s, 0.3).tolist() == [0]
    keep = ops.batched_nms(b, s, np.array([0, 0, 1]), 0.5)
    assert keep.tolist() == [0, 1, 2]  # box 2 is another category: never suppressed by box 0
    rng = np.random.default_rng(9)
    bb, ss, ii = _boxes(rng, 50, 30), rng.uniform(size=50), rng.integers(0, 4, 50)
    ref = []
    for c in range(4):
        idx = np.nonzero(ii == c)[0]
        ref += idx[ops.nms(bb[idx], ss[idx], 0.4)].tolist()
    got = ops.batched_nms(bb, ss, ii, 0.4).tolist()
    assert sorted(got) == sorted(ref) and list(np.argsort(-ss[got], kind="stable")) == list(range(len(got)))


def test_box_convert_clip_and_errors():
    b = np.array([[1.0, 2.0, 5.0, 10.0]])
    assert ops.box_convert(b, "xyxy", "xywh").tolist() == [[1, 2, 4, 8]]
    assert ops.box_convert(b, "xyxy", "cxcywh").tolist() == [[3, 6, 4, 8]]
    np.testing.assert_allclose(ops.box_convert(ops.box_convert(b, "xyxy", "cxcywh"), "cxcywh", "xyxy"), b)
    assert ops.clip_boxes_to_image(np.array([[-3.0, 2, 70, 80]]), (64, 60)).tolist() == [[0, 2, 60, 64]]
    assert ops.remove_small_boxes(np.array([[0, 0, 2, 9.0], [0, 0, 5, 5]]), 3).tolist() == [1]
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        ops.box_iou(np.zeros((3, 5)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="scores"):
        ops.nms(np.zeros((3, 4)), np.zeros(2), 0.5)
