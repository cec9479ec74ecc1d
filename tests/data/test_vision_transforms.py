"""convlens.vision.transforms and utils against torchvision's definitions: torch (when installed) for
the tensor arithmetic, Pillow for the PIL paths, reference loops for the rest."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

import convlens
from convlens.tensor import Tensor
from convlens.vision import transforms as T
from convlens.vision import utils as vutils
from convlens.vision.transforms import functional as TF


def _rgb(h=9, w=13, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def _chw(t):
    return t._data if isinstance(t, Tensor) else np.asarray(t)


# ---- conversions --------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "1", "I", "F"])
def test_to_tensor_matches_torchvision_rule(mode):
    img = _rgb().convert(mode)
    x = T.ToTensor()(img)
    a = np.array(img)
    if mode == "1":
        a = a.astype(np.uint8) * 255
    a = a.reshape(img.height, img.width, -1).transpose(2, 0, 1)
    ref = a.astype(np.float32) / np.float32(255) if a.dtype == np.uint8 else a
    assert x.shape == ref.shape and x.dtype == ref.dtype
    np.testing.assert_array_equal(x._data, ref)
    hwc = np.random.default_rng(1).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(T.ToTensor()(hwc)._data, hwc.transpose(2, 0, 1) / np.float32(255))
    assert T.ToTensor()(np.zeros((4, 5), np.float64)).dtype == np.float64  # non-uint8 arrays keep their values
    with pytest.raises(TypeError, match="PIL Image or an ndarray"):
        T.ToTensor()(convlens.zeros(3, 4, 4))


def test_to_tensor_and_normalize_bit_identical_to_torch():
    torch = pytest.importorskip("torch")
    img = _rgb(28, 28)
    ours = T.Compose([T.ToTensor(), T.Normalize((0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261))])(img)
    t = torch.from_numpy(np.array(img)).permute(2, 0, 1).contiguous().to(torch.float32).div(255)
    mean = torch.tensor((0.4914, 0.4822, 0.4465)).view(-1, 1, 1)
    std = torch.tensor((0.247, 0.243, 0.261)).view(-1, 1, 1)
    np.testing.assert_array_equal(ours._data, t.sub(mean).div(std).numpy())
    with pytest.raises(TypeError, match="ToTensor"):
        T.Normalize((0.5,), (0.5,))(img)


def test_to_pil_image_and_pil_to_tensor():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).random((3, 5, 6), dtype=np.float32)
    img = T.ToPILImage()(convlens.tensor(x))
    assert img.mode == "RGB" and img.size == (6, 5)
    ref = torch.from_numpy(x).mul(255).byte().permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(np.asarray(img), ref)
    assert T.ToPILImage()(convlens.tensor(x[:1])).mode == "L"
    back = T.PILToTensor()(img)
    assert back.dtype == np.uint8 and back.shape == (3, 5, 6)
    np.testing.assert_array_equal(back._data, ref.transpose(2, 0, 1))


# ---- geometry -----------------------------------------------------------------------------------------
def test_flips_on_pil_tensor_and_array_and_batch():
    img = _rgb()
    np.testing.assert_array_equal(np.asarray(T.RandomHorizontalFlip(1.0)(img)), np.asarray(img)[:, ::-1])
    np.testing.assert_array_equal(np.asarray(T.RandomVerticalFlip(1.0)(img)), np.asarray(img)[::-1])
    assert T.RandomHorizontalFlip(0.0)(img) is img
    t = T.ToTensor()(img)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(t)._data, t._data[..., ::-1])
    arr = t._data.copy()
    assert isinstance(T.RandomVerticalFlip(1.0)(arr), np.ndarray)
    batch = np.stack([arr] * 40)
    out = T.RandomVerticalFlip(0.5)(batch, np.random.default_rng(0))
    flipped = np.array([np.array_equal(o, arr[:, ::-1]) for o in out])
    np.testing.assert_array_equal(flipped, np.random.default_rng(0).random(40) < 0.5)  # per image


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric"])
def test_pad_and_random_crop_padding_modes(mode):
    img = _rgb(6, 7)
    a = np.asarray(img)
    out = np.asarray(T.Pad((1, 2, 3, 4), fill=(9, 8, 7), padding_mode=mode)(img))
    widths = ((2, 4), (1, 3), (0, 0))
    if mode == "constant":
        ref = np.stack([np.pad(a[..., c], widths[:2], constant_values=v) for c, v in enumerate((9, 8, 7))], -1)
    else:
        ref = np.pad(a, widths, mode=mode)
    np.testing.assert_array_equal(out, ref)
    convlens.manual_seed(0)
    crop = np.asarray(T.RandomCrop((6, 7), padding=2, padding_mode=mode)(img))
    padded = np.pad(a, ((2, 2), (2, 2), (0, 0)), mode=mode) if mode != "constant" else np.pad(
        a, ((2, 2), (2, 2), (0, 0)))
    assert any(np.array_equal(crop, padded[t:t + 6, l:l + 7]) for t in range(5) for l in range(5))


def test_random_crop_pad_if_needed_and_errors():
    img = _rgb(20, 18)
    out = T.RandomCrop(24, pad_if_needed=True, fill=255)(img)
    assert out.size == (24, 24)
    with pytest.raises(ValueError, match=r"required crop size \(24, 24\) is larger"):
        T.RandomCrop(24)(img)
    convlens.manual_seed(7)
    a = np.asarray(T.RandomCrop(5)(img))
    convlens.manual_seed(7)
    np.testing.assert_array_equal(np.asarray(T.RandomCrop(5)(img)), a)  # draws follow convlens.manual_seed


def test_single_call_on_a_4d_tensor_shares_the_parameters():
    x = convlens.tensor(np.random.default_rng(3).random((5, 2, 8, 8), dtype=np.float32))
    out = T.RandomCrop(4)(x)._data
    offsets = [{(t, l) for t in range(5) for l in range(5) if np.array_equal(out[i], x._data[i, :, t:t + 4, l:l + 4])}
               for i in range(5)]
    assert set.intersection(*offsets)  # one window for the whole batch, as torchvision's tensor transforms


def test_center_crop_matches_torchvision_rounding_and_padding():
    img = _rgb(9, 13)
    a = np.asarray(img)
    for th, tw in [(4, 6), (5, 5), (9, 13), (3, 12)]:
        top, left = int(round((9 - th) / 2.0)), int(round((13 - tw) / 2.0))
        np.testing.assert_array_equal(np.asarray(T.CenterCrop((th, tw))(img)), a[top:top + th, left:left + tw])
    big = np.asarray(T.CenterCrop((12, 16))(img))  # larger: zero padding first, as torchvision
    assert big.shape == (12, 16, 3)
    np.testing.assert_array_equal(big[1:10, 1:14], a)
    assert big[0].sum() == 0 and big[:, 0].sum() == 0 and big[-2:].sum() == 0


def test_grayscale_bit_identical_to_pillow():
    img = _rgb(11, 17)
    np.testing.assert_array_equal(np.asarray(T.Grayscale()(img)), np.asarray(img.convert("L")))
    three = T.Grayscale(3)(img)
    assert three.mode == "RGB" and (np.asarray(three) == np.asarray(img.convert("L"))[..., None]).all()
    t = T.ToTensor()(img)._data
    ref = 0.2989 * t[0] + 0.587 * t[1] + 0.114 * t[2]
    np.testing.assert_allclose(T.Grayscale()(convlens.tensor(t))._data[0], ref, rtol=1e-6)
    batch = np.stack([np.asarray(img).transpose(2, 0, 1)] * 2)
    np.testing.assert_array_equal(T.Grayscale()(batch, np.random.default_rng())[:, 0], np.asarray(img.convert("L"))[None]
                                  .repeat(2, 0))


@pytest.mark.parametrize("size", [(9, 13), (4, 6), (5, 3), (20, 31), (7, 26), (2, 2)])
@pytest.mark.parametrize("antialias", [True, False])
def test_resize_tensor_matches_torch_interpolate(size, antialias):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(4).random((2, 3, 9, 13), dtype=np.float32)
    ours = T.Resize(size, antialias=antialias)(convlens.tensor(x))._data
    ref = torch.nn.functional.interpolate(torch.from_numpy(x), size=size, mode="bilinear", align_corners=False,
                                          antialias=antialias).numpy()
    np.testing.assert_allclose(ours, ref, atol=2e-6, rtol=1e-5)
    near = T.Resize(size, interpolation=T.InterpolationMode.NEAREST)(convlens.tensor(x))._data
    np.testing.assert_array_equal(near, torch.nn.functional.interpolate(torch.from_numpy(x), size=size,
                                                                         mode="nearest").numpy())


def test_resize_sizes_and_pil():
    img = _rgb(20, 30)
    assert T.Resize(10)(img).size == (15, 10)  # shorter edge 10, aspect kept: (W, H)
    assert T.Resize(10)(_rgb(30, 20)).size == (10, 15)
    assert T.Resize(10, max_size=12)(img).size == (12, 8)
    assert T.Resize((7, 5))(img).size == (5, 7)
    np.testing.assert_array_equal(np.asarray(T.Resize((7, 5))(img)),
                                  np.asarray(img.resize((5, 7), Image.Resampling.BILINEAR)))
    assert T.Resize([10])(convlens.zeros(3, 20, 30)).shape == (3, 10, 15)
    with pytest.raises(ValueError, match="not implemented for arrays"):
        T.Resize(4, interpolation=T.InterpolationMode.BICUBIC)(convlens.zeros(1, 8, 8))


def test_random_resized_crop_and_lambda_and_compose():
    img = _rgb(40, 40)
    convlens.manual_seed(1)
    out = T.RandomResizedCrop(16)(img)
    assert out.size == (16, 16)
    top, left, h, w = T.RandomResizedCrop.get_params(img, (0.08, 1.0), (3 / 4, 4 / 3))
    assert 0 <= top and top + h <= 40 and 0 <= left and left + w <= 40 and 3 / 4 - 0.1 < w / h < 4 / 3 + 0.1
    whole = T.RandomResizedCrop(20, scale=(1.0, 1.0), ratio=(1.0, 1.0))(img)
    np.testing.assert_array_equal(np.asarray(whole), np.asarray(img.resize((20, 20), Image.Resampling.BILINEAR)))
    with pytest.raises(TypeError, match="callable"):
        T.Lambda(3)
    c = T.Compose([T.ToTensor(), T.Lambda(lambda t: t * 0)])
    assert float(c(img).sum()) == 0
    with pytest.raises(TypeError, match="no batch form"):
        c(np.zeros((1, 3, 4, 4), np.uint8), np.random.default_rng())


def test_functional_matches_the_classes():
    img = _rgb()
    np.testing.assert_array_equal(np.asarray(TF.hflip(img)), np.asarray(img)[:, ::-1])
    np.testing.assert_array_equal(np.asarray(TF.crop(img, 1, 2, 3, 4)), np.asarray(img)[1:4, 2:6])
    assert TF.get_image_size(img) == [13, 9]
    np.testing.assert_array_equal(TF.to_tensor(img)._data, T.ToTensor()(img)._data)
    assert TF.resize(img, 4).size == T.Resize(4)(img).size


# ---- make_grid / save_image ---------------------------------------------------------------------------
def _grid_reference(x, nrow, padding, pad_value):
    """torchvision's make_grid loop, written out."""
    if x.shape[1] == 1:
        x = np.concatenate([x] * 3, 1)
    n = x.shape[0]
    xmaps = min(nrow, n)
    ymaps = int(math.ceil(n / xmaps))
    height, width = x.shape[2] + padding, x.shape[3] + padding
    grid = np.full((x.shape[1], height * ymaps + padding, width * xmaps + padding), pad_value, x.dtype)
    k = 0
    for y in range(ymaps):
        for xx in range(xmaps):
            if k >= n:
                break
            grid[:, y * height + padding: (y + 1) * height, xx * width + padding: (xx + 1) * width] = x[k]
            k += 1
    return grid


