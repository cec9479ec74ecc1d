"""Dense prediction: a small U-Net for segmentation and a CenterNet-style detector, both fully
convolutional, so a net trained on 64×64 scenes runs on a scene of any size (a multiple of 8 keeps the
pooled maps aligned; other sizes are padded by `pad_to_multiple`).

* ``UNetSmall`` (Ronneberger et al. 2015, shrunk): encoder blocks conv → ReLU → conv → ReLU → max pool,
  a decoder that upsamples ×2, concatenates the encoder's map of that size (the skip connection) and
  convolves, then a 1×1 conv to ``num_classes + 1`` logits per pixel (0 = background).
* ``CenterNetSmall`` (Zhou et al. 2019, "Objects as Points"): the same encoder, decoded to stride 4,
  with three heads: a per-class centre heatmap (sigmoid, trained with the penalty-reduced focal loss),
  box size and the centre's sub-cell offset (L1 at the centres). Decoding keeps the 3×3 local maxima
  of the heatmap (a max pool, the paper's NMS substitute), then class-wise NMS.
"""

from __future__ import annotations

import numpy as np

import convlens
from convlens import nn
from convlens.nn import functional as F

__all__ = ["UNetSmall", "CenterNetSmall", "unet_small", "centernet_small", "pad_to_multiple", "DENSE_TASKS"]


def upsample2(x):
    """Nearest-neighbour ×2 upsampling as a broadcast (the same values as ``F.interpolate(x, scale_factor=2)``,
    whose general resampler costs about 2.5× more here); its gradient sums each 2×2 block."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h, 1, w, 1).expand(n, c, h, 2, w, 2).reshape(n, c, 2 * h, 2 * w)


def pad_to_multiple(x, multiple: int = 8):
    """Zero-pad (N, C, H, W) at the bottom and right to multiples of ``multiple``; returns (x, (H, W))."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph))
    return x, (h, w)


class ConvBlock(nn.Module):
    """Two 3×3 convs (padding 1) with BatchNorm and ReLU: the unit of both nets. Shape: (N, C_in, H, W) →
    (N, C_out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


class Encoder(nn.Module):
    """``len(widths)`` ConvBlocks with a 2×2 max pool before every block but the first; returns every
    block's output (strides 1, 2, 4, ...), the skip connections of the decoder."""

    def __init__(self, in_channels: int, widths):
        super().__init__()
        chans = [in_channels, *widths]
        self.blocks = nn.ModuleList([ConvBlock(a, b) for a, b in zip(chans[:-1], chans[1:])])

    def forward(self, x):
        feats = []
        for k, block in enumerate(self.blocks):
            x = block(x if k == 0 else F.max_pool2d(x, 2))
            feats.append(x)
        return feats


class Decoder(nn.Module):
    """From the deepest map up to level ``stop`` (stride 2**stop): upsample ×2, concatenate the skip,
    ConvBlock. Output channels: ``widths[stop]``."""

    def __init__(self, widths, stop: int = 0):
        super().__init__()
        self.stop = stop
        levels = range(len(widths) - 2, stop - 1, -1)
        self.blocks = nn.ModuleList([ConvBlock(widths[k + 1] + widths[k], widths[k]) for k in levels])

    def forward(self, feats):
        x = feats[-1]
        for block, skip in zip(self.blocks, reversed(feats[self.stop : -1])):
            x = block(convlens.cat([upsample2(x), skip], 1))
        return x


class UNetSmall(nn.Module):
    """A small U-Net: per-pixel logits for background + ``num_classes`` classes, plus FCN's coarse
    score (1×1 conv on the deepest map, nearest-upsampled) added to them.

    Shape:
        (N, in_channels, H, W) → (N, num_classes + 1, H, W), any H, W (padded to a multiple of
        2**(levels − 1) inside and cropped back).
    """

    task = "segment"

    def __init__(self, in_channels: int = 1, num_classes: int = 10, widths=(8, 16, 32, 64)):
        super().__init__()
        self.in_channels, self.num_classes, self.widths = in_channels, num_classes, tuple(widths)
        self.encoder = Encoder(in_channels, self.widths)
        self.decoder = Decoder(self.widths, 0)
        self.head = nn.Conv2d(self.widths[0], num_classes + 1, 1)
        # FCN's coarse score layer: class logits from the deepest map, upsampled and added to the head's.
        # It gives the digit's identity a short gradient path (without it, 675 steps learned only
        # foreground vs background: every digit pixel got the same guessed class).
        self.coarse_head = nn.Conv2d(self.widths[-1], num_classes + 1, 1)

    def forward(self, x):
        x, (h, w) = pad_to_multiple(x, 2 ** (len(self.widths) - 1))
        feats = self.encoder(x)
        coarse = self.coarse_head(feats[-1])
        for _ in range(len(self.widths) - 1):
            coarse = upsample2(coarse)
        out = self.head(self.decoder(feats)) + coarse
        return out if tuple(out.shape[-2:]) == (h, w) else out[:, :, :h, :w]


