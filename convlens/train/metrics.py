"""Accuracy, the confusion matrix and `evaluate` (a model over a loader, no gradients)."""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["accuracy", "confusion_matrix", "per_class_accuracy", "evaluate"]


def _array(x) -> np.ndarray:
    return np.asarray(getattr(x, "_data", x)) if not isinstance(x, np.ndarray) else x


def _predictions(output) -> np.ndarray:
    out = _array(output)
    return out.argmax(axis=1) if out.ndim == 2 else out.astype(np.int64)


def accuracy(output, labels) -> float:
    """The fraction of correct predictions; ``output`` is logits/probabilities (N, K) or labels (N,)."""
    pred, labels = _predictions(output), _array(labels)
    if pred.shape != labels.shape:
        raise ValueError(f"accuracy: {pred.shape[0]} predictions for labels of shape {labels.shape}")
    return float((pred == labels).mean()) if labels.size else float("nan")


def confusion_matrix(output, labels, num_classes: int | None = None) -> np.ndarray:
    """``cm[true, predicted]`` counts (int64, K × K); ``output`` as in `accuracy`."""
    pred, labels = _predictions(output), _array(labels).astype(np.int64)
    k = int(num_classes) if num_classes is not None else int(max(pred.max(initial=-1), labels.max(initial=-1)) + 1)
    if labels.size and (labels.min() < 0 or labels.max() >= k or pred.min() < 0 or pred.max() >= k):
        raise ValueError(f"confusion_matrix: labels and predictions must lie in 0..{k - 1}")
    # one bincount over the flattened (true, predicted) index: no loop over examples
    return np.bincount(labels * k + pred, minlength=k * k).reshape(k, k)


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall per class, cm[c, c] / Σ cm[c, :]; NaN for a class with no examples."""
    totals = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(cm) / np.maximum(totals, 1), np.nan)


def evaluate(model, loader, loss_fn=None, num_classes: int | None = None, progress: bool = False,
             desc: str = "eval") -> dict:
    """Run ``model`` in eval mode without gradients over ``loader``.

    Returns ``{n, loss, accuracy, per_class_accuracy, confusion_matrix}`` (accuracies are fractions,
    per-class ones None where a class has no examples; lists, so the dict is JSON-able). ``loss_fn``
    defaults to cross-entropy and must average over the batch (the total is re-weighted by batch size).
    """
    from convlens.autograd import no_grad
    from convlens.nn import functional as F

    loss_fn = loss_fn or F.cross_entropy
    was_training = getattr(model, "training", False)
    model.eval()
    total_loss, preds, labels = 0.0, [], []
    bar = None
    if progress and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(loader), desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True)
    try:
        with no_grad():
            for x, y in loader:
                out = model(x)
                n = int(y.shape[0])
                total_loss += float(loss_fn(out, y).item()) * n
                preds.append(out._data.argmax(axis=1))
                labels.append(np.asarray(y._data))
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        model.train(was_training)
    pred = np.concatenate(preds) if preds else np.zeros(0, np.int64)
    true = np.concatenate(labels) if labels else np.zeros(0, np.int64)
    n = int(true.shape[0])
    cm = confusion_matrix(pred, true, num_classes)
    per_class = per_class_accuracy(cm)
    return {
        "n": n,
        "loss": total_loss / n if n else float("nan"),
        "accuracy": float(np.trace(cm) / n) if n else float("nan"),
        "per_class_accuracy": [None if np.isnan(a) else float(a) for a in per_class],
        "confusion_matrix": cm.tolist(),
    }
