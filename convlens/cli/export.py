"""``convlens export``: a run, checkpoint, zoo model or spec as ONNX or as PyTorch safetensors weights."""

from __future__ import annotations

from pathlib import Path

from convlens.cli import CLIError


def register(sub, parent) -> None:
    p = sub.add_parser(
        "export", parents=[parent], help="write a model as ONNX or as PyTorch safetensors weights",
        description="Export a run directory, checkpoint, zoo model, spec or .onnx file. --format onnx writes "
                    "an ONNX model (opset 17, dynamic batch axis) that onnxruntime runs with convlens's "
                    "outputs; --format safetensors writes the state_dict for torch's load_state_dict.",
    )
    p.add_argument("target", metavar="RUN_OR_MODEL",
                   help="a run directory, .safetensors checkpoint, .onnx file, zoo model name or spec file")
    p.add_argument("--format", choices=("onnx", "safetensors"), default="onnx")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write")
    p.add_argument("--input-shape", metavar="C,H,W", help="input shape (default: the model's own)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def resolve_any(target: str, input_shape=None):
    """``(model, input_shape, info)`` for a zoo name, spec, checkpoint/run directory or .onnx file."""
    from convlens.cli.summary import _is_checkpoint, resolve

    path = Path(target).expanduser()
    if path.suffix.lower() == ".onnx":
        from convlens.onnx import load_with_info

        model, info = load_with_info(path, input_shape)
        return model, tuple(info["input_shape"]), info
    if path.exists() and _is_checkpoint(path):
        from convlens.cli._common import load_model

        model, info = load_model(path)
        return model, tuple(input_shape or info["input_shape"]), info
    model, shape, _ = resolve(target, input_shape)
    return model, tuple(shape), {}


def run(args) -> int:
    from convlens.cli._common import parse_shape, print_json

    shape = parse_shape(args.input_shape) if args.input_shape else None
    model, shape, info = resolve_any(args.target, shape)
    model.eval()
    out = Path(args.output)
    if args.format == "onnx":
        from convlens.onnx import export

        if out.suffix.lower() != ".onnx":
            raise CLIError(f"{out}: an ONNX file should end in .onnx")
        meta = {k: info[k] for k in ("classes", "mean", "std", "dataset") if info.get(k) is not None}
        proto = export(model, shape, out, metadata=meta)
        summary = {"output": str(out), "format": "onnx", "opset": proto.opset_import[0].version,
                   "input_shape": list(shape), "nodes": len(proto.graph.node), "bytes": out.stat().st_size}
    else:
        from convlens.torch_weights import save_torch_weights

        if out.suffix.lower() != ".safetensors":
            raise CLIError(f"{out}: a safetensors file should end in .safetensors")
        save_torch_weights(model, out)
        summary = {"output": str(out), "format": "safetensors", "keys": len(model.state_dict()),
                   "bytes": out.stat().st_size}
    if args.json:
        print_json(summary)
    else:
        print(f"wrote {out} ({args.format}, {summary['bytes']:,} bytes, input shape {'×'.join(map(str, shape))})")
    return 0
