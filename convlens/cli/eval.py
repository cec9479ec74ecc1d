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
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    from convlens.cli._common import eval_transform, load_dataset, load_model, print_json
    from convlens.data import DataLoader
    from convlens.train import evaluate

    model, info = load_model(args.checkpoint)
    if getattr(model, "task", "classify") != "classify":  # segmentation / detection: the task's metrics
        from convlens.cli._dense import eval_dense

        return eval_dense(args, model, info)
    dataset = args.dataset or info.get("dataset")
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


def _confusion_table(cm, classes) -> str:
    labels = [c[:8] for c in classes]
    cell = max(max(len(str(v)) for row in cm for v in row), max(len(s) for s in labels)) + 1
    head = " " * (max(len(s) for s in labels) + 2)
    lines = ["confusion matrix (rows: true, columns: predicted):", head + "".join(f"{s:>{cell}}" for s in labels)]
    for s, row in zip(labels, cm):
        lines.append(f"{s:>{len(head) - 2}}  " + "".join(f"{v:>{cell}}" for v in row))
    return "\n".join(lines)
