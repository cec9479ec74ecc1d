"""``convlens inspect``: every layer's feature maps for one image, and the first layer's kernels."""

from __future__ import annotations

from pathlib import Path


def register(sub, parent) -> None:
    p = sub.add_parser(
        "inspect", parents=[parent], help="save every layer's feature maps for an image as PNG grids",
        description="Run one image through a checkpoint's model, capture each layer's output with forward "
                    "hooks and save it as a grid of feature maps (one tile per channel), plus the first "
                    "convolution layer's kernels.",
    )
    p.add_argument("checkpoint", metavar="CKPT", help="a run directory (best, else last) or a .safetensors file")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the PNG files")
    p.add_argument("--prepare", choices=("auto", "digit", "resize"), default="auto",
                   help="how the image is made into the model's input (see convlens predict --help)")
    p.set_defaults(func=run)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "model"


def capture(model, x):
    """``(output, [(name, module, output array)])`` for every leaf module, in call order."""
    from convlens.autograd import no_grad
    from convlens.tensor import Tensor

    leaves = [(n, m) for n, m in model.named_modules() if n and not any(True for _ in m.children())]
    captured, handles = [], []
    for name, module in leaves:
        def hook(mod, inputs, output, name=name):
            captured.append((name, mod, getattr(output, "_data", output)))

        handles.append(module.register_forward_hook(hook))
    try:
        with no_grad():
            out = model(Tensor._wrap(x))
    finally:
        for h in handles:
            h.remove()
    return out, captured


def run(args) -> int:
    import numpy as np
    from PIL import Image

    from convlens.cli._common import load_model, open_image, prepare_image
    from convlens.nn import functional as F
    from convlens.visualize import feature_map_grid, kernel_grid

    image = open_image(args.image)
    model, info = load_model(args.checkpoint)
    x, pixels = prepare_image(image, tuple(info["input_shape"]), info, args.prepare)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    shown = pixels[0] if pixels.shape[0] == 1 else np.moveaxis(pixels, 0, -1)
    Image.fromarray(shown).save(out_dir / "input.png")
    written.append("input.png")

    logits, captured = capture(model, x)
    for i, (name, module, a) in enumerate(captured, 1):
        a = np.asarray(a)
        maps = a[0] if a.ndim >= 2 else a
        file = f"{i:02d}-{_safe(name)}.png"
        feature_map_grid(maps).save(out_dir / file)
        written.append(file)
        print(f"{name:<16} {type(module).__name__:<14} {'×'.join(map(str, maps.shape)):<12} -> {file}")
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if weight is not None and np.asarray(weight._data).ndim == 4:
            file = f"kernels-{_safe(name)}.png"
            kernel_grid(weight._data).save(out_dir / file)
            written.append(file)
            print(f"kernels of {name} ({'×'.join(map(str, weight._data.shape))}) -> {file}")
            break
    probs = F.softmax(logits, dim=1)._data[0]
    classes = info.get("classes") or [str(i) for i in range(probs.shape[0])]
    top = np.argsort(-probs, kind="stable")[:3]
    print("prediction: " + ", ".join(f"{classes[j]} ({probs[j]:.1%})" for j in top))
    print(f"wrote {len(written)} images to {out_dir}")
    return 0
