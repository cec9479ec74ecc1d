from __future__ import annotations

import io
import os
import tarfile

import numpy as np
import pytest
from PIL import Image

from convlens.data import DataError, ImageFolder, extract_tar, load
from convlens.data import folder as folder_mod


def _write_images(root, classes=("cat", "dog"), n=3, size=(12, 10), seed=0):
    """PNG (lossless, checked exactly) and JPEG files; returns {relpath: HxWx3 array}."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for ci, cls in enumerate(classes):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            a = rng.integers(0, 256, (size[0], size[1], 3), dtype=np.uint8)
            ext = "png" if i % 2 == 0 else "jpg"
            Image.fromarray(a).save(root / cls / f"{i:03d}.{ext}")
            arrays[f"{cls}/{i:03d}.{ext}"] = (a, ci)
    (root / "cat" / "notes.txt").write_text("ignored: not an image extension")
    return arrays


def test_png_and_jpeg(tmp_path):
    arrays = _write_images(tmp_path / "imgs")
    ds = ImageFolder(tmp_path / "imgs")
    assert ds.classes == ["cat", "dog"] and len(ds) == 6
    assert ds.images.shape == (6, 3, 12, 10) and ds.images.dtype == np.uint8 and ds.labels.dtype == np.int64
    assert ds.files[0] == "cat/000.png" and ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    for k, rel in enumerate(ds.files):
        a, label = arrays[rel]
        assert ds.labels[k] == label
        if rel.endswith(".png"):
            np.testing.assert_array_equal(ds.images[k], a.transpose(2, 0, 1))
        else:  # JPEG is lossy, but of the same picture
            assert np.abs(ds.images[k].astype(int) - a.transpose(2, 0, 1)).mean() < 60


def test_resize_and_grayscale(tmp_path):
    _write_images(tmp_path / "imgs")
    ds = ImageFolder(tmp_path / "imgs", size=8, grayscale=True)
    assert ds.images.shape == (6, 1, 8, 8)
    ds = ImageFolder(tmp_path / "imgs", size=(5, 7))
    assert ds.images.shape == (6, 3, 5, 7)


def test_second_load_uses_cache_and_is_faster(tmp_path, monkeypatch, _cache):
    _write_images(tmp_path / "imgs", n=40, size=(32, 32))
    a = ImageFolder(tmp_path / "imgs")
    assert not any(p.suffix == ".npy" for p in (tmp_path / "imgs").rglob("*"))  # never beside the data
    assert list((_cache / "imagefolder").glob("*.npy"))

    def boom(*a, **k):
        raise AssertionError("decoded again although the cache is valid")

    monkeypatch.setattr(ImageFolder, "_decode", boom)
    b = ImageFolder(tmp_path / "imgs")  # the monkeypatched decode proves the cache was used (no timing)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    # a changed file (new mtime) invalidates the key
    p = tmp_path / "imgs" / "dog" / "000.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(p)
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="decoded again"):
        ImageFolder(tmp_path / "imgs")


def test_bad_file_error_or_skip(tmp_path):
    _write_images(tmp_path / "imgs")
    (tmp_path / "imgs" / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(DataError, match=r"1 of 7 image files cannot be used: dog/broken.jpg \(not a readable image"):
        ImageFolder(tmp_path / "imgs")
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable file\(s\), e.g. dog/broken.jpg"):
        ds = ImageFolder(tmp_path / "imgs", skip_bad=True)
    assert len(ds) == 6 and "dog/broken.jpg" not in ds.files
    with pytest.warns(UserWarning, match="skipped 1"):  # the cached load still reports it
        assert len(ImageFolder(tmp_path / "imgs", skip_bad=True)) == 6


def test_truncated_image(tmp_path):
    _write_images(tmp_path / "imgs")
    p = tmp_path / "imgs" / "cat" / "000.png"
    p.write_bytes(p.read_bytes()[:60])
    with pytest.raises(DataError, match=r"cat/000.png \(not a readable image"):
        ImageFolder(tmp_path / "imgs")


def test_mixed_sizes_need_size(tmp_path):
    _write_images(tmp_path / "imgs")
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "imgs" / "dog" / "big.png")
    with pytest.raises(DataError, match=r"dog/big.png \(image is 20x20 \(HxW\), expected 12x10.*size="):
        ImageFolder(tmp_path / "imgs")
    assert ImageFolder(tmp_path / "imgs", size=12).images.shape == (7, 3, 12, 12)


def test_empty_folder_and_empty_class(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: expected one sub-folder per class, found none"):
        ImageFolder(tmp_path / "empty")
    _write_images(tmp_path / "imgs")
    (tmp_path / "imgs" / "zebra").mkdir()
    (tmp_path / "imgs" / "zebra" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match=r"zebra: class folder has no images"):
        ImageFolder(tmp_path / "imgs")
    with pytest.raises(DataError, match=r"no such folder"):
        ImageFolder(tmp_path / "nope")


def _make_tar(path, root, arcroot="ds"):
    with tarfile.open(path, "w:gz") as tf:
        tf.add(root, arcname=arcroot)


def test_load_folder_and_tar_with_train_test(tmp_path, _cache):
    _write_images(tmp_path / "ds" / "train", n=4)
    _write_images(tmp_path / "ds" / "test", n=2, seed=1)
    assert len(load(str(tmp_path / "ds"))) == 8
    assert len(load(str(tmp_path / "ds"), train=False)) == 4
    _make_tar(tmp_path / "ds.tar.gz", tmp_path / "ds")
    os.chmod(tmp_path / "ds.tar.gz", 0o444)
    tr = load(str(tmp_path / "ds.tar.gz"))
    te = load(str(tmp_path / "ds.tar.gz"), train=False)
    assert len(tr) == 8 and len(te) == 4 and tr.classes == ["cat", "dog"]
    assert tr.root.is_relative_to(_cache / "extracted")
    extracted = [p for p in (_cache / "extracted").iterdir()]
    assert len(extracted) == 1 and not extracted[0].name.startswith(".")  # no temp folder left


def _tar_with(path, name, kind="file"):
    with tarfile.open(path, "w:gz") as tf:
        ok = tarfile.TarInfo("ds/a/ok.txt")
        ok.size = 2
        tf.addfile(ok, io.BytesIO(b"ok"))
        info = tarfile.TarInfo(name)
        if kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tf.addfile(info)
        else:
            info.size = 4
            tf.addfile(info, io.BytesIO(b"evil"))


@pytest.mark.parametrize("name,kind,msg", [
    ("/tmp/evil.txt", "file", "absolute path"),
    ("ds/../../evil.txt", "file", r"'\.\.'"),
    ("ds/a/link", "symlink", "link or special file"),
])
def test_unsafe_tar_rejected(tmp_path, _cache, name, kind, msg):
    _tar_with(tmp_path / "bad.tar.gz", name, kind)
    with pytest.raises(DataError, match=msg):
        extract_tar(tmp_path / "bad.tar.gz")
    assert not any((_cache / "extracted").iterdir())  # nothing half-extracted left
    assert not (tmp_path / "evil.txt").exists()


def test_truncated_tar(tmp_path, _cache):
    _write_images(tmp_path / "ds", n=4)
    _make_tar(tmp_path / "ds.tar.gz", tmp_path / "ds")
    raw = (tmp_path / "ds.tar.gz").read_bytes()
    (tmp_path / "ds.tar.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"ds.tar.gz: not a readable tar archive or truncated"):
        extract_tar(tmp_path / "ds.tar.gz")
    assert not any((_cache / "extracted").iterdir())


def test_extensions_constant():
    assert set(folder_mod.IMAGE_EXTENSIONS) >= {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
