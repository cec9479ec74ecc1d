"""Ship a trained ConvNetJS CIFAR-10 run as the package's CIFAR-10 checkpoint for the web app.

    python -m convlens train --model convnetjs-cifar10 --dataset ../shared/data/cifar10-jpeg.tar.gz \\
        --epochs 16 --val-split 0 --out runs/convnetjs-web
    python scripts/ship_cifar10_checkpoint.py runs/convnetjs-web

Takes the run's final weights (``last.*``; the run has no validation split, so no ``best.*``), measures
them on the 10,000 test images of the CIFAR-10 JPEG copy, and writes
``convlens/assets/convnetjs-cifar10/best.safetensors`` + ``best.json`` (weights and metadata only, no
optimizer state) in the same format as ``convlens/assets/lenet5-mnist-mini``, and its README.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "convlens" / "assets" / "convnetjs-cifar10"
_RUN_KEYS = ("loader", "rng_state", "progress", "kind", "batch", "data_dir", "optimizer", "scheduler",
             "format", "format_version", "token", "safetensors_file", "safetensors_size", "model_class",
             "convlens_version")


def main(argv=None) -> int:
    from convlens import data
    from convlens.checkpoint import load_checkpoint, save_checkpoint
    from convlens.cli._common import load_dataset
    from convlens.data import transforms as T
    from convlens.train import evaluate

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"))
    args = p.parse_args(argv)
    run = Path(args.run_dir)
    model, meta = load_checkpoint(run / "last.safetensors")
    test = load_dataset(args.data, None, train=False, input_shape=tuple(meta["input_shape"]))
    report = evaluate(model, data.DataLoader(test, 256, transform=T.Normalize(meta["mean"], meta["std"])))
    info = {k: v for k, v in meta.items() if k not in _RUN_KEYS and k not in ("checkpoint", "optimizer_state",
                                                                            "scheduler_state")}
    history = json.loads((run / "history.json").read_text())
    minutes = sum(h["seconds"] for h in history) / 60
    info.update(dataset="cifar10", data_note="CIFAR-10 JPEG copy (cifar10-jpeg.tar.gz): JPEG changes the pixels slightly",
                test_accuracy=report["accuracy"], test_loss=report["loss"],
                test_set="CIFAR-10 test, JPEG copy (10,000 images)", train_minutes=round(minutes, 1))
    OUT.mkdir(parents=True, exist_ok=True)
    save_checkpoint(OUT / "best", model, **info)
    size = sum((OUT / f"best.{ext}").stat().st_size for ext in ("safetensors", "json"))
    per_class = ", ".join(f"{c}: {a:.1%}" for c, a in zip(meta["classes"], report["per_class_accuracy"]))
    r = meta["recipe"]
    (OUT / "README.md").write_text(README.format(
        test=report["accuracy"], loss=report["loss"], per_class=per_class, epochs=meta["epoch"], minutes=minutes,
        kb=size / 1024, seed=r["seed"], batch=r["batch_size"], wd=r["weight_decay"],
        params=sum(int(q.numel()) for q in model.parameters())))
    print(f"test accuracy {report['accuracy']:.2%} (CIFAR-10 JPEG copy); wrote {OUT} ({size / 1024:.0f} KB)")
    return 0


README = """\
# convnetjs-cifar10 — a small trained CIFAR-10 checkpoint for the web app

The ConvNetJS CIFAR-10 demo's network (`convlens.models.convnetjs_cifar10()`, {params:,} parameters:
three conv 5×5 + ReLU + max-pool stages of 16, 20, 20 filters and one linear layer), trained on the
CIFAR-10 **JPEG copy**, so that the Explain and Train pages can show a trained CIFAR-10 net with no training.

- **Accuracy:** **{test:.2%}** on the 10,000 test images of the CIFAR-10 JPEG copy (loss {loss:.4f}).
  Per class: {per_class}. (The zoo recipe's full hour reaches 75.28 %; this is a shorter run.)
- **Recipe:** the zoo's `convnetjs-cifar10` recipe (Adadelta lr 1 with a cosine decay over the run, L2
  weight decay {wd:g}, batch {batch}, random flips and 2-pixel shifts, per-channel normalisation with the
  training images' mean and std, stored in `best.json`) for {epochs} epochs on all 50,000 training images
  (no validation split), seed {seed}: {minutes:.0f} minutes on a shared, loaded 2-vCPU machine.
- **Files:** `best.safetensors` (weights) + `best.json` (metadata: architecture, classes, input shape,
  normalisation, recipe, accuracy), {kb:.0f} KB in all; no optimizer state. Same format as
  `../lenet5-mnist-mini`: `convlens.checkpoint.load_checkpoint(path)` rebuilds the model.
- **Made by:** `python scripts/ship_cifar10_checkpoint.py RUN_DIR` on the run described in that script.
- **License:** CIFAR-10 (Krizhevsky, 2009) is distributed for research use; these weights are derived from it.
"""

if __name__ == "__main__":
    raise SystemExit(main())
