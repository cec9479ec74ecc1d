"""convlens.vision.datasets: torchvision's classes, attributes and folder layouts, on fixture files in
the real formats; the DataLoader's batch path against the image-by-image path."""

from __future__ import annotations

import hashlib
import io
import tarfile

import numpy as np
import pytest
from PIL import Image

import convlens.data as cdata
from convlens.data import download as dl
from convlens.data.errors import DataNotFoundError
from convlens.utils.data import DataLoader, default_collate
from convlens.vision import datasets
from convlens.vision import transforms as T


def _per_item(items):
    return default_collate(items)  # a collate_fn other than default_collate: the image-by-image path


def _collect(loader):
    return [[t._data.copy() for t in batch] for batch in loader]


# ---- MNIST / FashionMNIST -----------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [True, False])
def test_mnist_in_torchvision_layout(tmp_path, fx, gz):
    arrays = fx.make_mnist(tmp_path / "MNIST" / "raw", n_train=30, n_test=10, gz=gz)
    ds = datasets.MNIST(tmp_path, train=True)
    assert len(ds) == 30 and ds.data.shape == (30, 28, 28) and ds.data.dtype == np.uint8
    np.testing.assert_array_equal(ds.data.numpy(), arrays["train"][0])
    np.testing.assert_array_equal(ds.targets.numpy(), arrays["train"][1])
    assert ds.targets.dtype == np.int64
    img, target = ds[4]
    assert isinstance(img, Image.Image) and img.mode == "L" and img.size == (28, 28)
    np.testing.assert_array_equal(np.asarray(img), arrays["train"][0][4])
    assert isinstance(target, int) and target == arrays["train"][1][4]
    assert ds.classes[3] == "3 - three" and ds.class_to_idx["9 - nine"] == 9
    assert ds.raw_folder == str(tmp_path / "MNIST" / "raw")
    test = datasets.MNIST(str(tmp_path), train=False, transform=T.ToTensor(), target_transform=lambda t: t + 100)
    x, t = test[0]
    assert x.shape == (1, 28, 28) and x.dtype == np.float32 and t == arrays["t10k"][1][0] + 100
    assert "Split: Test" in repr(test) and "Number of datapoints: 10" in repr(test)
    # convlens's own data sets find the torchvision layout too
    assert len(cdata.MNIST(tmp_path)) == 30


def test_mnist_in_convlens_layouts_and_fashion(tmp_path, fx):
    fx.make_mnist(tmp_path / "a" / "mnist", n_train=12, n_test=4)
    fx.make_mnist(tmp_path / "b", n_train=13, n_test=4)
    assert len(datasets.MNIST(tmp_path / "a")) == 12 and len(datasets.MNIST(tmp_path / "b")) == 13
    fx.make_mnist(tmp_path / "c" / "FashionMNIST" / "raw", n_train=11, n_test=4)
    f = datasets.FashionMNIST(tmp_path / "c")
    assert len(f) == 11 and f.classes[0] == "T-shirt/top" and f.classes[9] == "Ankle boot"


def test_mnist_missing_and_legacy_pickles(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"not found in .*MNIST/raw.*download=True"):
        datasets.MNIST(tmp_path)
    (tmp_path / "MNIST" / "processed").mkdir(parents=True)
    (tmp_path / "MNIST" / "processed" / "training.pt").write_bytes(b"\x80\x02")
    with pytest.raises(FileNotFoundError, match="pickles that convlens does not read"):
        datasets.MNIST(tmp_path)


