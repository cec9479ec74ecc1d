"""``convlens convert``: a PyTorch state_dict saved with safetensors (or an ONNX model) → a convlens
checkpoint that train --resume, eval, predict, inspect and serve take."""

from __future__ import annotations

from pathlib import Path

from convlens.cli import CLIError


def register(sub, parent) -> None:
    p = sub.add_parser(
        "convert", parents=[parent], help="turn PyTorch safetensors weights or an ONNX file into a checkpoint",
        description="Read a PyTorch state_dict saved with safetensors.torch.save_file (never a pickle) into "
                    "the model --model names, whose state_dict keys must be the torch model's, or import an "
                    ".onnx file; write a convlens checkpoint (OUT/best.safetensors + .json).",
    )
    p.add_argument("weights", metavar="FILE", help="a .safetensors state_dict or an .onnx model")
    p.add_argument("--model", metavar="NAME|SPEC",
                   help="zoo model name or spec file the weights belong to (not needed for .onnx)")
    p.add_argument("--input-shape", metavar="C,H,W", help="input shape (default: the model's own)")
    p.add_argument("--num-classes", type=int, metavar="K", help="outputs of a zoo model (default: its own)")
    p.add_argument("--classes", metavar="A,B,...", help="class names, in output order")
    p.add_argument("--mean", metavar="M,...", help="per-channel normalisation mean the weights were trained with")
    p.add_argument("--std", metavar="S,...", help="per-channel normalisation std")
    p.add_argument("-o", "--out", required=True, metavar="RUN_DIR", help="folder for the checkpoint")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def _floats(text, option):
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise CLIError(f"{option}: expected numbers like 0.5,0.5,0.5, got {text!r}") from None


def run(args) -> int:
    from convlens import models
    from convlens.checkpoint import save_checkpoint
    from convlens.cli._common import parse_shape, print_json, zoo_key

    src = Path(args.weights)
    shape = parse_shape(args.input_shape) if args.input_shape else None
    info: dict = {}
    if src.suffix.lower() == ".onnx":
        from convlens.onnx import load_with_info

        model, info = load_with_info(src, shape)
        shape = tuple(info["input_shape"])
        architecture = None
    else:
        from convlens.torch_weights import load_torch_weights

        if args.model is None:
            raise CLIError("--model is needed: which zoo model or spec the weights belong to (their keys "
                           "must be its state_dict keys)")
        key = zoo_key(args.model)
        if key is not None:
            shape = shape or tuple(models.default_input_shape(key))
            kwargs = {"input_shape": list(shape)}
            if args.num_classes:
                kwargs["num_classes"] = int(args.num_classes)
            model = models.get_model(key, **kwargs)
            architecture = {"name": key, "kwargs": kwargs}
        else:
            spec_path = Path(args.model)
            if not spec_path.is_file():
                raise CLIError(f"--model {args.model!r}: not a zoo model ({', '.join(models.list_models())}) "
                               "and no such spec file")
            spec = models.load_spec(spec_path)
            shape = shape or (tuple(spec["input_shape"]) if spec.get("input_shape") else None)
            if shape is None:
                raise CLIError(f"{spec_path}: the spec has no input_shape; pass --input-shape C,H,W")
            model = models.from_spec(spec, input_shape=shape)
            architecture = {"spec": models.to_spec(model, shape)}
        load_torch_weights(model, src)
    model.eval()
    if args.classes:
        info["classes"] = [c.strip() for c in args.classes.split(",")]
    for key in ("mean", "std"):
        value = _floats(getattr(args, key), f"--{key}")
        if value is not None:
            info[key] = value
    meta = {k: info[k] for k in ("classes", "mean", "std") if info.get(k) is not None}
    out = save_checkpoint(Path(args.out) / "best", model, input_shape=list(shape), architecture=architecture,
                          converted_from=str(src), **meta)
    if args.json:
        print_json({"checkpoint": str(out), "input_shape": list(shape), "keys": len(model.state_dict())})
    else:
        print(f"wrote {out} ({len(model.state_dict())} tensors, input shape {'×'.join(map(str, shape))})")
    return 0
