from __future__ import annotations

import numpy as np
import pytest

from convlens.data import (
    CIFAR10,
    MNIST,
    DataError,
    FashionMNIST,
    TensorDataset,
    load,
    mean_std,
    random_split,
    split,
)
from convlens.data.idx import write_idx


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_from_folder(tmp_path, gz, fx):
    arrays = fx.make_mnist(tmp_path / "m", gz=gz)
    train = MNIST(tmp_path / "m")
    test = MNIST(tmp_path / "m", train=False)
    assert train.images.shape == (60, 1, 28, 28) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64 and len(train) == 60 and len(test) == 20
    np.testing.assert_array_equal(train.images[:, 0], arrays["train"][0])
    np.testing.assert_array_equal(test.labels, arrays["t10k"][1])
    img, lab = train[3]
    assert img.shape == (1, 28, 28) and lab == arrays["train"][1][3]
    assert train.classes == [str(i) for i in range(10)]
    assert len(train[:10]) == 10


def test_root_may_be_parent_and_fashion_classes(tmp_path, fx):
    fx.make_mnist(tmp_path / "fashion-mnist")
    ds = load("fashion-mnist", root=tmp_path)
    assert isinstance(ds, FashionMNIST) and ds.classes[0] == "T-shirt/top" and ds.classes[-1] == "Ankle boot"


def test_missing_files_message(tmp_path):
    with pytest.raises(DataError, match=r"not found in .*download=True.*convlens data fetch mnist.*root="):
        MNIST(tmp_path)


def test_count_mismatch(tmp_path, fx):
    fx.make_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(59, np.uint8))
    with pytest.raises(DataError, match=r"count mismatch.*60 images.*59 labels"):
        MNIST(tmp_path)


def test_label_out_of_range_and_wrong_dtype(tmp_path, fx):
    fx.make_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.full(20, 11, np.uint8))
    with pytest.raises(DataError, match=r"labels must lie in 0..9.*found 11..11"):
        MNIST(tmp_path, train=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(20, np.int32))
    with pytest.raises(DataError, match=r"expected uint8"):
        MNIST(tmp_path, train=False)


def test_mnist_mini_embedded():
    train, test = load("mnist-mini"), load("mnist-mini", train=False)
    assert train.images.shape == (10000, 1, 28, 28) and test.images.shape == (2000, 1, 28, 28)
    counts = np.bincount(train.labels, minlength=10)
    assert counts.min() > 850 and counts.sum() == 10000  # stratified: every class present in proportion
    assert 0.12 < train.images.mean() / 255 < 0.14  # MNIST's mean pixel is 0.1307


def test_cifar10_binary(tmp_path, fx):
    d, arrays = fx.make_cifar(tmp_path)
    train = CIFAR10(tmp_path)
    assert train.images.shape == (100, 3, 32, 32) and train.labels.dtype == np.int64
    np.testing.assert_array_equal(train.images[:20], arrays["data_batch_1.bin"][0])
    np.testing.assert_array_equal(train.images[80:], arrays["data_batch_5.bin"][0])
    test = load("cifar10", root=d, train=False)  # root may be the batches folder itself
    np.testing.assert_array_equal(test.labels, arrays["test_batch.bin"][1])
    assert test.classes[0] == "airplane" and len(test.classes) == 10


def test_cifar_channel_major_record(tmp_path):
    d = tmp_path / "cifar-10-batches-bin"
    d.mkdir()
    rec = np.zeros(3073, np.uint8)
    rec[0] = 7
    rec[1 : 1 + 1024] = 10  # red plane
    rec[1 + 1024 : 1 + 2048] = 20
    rec[1 + 2048 + 33] = 99  # blue, row 1, col 1
    (d / "test_batch.bin").write_bytes(rec.tobytes())
    ds = CIFAR10(tmp_path, train=False)
    assert ds.labels.tolist() == [7]
    assert (ds.images[0, 0] == 10).all() and (ds.images[0, 1] == 20).all() and ds.images[0, 2, 1, 1] == 99


def test_cifar_truncated_and_bad_label(tmp_path, fx):
    d, _ = fx.make_cifar(tmp_path, n=3)
    raw = (d / "test_batch.bin").read_bytes()
    (d / "test_batch.bin").write_bytes(raw[:-100])
    with pytest.raises(DataError, match=r"test_batch.bin: size 9119 bytes .* 3073-byte record.*byte offset 6146"):
        CIFAR10(tmp_path, train=False)
    bad = bytearray(raw)
    bad[3073] = 12
    (d / "test_batch.bin").write_bytes(bytes(bad))
    with pytest.raises(DataError, match=r"record 1 \(byte offset 3073\) has label 12: expected 0..9"):
        CIFAR10(tmp_path, train=False)
    with pytest.raises(DataError, match=r"fetch cifar10"):
        CIFAR10(tmp_path / "nowhere")


def test_tensor_dataset_and_shape_check():
    ds = TensorDataset(np.zeros((5, 8, 8), np.uint8), [0, 1, 2, 1, 0])
    assert ds.images.shape == (5, 1, 8, 8) and ds.classes == ["0", "1", "2"]
    ds.check_shape((1, 8, 8))
    with pytest.raises(DataError, match=r"\(1, 8, 8\), but the model expects \(3, 32, 32\)"):
        ds.check_shape((3, 32, 32))
    with pytest.raises(DataError, match=r"count mismatch"):
        TensorDataset(np.zeros((5, 1, 8, 8), np.uint8), [0, 1])
    with pytest.raises(DataError, match=r"uint8"):
        TensorDataset(np.zeros((5, 1, 8, 8), np.float32), np.zeros(5))


def test_split_disjoint_reproducible():
    ds = TensorDataset(np.arange(100, dtype=np.uint8).reshape(100, 1, 1, 1), np.arange(100) % 4)
    tr, va = split(ds, 0.1, seed=3)
    assert len(tr) == 90 and len(va) == 10 and tr.classes == ds.classes
    ids = np.concatenate([tr.images.ravel(), va.images.ravel()])
    assert sorted(ids.tolist()) == list(range(100))
    np.testing.assert_array_equal(va.labels, va.images.ravel() % 4)
    tr2, va2 = split(ds, 0.1, seed=3)
    np.testing.assert_array_equal(va.indices, va2.indices)
    assert not np.array_equal(va.indices, split(ds, 0.1, seed=4)[1].indices)
    parts = random_split(ds, [0.5, 0.3, 0.2], seed=0)
    assert [len(p) for p in parts] == [50, 30, 20]
    with pytest.raises(DataError):
        random_split(ds, [10, 10])


def test_mean_std_matches_numpy():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 3, 4, 5), dtype=np.uint8)
    m, s = mean_std(TensorDataset(images, np.zeros(50)))
    x = images / 255.0
    np.testing.assert_allclose(m, x.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(s, x.std(axis=(0, 2, 3)), rtol=1e-5)


def test_load_unknown_name():
    with pytest.raises(DataError, match=r"unknown data set 'imagenet'"):
        load("imagenet")