def test_mnist_download_only_when_missing(tmp_path, fx, server, monkeypatch):
    url, files = server
    fx.make_mnist(tmp_path / "src", n_train=20, n_test=5)
    files.update({p.name: p.read_bytes() for p in (tmp_path / "src").iterdir()})
    monkeypatch.setitem(dl.SOURCES, "mnist", dl.Source("mnist", ("http://unused.invalid/",), tuple(
        (k, hashlib.md5(v).hexdigest()) for k, v in sorted(files.items()))))
    monkeypatch.setenv("CONVLENS_MIRROR", url)
    ds = datasets.MNIST(tmp_path / "root", download=True)
    assert len(ds) == 20 and (tmp_path / "root" / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").is_file()
    files.clear()  # the server now has nothing: a second download=True must not ask it
    assert len(datasets.MNIST(tmp_path / "root", train=False, download=True)) == 5


# ---- CIFAR-10 -----------------------------------------------------------------------------------------
def test_cifar10_binary_in_torchvision_layout(tmp_path, fx):
    _, arrays = fx.make_cifar(tmp_path, n=6)
    ds = datasets.CIFAR10(tmp_path)
    assert len(ds) == 30 and ds.data.shape == (30, 32, 32, 3) and ds.data.dtype == np.uint8
    np.testing.assert_array_equal(ds.data[:6], arrays["data_batch_1.bin"][0].transpose(0, 2, 3, 1))
    assert isinstance(ds.targets, list) and ds.targets[:6] == arrays["data_batch_1.bin"][1].tolist()
    img, target = ds[7]
    assert img.mode == "RGB" and img.size == (32, 32) and target == ds.targets[7]
    np.testing.assert_array_equal(np.asarray(img), ds.data[7])
    assert ds.classes[0] == "airplane" and ds.class_to_idx["truck"] == 9
    assert len(datasets.CIFAR10(tmp_path / "cifar-10-batches-bin", train=False)) == 6


def test_cifar10_python_version_is_refused_with_directions(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"\x80\x02pickle")
    with pytest.raises(DataNotFoundError, match=r"python version.*never reads.*cifar-10-binary\.tar\.gz"):
        datasets.CIFAR10(tmp_path)
    with pytest.raises(DataNotFoundError, match=r"python version"):
        cdata.CIFAR10(tmp_path)


def test_cifar10_download(tmp_path, fx, server, monkeypatch):
    url, files = server
    d, _ = fx.make_cifar(tmp_path / "src", n=3)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(d, arcname="cifar-10-batches-bin")
    files["cifar-10-binary.tar.gz"] = buf.getvalue()
    monkeypatch.setitem(dl.SOURCES, "cifar10", dl.Source("cifar10", ("http://unused.invalid/",), (
        ("cifar-10-binary.tar.gz", hashlib.md5(buf.getvalue()).hexdigest()),), extract=True))
    monkeypatch.setenv("CONVLENS_MIRROR", url)
    assert len(datasets.CIFAR10(tmp_path / "data", train=False, download=True)) == 3
    assert (tmp_path / "data" / "cifar-10-batches-bin" / "test_batch.bin").is_file()


# ---- the batch path = the image-by-image path ---------------------------------------------------------
def test_fast_path_is_bit_identical_for_deterministic_transforms(tmp_path, fx):
    fx.make_mnist(tmp_path / "MNIST" / "raw", n_train=50, n_test=5)
    fx.make_cifar(tmp_path, n=10)
    cases = [
        (datasets.MNIST(tmp_path, transform=T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))])), {}),
        (datasets.CIFAR10(tmp_path, transform=T.Compose([
            T.CenterCrop(28), T.Pad((1, 2, 3, 0), fill=7), T.Grayscale(3), T.ToTensor(),
            T.Normalize((0.5, 0.4, 0.3), (0.2, 0.25, 0.3)), T.Resize(20)])), {}),
        (datasets.CIFAR10(tmp_path, transform=T.Compose([T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])),
         {"num_workers": 2}),
    ]
    for ds, kw in cases:
        assert ds._batch_reader() is not None
        fast = _collect(DataLoader(ds, batch_size=7, shuffle=True, seed=1, **kw))
        slow = _collect(DataLoader(ds, batch_size=7, shuffle=True, seed=1, collate_fn=_per_item, **kw))
        assert len(fast) == len(slow)
        for a, b in zip(fast, slow):
            for u, v in zip(a, b):
                assert u.dtype == v.dtype and u.shape == v.shape
                np.testing.assert_array_equal(u, v)


def test_fast_path_random_crop_flip_gives_valid_augmentations(tmp_path, fx):
    fx.make_cifar(tmp_path, n=20)
    ds = datasets.CIFAR10(tmp_path, transform=T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(),
                                                         T.ToTensor()]))
    assert ds._batch_reader() is not None
    (x, y), = list(DataLoader(ds, batch_size=100, shuffle=False))
    flips = 0
    for i in range(100):
        padded = np.pad(ds.data[i].transpose(2, 0, 1), ((0, 0), (4, 4), (4, 4))).astype(np.float32) / np.float32(255)
        windows = {(t, l, f) for t in range(9) for l in range(9) for f in (0, 1)
                   if np.array_equal(x._data[i], (lambda w: w[..., ::-1] if f else w)(padded[:, t:t + 32, l:l + 32]))}
        assert windows, f"image {i} is not a padded crop (flipped or not) of the original"
        flips += all(f for _, _, f in windows)
    assert 25 < flips < 75  # p = 0.5 per image
    a = _collect(DataLoader(ds, batch_size=10, shuffle=True, seed=3))
    b = _collect(DataLoader(ds, batch_size=10, shuffle=True, seed=3, num_workers=2))
    for u, v in zip(a, b):  # reproducible, whatever the number of workers
        np.testing.assert_array_equal(u[0], v[0])


