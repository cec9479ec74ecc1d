"""``convlens eval``: accuracy, loss, per-class accuracy and confusion matrix of a checkpoint."""

from __future__ import annotations

from convlens.cli import CLIError


def register(sub, parent) -> None:
    p = sub.add_parser(
        "eval", parents=[parent], help="evaluate a checkpoint on a data set",
        description="Evaluate a checkpoint: accuracy, loss, per-class accuracy and the confusion matrix "
                    "(rows: true class, columns: predicted class).",
    )
    p.add_argument("checkpoint", metavar="CKPT", help="a run directory (best, else last) or a .safetensors file")
    p.add_argument("--dataset", metavar="NAME|FOLDER", help="data set (default: the one the model was trained on)")
    p.add_argument("--data-dir", metavar="DIR", help="root folder of the data set's files")
    p.add_argument("--split", choices=("test", "train"), default="test", help="which part (default: test)")
    p.add_argument("--batch-size", type=int, default=256, metavar="N")
    p.add_argument("--cross-eval", action="store_true",
                   help="evaluate on data that does not match the model (other classes, channels or size): the "
                        "images are converted to the model's input and labels compared by index; says what it converts")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    from convlens.cli._common import eprint, eval_transform, load_dataset, load_model, print_json
    from convlens.data import DataLoader
    from convlens.train import evaluate

    model, info = load_model(args.checkpoint)
    if getattr(model, "task", "classify") != "classify":  # segmentation / detection: the task's metrics
        from convlens.cli._dense import eval_dense

        return eval_dense(args, model, info)
    dataset = args.dataset or info.get("dataset_path") or info.get("dataset")
    if not dataset:
        raise CLIError(f"{info['checkpoint']}: does not record its data set; pass --dataset")
    shape = tuple(info["input_shape"])
    ds = load_dataset(dataset, args.data_dir or (None if args.dataset else info.get("data_dir")),
                      train=args.split == "train", input_shape=shape)
    if tuple(ds.shape) != shape:
        raise CLIError(f"{dataset}: images are (C, H, W) = {tuple(ds.shape)}, but the model takes {shape}")
    classes = list(info.get("classes") or ds.classes)
    if len(ds.classes) != len(classes):
        raise CLIError(f"{dataset}: has {len(ds.classes)} classes, the model was trained on {len(classes)}")
    problems = mismatches(ds, info, shape)
    if problems and not args.cross_eval:
        raise CLIError(f"{dataset} does not fit the model in {info['checkpoint']}: {'; '.join(problems)}. An "
                       "accuracy would be meaningless; pass --cross-eval to evaluate anyway (converting the images)")
    if problems:
        eprint(f"convlens eval: cross-evaluation: {'; '.join(problems)}; images converted to "
               f"{'×'.join(map(str, shape))}, labels compared by index")
    if args.batch_size < 1:
        raise CLIError(f"--batch-size must be >= 1, got {args.batch_size}")
    loader = DataLoader(ds, args.batch_size, transform=eval_transform(info))
    r = evaluate(model, loader, num_classes=len(classes), progress=True, desc=f"evaluating on {args.split}")
    report = {"checkpoint": info["checkpoint"], "dataset": dataset, "split": args.split, "n": r["n"],
              "loss": r["loss"], "accuracy": r["accuracy"], "per_class_accuracy": r["per_class_accuracy"],
              "confusion_matrix": r["confusion_matrix"], "classes": classes}
    if args.json:
        print_json(report)
        return 0
    print(f"{info['checkpoint']} on {dataset} ({args.split}, {r['n']} images)")
    print(f"accuracy {r['accuracy']:.2%}, loss {r['loss']:.4f}")
    width = max(len(c) for c in classes)
    print("per-class accuracy:")
    for c, a in zip(classes, r["per_class_accuracy"]):
        print(f"  {c:>{width}}  {'-' if a is None else f'{a:.2%}'}")
    print(_confusion_table(r["confusion_matrix"], classes))
    return 0


def _native(ds) -> tuple[int, int, int] | None:
    """(C, H, W) of a folder's first image as stored (C = 1 when every pixel is grey), None for array sets."""
    import numpy as np
    from PIL import Image

    from convlens.data import ImageFolder

    if not isinstance(ds, ImageFolder) or not ds.files:
        return None
    with Image.open(ds.root / ds.files[0]) as im:
        a = np.asarray(im.convert("RGB"))
    grey = bool((a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all())
    return (1 if grey else 3, a.shape[0], a.shape[1])


def mismatches(ds, info: dict, shape: tuple) -> list[str]:
    """What differs between the data set and what the checkpoint was trained on: class names, and for a
    folder the channels and (unless training resized too) the size of its images as stored."""
    problems = []
    trained = info.get("classes")
    if trained and list(ds.classes) != list(trained):
        def brief(names):
            names = list(names)
            return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        problems.append(f"its classes are {brief(ds.classes)}, the model's {brief(trained)}")
    native = _native(ds)
    if native is not None:
        c, h, w = native
        if c != shape[0] and shape[0] == 1:
            problems.append("its images are colour, the model takes grey ones (1 channel)")
        resized = (info.get("recipe") or {}).get("size")
        if not resized and (h, w) != tuple(shape[1:]):
            problems.append(f"its images are {h}×{w}, the model takes {shape[1]}×{shape[2]} (trained without resizing)")
    return problems


def _confusion_table(cm, classes) -> str:
    labels = [c[:8] for c in classes]
    cell = max(max(len(str(v)) for row in cm for v in row), max(len(s) for s in labels)) + 1
    head = " " * (max(len(s) for s in labels) + 2)
    lines = ["confusion matrix (rows: true, columns: predicted):", head + "".join(f"{s:>{cell}}" for s in labels)]
    for s, row in zip(labels, cm):
        lines.append(f"{s:>{len(head) - 2}}  " + "".join(f"{v:>{cell}}" for v in row))
    return "\n".join(lines)
