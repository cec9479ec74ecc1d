"""Segmentation and detection results: train `unet-small` / `centernet-small` from scratch with their
default recipes (`convlens train --model NAME`, the embedded mnist-scenes-mini), then measure on held-out
test scenes (test digits only): the embedded set's test split, mnist-scenes' test split (2,000 scenes of
MNIST's 10,000 test digits, when ../shared/data/mnist is there) and larger 96×128 scenes with up to 8
digits (fully convolutional: the nets never saw that size). Writes runs/results/dense_<model>.json.

    python scripts/results/dense.py unet-small          # or centernet-small, or both (the default)
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(os.environ.get("RESULTS", ROOT / "runs" / "results"))
DATA = Path(os.environ.get("CONVLENS_SHARED_DATA", ROOT.parent / "shared" / "data"))


def main(names: list[str]) -> None:
    from convlens.checkpoint import load_checkpoint
    from convlens.data.scenes import SceneConfig, load_scenes
    from convlens.train.tasks import evaluate_task

    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in names:
        run_dir = RESULTS / f"dense-{name}"
        load = os.getloadavg()
        if not (run_dir / "report.json").is_file():
            subprocess.run([sys.executable, "-m", "convlens", "train", "--model", name, "--out", str(run_dir), "--json"],
                           check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        report = json.loads((run_dir / "report.json").read_text())
        model, _ = load_checkpoint(run_dir)
        out = {"model": name, "recipe": f"default (convlens train --model {name})", "run_dir": str(run_dir),
               "train_seconds": report["train_seconds"], "epochs": report["epochs"],
               "history": report["history"], "test_mnist_scenes_mini": report["test"],
               "machine": f"{platform.machine()}, {os.cpu_count()} vCPUs, shared with other jobs",
               "load_average_at_start": [round(v, 2) for v in load],
               "load_average_at_end": [round(v, 2) for v in os.getloadavg()]}
        if (DATA / "mnist").is_dir():
            t = time.perf_counter()
            out["test_mnist_scenes"] = evaluate_task(model, load_scenes("mnist-scenes", DATA / "mnist", train=False))
            big = load_scenes("mnist-scenes", DATA / "mnist", train=False,
                              config=SceneConfig(num_scenes=500, size=(96, 128), max_objects=8, seed=7))
            out["test_large_96x128"] = evaluate_task(model, big)
            out["eval_seconds"] = round(time.perf_counter() - t, 1)
        (RESULTS / f"dense_{name}.json").write_text(json.dumps(out, indent=1))
        key = "mean_iou" if report["task"] == "segment" else "map_50"
        print(f"{name}: train {out['train_seconds'] / 60:.1f} min; " + ", ".join(
            f"{k} {out[k][key]:.4f}" for k in out if k.startswith("test_")) + f" ({key})")


if __name__ == "__main__":
    main(sys.argv[1:] or ["unet-small", "centernet-small"])
