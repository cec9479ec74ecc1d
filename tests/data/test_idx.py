from __future__ import annotations

import gzip
import os

import numpy as np
import pytest

from convlens.data import DataError
from convlens.data.idx import load_idx, parse_idx, read_idx, write_idx


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
def test_roundtrip_raw_and_gzip(tmp_path, dtype, name):
    a = (np.arange(2 * 3 * 5) - 7).astype(dtype).reshape(2, 3, 5)
    write_idx(tmp_path / name, a)
    raw = (tmp_path / name).read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == name.endswith(".gz")
    b = read_idx(tmp_path / name, rank=3)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative and b.flags.writeable
    np.testing.assert_array_equal(a, b)


def test_header_layout_is_the_published_one():
    a = np.arange(6, dtype=np.uint8).reshape(2, 3)
    buf = bytes([0, 0, 0x08, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + a.tobytes()
    np.testing.assert_array_equal(parse_idx(buf), a)
    i16 = bytes([0, 0, 0x0B, 1, 0, 0, 0, 2]) + b"\x01\x02\xff\xfe"  # big-endian 0x0102, -2
    np.testing.assert_array_equal(parse_idx(i16), [258, -2])


def _idx(a):
    return bytes([0, 0, 0x08, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape) + a.tobytes()


def test_wrong_magic_names_file_and_offset(tmp_path):
    p = tmp_path / "x-idx3-ubyte"
    p.write_bytes(b"\x12\x34\x08\x03" + bytes(100))
    with pytest.raises(DataError, match=r"x-idx3-ubyte.*wrong magic number 0x12340803 at byte offset 0"):
        read_idx(p)


def test_unknown_type_code_and_wrong_rank():
    with pytest.raises(DataError, match=r"type code 0x07 at byte offset 2"):
        parse_idx(bytes([0, 0, 7, 1, 0, 0, 0, 1, 5]), "f")
    with pytest.raises(DataError, match=r"wrong rank at byte offset 3: expected 3, found 1"):
        parse_idx(_idx(np.zeros(4, np.uint8)), "f", rank=3)


def test_truncated_header_and_data(tmp_path):
    full = _idx(np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(DataError, match=r"truncated at byte offset 2"):
        parse_idx(full[:2], "f")
    with pytest.raises(DataError, match=r"truncated at byte offset 10: expected 3 dimensions ending at byte 16"):
        parse_idx(full[:10], "f")
    p = tmp_path / "t-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(full[:-5]))
    with pytest.raises(DataError, match=r"t-idx3-ubyte.gz: truncated at byte offset 59: .*need 64 bytes, found 59"):
        read_idx(p)


def test_trailing_bytes_rejected():
    with pytest.raises(DataError, match=r"2 unexpected trailing bytes from byte offset 12"):
        parse_idx(_idx(np.zeros(4, np.uint8)) + b"xx", "f")


def test_corrupt_and_truncated_gzip(tmp_path):
    data = gzip.compress(_idx(np.arange(200, dtype=np.uint8)))
    p = tmp_path / "c.gz"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"c.gz: gzip stream is corrupt or truncated"):
        read_idx(p)
    p.write_bytes(data[:10] + bytes(len(data) - 10))
    with pytest.raises(DataError, match=r"c.gz: gzip"):
        read_idx(p)
    with pytest.raises(DataError, match=r"not found"):
        read_idx(tmp_path / "missing")


def test_load_idx_caches_decompressed_npy_keyed_by_mtime(tmp_path, _cache):
    p = tmp_path / "d-idx1-ubyte.gz"
    write_idx(p, np.arange(10, dtype=np.uint8))
    a = load_idx(p)
    cached = list((_cache / "idx").glob("*.npy"))
    assert len(cached) == 1 and not list(tmp_path.glob("*.npy"))  # never beside the data
    np.testing.assert_array_equal(np.load(cached[0], allow_pickle=False), a)
    np.testing.assert_array_equal(load_idx(p), a)
    write_idx(p, np.arange(10, 20, dtype=np.uint8))
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    np.testing.assert_array_equal(load_idx(p), np.arange(10, 20))
    assert len(list((_cache / "idx").glob("*.npy"))) == 2
    assert not list((_cache / "idx").glob("*.part"))


def test_unusable_cache_dir_only_costs_speed(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("CONVLENS_DATA", str(blocker / "sub"))
    p = tmp_path / "e-idx1-ubyte.gz"
    write_idx(p, np.arange(5, dtype=np.uint8))
    np.testing.assert_array_equal(load_idx(p), np.arange(5))
