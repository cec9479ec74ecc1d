"""Make the embedded default data set convlens/assets/mnist-mini from the full MNIST.

    python scripts/make_mnist_mini.py [--src ../shared/data/mnist] [--seed 20240601]

Draws N_TRAIN training and N_TEST test digits, class-stratified (each class in proportion to its
share of the full split, largest-remainder rounding), uniformly at random with the stated seed, keeps
them in their original order, and writes gzipped IDX files with the published names.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from convlens.data.idx import read_idx, write_idx

REPO = Path(__file__).resolve().parent.parent
N_TRAIN, N_TEST, SEED = 10_000, 2_000, 20240601


def stratified(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    counts = np.bincount(labels, minlength=10)
    exact = counts * n / counts.sum()
    take = np.floor(exact).astype(int)
    take[np.argsort(-(exact - take), kind="stable")[: n - take.sum()]] += 1  # largest remainders
    picks = [rng.choice(np.flatnonzero(labels == c), size=k, replace=False) for c, k in enumerate(take)]
    return np.sort(np.concatenate(picks))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", default="../shared/data/mnist", help="folder of the MNIST IDX files, relative "
                    "to the repository root unless absolute")
    ap.add_argument("--out", default="convlens/assets/mnist-mini")
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()
    src, out = REPO / args.src, REPO / args.out
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    for prefix, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        images = read_idx(src / f"{prefix}-images-idx3-ubyte.gz", rank=3)
        labels = read_idx(src / f"{prefix}-labels-idx1-ubyte.gz", rank=1)
        keep = stratified(labels, n, rng)
        write_idx(out / f"{prefix}-images-idx3-ubyte.gz", images[keep])
        write_idx(out / f"{prefix}-labels-idx1-ubyte.gz", labels[keep])
        print(prefix, n, "per class:", np.bincount(labels[keep], minlength=10).tolist())
    for f in sorted(out.glob("*.gz")):
        print(f.name, f.stat().st_size, hashlib.sha256(f.read_bytes()).hexdigest()[:16])


if __name__ == "__main__":
    main()