@pytest.mark.parametrize("n,c,nrow,padding", [(10, 3, 4, 2), (7, 1, 8, 0), (5, 3, 2, 3), (16, 1, 4, 1)])
def test_make_grid_layout(n, c, nrow, padding):
    x = np.random.default_rng(n).random((n, c, 5, 6), dtype=np.float32)
    grid = vutils.make_grid(convlens.tensor(x), nrow=nrow, padding=padding, pad_value=0.25)
    np.testing.assert_array_equal(grid._data, _grid_reference(x, nrow, padding, 0.25))
    listed = vutils.make_grid([convlens.tensor(im) for im in x], nrow=nrow, padding=padding, pad_value=0.25)
    np.testing.assert_array_equal(listed._data, grid._data)


def test_make_grid_normalize_and_single_image():
    x = np.random.default_rng(0).normal(size=(4, 3, 5, 5)).astype(np.float32)
    g = vutils.make_grid(convlens.tensor(x), normalize=True, padding=0)._data
    assert abs(g.min()) < 1e-6 and abs(g.max() - 1) < 1e-6
    each = vutils.make_grid(convlens.tensor(x), normalize=True, scale_each=True, padding=0, nrow=4)._data
    for k in range(4):
        tile = each[:, :, 5 * k:5 * k + 5]
        assert abs(tile.min()) < 1e-6 and abs(tile.max() - 1) < 1e-6
    fixed = vutils.make_grid(convlens.tensor(x), normalize=True, value_range=(-1, 1), padding=0)._data
    np.testing.assert_allclose(fixed[:, :5, :5], (np.clip(x[0], -1, 1) + 1) / 2, rtol=1e-6)
    one = vutils.make_grid(convlens.tensor(x[:1, :1]))
    assert one.shape == (3, 5, 5)  # one image: no padding, grey made three-channel


def test_save_image_roundtrip(tmp_path):
    x = np.random.default_rng(1).random((6, 3, 4, 4), dtype=np.float32)
    vutils.save_image(convlens.tensor(x), tmp_path / "grid.png", nrow=3)
    back = np.asarray(Image.open(tmp_path / "grid.png"))
    grid = vutils.make_grid(convlens.tensor(x), nrow=3)._data
    np.testing.assert_array_equal(back, np.clip(grid * 255 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0))
    with pytest.raises(ValueError, match="unknown image file extension"):
        vutils.save_image(convlens.tensor(x), tmp_path / "grid.nope")
    assert not list(tmp_path.glob("*.part"))
