"""Small data sets in torchvision's folder layouts, in the real file formats, for the programs.

- MNIST / FashionMNIST: real digits (convlens's embedded mnist-mini), written as gzipped IDX files to
  ``root/MNIST/raw/`` (``root/FashionMNIST/raw/``), as torchvision's download leaves them.
- CIFAR-10: CIFAR-10's binary batches in ``root/cifar-10-batches-bin/``, with synthetic 32x32 colour
  images whose class is a coloured bar (hue and orientation), on noise: learnable by LeNet in two
  epochs, not by a constant guess.
- an ImageFolder tree ``root/{train,val}/{ants,bees}/*.png`` of images of varying sizes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from convlens.data import mnist_mini
from convlens.data.idx import write_idx

PALETTE = np.array([[230, 30, 30], [30, 200, 30], [40, 60, 230], [230, 200, 20], [200, 30, 200]], np.float32)


def write_mnist(root: Path, n_train: int, n_test: int, folder: str = "MNIST") -> Path:
    raw = Path(root) / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, split, n in (("train", True, n_train), ("t10k", False, n_test)):
        ds = mnist_mini(train=split)
        write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", ds.images[:n, 0])
        write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", ds.labels[:n].astype(np.uint8))
    return raw


def cifar_like(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (n, 3, 32, 32), labels)``: class k = a bar of colour k % 5, horizontal for
    k < 5 and vertical otherwise, at a random position, on noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.normal(110, 20, (n, 3, 32, 32)).astype(np.float32)
    for i, k in enumerate(labels):
        a, w = rng.integers(3, 19), rng.integers(9, 13)
        colour = PALETTE[k % 5][:, None, None] * rng.uniform(0.8, 1.1)
        if k < 5:
            images[i, :, a : a + w, 3:29] = colour
        else:
            images[i, :, 3:29, a : a + w] = colour
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.uint8)


def write_cifar(root: Path, per_batch: int, n_test: int, seed: int = 0) -> Path:
    d = Path(root) / "cifar-10-batches-bin"
    d.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for j, name in enumerate(names):
        images, labels = cifar_like(n_test if name == "test_batch.bin" else per_batch, seed + j)
        (d / name).write_bytes(np.concatenate([labels[:, None], images.reshape(len(labels), -1)], axis=1).tobytes())
    (d / "batches.meta.txt").write_text("\n".join(
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]) + "\n")
    return d


def write_image_folder(root: Path, n_per_class: int, seed: int = 0) -> Path:
    """ants: horizontal stripes; bees: vertical; random colours and sizes (40..64 px)."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_per_class), ("val", max(n_per_class // 2, 4))):
        for c, name in enumerate(("ants", "bees")):
            folder = Path(root) / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                h, w = rng.integers(40, 65, 2)
                img = rng.normal(120, 30, (h, w, 3))
                period = rng.integers(6, 12)
                stripes = (np.arange(h if c == 0 else w) // (period // 2)) % 2 == 0
                colour = rng.uniform(150, 255, 3)
                if c == 0:
                    img[stripes] = colour
                else:
                    img[:, stripes] = colour
                Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"{name}_{i:03d}.png")
    return Path(root)


def write_annotated_images(root: Path, n_ants: int, n_bees: int, seed: int = 1) -> Path:
    """``root/images/*.png`` and ``root/labels.csv`` (file name, label), classes unbalanced."""
    tree = write_image_folder(Path(root) / "tree", max(n_ants, n_bees), seed)
    (Path(root) / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for label, (name, n) in enumerate((("ants", n_ants), ("bees", n_bees))):
        for src in sorted((tree / "train" / name).iterdir())[:n]:
            (Path(root) / "images" / src.name).write_bytes(src.read_bytes())
            rows.append(f"{src.name},{label}")
    (Path(root) / "labels.csv").write_text("\n".join(rows) + "\n")
    return Path(root)
