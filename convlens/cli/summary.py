"""``convlens summary``: layer by layer output shapes and parameter counts of a model."""

from __future__ import annotations

import json
from pathlib import Path

from convlens.cli import CLIError


def register(sub, parent) -> None:
    p = sub.add_parser(
        "summary", parents=[parent], help="layer table of a model, spec or checkpoint",
        description="Print each layer's output shape and parameter count (the course's arithmetic: "
                    "W2 = (W1 - F + 2P)/S + 1, and F·F·C_in·K + K parameters per conv layer).",
    )
    p.add_argument("target", metavar="MODEL_OR_SPEC_OR_CKPT",
                   help="a zoo model name, a spec file (.toml/.json), a run directory or a .safetensors checkpoint")
    p.add_argument("--input-shape", metavar="C,H,W", help="input shape (default: the model's or spec's own)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def _is_checkpoint(path: Path) -> bool:
    if path.is_dir() or path.suffix in (".safetensors", ".onnx"):  # .onnx: imported (issue 17)
        return True
    if path.suffix == ".json":
        try:
            return json.loads(path.read_text()).get("format") == "convlens-checkpoint"
        except (OSError, ValueError, AttributeError):
            return False
    return False


def resolve(target: str, input_shape=None):
    """``(model, input_shape, zoo_name or None)`` for a zoo name, spec file or checkpoint."""
    from convlens import models
    from convlens.cli._common import load_model, zoo_key

    key = zoo_key(target)
    if key is not None:
        shape = tuple(input_shape) if input_shape else tuple(models.default_input_shape(key))
        try:
            return models.get_model(key, input_shape=shape), shape, key
        except ValueError as e:
            raise CLIError(f"model {key} cannot be built for input shape {shape}: {e}") from None
    path = Path(target).expanduser()
    if not path.exists():
        raise CLIError(f"{target}: not a zoo model ({', '.join(models.list_models())}), and no such file or folder")
    if _is_checkpoint(path):
        model, info = load_model(path)
        return model, tuple(input_shape or info["input_shape"]), None
    spec = models.load_spec(path)
    shape = tuple(input_shape) if input_shape else (tuple(spec["input_shape"]) if isinstance(spec, dict)
                                                    and spec.get("input_shape") else None)
    if shape is None:
        raise CLIError(f"{path}: the spec has no input_shape; pass --input-shape C,H,W")
    return models.from_spec(path, input_shape=shape), shape, None


def run(args) -> int:
    from convlens.cli._common import parse_shape, print_json
    from convlens.summary import summary, summary_rows

    shape = parse_shape(args.input_shape) if args.input_shape else None
    model, shape, key = resolve(args.target, shape)
    if args.json:
        rows = summary_rows(model, shape)
        if key is not None:
            from convlens import models

            rows = dict(rows, model=key, default_recipe=models.default_recipe(key))
        print_json(rows)
        return 0
    print(summary(model, shape))
    if key is not None:
        from convlens.train.recipe import Recipe

        print(f"\ndefault recipe (convlens train --model {key}):")
        print(Recipe.for_model(key).describe())
    return 0
