"""Measure convlens.data load and loader speed (a measurement script, not a test).

    python benchmarks/data_bench.py [--data ../shared/data] [--cache DIR] [--repeat 3]

Paths are relative to the repository root. Uses a fresh cache directory (a temporary one unless
--cache is given) so that "first load" really is cold for convlens's caches; the OS page cache is not
dropped, so the source files are probably warm in memory (as they would be on a second run).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def timed(fn, repeat=1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--cache", default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-cifar", action="store_true")
    args = ap.parse_args()
    data = REPO / args.data
    tmp = None
    if args.cache is None:
        tmp = tempfile.TemporaryDirectory(prefix="convlens-bench-")
        args.cache = tmp.name
    os.environ["CONVLENS_DATA"] = args.cache

    from convlens.data import DataLoader, extract_tar, load
    from convlens.data import transforms as T

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}")
    # --- MNIST
    t_first, _ = timed(lambda: load("mnist", root=data / "mnist"))
    t_cached, ds = timed(lambda: load("mnist", root=data / "mnist"), args.repeat)
    t_test, _ = timed(lambda: load("mnist", root=data / "mnist", train=False), args.repeat)
    print(f"MNIST train (60,000): first load (gunzip + parse + write .npy cache) {t_first:.3f} s, "
          f"cached {t_cached:.3f} s; test (10,000) cached {t_test:.3f} s")
    t_mini, _ = timed(lambda: load("mnist-mini"), args.repeat)
    print(f"mnist-mini train (10,000): {t_mini:.3f} s (cached)")
    t_ep, _ = timed(lambda: sum(1 for _ in DataLoader(ds, 128, shuffle=True, seed=0, prefetch=False)),
                    args.repeat)
    print(f"MNIST epoch of batches, batch 128, shuffle, no transform: {t_ep:.3f} s")
    if args.skip_cifar:
        return
    # --- CIFAR-10 JPEG copy as ImageFolder
    tar = data / "cifar10-jpeg.tar.gz"
    t_x, root = timed(lambda: extract_tar(tar, progress=False))
    print(f"CIFAR-10 (JPEG copy) tar.gz extraction into the cache: {t_x:.2f} s (once)")
    t1, train = timed(lambda: load(str(root), train=True, progress=False))
    t2, train = timed(lambda: load(str(root), train=True), args.repeat)
    print(f"CIFAR-10 (JPEG copy) ImageFolder train (50,000): first load (decode {os.cpu_count()} threads "
          f"+ cache) {t1:.2f} s, second load {t2:.3f} s, speed-up {t1 / t2:.0f}x; classes {train.classes}")
    t3, _ = timed(lambda: load(str(tar), train=False), args.repeat)
    print(f"CIFAR-10 (JPEG copy) load(tar.gz, train=False) with extraction and decode cached: {t3:.3f} s")
    aug = T.Compose([T.RandomHorizontalFlip(), T.RandomShift(2)])
    for prefetch in (False, True):
        loader = DataLoader(train, 128, shuffle=True, seed=0, transform=aug, prefetch=prefetch)
        t, _ = timed(lambda loader=loader: sum(1 for _ in loader), args.repeat)
        print(f"CIFAR-10 epoch of batches (391 x 128), shuffle + flip + shift, prefetch={prefetch}: "
              f"{t:.3f} s ({t / len(loader) * 1e3:.2f} ms/batch)")
    x = np.random.default_rng(0).random((128, 3, 32, 32), dtype=np.float32)
    rng = np.random.default_rng(0)
    for t_ in (T.RandomHorizontalFlip(), T.RandomShift(2), T.RandomCrop(32, 4)):
        tt, _ = timed(lambda t_=t_: [t_(x, rng) for _ in range(100)], args.repeat)
        print(f"  {t_!r} on (128, 3, 32, 32): {tt * 10:.3f} ms/batch")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