class CenterNetSmall(nn.Module):
    """An anchor-free single-shot detector. ``forward`` returns one (N, num_classes + 4, H/4, W/4) map:
    channels ``:num_classes`` the centre-heatmap logits, then box width and height (in output cells) and
    the centre's x, y offset within its cell. `decode` turns it into boxes.

    Shape:
        (N, in_channels, H, W) → (N, num_classes + 4, ⌈H/4⌉, ⌈W/4⌉) (padded to a multiple of 8 inside).
    """

    task = "detect"
    stride = 4

    def __init__(self, in_channels: int = 1, num_classes: int = 10, widths=(16, 24, 32, 64), head_width: int = 32):
        super().__init__()
        self.in_channels, self.num_classes, self.widths = in_channels, num_classes, tuple(widths)
        self.encoder = Encoder(in_channels, self.widths)
        self.decoder = Decoder(self.widths, 2)
        w = self.widths[2]
        self.heat = nn.Sequential(nn.Conv2d(w, head_width, 3, padding=1), nn.ReLU(), nn.Conv2d(head_width, num_classes, 1))
        self.box = nn.Sequential(nn.Conv2d(w, head_width, 3, padding=1), nn.ReLU(), nn.Conv2d(head_width, 4, 1))
        # start the heatmap at p = 0.1 everywhere (the paper's bias −2.19): the focal loss starts calm
        nn.init.constant_(self.heat[2].bias, -2.19)

    def forward(self, x):
        x, (h, w) = pad_to_multiple(x, 2 ** (len(self.widths) - 1))
        feat = self.decoder(self.encoder(x))
        out = convlens.cat([self.heat(feat), self.box(feat)], 1)
        oh, ow = -(-h // self.stride), -(-w // self.stride)
        return out if tuple(out.shape[-2:]) == (oh, ow) else out[:, :, :oh, :ow]

    def decode(self, output, k: int = 20, score_threshold: float = 0.05, iou_threshold: float = 0.5,
               image_size=None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per image ``(boxes (K, 4) xyxy in input pixels, scores (K,), labels (K,) = 1 + class)``."""
        return decode_centernet(output, self.num_classes, self.stride, k, score_threshold, iou_threshold,
                                image_size)


def decode_centernet(output, num_classes: int, stride: int, k: int = 20, score_threshold: float = 0.05,
                     iou_threshold: float = 0.5, image_size=None):
    """Peaks of the heatmap (a cell equal to its 3×3 max pool), the top ``k`` per image over all classes,
    boxes from size and offset, then class-wise NMS (``iou_threshold``; None skips it)."""
    from convlens.vision.ops import batched_nms, clip_boxes_to_image

    out = np.asarray(getattr(output, "_data", output), np.float32)
    heat = 1 / (1 + np.exp(-out[:, :num_classes]))
    n, c, h, w = heat.shape
    padded = np.pad(heat, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-1)
    win = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))
    peaks = heat * (heat >= win.max(axis=(-1, -2)))
    flat = peaks.reshape(n, -1)
    k = min(k, flat.shape[1])
    top = np.argpartition(-flat, k - 1, axis=1)[:, :k]
    results = []
    for i in range(n):  # one image's k candidates at a time (k ≤ 20): the NMS is per image anyway
        idx = top[i][flat[i, top[i]] > score_threshold]
        cls, rest = np.divmod(idx, h * w)
        ys, xs = np.divmod(rest, w)
        scores = flat[i, idx]
        bw, bh = np.maximum(out[i, c, ys, xs], 0), np.maximum(out[i, c + 1, ys, xs], 0)  # a size is >= 0
        cx, cy = xs + out[i, c + 2, ys, xs], ys + out[i, c + 3, ys, xs]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1) * stride
        if image_size is not None:
            boxes = clip_boxes_to_image(boxes, image_size)
        labels = cls + 1
        if iou_threshold is not None and len(idx):
            keep = batched_nms(boxes, scores, labels, iou_threshold)
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        order = np.argsort(-scores, kind="stable")
        results.append((boxes[order].astype(np.float32), scores[order].astype(np.float32),
                        labels[order].astype(np.int64)))
    return results


def unet_small(in_channels: int = 1, num_classes: int = 10, widths=(8, 16, 32, 64), input_size=None):
    """U-Net-small: segmentation into background + num_classes; fully convolutional (any image size)."""
    return UNetSmall(in_channels, num_classes, tuple(widths))


def centernet_small(in_channels: int = 1, num_classes: int = 10, widths=(16, 24, 32, 64), head_width: int = 32,
                    input_size=None):
    """CenterNet-small: anchor-free detection (centre heatmap + size + offset, stride 4); any image size."""
    return CenterNetSmall(in_channels, num_classes, tuple(widths), head_width)


DENSE_TASKS = {"unet-small": "segment", "centernet-small": "detect"}
