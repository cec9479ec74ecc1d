"""The parsers that take outside bytes, each as ``target(data: bytes)`` that may raise only the project's
named errors (shared by tests/test_fuzz_parsers.py and scripts/fuzz.py)."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from convlens.checkpoint import CheckpointError, read_checkpoint
from convlens.data.cifar import RECORD, read_cifar_batch
from convlens.data.errors import DataError
from convlens.data.idx import parse_idx, read_idx
from convlens.models.spec import SpecError, load_spec, plan_spec

NAMED = (DataError, SpecError, CheckpointError)
# in memory where there is a tmpfs: the fuzz writes one small file per input
_TMP = Path(tempfile.mkdtemp(prefix="convlens-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))


def idx(data: bytes) -> None:
    parse_idx(data, "fuzz.idx")


def idx_gzip(data: bytes) -> None:
    path = _TMP / f"f{os.getpid()}.idx.gz"
    path.write_bytes(gzip.compress(data, mtime=0) if data[:1] != b"\x1f" else data)
    read_idx(path)


def cifar(data: bytes) -> None:
    path = _TMP / f"f{os.getpid()}.bin"
    # mostly whole records (the interesting case), sometimes the raw bytes
    body = data * (RECORD // max(1, len(data)) + 1) if data[:1] == b"\x00" else data
    path.write_bytes(body[: RECORD * (len(body) // RECORD)] if data[:1] == b"\x01" else body)
    read_cifar_batch(path)


def spec_text(data: bytes) -> None:
    """The bytes as a .json file when they start like JSON, else as a .toml file."""
    suffix = ".json" if data.lstrip()[:1] in (b"{", b"[") else ".toml"
    path = _TMP / f"f{os.getpid()}{suffix}"
    path.write_bytes(data)
    plan_spec(load_spec(path), (1, 8, 8))


def _weights() -> bytes:
    from safetensors.numpy import save

    return save({"model.w": np.zeros(3, np.float32)}, metadata={"format": "convlens-checkpoint", "token": "t"})


WEIGHTS = _weights()  # the safetensors half when the JSON half is fuzzed


def spec_object(obj) -> None:
    plan_spec(obj, (1, 8, 8))


def checkpoint(data: bytes, meta_first: bool = False) -> None:
    """A checkpoint pair whose safetensors file (or JSON) is the fuzz input, the other one plausible."""
    folder = _TMP / f"ck{os.getpid()}"
    folder.mkdir(exist_ok=True)
    st, js = folder / "last.safetensors", folder / "last.json"
    if meta_first:
        st.write_bytes(WEIGHTS)
        js.write_bytes(data)
    else:
        st.write_bytes(data)
        js.write_text(json.dumps({"format": "convlens-checkpoint", "format_version": 1, "token": "t",
                                  "safetensors_size": len(data)}))
    read_checkpoint(folder / "last")


def image_folder(data: bytes) -> None:
    """A two-class folder: one good PNG per class plus the input as a third file (an image of any
    bytes), loaded as is, resized, and with skip_bad."""
    import io

    from PIL import Image

    from convlens.data.folder import ImageFolder

    root = _TMP / f"folder{os.getpid()}"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        Image.new("RGB", (5, 6), (10, 20, 30)).save(buf, "PNG")  # the seeds' size
        (root / cls / "good.png").write_bytes(buf.getvalue())
    import warnings

    (root / "b" / "input.png").write_bytes(data)
    refused = None
    for kwargs in ({}, {"size": 4}, {"size": 4, "skip_bad": True, "grayscale": True}):
        try:
            with warnings.catch_warnings():  # "skipped 1 unreadable file", Pillow's decompression-bomb note
                warnings.simplefilter("ignore")
                ImageFolder(root, cache=False, workers=1, progress=False, **kwargs)
        except DataError as e:
            refused = e
    if refused is not None:
        raise refused


def archive(data: bytes) -> None:
    """A .tar.gz of any bytes extracted (safely) into a throw-away cache."""
    import shutil

    from convlens.data.archive import extract_tar

    path = _TMP / f"a{os.getpid()}.tar.gz"
    path.write_bytes(data)
    cache = _TMP / f"cache{os.getpid()}"
    old = os.environ.get("CONVLENS_DATA")
    os.environ["CONVLENS_DATA"] = str(cache)
    try:
        extract_tar(path, progress=False)
    finally:
        if old is None:
            os.environ.pop("CONVLENS_DATA", None)
        else:
            os.environ["CONVLENS_DATA"] = old
        shutil.rmtree(cache, ignore_errors=True)
