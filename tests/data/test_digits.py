from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from convlens.data import prepare_digit


def _com(a):
    a = a.astype(float)
    ys, xs = np.indices(a.shape)
    return (ys * a).sum() / a.sum(), (xs * a).sum() / a.sum()


def test_black_on_white_drawing_becomes_white_on_black_centred():
    im = Image.new("RGB", (200, 150), "white")
    d = ImageDraw.Draw(im)
    d.line([(20, 20), (20, 110)], fill="black", width=9)  # a "1" drawn near the top-left corner
    d.line([(20, 20), (8, 34)], fill="black", width=7)
    out = prepare_digit(im)
    assert out.shape == (1, 28, 28) and out.dtype == np.uint8
    a = out[0]
    assert a.max() == 255 and a[0].max() == 0 and a[:, 0].max() == 0 and a[-1].max() == 0  # dark background
    cy, cx = _com(a)
    assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1
    ys, xs = np.nonzero(a > 40)
    assert ys.max() - ys.min() + 1 <= 21 and ys.max() - ys.min() + 1 >= 18  # tall side fitted to 20


def test_white_on_black_array_and_rgba_canvas():
    a = np.zeros((50, 40), np.uint8)
    a[10:20, 5:30] = 255  # a bar, off centre
    out = prepare_digit(a)[0]
    assert out.max() == 255 and out[0, 0] == 0
    ys, xs = np.nonzero(out > 40)
    assert xs.max() - xs.min() + 1 in (20, 21) and abs(_com(out)[1] - 13.5) <= 1
    im = Image.new("RGBA", (64, 64), (0, 0, 0, 0))  # black strokes on a transparent canvas
    ImageDraw.Draw(im).ellipse([10, 10, 40, 50], outline=(0, 0, 0, 255), width=5)
    o = prepare_digit(im)[0]
    assert o[0].max() == 0 and o.max() == 255 and abs(_com(o)[0] - 13.5) <= 1


def test_blank_image_gives_zeros():
    assert not prepare_digit(np.full((30, 30), 255, np.uint8)).any()
    assert not prepare_digit(Image.new("L", (28, 28))).any()
