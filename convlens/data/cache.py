"""Cache directory and atomic writes.

Every cache (decoded arrays, extracted archives, downloads) lives under ``$CONVLENS_DATA`` or
``~/.cache/convlens``, never beside the data, which may be read-only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["cache_dir", "file_key", "atomic_save_npy", "load_npy", "atomic_write"]


def cache_dir(*parts: str, create: bool = True) -> Path:
    """``$CONVLENS_DATA`` (if set) or ``~/.cache/convlens``, joined with ``parts``."""
    base = os.environ.get("CONVLENS_DATA")
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "convlens"
    path = root.joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def file_key(*items) -> str:
    """A short hex key from JSON-serialisable items (paths, sizes, mtimes, options)."""
    blob = json.dumps(items, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def stat_key(path: Path) -> list:
    """Identity of a file for caching: resolved path, size and mtime in ns (a rewrite changes one)."""
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


@contextlib.contextmanager
def atomic_write(dest: Path, mode: str = "wb"):
    """Open a temp file beside ``dest``; on success ``os.replace`` it into place, on error delete it.

    ``os.replace`` is atomic on one file system, so readers see the old file or the whole new one.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_save_npy(dest: Path, array: np.ndarray) -> None:
    with atomic_write(dest) as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)


def load_npy(path: Path) -> np.ndarray | None:
    """Load a cached array, or None if it is missing or unreadable (a cache miss, not an error)."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
