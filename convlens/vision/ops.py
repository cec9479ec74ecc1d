"""``convlens.vision.ops``: box operations and detection losses with ``torchvision.ops``'s names, argument
order, defaults and semantics.

Boxes are ``(x1, y1, x2, y2)`` with ``0 <= x1 < x2`` and ``0 <= y1 < y2`` (torchvision's XYXY). Functions take
convlens Tensors (then they return Tensors, and the losses are differentiable through the autograd) or
NumPy arrays (then they return arrays).
"""

from __future__ import annotations

import numpy as np

from convlens.tensor import Tensor

__all__ = ["box_area", "box_iou", "generalized_box_iou", "generalized_box_iou_loss", "nms", "batched_nms",
           "sigmoid_focal_loss", "box_convert", "clip_boxes_to_image", "remove_small_boxes"]


def _np(x) -> np.ndarray:
    return x._data if isinstance(x, Tensor) else np.asarray(x)


def _out(like, a: np.ndarray):
    return Tensor._wrap(a) if isinstance(like, Tensor) else a


def _check_boxes(where: str, boxes) -> np.ndarray:
    a = _np(boxes)
    if a.ndim != 2 or a.shape[-1] != 4:
        raise ValueError(f"{where}: expected boxes of shape (N, 4) as (x1, y1, x2, y2), got {tuple(a.shape)}")
    return a


def box_area(boxes):
    """Area ``(x2 - x1) * (y2 - y1)`` of each box. Shape: (N, 4) → (N,)."""
    a = _check_boxes("box_area", boxes)
    return _out(boxes, (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))


