"""Safe extraction of ``.tar[.gz|.bz2|.xz]`` archives into the cache (absolute paths, ``..``, links and
device files are refused; extraction goes to a temporary folder renamed into place when complete)."""

from __future__ import annotations

import lzma
import os
import shutil
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath

from .cache import cache_dir, file_key, stat_key
from .errors import DataError

__all__ = ["extract_tar", "is_archive", "extracted_path"]


def is_archive(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"))


def _check_member(archive: Path, m: tarfile.TarInfo) -> None:
    p = PurePosixPath(m.name)
    if m.name.startswith(("/", "\\")) or p.is_absolute() or (len(m.name) > 1 and m.name[1] == ":"):
        raise DataError(f"{archive}: refusing member {m.name!r}: absolute path (expected a relative path)")
    if ".." in p.parts:
        raise DataError(f"{archive}: refusing member {m.name!r}: '..' would escape the extraction folder")
    if not (m.isfile() or m.isdir()):
        raise DataError(f"{archive}: refusing member {m.name!r}: expected files and folders only, found a link "
                        "or special file")


def extracted_path(archive) -> Path:
    """Where `extract_tar` puts (or has put) ``archive``: keyed by its path, size and mtime."""
    archive = Path(archive).expanduser()
    return cache_dir("extracted", create=False) / f"{archive.name.split('.')[0]}-{file_key(stat_key(archive))}"


def extract_tar(archive, progress: bool | None = None) -> Path:
    """Extract ``archive`` into ``cache_dir('extracted', KEY)`` (key: path, size, mtime) and return it.

    Members with absolute paths, '..', links or device nodes are rejected. Extraction goes to a
    temporary folder that is renamed into place when complete, so an interrupted run leaves nothing
    that a later call would mistake for a finished extraction.
    """
    archive = Path(archive).expanduser()
    try:
        key = file_key(stat_key(archive))
    except OSError as e:
        raise DataError(f"{archive}: cannot read ({e})") from e
    try:
        parent = cache_dir("extracted")
    except OSError as e:
        raise DataError(f"{archive}: cannot create the extraction cache ({e}); set $CONVLENS_DATA") from e
    dest = parent / f"{archive.name.split('.')[0]}-{key}"
    if dest.is_dir():
        return dest
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=parent))
    from tqdm import tqdm

    bar = tqdm(desc=f"extracting {archive.name}", unit="file", file=sys.stderr,
               disable=(None if progress is None else not progress), leave=False)
    try:
        # stream mode ('r|*') reads the archive once, front to back; random access would re-decompress.
        # Members are written by hand (only regular files and folders pass _check_member, with no '..'
        # and no absolute path, so every write stays inside tmp): 5-7x faster than TarFile.extract with
        # the 'data' filter, which resolves real paths and sets modes and times per member.
        with tarfile.open(archive, "r|*") as tf:
            for m in tf:
                _check_member(archive, m)
                target = tmp.joinpath(*PurePosixPath(m.name).parts)
                if m.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tf.extractfile(m)
                with open(target, "wb") as f:
                    shutil.copyfileobj(src, f)
                bar.update()
        try:
            os.replace(tmp, dest)
        except OSError:
            if not dest.is_dir():  # another process finished first otherwise
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except DataError:  # a refused member (_check_member)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError, TypeError, zlib.error, lzma.LZMAError) as e:
        # tarfile and its decompressors raise all of these on damaged input (a TypeError from a
        # truncated gzip header, a ValueError from a corrupt size field)
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(f"{archive}: not a readable tar archive or truncated ({type(e).__name__}: {e})") from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        bar.close()
    return dest
