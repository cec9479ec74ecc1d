"""Segmentation metrics from a pixel confusion matrix ``cm[true, predicted]``:

* IoU of class c = ``cm[c, c] / (Σ_j cm[c, j] + Σ_i cm[i, c] − cm[c, c])`` (TP / (TP + FN + FP));
* mean IoU = the mean over classes that occur in the truth or the prediction (background included,
  as in the PASCAL VOC and Cityscapes evaluations);
* pixel accuracy = ``trace(cm) / Σ cm``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["segmentation_confusion", "segmentation_scores", "SegmentationMeter"]


def _array(x) -> np.ndarray:
    return np.asarray(getattr(x, "_data", x))


def segmentation_confusion(pred, target, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """``cm[true, predicted]`` (int64, K × K) over all pixels; ``pred`` is labels (N, H, W) or logits
    (N, K, H, W) (argmax over dim 1), ``target`` labels (N, H, W). Pixels whose target is ``ignore_index``
    are left out."""
    p, t = _array(pred), _array(target).astype(np.int64)
    if p.ndim == t.ndim + 1:
        p = p.argmax(axis=1)
    if p.shape != t.shape:
        raise ValueError(f"segmentation_confusion: predictions {p.shape} and target {t.shape} differ in shape "
                         "(expected labels (N, H, W) or logits (N, K, H, W) with a target (N, H, W))")
    p, t = p.astype(np.int64).ravel(), t.ravel()
    if ignore_index is not None:
        keep = t != ignore_index
        p, t = p[keep], t[keep]
    k = int(num_classes)
    if t.size and (t.min() < 0 or t.max() >= k or p.min() < 0 or p.max() >= k):
        raise ValueError(f"segmentation_confusion: labels must lie in 0..{k - 1}, found "
                         f"{min(t.min(), p.min())}..{max(t.max(), p.max())}")
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def segmentation_scores(cm: np.ndarray, classes: list[str] | None = None) -> dict:
    """``{pixel_accuracy, mean_iou, per_class_iou, classes}`` from a confusion matrix; a class absent from
    both truth and prediction has IoU None and does not count in the mean."""
    cm = np.asarray(cm, np.float64)
    tp = np.diag(cm)
    denom = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(denom > 0, tp / denom, np.nan)
    total = cm.sum()
    return {
        "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
        "mean_iou": float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
        "per_class_iou": [None if np.isnan(v) else float(v) for v in iou],
        "classes": list(classes) if classes is not None else [str(i) for i in range(len(iou))],
    }


class SegmentationMeter:
    """Accumulates a confusion matrix over batches: ``update(pred, target)``, then ``compute()``."""

    def __init__(self, num_classes: int, classes: list[str] | None = None, ignore_index: int | None = None):
        self.num_classes, self.classes, self.ignore_index = int(num_classes), classes, ignore_index
        self.cm = np.zeros((self.num_classes, self.num_classes), np.int64)

    def update(self, pred, target) -> None:
        self.cm += segmentation_confusion(pred, target, self.num_classes, self.ignore_index)

    def compute(self) -> dict:
        return dict(segmentation_scores(self.cm, self.classes), confusion_matrix=self.cm.tolist())
