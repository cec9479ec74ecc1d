"""Segmentation metrics from the confusion matrix, and detection mAP through pycocotools' COCOeval."""

import numpy as np
import pytest

from convlens.metrics import (
    SegmentationMeter,
    coco_ground_truth,
    coco_map,
    segmentation_confusion,
    segmentation_scores,
)


def test_confusion_iou_and_pixel_accuracy_by_hand():
    t = np.array([[[0, 0, 1, 1], [0, 2, 2, 1]]])
    p = np.array([[[0, 1, 1, 1], [0, 2, 0, 1]]])
    cm = segmentation_confusion(p, t, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 3, 0], [1, 0, 1]]
    s = segmentation_scores(cm)
    # IoU: class 0: 2 / (3 + 3 - 2) = 0.5; class 1: 3 / (3 + 4 - 3) = 0.75; class 2: 1 / (2 + 1 - 1) = 0.5
    assert s["per_class_iou"] == pytest.approx([0.5, 0.75, 0.5])
    assert s["mean_iou"] == pytest.approx(1.75 / 3) and s["pixel_accuracy"] == pytest.approx(6 / 8)
    logits = np.eye(3)[p].transpose(0, 3, 1, 2)  # one-hot "logits" (N, K, H, W) give the same matrix
    assert segmentation_confusion(logits, t, 3).tolist() == cm.tolist()


def test_absent_class_ignore_index_meter_and_errors():
    t = np.array([[0, 0, 255, 1]])
    p = np.array([[0, 1, 2, 1]])
    cm = segmentation_confusion(p, t, 4, ignore_index=255)
    s = segmentation_scores(cm)
    assert s["per_class_iou"][3] is None and s["mean_iou"] == pytest.approx((0.5 + 0.5) / 2)
    m = SegmentationMeter(4, ignore_index=255)
    m.update(p, t)
    m.update(p, t)
    assert np.array(m.compute()["confusion_matrix"]).sum() == 6
    with pytest.raises(ValueError, match="differ in shape"):
        segmentation_confusion(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)), 3)
    with pytest.raises(ValueError, match=r"0\.\.2"):
        segmentation_confusion(np.full((1, 2), 3), np.zeros((1, 2)), 3)


def _gt():
    return [(np.array([[10, 10, 30, 30], [40, 40, 60, 62]], float), np.array([1, 2])),
            (np.array([[0, 0, 16, 20]], float), np.array([3]))]


def test_coco_annotations_use_xywh_and_exclusive_corners():
    d = coco_ground_truth(_gt(), (64, 64), ["a", "b", "c"])
    assert d["annotations"][1]["bbox"] == [40, 40, 20, 22] and d["annotations"][1]["area"] == 440
    assert [c["id"] for c in d["categories"]] == [1, 2, 3] and len(d["images"]) == 2


def test_coco_map_perfect_shifted_wrong_class_and_hand_ap():
    gt, cls = _gt(), ["a", "b", "c"]
    perfect = [(b, np.ones(len(b)), lab) for b, lab in gt]
    r = coco_map(gt, perfect, (64, 64), cls)
    assert r["map"] == pytest.approx(1.0) and r["map_50"] == pytest.approx(1.0)
    # every box shifted so that IoU = 0.6 < 0.75 (width 20 → shift 5 of 20: IoU 15·20/(25·20) = 0.6)
    shifted = [(b + np.array([5, 0, 5, 0]) * (b[:, 2:3] - b[:, 0:1]) / 20, np.ones(len(b)), lab) for b, lab in gt]
    r = coco_map(gt, shifted, (64, 64), cls)
    assert r["map_50"] == pytest.approx(1.0) and r["map_75"] == pytest.approx(0.0)
    wrong = [(b, np.ones(len(b)), lab % 3 + 1) for b, lab in gt]
    assert coco_map(gt, wrong, (64, 64), cls)["map_50"] == pytest.approx(0.0)
    # class 1 has 2 boxes in one image: a false positive ranked above one true positive, the other missed.
    # Precision at recall 0.5 is 1/2 and recall 1 is never reached: 101-point AP = 51 · 0.5 / 101.
    gt1 = [(np.array([[0, 0, 10, 10], [30, 30, 40, 40]], float), np.array([1, 1]))]
    det1 = [(np.array([[50, 50, 60, 60], [0, 0, 10, 10]], float), np.array([0.9, 0.8]), np.array([1, 1]))]
    assert coco_map(gt1, det1, (64, 64), ["a"])["map_50"] == pytest.approx(51 * 0.5 / 101)
    assert coco_map(gt, [(np.zeros((0, 4)), [], [])] * 2, (64, 64), cls)["map"] == 0.0
    with pytest.raises(ValueError, match="detection lists"):
        coco_map(gt, perfect[:1], (64, 64), cls)
