"""Property-based tests of every parser that takes outside bytes: IDX (raw and gzip), CIFAR-10 binary
batches, layer specs (TOML/JSON text and parsed objects), checkpoints (safetensors + JSON), image folders
and tar archives. Any input must either parse or raise the project's named errors (DataError, SpecError,
CheckpointError: all ValueErrors with a message naming the file) — never anything else. Bounded here
(a few hundred examples each); scripts/fuzz.py runs the long version and docs/runs.md has its counts."""

from __future__ import annotations

import gzip
import io
import tarfile

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="the fuzz tests need hypothesis (pip install -e .[test])")
import fuzz_targets as F  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from convlens.data.cifar import RECORD  # noqa: E402
from convlens.data.idx import parse_idx, write_idx  # noqa: E402

FAST = settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def _named(call, *args) -> None:
    try:
        call(*args)
    except F.NAMED as e:
        assert str(e), "a named error without a message"


# ---- IDX -------------------------------------------------------------------------------------------------
idx_headers = st.builds(lambda code, rank, dims, body: bytes([0, 0, code, rank])
                        + b"".join(int(d).to_bytes(4, "big") for d in dims[:rank]) + body,
                        st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF]), st.integers(0, 5),
                        st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 6), max_size=5), st.binary(max_size=64))


@FAST
@given(st.binary(max_size=200) | idx_headers)
def test_idx_bytes(data):
    _named(F.idx, data)


@FAST
@given(st.binary(max_size=200) | idx_headers)
def test_idx_gzip_files(data):
    _named(F.idx_gzip, data)


@FAST
@given(dtype=st.sampled_from(["u1", "i1", ">i2", ">i4", ">f4", ">f8"]),
       shape=st.lists(st.integers(0, 4), min_size=0, max_size=3), seed=st.integers(0, 2**31))
def test_idx_round_trips(dtype, shape, seed, tmp_path_factory):
    a = np.random.default_rng(seed).integers(-100, 100, size=shape).astype(dtype)
    path = tmp_path_factory.mktemp("idx") / "a.idx"
    write_idx(path, a)
    b = parse_idx(path.read_bytes())
    assert b.shape == a.shape and b.dtype == a.dtype.newbyteorder("=") and np.array_equal(a, b)


# ---- CIFAR-10 binary -----------------------------------------------------------------------------------
@FAST
@given(st.binary(max_size=3 * RECORD))
def test_cifar_batches(data):
    _named(F.cifar, data)


# ---- layer specs ---------------------------------------------------------------------------------------
scalars = st.none() | st.booleans() | st.integers(-3, 40) | st.floats(allow_nan=True) | st.sampled_from(
    ["conv", "fc", "pool", "relu", "max", "avg", "same", "valid", "zeros", "replicate", "x", ""])
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.sampled_from(["type", "size", "units", "pad"]), inner, max_size=3),
                      max_leaves=10)
LAYER_KEYS = ["type", "name", "filters", "size", "stride", "pad", "units", "activation", "mode", "rate", "groups",
              "bias", "dilation", "padding_mode", "weights", "out", "kernel"]
layers = st.dictionaries(st.sampled_from(LAYER_KEYS), values, max_size=6) | values
specs = st.fixed_dictionaries({"layers": st.lists(layers, max_size=5)},
                              optional={"input_shape": values, "name": values, "extra": values})


@FAST
@given(specs | values)
def test_spec_objects(spec):
    _named(F.spec_object, spec)


@FAST
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_spec_files(data):
    _named(F.spec_text, data)


# ---- checkpoints ---------------------------------------------------------------------------------------
@FAST
@given(st.binary(max_size=300))
def test_checkpoint_safetensors_bytes(data):
    _named(F.checkpoint, data)


@FAST
@given(st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_checkpoint_json_bytes(data):
    _named(F.checkpoint, data, True)


# ---- image folders and archives ------------------------------------------------------------------------
@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(files=st.lists(st.binary(max_size=120), min_size=1, max_size=4), as_tar=st.booleans())
def test_image_folders_of_any_bytes(files, as_tar, tmp_path, monkeypatch):
    from convlens.data import load

    monkeypatch.setenv("CONVLENS_DATA", str(tmp_path / "cache"))
    root = tmp_path / f"ds{abs(hash(tuple(files))) % 10**9}"
    png = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (4, 4)).save(png, "PNG")
    for i, data in enumerate(files):
        d = root / ("a" if i % 2 else "b")
        d.mkdir(parents=True, exist_ok=True)
        # a real PNG's first bytes make Pillow parse further before it fails
        (d / f"{i}.png").write_bytes(png.getvalue()[: len(data)] + data if i % 3 == 0 else data)
    target = root
    if as_tar:
        target = tmp_path / f"{root.name}.tar.gz"
        with tarfile.open(target, "w:gz") as tf:
            tf.add(root, arcname=root.name)
    for kwargs in ({}, {"size": 4}, {"skip_bad": True, "size": 4}):
        _named(lambda kw=kwargs: load(str(target), **kw))


@FAST
@given(data=st.binary(max_size=400))
def test_archives_of_any_bytes(data, tmp_path_factory):
    from convlens.data.archive import extract_tar

    path = tmp_path_factory.mktemp("tar") / "x.tar.gz"
    path.write_bytes(gzip.compress(data) if data[:1] == b"\x00" else data)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVLENS_DATA", str(path.parent / "cache"))
        _named(extract_tar, path, False)
