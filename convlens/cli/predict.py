"""``convlens predict``: the top-k classes of one or more images."""

from __future__ import annotations

from convlens.cli import CLIError


def register(sub, parent) -> None:
    p = sub.add_parser(
        "predict", parents=[parent], help="classify image files with a checkpoint",
        description="Classify images. Each is converted, resized and normalised the way the model was trained; "
                    "for a digit model (1×28×28, classes 0-9) a photo or drawing of a digit is prepared the "
                    "MNIST way (white on black, fitted into 20×20, centred by mass).",
    )
    p.add_argument("checkpoint", metavar="CKPT", help="a run directory (best, else last) or a .safetensors file")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    p.add_argument("--top-k", type=int, default=3, metavar="K", help="how many classes to show (default 3)")
    p.add_argument("--prepare", choices=("auto", "digit", "resize"), default="auto",
                   help="digit: MNIST-style digit preparation; resize: convert and resize; auto: digit for "
                        "digit models (default)")
    p.add_argument("--json", action="store_true", help="print one JSON list on stdout")
    p.add_argument("--out", metavar="PNG", help="segmentation / detection models: write the image with the mask "
                   "overlay or the boxes (class and score) drawn on it")
    p.add_argument("--score-threshold", type=float, default=0.3, metavar="X",
                   help="detection models: the lowest score of a box shown (default 0.3)")
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np

    from convlens.autograd import no_grad
    from convlens.cli._common import load_model, open_image, prepare_image, print_json
    from convlens.nn import functional as F
    from convlens.tensor import Tensor

    if args.top_k < 1:
        raise CLIError(f"--top-k must be >= 1, got {args.top_k}")
    images = [open_image(p) for p in args.images]  # every file checked before the model loads
    model, info = load_model(args.checkpoint)
    if getattr(model, "task", "classify") != "classify":  # boxes or masks, at the image's own size
        from convlens.cli._dense import predict_dense

        return predict_dense(args, model, info)
    if getattr(args, "out", None):
        raise CLIError(f"--out draws boxes or masks, but {info['checkpoint']} is a classifier")
    shape = tuple(info["input_shape"])
    classes = list(info.get("classes") or [])
    prepared = [prepare_image(im, shape, info, args.prepare) for im in images]
    x = np.concatenate([xp for xp, _ in prepared])
    # a uniform image (black, white, one colour, 1×1...) has nothing to classify: flagged, as the web app does
    blank = [bool((px == px[:, :1, :1]).all()) for _, px in prepared]
    with no_grad():
        probs = F.softmax(model(Tensor._wrap(x)), dim=1)._data
    if not classes:
        classes = [str(i) for i in range(probs.shape[1])]
    k = min(args.top_k, probs.shape[1])
    results = []
    for path, p, empty in zip(args.images, probs, blank):
        order = np.argsort(-p, kind="stable")[:k]
        results.append({"image": str(path), "blank": empty, "top": [
            {"class": classes[i], "index": int(i), "probability": float(p[i])} for i in order]})
    if args.json:
        print_json(results)
    else:
        for r in results:
            top = ", ".join(f"{t['class']} ({t['probability']:.1%})" for t in r["top"])
            if r["blank"]:
                print(f"{r['image']}: blank image (every pixel the same after preparation): no prediction; "
                      f"the model's meaningless output would be {top}")
            else:
                print(f"{r['image']}: {top}")
    return 0
