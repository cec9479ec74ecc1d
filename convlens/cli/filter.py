"""``convlens filter``: apply a hand-designed kernel to an image, as in the course."""

from __future__ import annotations

from pathlib import Path

from convlens.cli import CLIError


def register(sub, parent) -> None:
    from convlens.filters import KERNELS

    p = sub.add_parser(
        "filter", parents=[parent], help="apply a hand-designed kernel (Sobel, blur, ...) to an image",
        description="Convolve an image (as grayscale) with a hand-designed kernel through F.conv2d and write "
                    "the feature map and its ReLU as PNG images. The output size follows "
                    "W2 = (W1 - F + 2P)/S + 1.",
    )
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--kernel", required=True, metavar="|".join(KERNELS) + "|FILE",
                   help="a named kernel, or a text/CSV/JSON file of numbers (one row per line)")
    p.add_argument("--padding", type=int, default=0, metavar="P", help="pixels added on each side (default 0)")
    p.add_argument("--padding-mode", choices=("zeros", "replicate"), default="zeros")
    p.add_argument("--stride", type=int, default=1, metavar="S", help="step between windows (default 1)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for input.png, feature_map.png, relu.png")
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np
    from PIL import Image

    from convlens.cli._common import open_image
    from convlens.filters import apply_kernel, get_kernel, output_size_formula
    from convlens.visualize import to_uint8

    if args.padding < 0:
        raise CLIError(f"--padding must be >= 0, got {args.padding}")
    if args.stride < 1:
        raise CLIError(f"--stride must be >= 1, got {args.stride}")
    kernel = get_kernel(args.kernel)
    gray = np.asarray(open_image(args.image).convert("L"), dtype=np.float32) / np.float32(255)
    h, w = gray.shape
    fh, fw = kernel.shape
    if h + 2 * args.padding < fh or w + 2 * args.padding < fw:
        raise CLIError(f"the {fh}×{fw} kernel is larger than the padded {h}×{w} image (padding {args.padding})")
    fmap = apply_kernel(gray, kernel, stride=args.stride, padding=args.padding, padding_mode=args.padding_mode)
    relu = np.maximum(fmap, 0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.rint(gray * 255).astype(np.uint8)).save(out / "input.png")
    # the raw map is signed: zero is mid-grey, dark negative, bright positive
    Image.fromarray(to_uint8(fmap, symmetric=True)).save(out / "feature_map.png")
    Image.fromarray(to_uint8(relu)).save(out / "relu.png")
    name = args.kernel if Path(args.kernel).suffix == "" else Path(args.kernel).name
    print(f"kernel {name} ({fh}×{fw}):")
    for row in kernel:
        print("  " + " ".join(f"{v:7.3g}" for v in row))
    print(f"output height H2 = {output_size_formula(h, fh, args.padding, args.stride)}")
    print(f"output width  W2 = {output_size_formula(w, fw, args.padding, args.stride)}")
    print(f"feature map {fmap.shape[0]}×{fmap.shape[1]}, values {fmap.min():.3g} .. {fmap.max():.3g}; "
          f"{(relu > 0).mean():.1%} positive after ReLU")
    print(f"wrote {out / 'input.png'}, {out / 'feature_map.png'}, {out / 'relu.png'}")
    return 0
