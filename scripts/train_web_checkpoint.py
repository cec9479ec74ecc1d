"""Train the checkpoint shipped for the web app: LeNet-5 on the embedded mnist-mini.

    python scripts/train_web_checkpoint.py [--epochs 8] [--seed 0]

Uses LeNet-5's default recipe (Adam, lr 2e-3, one-cycle, batch 64, random 2-pixel shifts, per-channel
normalisation, 10% of the training images held out for validation), keeps the epoch with the best
validation accuracy, measures it on mnist-mini's 2,000 test digits, and writes
``convlens/assets/lenet5-mnist-mini/best.safetensors`` + ``best.json`` (weights and metadata only: no
optimizer state, so the pair stays ~250 KB) and the README there with the accuracy.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "convlens" / "assets" / "lenet5-mnist-mini"


def main(argv=None) -> int:
    import convlens
    from convlens import data, models
    from convlens.checkpoint import load_checkpoint, save_checkpoint
    from convlens.data import transforms as T
    from convlens.train import Recipe, evaluate, fit

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's (8)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    recipe = Recipe.for_model("lenet5", epochs=args.epochs, seed=args.seed)
    full, test = data.load("mnist-mini", train=True), data.load("mnist-mini", train=False)
    train_ds, val_ds, mean, std = recipe.split_data(full)
    norm = T.Normalize(mean, std)
    convlens.manual_seed(recipe.seed)
    model = models.get_model("lenet5", input_shape=full.shape, num_classes=len(full.classes))
    train_loader = data.DataLoader(train_ds, recipe.batch_size, shuffle=True, seed=recipe.seed,
                                   transform=T.Compose(recipe.augmentation() + [norm]))
    val_loader = data.DataLoader(val_ds, 256, transform=norm)
    optimizer = recipe.make_optimizer(model.parameters())
    scheduler, interval = recipe.make_scheduler(optimizer, len(train_loader))
    info = {"model_name": "lenet5", "recipe": recipe.to_dict(), "dataset": "mnist-mini", "classes": full.classes,
            "input_shape": list(full.shape), "mean": mean, "std": std, "num_train": len(train_ds),
            "num_val": len(val_ds)}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = fit(model, train_loader, val_loader, optimizer=optimizer, epochs=recipe.epochs,
                     scheduler=scheduler, scheduler_interval=interval, run_dir=tmp, info=info, progress=True)
        load_checkpoint(Path(tmp) / "best.safetensors", model=model)
    seconds = time.perf_counter() - start
    report = evaluate(model, data.DataLoader(test, 256, transform=norm))
    best = result.history[result.best_epoch - 1]
    info.update(epoch=result.best_epoch, val_accuracy=best["val_accuracy"], test_accuracy=report["accuracy"],
                test_loss=report["loss"], test_set="mnist-mini test (2,000 digits)")
    OUT.mkdir(parents=True, exist_ok=True)
    save_checkpoint(OUT / "best", model, **info)
    size = sum((OUT / f"best.{ext}").stat().st_size for ext in ("safetensors", "json"))
    per_class = ", ".join(f"{c}: {a:.1%}" for c, a in zip(full.classes, report["per_class_accuracy"]))
    (OUT / "README.md").write_text(README.format(
        epochs=recipe.epochs, best_epoch=result.best_epoch, val=best["val_accuracy"], test=report["accuracy"],
        loss=report["loss"], per_class=per_class, seed=recipe.seed, minutes=seconds / 60, kb=size / 1024,
        params=sum(int(np.prod(p.shape)) for p in model.parameters())))
    print(f"test accuracy {report['accuracy']:.2%} (epoch {result.best_epoch}); wrote {OUT} ({size / 1024:.0f} KB)")
    return 0


README = """\
# lenet5-mnist-mini — the checkpoint the web app loads by default

LeNet-5 (`convlens.models.lenet5()`, {params:,} parameters, ReLU) trained on the embedded
`mnist-mini` data set, so that `convlens serve` shows a trained network with no download and no training.

- **Accuracy:** **{test:.2%}** on mnist-mini's 2,000 test digits (loss {loss:.4f}); validation
  accuracy {val:.2%} (epoch {best_epoch} of {epochs}, the best one). Per class: {per_class}.
  The test digits are a subset of MNIST's test set (±~0.5 % at 98 %).
- **Recipe:** LeNet-5's default (`convlens.models.default_recipe("lenet5")`): Adam, lr 2e-3 with a
  one-cycle schedule, batch 64, {epochs} epochs, random shifts of up to 2 pixels, inputs normalised
  with the training images' mean and std (stored in `best.json`), 10% of the 10,000 training digits
  held out for validation, seed {seed}. Trained on a CPU in {minutes:.1f} minutes.
- **Files:** `best.safetensors` (weights) + `best.json` (metadata: architecture, classes, input shape,
  normalisation, recipe, accuracies), {kb:.0f} KB in all; no optimizer state.
- **Made by:** `python scripts/train_web_checkpoint.py` (deterministic for a given seed and machine).
- **License:** the data is MNIST (CC BY-SA 3.0, see `../mnist-mini/README.md`); these weights are
  distributed under the same license.
"""

if __name__ == "__main__":
    raise SystemExit(main())
