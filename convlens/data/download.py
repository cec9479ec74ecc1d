"""Downloads for real users: the published files, MD5-checked, written atomically.

Tests never touch the network: they serve fixture files from 127.0.0.1 and pass ``base_url``.
``$CONVLENS_MIRROR`` (a base URL) also overrides the sources, e.g. for a local mirror.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .archive import extract_tar
from .cache import atomic_write, cache_dir
from .errors import DataError

__all__ = ["Source", "SOURCES", "fetch", "download_file"]


@dataclass(frozen=True)
class Source:
    """A published data set: mirrors tried in order, files with their MD5, archives to extract."""

    name: str
    mirrors: tuple[str, ...]
    files: tuple[tuple[str, str], ...]
    extract: bool = False
    hint: str = field(default="")


SOURCES: dict[str, Source] = {
    "mnist": Source(
        "mnist",
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        (
            ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
            ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
            ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
        ),
        hint="MNIST(root=FOLDER) with the four IDX files (gzipped or not) in FOLDER",
    ),
    "fashion-mnist": Source(
        "fashion-mnist",
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        (
            ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
            ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
            ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
        ),
        hint="FashionMNIST(root=FOLDER) with the four IDX files in FOLDER (Debian: dataset-fashion-mnist)",
    ),
    "cifar10": Source(
        "cifar10",
        ("https://www.cs.toronto.edu/~kriz/",),
        (("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530"),),
        extract=True,
        hint="CIFAR10(root=FOLDER) with FOLDER/cifar-10-batches-bin/ extracted from cifar-10-binary.tar.gz",
    ),
}


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download_file(url: str, dest: Path, md5: str | None = None, progress: bool | None = None,
                  timeout: float = 30.0) -> Path:
    """Fetch ``url`` to ``dest`` via a temp file; verify ``md5``; rename into place only if it matches.

    A short read (fewer bytes than Content-Length), a network error or a checksum mismatch raises
    DataError and leaves no file behind.
    """
    from tqdm import tqdm

    dest = Path(dest)
    h = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            total = resp.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            got = 0
            with atomic_write(dest) as f, tqdm(
                total=total, desc=dest.name, unit="B", unit_scale=True, file=sys.stderr,
                disable=(None if progress is None else not progress), leave=False,
            ) as bar:
                while True:
                    block = resp.read(1 << 16)
                    if not block:
                        break
                    f.write(block)
                    h.update(block)
                    got += len(block)
                    bar.update(len(block))
                if total is not None and got != total:
                    raise DataError(f"{url}: connection closed early: expected {total} bytes, received {got}")
                if md5 is not None and h.hexdigest() != md5:
                    raise DataError(f"{url}: MD5 mismatch: expected {md5}, found {h.hexdigest()} ({got} bytes)")
    except DataError:
        raise
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        # HTTPError's str has the status code; URLError's reason has the socket error
        reason = e if isinstance(e, urllib.error.HTTPError) else getattr(e, "reason", None) or e
        raise DataError(f"{url}: download failed ({reason})") from e
    return dest


def fetch(name: str, root=None, base_url: str | None = None, progress: bool | None = None,
          source: Source | None = None) -> Path:
    """Download data set ``name`` (mnist, fashion-mnist, cifar10) into ``root`` or
    ``cache_dir(name)`` and return that folder. Files already present with the right MD5 are kept.

    ``base_url`` (or ``$CONVLENS_MIRROR``) replaces the published mirrors. Used by
    ``convlens data fetch NAME``.
    """
    key = name.lower().replace("_", "-")
    key = {"cifar-10": "cifar10", "fashionmnist": "fashion-mnist"}.get(key, key)
    if source is None:
        if key not in SOURCES:
            raise DataError(f"cannot fetch {name!r}: expected one of {', '.join(SOURCES)}")
        source = SOURCES[key]
    folder = Path(root).expanduser() if root is not None else cache_dir(source.name)
    folder.mkdir(parents=True, exist_ok=True)
    base_url = base_url or os.environ.get("CONVLENS_MIRROR")
    mirrors = (base_url,) if base_url else source.mirrors
    for fname, md5 in source.files:
        dest = folder / fname
        if dest.is_file() and _md5(dest) == md5:
            continue
        errors = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + fname
            try:
                download_file(url, dest, md5, progress)
                break
            except DataError as e:
                errors.append(str(e))
        else:
            raise DataError(
                f"could not fetch {source.name} file {fname}:\n  " + "\n  ".join(errors)
                + f"\nIf you are offline, copy the files by other means and use {source.hint}."
            )
        if source.extract:
            _extract_into(dest, folder)
    return folder


def _extract_into(archive: Path, folder: Path) -> None:
    """Extract a verified archive beside itself (inside the cache), through the safe extractor."""
    import shutil

    tmp = extract_tar(archive, progress=False)
    for item in tmp.iterdir():
        target = folder / item.name
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        shutil.move(item, target)  # a rename within one file system, a copy across them
    shutil.rmtree(tmp, ignore_errors=True)