def test_fast_path_steps_aside_when_it_would_change_results(tmp_path, fx):
    fx.make_mnist(tmp_path / "MNIST" / "raw", n_train=20, n_test=5)
    assert datasets.MNIST(tmp_path)._batch_reader() is None  # PIL images out: default_collate's error
    with pytest.raises(TypeError, match="ToTensor"):
        next(iter(DataLoader(datasets.MNIST(tmp_path), batch_size=4)))
    lam = datasets.MNIST(tmp_path, transform=T.Compose([T.ToTensor(), T.Lambda(lambda t: t * 2)]))
    assert lam._batch_reader() is None
    assert float(next(iter(DataLoader(lam, batch_size=4)))[0].max()) > 1
    tt = datasets.MNIST(tmp_path, transform=T.ToTensor(), target_transform=lambda t: t * 10)
    assert tt._batch_reader() is None
    assert next(iter(DataLoader(tt, batch_size=20)))[1].tolist() == (tt.targets.numpy() * 10).tolist()

    class Mine(datasets.MNIST):
        def __getitem__(self, i):
            img, t = super().__getitem__(i)
            return img, -1

    mine = Mine(tmp_path, transform=T.ToTensor())
    assert mine._batch_reader() is None and next(iter(DataLoader(mine, batch_size=3)))[1].tolist() == [-1] * 3


def test_replacing_data_and_targets_takes_a_subset(tmp_path, fx):
    fx.make_mnist(tmp_path / "MNIST" / "raw", n_train=40, n_test=5)
    ds = datasets.MNIST(tmp_path, transform=T.ToTensor())
    keep = (ds.targets == 3).numpy()
    ds.data, ds.targets = ds.data[keep], ds.targets[keep]
    batches = list(DataLoader(ds, batch_size=100))
    assert len(ds) == int(keep.sum()) and batches[0][1].tolist() == [3] * int(keep.sum())
    fx.make_cifar(tmp_path, n=5)
    c = datasets.CIFAR10(tmp_path, transform=T.ToTensor())
    c.data, c.targets = c.data[:3], c.targets[:3]
    (x, y), = list(DataLoader(c, batch_size=10))
    assert x.shape == (3, 3, 32, 32) and y.tolist() == c.targets


# ---- ImageFolder --------------------------------------------------------------------------------------
def _png(path, size, color):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def test_image_folder_like_torchvision(tmp_path):
    _png(tmp_path / "dog" / "b.png", (12, 10), (200, 0, 0))
    _png(tmp_path / "dog" / "a.jpg", (9, 9), (0, 0, 200))
    _png(tmp_path / "dog" / "nested" / "c.png", (5, 7), (1, 2, 3))
    _png(tmp_path / "cat" / "x.bmp", (8, 8), (0, 255, 0))
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    ds = datasets.ImageFolder(tmp_path)
    assert ds.classes == ["cat", "dog"] and ds.class_to_idx == {"cat": 0, "dog": 1}
    assert [p.split("/")[-1] for p, _ in ds.samples] == ["x.bmp", "a.jpg", "b.png", "c.png"]
    assert ds.targets == [0, 1, 1, 1] and ds.imgs is ds.samples
    img, t = ds[2]
    assert img.mode == "RGB" and img.size == (12, 10) and t == 1
    tf = T.Compose([T.Resize((6, 6)), T.ToTensor()])
    loader = DataLoader(datasets.ImageFolder(tmp_path, transform=tf), batch_size=2, num_workers=2)
    (x0, y0), (x1, y1) = list(loader)
    assert x0.shape == (2, 3, 6, 6) and y0.tolist() + y1.tolist() == [0, 1, 1, 1]
    gray = datasets.ImageFolder(tmp_path, loader=lambda p: Image.open(p).convert("L"))
    assert gray[0][0].mode == "L"
    only_png = datasets.ImageFolder(tmp_path, is_valid_file=lambda p: p.endswith(".png"), allow_empty=True)
    assert len(only_png) == 2


def test_image_folder_errors(tmp_path):
    (tmp_path / "empty_class").mkdir()
    _png(tmp_path / "full" / "a.png", (4, 4), (1, 1, 1))
    with pytest.raises(FileNotFoundError, match="Found no valid file for the classes empty_class"):
        datasets.ImageFolder(tmp_path)
    assert len(datasets.ImageFolder(tmp_path, allow_empty=True)) == 1
    with pytest.raises(FileNotFoundError, match="Couldn't find any class folder"):
        datasets.ImageFolder(tmp_path / "full")
    (tmp_path / "full" / "bad.png").write_bytes(b"not a png")
    ds = datasets.ImageFolder(tmp_path, allow_empty=True)
    with pytest.raises(ValueError, match=r"bad\.png: not a readable image"):
        ds[1]
