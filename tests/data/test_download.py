"""The downloader against a local HTTP server on 127.0.0.1 (never the network)."""

from __future__ import annotations

import hashlib
import io
import tarfile

import numpy as np
import pytest

from convlens.data import CIFAR10, MNIST, DataError, fetch
from convlens.data import download as dl


def _mnist_bytes(tmp_path, fx):
    fx.make_mnist(tmp_path / "src")
    return {p.name: p.read_bytes() for p in (tmp_path / "src").iterdir()}


def _source_for(files: dict[str, bytes], name="mnist", extract=False):
    return dl.Source(name, ("http://unused.invalid/",),
                     tuple((k, hashlib.md5(v).hexdigest()) for k, v in sorted(files.items())), extract=extract)


def test_fetch_ok_then_parse(tmp_path, server, fx, monkeypatch, _cache):
    url, files = server
    files.update(_mnist_bytes(tmp_path, fx))
    monkeypatch.setitem(dl.SOURCES, "mnist", _source_for(files))
    folder = fetch("mnist", base_url=url, progress=False)
    assert folder == _cache / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(files)
    ds = MNIST(download=False)  # found in the cache
    assert len(ds) == 60
    # already-present files with the right MD5 are not fetched again
    files.clear()
    assert fetch("mnist", base_url=url, progress=False) == folder


def test_download_true_uses_mirror_env(tmp_path, server, fx, monkeypatch):
    url, files = server
    files.update(_mnist_bytes(tmp_path, fx))
    monkeypatch.setitem(dl.SOURCES, "mnist", _source_for(files))
    monkeypatch.setenv("CONVLENS_MIRROR", url)
    assert len(MNIST(download=True, train=False)) == 20


def test_wrong_checksum_leaves_nothing(tmp_path, server, fx, _cache):
    url, files = server
    files.update(_mnist_bytes(tmp_path, fx))  # real format, but not the published bytes
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: MD5 mismatch: expected "
                                         r"f68b3c2dcbeaaa9fbdd348bbdeb94873, found [0-9a-f]{32}"):
        fetch("mnist", base_url=url, progress=False)
    assert list((_cache / "mnist").iterdir()) == []


def test_connection_cut_halfway_leaves_nothing(tmp_path, server, fx, monkeypatch, _cache):
    url, files = server
    files.update(_mnist_bytes(tmp_path, fx))
    monkeypatch.setitem(dl.SOURCES, "mnist", _source_for(files))
    with pytest.raises(DataError, match=r"could not fetch mnist file t10k-images-idx3-ubyte.gz"):
        fetch("mnist", base_url=url + "cut/", progress=False)
    assert list((_cache / "mnist").iterdir()) == []
    dest = tmp_path / "one.gz"
    name = "t10k-images-idx3-ubyte.gz"
    with pytest.raises(DataError, match=r"(closed early: expected \d+ bytes, received \d+|IncompleteRead)"):
        dl.download_file(url + "cut/" + name, dest, progress=False)
    assert list(tmp_path.glob("one.gz*")) == [] and list(tmp_path.glob(".one.gz*")) == []


def test_offline_message_says_how_to_use_root(tmp_path, server, monkeypatch):
    url, files = server  # serves nothing: every file is a 404
    with pytest.raises(DataError, match=r"(?s)HTTP Error 404.*offline.*MNIST\(root=FOLDER\)"):
        fetch("mnist", base_url=url, progress=False)
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connection refused, like a machine without network
    with pytest.raises(DataError, match=r"(?s)download failed.*offline"):
        fetch("cifar10", base_url=f"http://127.0.0.1:{port}/", progress=False)
    with pytest.raises(DataError, match=r"cannot fetch 'imagenet'"):
        fetch("imagenet")


def test_cifar10_fetch_extracts_archive(tmp_path, server, fx, monkeypatch):
    url, files = server
    d, arrays = fx.make_cifar(tmp_path / "src", n=4)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(d, arcname="cifar-10-batches-bin")
    files["cifar-10-binary.tar.gz"] = buf.getvalue()
    monkeypatch.setitem(dl.SOURCES, "cifar10", _source_for(files, "cifar10", extract=True))
    monkeypatch.setenv("CONVLENS_MIRROR", url)
    ds = CIFAR10(train=False, download=True)
    np.testing.assert_array_equal(ds.labels, arrays["test_batch.bin"][1])
    assert len(CIFAR10(train=True)) == 20
