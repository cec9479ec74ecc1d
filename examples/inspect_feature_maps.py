"""Look inside a trained network: every layer's feature maps for one digit, and the first layer's kernels.

    python examples/inspect_feature_maps.py RUN_DIR [--out maps/]

RUN_DIR is a `convlens train` run (e.g. from examples/train_lenet5.py). The feature maps are captured
with forward hooks, exactly as `convlens inspect` and the web app do.
"""

import argparse
from pathlib import Path

import numpy as np

import convlens
from convlens.data import mnist_mini
from convlens.data.transforms import Normalize
from convlens.visualize import feature_map_grid, kernel_grid

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("run_dir")
parser.add_argument("--out", default="maps")
args = parser.parse_args()

model, info = convlens.load_checkpoint(args.run_dir)
image, label = mnist_mini(train=False)[7]
x = image[None].astype(np.float32) / 255
if info.get("mean") is not None:
    x = Normalize(info["mean"], info["std"])(x)

maps = {}
handles = [module.register_forward_hook(lambda m, inp, out, name=name: maps.__setitem__(name, out[0].detach().numpy()))
           for name, module in model.named_modules() if name and not list(module.children())]
with convlens.no_grad():
    logits = model(convlens.tensor(x))
for h in handles:
    h.remove()

out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
for i, (name, fmap) in enumerate(maps.items(), 1):
    feature_map_grid(fmap).save(out / f"{i:02d}-{name}.png")
    print(f"{name:<12} {fmap.shape}")
first_conv = next(m for _, m in model.named_modules() if getattr(m, "weight", None) is not None
                  and m.weight.ndim == 4)
kernel_grid(first_conv.weight.detach().numpy()).save(out / "kernels.png")
print(f"true label {label}, predicted {int(logits.argmax())}; images in {out}/")
