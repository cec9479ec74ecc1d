"""The PyTorch-style programs of tests/programs at full size, on convlens and on torch (a long run, not a
test): the MNIST example on all of MNIST, the CIFAR-10 tutorial on all of CIFAR-10.

    python benchmarks/torch_programs_full.py [--data ../shared/data] [--programs mnist cifar]
                                             [--frameworks convlens torch] [--epochs 14] [--limit N]

MNIST's IDX files are copied into torchvision's layout (``WORK/data/MNIST/raw/``). The shared CIFAR-10
is a JPEG copy (lossy: its pixels differ slightly from the official files), so it is decoded once and
written out in the official *binary* format (``WORK/work/data/cifar-10-batches-bin/``) — report the
accuracy as "CIFAR-10 (JPEG copy)". Each program runs with only its import lines rewritten for convlens
(tests/programs/program_runner.py) and as written on torch, with tests/programs/torchvision_for_torch.py
standing in for torchvision. ``--limit N`` keeps N training images (to check that the script works).
Prints each run's last accuracy line and wall time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
PROGRAMS = REPO / "tests" / "programs"


def _mnist(data: Path, root: Path, limit: int | None) -> None:
    from convlens.data.datasets import find_idx_files, read_idx_pair
    from convlens.data.idx import write_idx

    raw = root / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for train, prefix in ((True, "train"), (False, "t10k")):
        found = find_idx_files(data / "mnist", "mnist", train)
        if limit is None:
            for src in found:
                shutil.copy(src, raw / src.name)
            continue
        images, labels = read_idx_pair(*found)  # MNIST's files are not sorted by class
        n = limit if train else max(limit // 5, 100)
        write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", images[:n])
        write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", labels[:n].astype(np.uint8))


def _cifar(data: Path, root: Path, limit: int | None) -> None:
    from convlens.data import load

    out = root / "work" / "data" / "cifar-10-batches-bin"
    out.mkdir(parents=True, exist_ok=True)
    tar = data / "cifar10-jpeg.tar.gz"
    for train, names in ((True, [f"data_batch_{i}.bin" for i in range(1, 6)]), (False, ["test_batch.bin"])):
        ds = load(str(tar), train=train)  # extracted and decoded once into convlens's cache
        n = len(ds) if limit is None else min(len(ds), limit if train else max(limit // 5, 100))
        # ImageFolder lists the images class by class: a limited run takes a random subset instead
        keep = np.arange(n) if limit is None else np.sort(np.random.default_rng(0).permutation(len(ds))[:n])
        for part, name in zip(np.array_split(keep, len(names)), names):
            rec = np.concatenate([ds.labels[part, None].astype(np.uint8), ds.images[part].reshape(len(part), -1)], 1)
            rec.tofile(out / name)
        # the class folders sort as CIFAR-10's official order (airplane, automobile, ..., truck)
        (out / "batches.meta.txt").write_text("\n".join(ds.classes) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--programs", nargs="+", default=["mnist", "cifar"], choices=["mnist", "cifar"])
    ap.add_argument("--frameworks", nargs="+", default=["convlens", "torch"], choices=["convlens", "torch"])
    ap.add_argument("--epochs", type=int, default=14, help="the MNIST example's --epochs")
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    sys.path.insert(0, str(PROGRAMS))  # the runner and the torch side's torchvision stand-in
    from program_runner import run

    data = (REPO / args.data).resolve()
    jobs = {
        "mnist": ("mnist_main.py", _mnist, ["--epochs", str(args.epochs), "--log-interval", "100"],
                  r"Test set: .*Accuracy: .*"),
        "cifar": ("cifar10_tutorial.py", _cifar, [], r"Accuracy of the network .*"),
    }
    for key in args.programs:
        program, prepare, argv, pattern = jobs[key]
        root = Path(tempfile.mkdtemp(prefix=f"{key}-"))
        (root / "work").mkdir()
        t = time.perf_counter()
        prepare(data, root, args.limit)
        print(f"# {program}: data ready in {time.perf_counter() - t:.1f} s ({root})", flush=True)
        for framework in args.frameworks:
            t = time.perf_counter()
            out = run(PROGRAMS / program, framework, root / "work", argv)
            lines = re.findall(pattern, out)
            print(f"{program} on {framework}: {lines[-1] if lines else 'no accuracy line'} "
                  f"({time.perf_counter() - t:.0f} s, load average {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