def _inter_union(b1: np.ndarray, b2: np.ndarray):
    lt = np.maximum(b1[:, None, :2], b2[None, :, :2])
    rb = np.minimum(b1[:, None, 2:], b2[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    area2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    return inter, area1[:, None] + area2[None, :] - inter


def box_iou(boxes1, boxes2):
    """Pairwise intersection over union. Shape: (N, 4), (M, 4) → (N, M)."""
    b1, b2 = _check_boxes("box_iou", boxes1), _check_boxes("box_iou", boxes2)
    inter, union = _inter_union(b1, b2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _out(boxes1, inter / union)


def generalized_box_iou(boxes1, boxes2):
    """Pairwise generalized IoU (Rezatofighi et al. 2019): ``IoU − (|C| − |A ∪ B|) / |C|`` with C the
    smallest box enclosing both; in [−1, 1]. Shape: (N, 4), (M, 4) → (N, M)."""
    b1, b2 = _check_boxes("generalized_box_iou", boxes1), _check_boxes("generalized_box_iou", boxes2)
    inter, union = _inter_union(b1, b2)
    lt = np.minimum(b1[:, None, :2], b2[None, :, :2])
    rb = np.maximum(b1[:, None, 2:], b2[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    area = wh[..., 0] * wh[..., 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return _out(boxes1, inter / union - (area - union) / area)


def generalized_box_iou_loss(boxes1, boxes2, reduction: str = "none", eps: float = 1e-7):
    """``1 − GIoU`` of matching boxes (row i of ``boxes1`` with row i of ``boxes2``), differentiable in both.

    Shape: (N, 4), (N, 4) → (N,) with ``reduction="none"``, else a scalar (``"mean"``, ``"sum"``).
    """
    import convlens

    where = "generalized_box_iou_loss"
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{where}: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    a, b = _as_tensor(boxes1), _as_tensor(boxes2)
    if tuple(a.shape) != tuple(b.shape) or a.shape[-1] != 4:
        raise ValueError(f"{where}: expected two (..., 4) box tensors of one shape, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    x1, y1, x2, y2 = (a[..., k] for k in range(4))
    u1, v1, u2, v2 = (b[..., k] for k in range(4))
    # intersection (empty when the clamps hit 0) and the smallest enclosing box
    ix = (convlens.minimum(x2, u2) - convlens.maximum(x1, u1)).clamp(min=0)
    iy = (convlens.minimum(y2, v2) - convlens.maximum(y1, v1)).clamp(min=0)
    inter = ix * iy
    union = (x2 - x1) * (y2 - y1) + (u2 - u1) * (v2 - v1) - inter
    iou = inter / (union + eps)
    cw = convlens.maximum(x2, u2) - convlens.minimum(x1, u1)
    ch = convlens.maximum(y2, v2) - convlens.minimum(y1, v1)
    enclosing = cw * ch
    loss = 1 - (iou - (enclosing - union) / (enclosing + eps))
    return _reduce(loss, reduction, like=boxes1)


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor._wrap(np.asarray(x))


def _reduce(loss: Tensor, reduction: str, like):
    if reduction == "mean":
        loss = loss.mean() if loss.numel() > 0 else loss.sum() * 0.0
    elif reduction == "sum":
        loss = loss.sum()
    return loss if isinstance(like, Tensor) else loss._data


def sigmoid_focal_loss(inputs, targets, alpha: float = 0.25, gamma: float = 2, reduction: str = "none"):
    """Focal loss of RetinaNet (Lin et al. 2017) on logits: with ``p = σ(x)`` and
    ``p_t = p·t + (1 − p)(1 − t)``, ``loss = α_t · (1 − p_t)^γ · BCE(x, t)`` where
    ``α_t = α·t + (1 − α)(1 − t)`` (no weighting when ``alpha < 0``). Shape: inputs and float targets
    of any one shape → that shape (``"none"``) or a scalar (``"mean"``, ``"sum"``)."""
    from convlens.nn import functional as F

    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"sigmoid_focal_loss: invalid reduction {reduction!r}; expected 'none', 'mean' or 'sum'")
    x, t = _as_tensor(inputs), _as_tensor(targets)
    if tuple(x.shape) != tuple(t.shape):
        raise ValueError(f"sigmoid_focal_loss: inputs {tuple(x.shape)} and targets {tuple(t.shape)} differ in shape")
    p = x.sigmoid()
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return _reduce(loss, reduction, like=inputs)


def nms(boxes, scores, iou_threshold: float):
    """Greedy non-maximum suppression: keep the highest-scoring box, drop every box whose IoU with it is
    above ``iou_threshold``, repeat. Returns the kept indices (int64) in decreasing score order.

    Shape: boxes (N, 4), scores (N,) → (K,)."""
    b = _check_boxes("nms", boxes).astype(np.float64, copy=False)
    s = _np(scores)
    if s.shape != (b.shape[0],):
        raise ValueError(f"nms: expected scores of shape ({b.shape[0]},), got {tuple(s.shape)}")
    order = np.argsort(-s, kind="stable")
    keep = []
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    while order.size:  # one vectorised IoU row per kept box
        i = order[0]
        keep.append(i)
        rest = order[1:]
        lt = np.maximum(b[i, :2], b[rest, :2])
        rb = np.minimum(b[i, 2:], b[rest, 2:])
        wh = np.clip(rb - lt, 0, None)
        inter = wh[:, 0] * wh[:, 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = inter / (area[i] + area[rest] - inter)
        order = rest[~(iou > iou_threshold)]
    return _out(boxes, np.array(keep, np.int64))


def batched_nms(boxes, scores, idxs, iou_threshold: float):
    """NMS within each category ``idxs`` (boxes of different categories never suppress each other), by
    torchvision's trick: shift each category's boxes by ``idx · (max coordinate + 1)`` so that they cannot
    overlap, then one `nms`. Returns kept indices in decreasing score order."""
    b = _check_boxes("batched_nms", boxes)
    i = _np(idxs)
    if i.shape != (b.shape[0],):
        raise ValueError(f"batched_nms: expected idxs of shape ({b.shape[0]},), got {tuple(i.shape)}")
    if b.shape[0] == 0:
        return _out(boxes, np.zeros(0, np.int64))
    shift = i.astype(np.float64)[:, None] * (float(b.max()) + 1)
    return _out(boxes, nms(b.astype(np.float64) + shift, _np(scores), iou_threshold))


def box_convert(boxes, in_fmt: str, out_fmt: str):
    """Convert between ``"xyxy"``, ``"xywh"`` (COCO: x, y, width, height) and ``"cxcywh"``."""
    fmts = ("xyxy", "xywh", "cxcywh")
    if in_fmt not in fmts or out_fmt not in fmts:
        raise ValueError(f"box_convert: formats must be among {fmts}, got {in_fmt!r} → {out_fmt!r}")
    a = _check_boxes("box_convert", boxes)
    if in_fmt == "xywh":
        a = np.concatenate([a[:, :2], a[:, :2] + a[:, 2:]], 1)
    elif in_fmt == "cxcywh":
        a = np.concatenate([a[:, :2] - a[:, 2:] / 2, a[:, :2] + a[:, 2:] / 2], 1)
    if out_fmt == "xywh":
        a = np.concatenate([a[:, :2], a[:, 2:] - a[:, :2]], 1)
    elif out_fmt == "cxcywh":
        a = np.concatenate([(a[:, :2] + a[:, 2:]) / 2, a[:, 2:] - a[:, :2]], 1)
    return _out(boxes, a)


def clip_boxes_to_image(boxes, size: tuple[int, int]):
    """Clip boxes to an image of ``size = (height, width)``."""
    a = _check_boxes("clip_boxes_to_image", boxes).copy()
    h, w = size
    a[:, 0::2] = np.clip(a[:, 0::2], 0, w)
    a[:, 1::2] = np.clip(a[:, 1::2], 0, h)
    return _out(boxes, a)


def remove_small_boxes(boxes, min_size: float):
    """Indices of the boxes whose sides are both at least ``min_size``."""
    a = _check_boxes("remove_small_boxes", boxes)
    keep = np.nonzero(((a[:, 2] - a[:, 0]) >= min_size) & ((a[:, 3] - a[:, 1]) >= min_size))[0]
    return _out(boxes, keep.astype(np.int64))
