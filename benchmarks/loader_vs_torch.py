"""One epoch of *loading* (no training) for two public PyTorch pipelines, convlens next to torch.utils.data
(a measurement script, not a test):

- the PyTorch examples' MNIST main.py: MNIST train (60,000), Compose([ToTensor(), Normalize((0.1307,),
  (0.3081,))]), batch 64, shuffle;
- the "Training a classifier" tutorial: CIFAR-10 train (50,000), Compose([ToTensor(), Normalize((0.5,)*3,
  (0.5,)*3)]), batch 4, shuffle, num_workers=2.

    python benchmarks/loader_vs_torch.py [--data ../shared/data] [--repeat 5] [--quick]

convlens rows: ``convlens.vision.datasets`` + ``convlens.utils.data.DataLoader`` — the batch fast path
(what these programs get) and, forced with a non-default collate_fn, the image-by-image path. torch
rows: torch's DataLoader over an equivalent map-style Dataset (PIL image per item, then ToTensor /
Normalize written in torch), since torchvision cannot be installed next to torch 2.13 here. MNIST is
read from ``--data``/mnist; CIFAR-10 is random bytes in the binary format (loading speed does not depend
on the pixels; the shared copy is a JPEG copy, not the binary version). Rows are interleaved and
repeated; each reports the median and range of the epoch times, with the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def _write_cifar(root: Path, per_batch: int) -> None:
    d = root / "cifar-10-batches-bin"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        rec = rng.integers(0, 256, (per_batch, 3073), dtype=np.uint8)
        rec[:, 0] %= 10
        rec.tofile(d / name)


def _torch_side():
    import torch
    from PIL import Image

    class ToTensor:
        def __call__(self, pic):
            a = np.array(pic, np.uint8, copy=True)
            a = a[:, :, None] if a.ndim == 2 else a
            return torch.from_numpy(a).permute(2, 0, 1).contiguous().to(torch.float32).div(255)

    class Normalize:
        def __init__(self, mean, std):
            self.mean, self.std = torch.tensor(mean).view(-1, 1, 1), torch.tensor(std).view(-1, 1, 1)

        def __call__(self, t):
            return t.sub(self.mean).div(self.std)

    class Images(torch.utils.data.Dataset):
        """torchvision's MNIST / CIFAR10 __getitem__: array → PIL image → transform, int target."""

        def __init__(self, data, targets, transforms):
            self.data, self.targets, self.transforms = data, targets, transforms

        def __len__(self):
            return len(self.data)

        def __getitem__(self, i):
            img = Image.fromarray(self.data[i])
            for t in self.transforms:
                img = t(img)
            return img, int(self.targets[i])

    return torch, ToTensor, Normalize, Images


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: check that the script works")
    args = ap.parse_args()
    os.environ.setdefault("CONVLENS_DATA", tempfile.mkdtemp(prefix="convlens-bench-"))

    from convlens.utils.data import DataLoader, default_collate
    from convlens.vision import datasets
    from convlens.vision import transforms as T

    per_item = lambda items: default_collate(items)  # noqa: E731 - any other collate_fn: no fast path
    mnist_tf = T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))])
    mnist = datasets.MNIST(REPO / args.data, train=True, transform=mnist_tf)
    tmp = Path(tempfile.mkdtemp(prefix="cifar-bin-"))
    _write_cifar(tmp, 200 if args.quick else 10000)
    cifar_tf = T.Compose([T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    cifar = datasets.CIFAR10(tmp, train=True, transform=cifar_tf)
    if args.quick:
        mnist.data, mnist.targets = mnist.data[:2000], mnist.targets[:2000]

    rows = {
        "MNIST b64 convlens fast path": lambda: DataLoader(mnist, batch_size=64, shuffle=True),
        "MNIST b64 convlens per image": lambda: DataLoader(mnist, batch_size=64, shuffle=True, collate_fn=per_item),
        "MNIST b64 convlens per image, 2 workers": lambda: DataLoader(mnist, batch_size=64, shuffle=True,
                                                                      collate_fn=per_item, num_workers=2),
        "CIFAR b4 w2 convlens fast path": lambda: DataLoader(cifar, batch_size=4, shuffle=True, num_workers=2),
        "CIFAR b4 w2 convlens per image": lambda: DataLoader(cifar, batch_size=4, shuffle=True, num_workers=2,
                                                             collate_fn=per_item),
        "CIFAR b4 w0 convlens fast path": lambda: DataLoader(cifar, batch_size=4, shuffle=True),
    }
    try:
        torch, ToTensor, Normalize, Images = _torch_side()
        torch.set_num_threads(1)
        tm = Images(mnist.data.numpy(), mnist.targets.numpy(), [ToTensor(), Normalize((0.1307,), (0.3081,))])
        tc = Images(cifar.data, cifar.targets, [ToTensor(), Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
        rows.update({
            "MNIST b64 torch": lambda: torch.utils.data.DataLoader(tm, batch_size=64, shuffle=True),
            "MNIST b64 torch, 1 worker": lambda: torch.utils.data.DataLoader(tm, batch_size=64, shuffle=True,
                                                                             num_workers=1),
            "CIFAR b4 w2 torch": lambda: torch.utils.data.DataLoader(tc, batch_size=4, shuffle=True, num_workers=2),
            "CIFAR b4 w0 torch": lambda: torch.utils.data.DataLoader(tc, batch_size=4, shuffle=True),
        })
    except ImportError:
        print("# torch not installed: convlens rows only", file=sys.stderr)

    times: dict[str, list[float]] = {k: [] for k in rows}
    loads = []
    for _ in range(args.repeat):  # interleaved: each round runs every row once
        for name, make in rows.items():
            loader = make()
            t = time.perf_counter()
            n = sum(1 for _ in loader)
            times[name].append(time.perf_counter() - t)
            assert n == len(loader)
        loads.append(os.getloadavg()[0])
    print(f"# {os.cpu_count()} cores, numpy {np.__version__}, MNIST n={len(mnist)}, CIFAR n={len(cifar)}, "
          f"repeats {args.repeat}, load average {min(loads):.1f}-{max(loads):.1f}")
    print(f"{'pipeline':44s} {'median s/epoch':>15s} {'range':>17s}")
    for name, ts in times.items():
        print(f"{name:44s} {statistics.median(ts):15.3f} {min(ts):8.3f}-{max(ts):.3f}")


if __name__ == "__main__":
    main()
