"""The segmentation and detection side of ``convlens train``, ``eval`` and ``predict`` (scene data sets,
task metrics, drawn boxes and mask overlays)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from convlens.cli import CLIError

# one colour per mask value (0 = background: transparent); boxes use the class's colour
PALETTE = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212]], np.uint8)


def model_task(name: str | None) -> str | None:
    """The task a zoo model name implies (None for classifiers, spec files and unknown names)."""
    from convlens.models.dense import DENSE_TASKS

    return DENSE_TASKS.get(str(name or "").strip().lower().replace("_", "-"))


def resolve_task(model_name: str | None, task: str | None) -> str:
    """``--task`` checked against the model: a detector cannot train to segment and vice versa."""
    implied = model_task(model_name)
    if task is None:
        return implied or "classify"
    if implied is not None and implied != task:
        raise CLIError(f"--task {task} does not fit model {model_name}, which is a {implied} model")
    if implied is None and task != "classify":
        raise CLIError(f"--task {task} needs a {task} model (unet-small for segment, centernet-small for detect); "
                       f"{model_name} is a classifier")
    return task


def load_scenes_arg(name: str, data_dir, train: bool):
    from convlens.data.scenes import SCENE_SETS, load_scenes

    key = str(name).strip().lower().replace("_", "-")
    if key not in SCENE_SETS:
        raise CLIError(f"segmentation and detection train on scene data sets ({', '.join(SCENE_SETS)}), got "
                       f"{name!r}")
    return load_scenes(key, data_dir, train)


def train_dense(args, recipe, run_dir: Path, data_dir, task: str) -> int:
    import convlens
    from convlens.checkpoint import load_checkpoint, write_json_atomic
    from convlens.cli._common import build_model, eprint, print_json
    from convlens.train.tasks import evaluate_task, fit_task, task_of

    if args.resume:
        raise CLIError("--resume is not supported for segmentation and detection runs yet; start a new run")
    started = time.perf_counter()
    full = load_scenes_arg(recipe.dataset, data_dir, True)
    test = load_scenes_arg(recipe.dataset, data_dir, False)
    train, val = (full.split(recipe.val_split, recipe.seed) if recipe.val_split > 0 else (full, None))
    if recipe.limit is not None and recipe.limit < len(train):
        train = train.subset(np.arange(recipe.limit))
    convlens.manual_seed(recipe.seed)
    model, desc = build_model(recipe.model, full.shape, full.num_classes)
    if task_of(model) != task:
        raise CLIError(f"model {recipe.model} is a {task_of(model)} model, not a {task} one")
    n_params = sum(int(p._data.size) for p in model.parameters())
    eprint(f"convlens train: run directory {run_dir} (task {task})")
    eprint(recipe.describe())
    eprint(f"  data             {len(train)} training, {len(val) if val else 0} validation, {len(test)} test scenes "
           f"of {'×'.join(map(str, full.shape))}, {full.num_classes} classes")
    eprint(f"  parameters       {n_params:,}")
    info = {"architecture": desc, "model_name": recipe.model, "recipe": recipe.to_dict(), "dataset": recipe.dataset,
            "data_dir": str(data_dir) if data_dir else None, "classes": list(full.classes),
            "input_shape": list(full.shape), "mean": None, "std": None, "num_train": len(train),
            "num_val": len(val) if val else 0}
    result = fit_task(model, train, val, recipe, run_dir=run_dir, info=info)
    best = run_dir / "best.safetensors"
    if best.is_file():
        load_checkpoint(best, model=model)
    metrics = evaluate_task(model, test)
    report = {"run_dir": str(run_dir), "task": task, "epochs": len(result["history"]),
              "best_epoch": result["best_epoch"], "history": result["history"], "test": metrics,
              "train_seconds": round(result["seconds"], 3), "seconds": round(time.perf_counter() - started, 3)}
    write_json_atomic(run_dir / "report.json", report)
    if args.json:
        print_json(report)
    else:
        print(summary_line(metrics, len(test)))
        print(f"saved to {run_dir} ({report['epochs']} epochs, {report['seconds']:.0f} s)")
    return 0


def summary_line(m: dict, n: int) -> str:
    if m["task"] == "segment":
        return f"test mean IoU {m['mean_iou']:.4f}, pixel accuracy {m['pixel_accuracy']:.2%} ({n} scenes)"
    return f"test mAP@0.5 {m['map_50']:.4f}, mAP@[.5:.95] {m['map']:.4f} ({n} scenes)"


def eval_dense(args, model, info: dict) -> int:
    from convlens.cli._common import print_json
    from convlens.train.tasks import evaluate_task, task_of

    dataset = args.dataset or info.get("dataset")
    ds = load_scenes_arg(dataset, args.data_dir or (None if args.dataset else info.get("data_dir")),
                         args.split == "train")
    if ds.shape[0] != int(info["input_shape"][0]):
        raise CLIError(f"{dataset}: scenes have {ds.shape[0]} channels, the model takes {info['input_shape'][0]}")
    if ds.num_classes != len(info.get("classes") or ds.classes):
        raise CLIError(f"{dataset}: has {ds.num_classes} classes, the model was trained on {len(info['classes'])}")
    m = evaluate_task(model, ds, args.batch_size)
    report = {"checkpoint": info["checkpoint"], "dataset": dataset, "split": args.split, **m}
    if args.json:
        print_json(report)
        return 0
    print(f"{info['checkpoint']} on {dataset} ({args.split}, {m['n']} scenes, task {task_of(model)})")
    print(summary_line(m, m["n"]))
    if m["task"] == "segment":
        width = max(len(c) for c in m["classes"])
        print("per-class IoU:")
        for c, v in zip(m["classes"], m["per_class_iou"]):
            print(f"  {c:>{width}}  {'-' if v is None else f'{v:.4f}'}")
    else:
        for k in ("map", "map_50", "map_75", "map_small", "map_medium", "map_large", "mar_100"):
            print(f"  {k:<10} {m[k]:.4f}")
    return 0


def scene_input(image, in_channels: int) -> tuple[np.ndarray, np.ndarray]:
    """A Pillow image at its own size → (x float32 (1, C, H, W) in [0, 1], pixels uint8 (C, H, W))."""
    if in_channels not in (1, 3):
        raise CLIError(f"the model takes {in_channels}-channel images; only 1 (grey) or 3 (RGB) can be made")
    a = np.asarray(image.convert("L" if in_channels == 1 else "RGB"), np.uint8)
    pixels = a[None] if in_channels == 1 else np.moveaxis(a, -1, 0)
    if pixels.shape[1] < 8 or pixels.shape[2] < 8:
        raise CLIError(f"the image is {pixels.shape[2]}×{pixels.shape[1]} pixels; at least 8×8 is needed")
    return pixels[None].astype(np.float32) / np.float32(255), pixels


def run_dense(model, x: np.ndarray, score_threshold: float = 0.3) -> dict:
    """One image through a dense model: {"mask": (H, W)} or {"boxes", "scores", "labels"}."""
    from convlens.autograd import no_grad
    from convlens.tensor import Tensor

    model.eval()
    with no_grad():
        out = model(Tensor._wrap(x))
    if model.task == "segment":
        return {"mask": out._data[0].argmax(axis=0)}
    boxes, scores, labels = model.decode(out, score_threshold=score_threshold, image_size=x.shape[2:])[0]
    return {"boxes": boxes, "scores": scores, "labels": labels}


def draw_result(pixels: np.ndarray, result: dict, classes: list[str], scale: int = 1):
    """A Pillow RGB image: the mask as a translucent colour overlay, or the boxes with 'class score'."""
    from PIL import Image, ImageDraw

    rgb = np.repeat(pixels, 3, 0) if pixels.shape[0] == 1 else pixels
    base = np.moveaxis(rgb, 0, -1).astype(np.float32)
    if "mask" in result:
        m = result["mask"]
        colour = PALETTE[np.clip(m, 0, len(PALETTE) - 1)].astype(np.float32)
        alpha = np.where(m > 0, 0.55, 0.0)[..., None]
        base = base * (1 - alpha) + colour * alpha
    im = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)
    if "boxes" in result:
        d = ImageDraw.Draw(im)
        for b, s, lab in zip(result["boxes"], result["scores"], result["labels"]):
            col = tuple(int(v) for v in PALETTE[int(lab) % len(PALETTE)])
            x1, y1, x2, y2 = (float(v) * scale for v in b)
            d.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=col, width=max(1, scale // 2))
            name = classes[int(lab) - 1] if 0 < int(lab) <= len(classes) else str(int(lab))
            d.text((x1 + 1, max(0, y1 - 11)), f"{name} {float(s):.2f}", fill=col)
    return im


def predict_dense(args, model, info: dict) -> int:
    from convlens.checkpoint import jsonable
    from convlens.cli._common import open_image, print_json

    classes = list(info.get("classes") or [])
    if args.out and len(args.images) != 1:
        raise CLIError(f"--out writes one picture; give one image, not {len(args.images)}")
    results = []
    for path in args.images:
        image = open_image(path)
        x, pixels = scene_input(image, int(info["input_shape"][0]))
        r = run_dense(model, x, args.score_threshold)
        if args.out:
            draw_result(pixels, r, classes, scale=max(1, 256 // max(pixels.shape[1:]))).save(args.out)
        if "mask" in r:
            counts = np.bincount(r["mask"].ravel(), minlength=len(classes) + 1)
            entry = {"image": str(path), "task": "segment", "size": list(r["mask"].shape),
                     "pixels": {("background" if k == 0 else classes[k - 1]): int(c) for k, c in enumerate(counts) if c}}
        else:
            entry = {"image": str(path), "task": "detect", "detections": [
                {"class": classes[int(lab) - 1] if classes else str(int(lab) - 1), "score": float(s),
                 "box": [round(float(v), 2) for v in b]} for b, s, lab in zip(r["boxes"], r["scores"], r["labels"])]}
        results.append(entry)
    if args.json:
        print_json(jsonable(results))
        return 0
    for e in results:
        if e["task"] == "segment":
            print(f"{e['image']}: " + ", ".join(f"{k} {v} px" for k, v in e["pixels"].items()))
        else:
            print(f"{e['image']}: " + (", ".join(f"{d['class']} ({d['score']:.2f}) at {d['box']}"
                                                for d in e["detections"]) or "no detections"))
    if args.out:
        print(f"drawn to {args.out}")
    return 0
