"""CIFAR-10 binary version, parsed from the published layout.

``cifar-10-batches-bin/data_batch_{1..5}.bin`` and ``test_batch.bin``: 10,000 records each of
1 label byte + 3,072 pixel bytes (1,024 red, then green, then blue, each 32x32 row-major), so one
record is channel-major and the whole file reshapes to (N, 3073) without copying.
``batches.meta.txt`` has the class names, one per line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DataError

__all__ = ["read_cifar_batch", "read_cifar_meta", "RECORD", "TRAIN_FILES", "TEST_FILES", "CLASSES"]

RECORD = 1 + 3 * 32 * 32
TRAIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)]
TEST_FILES = ["test_batch.bin"]
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def read_cifar_batch(path: str | Path, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images uint8 (N, 3, 32, 32), labels int64 (N,))`` from one binary batch file."""
    path = Path(path)
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e})") from e
    n, rest = divmod(raw.size, RECORD)
    if rest or n == 0:
        raise DataError(
            f"{path}: size {raw.size} bytes is not a positive multiple of the {RECORD}-byte record "
            f"(1 label + 3072 pixels); truncated or not a CIFAR-10 binary batch (record {n} is incomplete "
            f"at byte offset {n * RECORD})"
        )
    rec = raw.reshape(n, RECORD)
    labels = rec[:, 0].astype(np.int64)
    bad = np.flatnonzero(labels >= num_classes)
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{path}: record {i} (byte offset {i * RECORD}) has label {labels[i]}: expected 0..{num_classes - 1}"
        )
    images = np.ascontiguousarray(rec[:, 1:]).reshape(n, 3, 32, 32)
    return images, labels


def read_cifar_meta(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.exists():
        return list(CLASSES)
    names = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    names = [n for n in names if n]
    if not names:
        raise DataError(f"{path}: expected class names, one per line; found none")
    return names
