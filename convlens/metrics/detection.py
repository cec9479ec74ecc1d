"""Detection metrics by pycocotools' COCOeval (the evaluator of the COCO benchmark), not a hand-written one.

Scenes are written as COCO annotations: one image per scene, one annotation per box with
``bbox = [x1, y1, x2 − x1, y2 − y1]`` (COCO's [x, y, width, height]; x2/y2 are exclusive, so these are
the pixel widths), ``area`` the box's area, ``category_id`` the label (1 + class). Detections become COCO
results ``{image_id, category_id, bbox, score}``. ``coco_map`` returns COCOeval's twelve numbers by name;
``map_50`` is AP at IoU 0.5 and ``map`` AP averaged over IoU 0.50:0.05:0.95 (101-point interpolation,
at most 100 detections per image).
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

__all__ = ["coco_ground_truth", "detections_to_coco", "coco_map", "STAT_NAMES"]

STAT_NAMES = ("map", "map_50", "map_75", "map_small", "map_medium", "map_large",
              "mar_1", "mar_10", "mar_100", "mar_small", "mar_medium", "mar_large")


def _require():
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:  # pragma: no cover - the detection extra
        raise ImportError("detection metrics need pycocotools: pip install 'convlens[detection]'") from None
    return COCO, COCOeval


def _xywh(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], 1)


def coco_ground_truth(targets, image_size: tuple[int, int], classes: list[str]) -> dict:
    """A COCO annotation dict from per-image ``(boxes (K, 4) xyxy, labels (K,))`` pairs; image ids are the
    list positions, category ids the labels 1..len(classes)."""
    h, w = image_size
    images, anns = [], []
    for i, (boxes, labels) in enumerate(targets):
        images.append({"id": i, "width": int(w), "height": int(h)})
        for b, lab in zip(_xywh(boxes), np.asarray(labels).ravel()):
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(lab), "bbox": b.tolist(),
                         "area": float(b[2] * b[3]), "iscrowd": 0})
    cats = [{"id": k + 1, "name": str(c)} for k, c in enumerate(classes)]
    return {"images": images, "annotations": anns, "categories": cats}


def detections_to_coco(detections) -> list[dict]:
    """COCO results from per-image ``(boxes (K, 4) xyxy, scores (K,), labels (K,))`` triples."""
    out = []
    for i, (boxes, scores, labels) in enumerate(detections):
        for b, s, lab in zip(_xywh(boxes), np.asarray(scores).ravel(), np.asarray(labels).ravel()):
            out.append({"image_id": i, "category_id": int(lab), "bbox": b.tolist(), "score": float(s)})
    return out


def coco_map(targets, detections, image_size: tuple[int, int], classes: list[str]) -> dict:
    """COCOeval's bbox statistics (``STAT_NAMES``) of ``detections`` against ``targets`` (see above)."""
    COCO, COCOeval = _require()
    if len(targets) != len(detections):
        raise ValueError(f"coco_map: {len(detections)} detection lists for {len(targets)} images")
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        gt = COCO()
        gt.dataset = coco_ground_truth(targets, image_size, classes)
        gt.createIndex()
        results = detections_to_coco(detections)
        if not results:
            return {name: 0.0 for name in STAT_NAMES} | {"num_detections": 0}
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = {name: float(v) for name, v in zip(STAT_NAMES, ev.stats)}
    stats["num_detections"] = len(results)
    return stats
