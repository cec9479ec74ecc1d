"""Dense tasks: segmentation and detection targets, losses, evaluation and a training loop (`fit_task`),
used by ``convlens train --task segment|detect`` and ``convlens eval``.

A model's task is its ``task`` attribute ("segment", "detect"; plain classifiers have none → "classify").
Batches are gathered from a `Scenes` set's arrays with one fancy index (images scaled to [0, 1]).

Losses:
* segment: per-pixel cross-entropy of (N, K + 1, H, W) logits against the (N, H, W) semantic mask;
* detect (CenterNet): penalty-reduced focal loss on the heatmap, with ``p`` the sigmoid and ``y`` the
  Gaussian-splatted target, normalised by the number of objects:
  ``−Σ [y = 1] (1 − p)^2 log p + [y < 1] (1 − y)^4 p^2 log(1 − p)``, plus L1 on size (× 0.1) and
  offset (× 1) at the centre cells.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

import convlens
from convlens.nn import functional as F
from convlens.tensor import Tensor

__all__ = ["task_of", "segment_loss", "centernet_targets", "centernet_loss", "gaussian_radius", "evaluate_task",
           "fit_task", "predict_scenes", "TASKS"]

TASKS = ("classify", "segment", "detect")


def task_of(model) -> str:
    return getattr(model, "task", "classify")


def _batch(scenes, idx) -> Tensor:
    return Tensor._wrap(scenes.images[idx].astype(np.float32) * np.float32(1 / 255))


# ---- segmentation -------------------------------------------------------------------------------------
def segment_loss(output, mask) -> Tensor:
    """Per-pixel cross-entropy; ``mask`` (N, H, W) int64 of 0 = background, 1 + class."""
    return F.cross_entropy(output, mask if isinstance(mask, Tensor) else Tensor._wrap(np.asarray(mask, np.int64)))


# ---- detection targets --------------------------------------------------------------------------------
def gaussian_radius(h, w, min_overlap: float = 0.7):
    """CenterNet's radius (cells) within which a corner shift keeps IoU ≥ ``min_overlap`` with the box
    (the smallest root of the three quadratic cases of Law & Deng's CornerNet); vectorised."""
    h, w = np.asarray(h, np.float64), np.asarray(w, np.float64)
    b1, c1 = h + w, w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + np.sqrt(b1**2 - 4 * c1)) / 2
    b2, c2 = 2 * (h + w), (1 - min_overlap) * w * h
    r2 = (b2 + np.sqrt(b2**2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3, c3 = -2 * min_overlap * (h + w), (min_overlap - 1) * w * h
    r3 = (b3 + np.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return np.minimum(np.minimum(r1, r2), r3)


def centernet_targets(scenes, idx, num_classes: int, out_hw: tuple[int, int], stride: int = 4):
    """``(heat (n, C, h, w), box (n, 4, h, w), mask (n, 1, h, w), num_objects)`` for scenes ``idx``:
    a Gaussian of σ = (2r + 1)/6 around each centre cell in its class's channel (overlaps: max), and at
    the centre cell the box size in cells and the centre's offset from the cell corner."""
    h, w = out_hw
    n = len(idx)
    parts = [scenes.targets(int(i)) for i in idx]
    owner = np.concatenate([np.full(len(p[1]), k) for k, p in enumerate(parts)]).astype(np.int64)
    boxes = np.concatenate([p[0] for p in parts]).reshape(-1, 4) / stride
    labels = np.concatenate([p[1] for p in parts]).astype(np.int64)
    heat = np.zeros((n, num_classes, h, w), np.float32)
    box = np.zeros((n, 4, h, w), np.float32)
    mask = np.zeros((n, 1, h, w), np.float32)
    if len(labels) == 0:
        return heat, box, mask, 0
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    cell = np.clip(np.floor(centre).astype(np.int64), 0, [w - 1, h - 1])
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    sigma = (2 * np.maximum(0, np.floor(gaussian_radius(bh, bw))) + 1) / 6
    ys, xs = np.arange(h), np.arange(w)
    gx = np.exp(-((xs[None] - cell[:, :1]) ** 2) / (2 * sigma[:, None] ** 2))
    gy = np.exp(-((ys[None] - cell[:, 1:]) ** 2) / (2 * sigma[:, None] ** 2))
    g = (gy[:, :, None] * gx[:, None, :]).astype(np.float32)  # (M, h, w), 1 at the centre cell
    np.maximum.at(heat, (owner, labels - 1), g)
    box[owner, :, cell[:, 1], cell[:, 0]] = np.stack([bw, bh, centre[:, 0] - cell[:, 0], centre[:, 1] - cell[:, 1]], 1)
    mask[owner, 0, cell[:, 1], cell[:, 0]] = 1
    return heat, box, mask, len(labels)


def centernet_loss(output, targets, num_classes: int, size_weight: float = 0.1, offset_weight: float = 1.0):
    """The CenterNet loss of ``output`` (N, C + 4, h, w) given ``centernet_targets``'s tuple."""
    heat, box, mask, num = targets
    logits = output[:, :num_classes]
    reg = output[:, num_classes:]
    y = Tensor._wrap(heat)
    pos = Tensor._wrap((heat == 1).astype(np.float32))
    log_p, log_q = F.logsigmoid(logits), F.logsigmoid(-logits)  # log p and log(1 − p), stable
    p = logits.sigmoid()
    focal = pos * (1 - p) ** 2 * log_p + (1 - pos) * (1 - y) ** 4 * p**2 * log_q
    norm = max(int(num), 1)
    heat_loss = -focal.sum() / norm
    m = Tensor._wrap(mask)
    diff = (reg - Tensor._wrap(box)).abs() * m
    size_loss = diff[:, :2].sum() / norm
    offset_loss = diff[:, 2:].sum() / norm
    return heat_loss + size_weight * size_loss + offset_weight * offset_loss


# ---- evaluation ---------------------------------------------------------------------------------------
def predict_scenes(model, scenes, batch_size: int = 64, **decode_kwargs):
    """Segment: predicted masks (S, H, W) int64. Detect: a list of (boxes, scores, labels) per scene."""
    from convlens.autograd import no_grad

    task = task_of(model)
    was = model.training
    model.eval()
    out_masks, dets = [], []
    try:
        with no_grad():
            for a in range(0, len(scenes), batch_size):
                idx = np.arange(a, min(a + batch_size, len(scenes)))
                out = model(_batch(scenes, idx))
                if task == "segment":
                    out_masks.append(out._data.argmax(axis=1))
                else:
                    dets += model.decode(out, image_size=scenes.images.shape[2:], **decode_kwargs)
    finally:
        model.train(was)
    return np.concatenate(out_masks) if task == "segment" else dets


def evaluate_task(model, scenes, batch_size: int = 64) -> dict:
    """The task's metrics on a scene set: segment → pixel accuracy, mean IoU, per-class IoU; detect →
    COCOeval's mAP@[.5:.95], mAP@0.5, ... (`convlens.metrics`)."""
    from convlens.metrics import SegmentationMeter, coco_map

    task = task_of(model)
    if task == "segment":
        pred = predict_scenes(model, scenes, batch_size)
        meter = SegmentationMeter(scenes.num_classes + 1, ["background", *scenes.classes])
        meter.update(pred, scenes.semantic_masks())
        return {"task": task, "n": len(scenes), **meter.compute()}
    if task == "detect":
        dets = predict_scenes(model, scenes, batch_size)
        targets = [scenes.targets(i) for i in range(len(scenes))]
        return {"task": task, "n": len(scenes),
                **coco_map(targets, dets, tuple(scenes.images.shape[2:]), scenes.classes)}
    raise ValueError(f"evaluate_task: the model's task is {task!r}; expected 'segment' or 'detect'")


def _score(task: str, metrics: dict) -> float:
    return metrics["mean_iou"] if task == "segment" else metrics["map_50"]


# ---- training -----------------------------------------------------------------------------------------
def fit_task(model, train, val=None, recipe=None, run_dir=None, info: dict | None = None, progress: bool = True,
             on_epoch_end=None) -> dict:
    """Train a dense model on a `Scenes` set with ``recipe`` (a `Recipe`: optimizer, lr, schedule, epochs,
    batch_size, seed); validate after each epoch with the task's metric (mean IoU / mAP@0.5), save
    ``last.*`` every epoch and ``best.*`` on improvement under ``run_dir``. Returns a report dict."""
    from convlens.checkpoint import save_checkpoint, write_json_atomic
    from convlens.train.recipe import Recipe

    task = task_of(model)
    if task not in ("segment", "detect"):
        raise ValueError(f"fit_task: the model's task is {task!r}; expected 'segment' or 'detect'")
    recipe = recipe or Recipe(optimizer="adam", lr=3e-3, schedule="onecycle", epochs=5, batch_size=32)
    run_dir = Path(run_dir) if run_dir is not None else None
    rng = np.random.default_rng(recipe.seed)
    n = len(train)
    steps = math.ceil(n / recipe.batch_size)
    optimizer = recipe.make_optimizer(model.parameters())
    scheduler, interval = recipe.make_scheduler(optimizer, steps)
    stride = getattr(model, "stride", 1)
    num_classes = train.num_classes
    history, best, best_epoch = [], -math.inf, None
    start = time.perf_counter()
    info = dict(info or {}, task=task)
    for epoch in range(recipe.epochs):
        model.train()
        order = rng.permutation(n)
        t0, total, seen = time.perf_counter(), 0.0, 0
        lr = float(optimizer.param_groups[0]["lr"])
        for b in range(steps):
            idx = np.sort(order[b * recipe.batch_size : (b + 1) * recipe.batch_size])
            x = _batch(train, idx)
            optimizer.zero_grad()
            out = model(x)
            if task == "segment":
                loss = segment_loss(out, train.semantic_masks(idx))
            else:
                loss = centernet_loss(out, centernet_targets(train, idx, num_classes, out.shape[-2:], stride),
                                      num_classes)
            value = float(loss.item())
            if not math.isfinite(value):
                raise RuntimeError(f"the loss became {value} at epoch {epoch + 1}, batch {b + 1}; try a lower lr")
            loss.backward()
            optimizer.step()
            if scheduler is not None and interval == "batch":
                scheduler.step()
            total += value * len(idx)
            seen += len(idx)
        if scheduler is not None and interval == "epoch":
            scheduler.step()
        record = {"epoch": epoch + 1, "train_loss": total / seen, "lr": lr,
                  "seconds": time.perf_counter() - t0, "images_per_second": seen / (time.perf_counter() - t0)}
        if val is not None:
            metrics = evaluate_task(model, val)
            record["val_metric"] = _score(task, metrics)
            record["val_metric_name"] = "mean_iou" if task == "segment" else "map_50"
        history.append(record)
        if progress:
            line = f"epoch {epoch + 1}/{recipe.epochs}: train loss {record['train_loss']:.4f}"
            if "val_metric" in record:
                line += f" | val {record['val_metric_name']} {record['val_metric']:.4f}"
            print(line + f" | {record['seconds']:.1f} s, {record['images_per_second']:.0f} images/s",
                  file=sys.stderr, flush=True)
        if run_dir is not None:
            meta = dict(info, epoch=epoch + 1, history=history)
            save_checkpoint(run_dir / "last", model, optimizer, None, **meta)
            score = record.get("val_metric", -record["train_loss"])
            if score > best:
                best, best_epoch = score, epoch + 1
                save_checkpoint(run_dir / "best", model, None, None, **meta)
            write_json_atomic(run_dir / "history.json", history)
        if on_epoch_end is not None and on_epoch_end(dict(record)) == "stop":
            break
    return {"task": task, "history": history, "best_epoch": best_epoch, "seconds": time.perf_counter() - start,
            "run_dir": str(run_dir) if run_dir else None}


def _seed(seed: int) -> None:
    convlens.manual_seed(seed)
