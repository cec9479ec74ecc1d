"""Your own images: ``root/<class>/*.png|jpg|jpeg|bmp|gif|webp`` → one uint8 (N, C, H, W) array,
decoded once and cached on disk (``convlens.vision.datasets.ImageFolder`` is torchvision's lazy,
per-file version)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from .archive import extract_tar, is_archive
from .arrays import ArrayDataset
from .cache import atomic_save_npy, atomic_write, cache_dir, file_key, load_npy
from .errors import DataError

__all__ = ["ImageFolder", "extract_tar", "is_archive", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
_CHUNK = 256  # files per decode task: amortises the executor's per-task cost (~20 us) over many files


def _scan(root: Path) -> tuple[list[str], list[tuple[str, int]], list[tuple]]:
    """Class names (sorted sub-folders), (relative path, label) per image, and (name, size, mtime_ns).

    This is most of a cached load's time (one stat per file, ~5 us each here), so it is kept lean.
    """
    if not root.is_dir():
        raise DataError(f"{root}: expected a folder of class sub-folders, found no such folder")
    with os.scandir(root) as it:
        classes = sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise DataError(f"{root}: expected one sub-folder per class, found none (empty folder?)")
    items, stats = [], []
    for label, cls in enumerate(classes):
        found = []
        with os.scandir(root / cls) as it:
            for e in it:
                name = e.name
                if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."):
                    st = e.stat()
                    if stat.S_ISREG(st.st_mode):
                        found.append((f"{cls}/{name}", st.st_size, st.st_mtime_ns))
        if not found:
            raise DataError(
                f"{root / cls}: class folder has no images: expected files ending in {', '.join(IMAGE_EXTENSIONS)}"
            )
        found.sort()
        stats.extend(found)
        items.extend((rel, label) for rel, _, _ in found)
    return classes, items, stats


def _normalise_size(size) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        return (size, size)
    h, w = size
    return (int(h), int(w))


class ImageFolder(ArrayDataset):
    """Images in class sub-folders, decoded with Pillow (resized to ``size`` = int or (H, W), bilinear,
    if given; otherwise all images must share one size), RGB or ``grayscale``.

    The decoded arrays are cached under ``cache_dir('imagefolder')``, keyed by the folder, the options
    and every file's name, size and mtime, so a second load only scans the folder and reads two .npy
    files. An unreadable file raises DataError naming it, or with ``skip_bad=True`` is skipped and
    counted in a warning.
    """

    def __init__(self, root, size=None, grayscale: bool = False, skip_bad: bool = False,
                 cache: bool = True, workers: int | None = None, progress: bool | None = None):
        self.root = Path(root).expanduser()
        self.size = _normalise_size(size)
        self.grayscale = bool(grayscale)
        self._name = f"ImageFolder({self.root})"
        self.classes, items, stats = _scan(self.root)
        # one join + sha256 over 50,000 entries takes ~20 ms; json-encoding the list took ~90 ms
        listing = hashlib.sha256("\n".join(f"{r}\t{n}\t{m}" for r, n, m in stats).encode()).hexdigest()
        key = file_key(str(self.root.resolve()), self.size, self.grayscale, skip_bad, listing)
        try:
            folder = cache_dir("imagefolder") if cache else None
        except OSError as e:
            warnings.warn(f"ImageFolder: cache disabled, cannot create it ({e})", stacklevel=2)
            folder, cache = None, False
        loaded = self._load_cache(folder, key) if cache else None
        if loaded is None:
            images, labels, skipped = self._decode(items, skip_bad, workers, progress)
            if cache:
                self._save_cache(folder, key, images, labels, skipped)
        else:
            images, labels, skipped = loaded
        if skipped:
            warnings.warn(
                f"ImageFolder {self.root}: skipped {len(skipped)} unreadable file(s), e.g. {skipped[0]}",
                stacklevel=2,
            )
        self.images, self.labels, self.skipped = images, labels, skipped
        bad = set(skipped)
        self.files = [rel for rel, _ in items if rel not in bad]

    # ---- cache ------------------------------------------------------------------------------------
    @staticmethod
    def _load_cache(folder: Path, key: str):
        meta_path = folder / f"{key}.json"
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            return None
        images = load_npy(folder / f"{key}-images.npy")
        labels = load_npy(folder / f"{key}-labels.npy")
        if images is None or labels is None or len(images) != meta["n"] or len(labels) != meta["n"]:
            return None
        return images, labels, meta["skipped"]

    @staticmethod
    def _save_cache(folder: Path, key: str, images, labels, skipped) -> None:
        try:
            atomic_save_npy(folder / f"{key}-images.npy", images)
            atomic_save_npy(folder / f"{key}-labels.npy", labels)
            # the .json goes last: it marks the pair complete
            with atomic_write(folder / f"{key}.json", "w") as f:
                json.dump({"n": int(len(labels)), "skipped": skipped}, f)
        except OSError as e:
            warnings.warn(f"ImageFolder: could not write the cache in {folder} ({e})", stacklevel=3)

    # ---- decoding ---------------------------------------------------------------------------------
    def _open(self, rel: str):
        from PIL import Image

        path = self.root / rel
        try:
            with Image.open(path) as im:
                im = im.convert("L" if self.grayscale else "RGB")
                if self.size is not None and im.size != (self.size[1], self.size[0]):
                    im = im.resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
                return np.asarray(im)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            raise DataError(f"{path}: not a readable image ({type(e).__name__}: {e})") from e

    def _brief(self, rel: str, e: DataError) -> str:
        """``class/file.png (what is wrong)`` for the list of bad files: the message without its path."""
        text = str(e).replace(f"{self.root / rel}: ", "").replace(f" '{self.root / rel}'", "")
        return f"{rel} ({text})"

    def _decode(self, items, skip_bad, workers, progress):
        n = len(items)
        ok = np.ones(n, dtype=bool)
        skipped: list[str] = []
        errors: list[str] = []  # without skip_bad: every bad file is reported at the end, not just the first
        lock = threading.Lock()
        first = None
        for i, (rel, _) in enumerate(items):  # the first readable image fixes (H, W) when size is None
            try:
                first = self._open(rel)
                break
            except DataError as e:
                ok[i] = False
                skipped.append(rel)
                errors.append(self._brief(rel, e))
        if first is None:
            raise DataError(f"{self.root}: none of the {n} image files could be read"
                            + (f" (e.g. {errors[0]})" if errors else ""))
        h, w = first.shape[:2]
        c = 1 if self.grayscale else 3
        out = np.empty((n, c, h, w), dtype=np.uint8)

        def work(a: int, b: int) -> int:
            for i in range(a, b):
                if not ok[i]:
                    continue
                rel = items[i][0]
                try:
                    arr = self._open(rel)
                    if arr.shape[:2] != (h, w):
                        raise DataError(
                            f"{self.root / rel}: image is {arr.shape[0]}x{arr.shape[1]} (HxW), expected "
                            f"{h}x{w} like {items[0][0]}; pass size= to resize"
                        )
                except DataError as e:
                    ok[i] = False
                    with lock:
                        skipped.append(rel)
                        errors.append(self._brief(rel, e))
                    continue
                out[i] = arr[None] if c == 1 else arr.transpose(2, 0, 1)
            return b - a

        from tqdm import tqdm

        workers = workers or min(8, os.cpu_count() or 1)
        bar = tqdm(total=n, desc=f"decoding {self.root.name}", unit="img", file=sys.stderr,
                   disable=(None if progress is None else not progress), leave=False)
        # Pillow releases the GIL while decoding, so threads decode in parallel
        with ThreadPoolExecutor(workers) as ex:
            futures = [ex.submit(work, a, min(a + _CHUNK, n)) for a in range(0, n, _CHUNK)]
            try:
                for fut in as_completed(futures):
                    bar.update(fut.result())
            finally:
                for fut in futures:
                    fut.cancel()
                bar.close()
        labels = np.array([lab for _, lab in items], dtype=np.int64)
        if errors and not skip_bad:
            errors.sort()
            shown = "; ".join(errors[:20])
            more = f"; and {len(errors) - 20} more" if len(errors) > 20 else ""
            raise DataError(f"{self.root}: {len(errors)} of {n} image files cannot be used: {shown}{more} "
                            "(fix or remove them, or pass skip_bad=True to leave them out)")
        if not ok.all():
            out, labels = out[ok], labels[ok]
            if len(labels) == 0:
                raise DataError(f"{self.root}: none of the {n} image files could be read")
        skipped.sort()
        return out, labels, skipped
