"""airbench-style fast-training CIFAR-10 nets, written from Keller Jordan's description (2024).

airbench94: a frozen 2×2 patch-whitening conv (24 channels), then three blocks of

    conv 3×3 → max pool 2 → batch norm (no learnable scale) → GELU → conv 3×3 → batch norm → GELU

with 64, 256 and 256 channels, a global max pool and a bias-free linear layer whose output is multiplied
by a fixed 1/9. For 3×32×32 input: 32 → 31 (whitening, no padding) → 15 → 7 → 3 → 1; about 118 M
multiply-adds (236 MFLOP) per image forward.

The whitening layer is a `Conv2d` whose weight is fitted to the training set at the start of a run
(`PatchWhitening.fit`, `prepare_model`) and then frozen: with v₁…v_d (d = C·k·k) the eigenvectors of the
2×2-patch second-moment matrix E[p pᵀ] and λ₁ ≥ … ≥ λ_d its eigenvalues, output channel i is
vᵢ·p / √(λᵢ + ε) and channel d + i its negative, so that the GELU after it sees each whitened direction
with both signs. The eigenvalues and eigenvectors are buffers: they travel in every checkpoint, so a
resumed run (or a loaded model) never refits them.

The nets are flat `nn.Sequential`s with descriptive names, like the rest of the zoo.
"""

from __future__ import annotations

import numpy as np

from convlens import nn

__all__ = ["PatchWhitening", "Mul", "airbench", "airbench94", "airbench93", "prepare_model",
           "patch_moments", "AIRBENCH94_WIDTHS", "AIRBENCH93_WIDTHS"]

AIRBENCH94_WIDTHS = (64, 256, 256)
# convlens's sizing of a net with about half of airbench94's multiply-adds (54 M vs 118 M per image); the
# published airbench93 figure (93 % with about half the compute) is not reproduced with this exact net.
AIRBENCH93_WIDTHS = (64, 128, 128)


def _patches(images: np.ndarray, k: int) -> np.ndarray:
    """All k×k patches of (N, C, H, W) images as rows of length C·k·k (channel-major, as a conv weight)."""
    n, c, h, w = images.shape
    win = np.lib.stride_tricks.sliding_window_view(images, (k, k), axis=(2, 3))  # (N, C, H', W', k, k)
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k)


def patch_moments(images, kernel_size: int = 2, chunk: int = 500) -> np.ndarray:
    """E[p pᵀ] over every ``kernel_size``² patch p of (N, C, H, W) ``images``, in float64 (uncentred:
    the inputs are normalised first, so their mean is near zero)."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError(f"patch_moments: expected images of shape (N, C, H, W), got {x.shape}")
    d = x.shape[1] * kernel_size * kernel_size
    total, count = np.zeros((d, d)), 0
    for i in range(0, len(x), chunk):  # chunks keep the patch matrix small (500 CIFAR images: 46 MB)
        p = _patches(x[i:i + chunk], kernel_size)
        total += p.T @ p
        count += len(p)
    return total / max(count, 1)


class PatchWhitening(nn.Conv2d):
    """A k×k conv with 2·C·k² outputs whose (frozen) weight whitens the training set's k×k patches.

    Before `fit` the weight is the identity on the patch coordinates (eigenvectors = I, eigenvalues = 1),
    so an unfitted layer is still a sensible conv. The bias is an ordinary trainable parameter.

    Shape:
        (N, C, H, W) → (N, 2·C·k², H − k + 1, W − k + 1).
    """

    separate_group = True  # its own optimizer group (convlens.train.parts.param_groups): bias trained early only

    def __init__(self, in_channels: int = 3, kernel_size: int = 2, eps: float = 5e-4):
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"PatchWhitening: in_channels must be a positive integer, got {in_channels!r}")
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1:
            raise ValueError(f"PatchWhitening: kernel_size must be a positive integer, got {kernel_size!r}")
        d = in_channels * kernel_size * kernel_size
        super().__init__(in_channels, 2 * d, kernel_size, padding=0, bias=True)
        self.eps = float(eps)
        self.weight.requires_grad_(False)
        self.register_buffer("eigenvalues", np.ones(d, dtype=np.float32))
        self.register_buffer("eigenvectors", np.eye(d, dtype=np.float32))
        self.bias._data[...] = 0.0
        self._set_weight()

    def _set_weight(self) -> None:
        vals = self.eigenvalues._data.astype(np.float64)
        vecs = self.eigenvectors._data.astype(np.float64)  # rows are eigenvectors
        scaled = vecs / np.sqrt(vals + self.eps)[:, None]
        w = np.concatenate([scaled, -scaled]).reshape(self.weight.shape)
        self.weight._data[...] = w.astype(self.weight.dtype)

    def fit(self, images) -> PatchWhitening:
        """Set the weight from (N, C, H, W) training images (already normalised as the net will see them)."""
        x = np.asarray(images)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"PatchWhitening.fit: expected images of shape (N, {self.in_channels}, H, W), "
                             f"got {x.shape}")
        vals, vecs = np.linalg.eigh(patch_moments(x, self.kernel_size[0]))  # ascending
        order = np.argsort(vals)[::-1]
        self.eigenvalues._data[...] = vals[order]
        self.eigenvectors._data[...] = vecs[:, order].T
        self._set_weight()
        return self

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, eps={self.eps:g}, frozen weight"


class Mul(nn.Module):
    """Multiply by a fixed number (not a parameter): airbench's output scale.

    Shape:
        any → the same.
    """

    def __init__(self, scale: float):
        super().__init__()
        self.scale = float(scale)

    def forward(self, input):
        return input * self.scale

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}"


def _conv(cin: int, cout: int) -> nn.Conv2d:
    """3×3 'same' conv without bias (the batch norm after it shifts); its first `cin` filters start as
    the identity (Dirac) so that each block starts close to passing its input through."""
    conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
    w = conv.weight._data
    k = min(cin, cout)
    w[:k] = 0.0
    w[np.arange(k), np.arange(k), 1, 1] = 1.0
    return conv


def _norm(c: int, momentum: float, eps: float) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(c, eps=eps, momentum=momentum)
    bn.weight.requires_grad_(False)  # no learnable scale: γ stays 1 (the next conv rescales anyway)
    return bn


def airbench(widths=AIRBENCH94_WIDTHS, in_channels: int = 3, num_classes: int = 10, input_size=32,
             whiten_kernel_size: int = 2, bn_momentum: float = 0.4, bn_eps: float = 1e-12,
             scale: float = 1 / 9):
    """An airbench-style net with block widths `widths` (see the module docstring).

    `bn_momentum` is torch's (the weight of the new batch statistics: 0.4, i.e. airbench's 0.6 the other
    way round). Any input with at least 8×8 pixels works (the global max pool ends it).

    Shape:
        (N, C, H, W) → (N, 2·C·k², H−1, W−1) → (N, w₁, ⌊(H−1)/2⌋, …) → … → (N, w₃) → (N, num_classes).
    """
    where = f"airbench(widths={tuple(widths)}, in_channels={in_channels}, num_classes={num_classes})"
    widths = tuple(widths)
    for key, v in [("in_channels", in_channels), ("num_classes", num_classes), *(
            (f"widths[{i}]", w) for i, w in enumerate(widths))]:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{where}: {key} must be a positive integer, got {v!r}")
    if not widths:
        raise ValueError(f"{where}: widths must name at least one block")
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    smallest = (whiten_kernel_size - 1) + 2 ** len(widths)
    if len(size) != 2 or min(size) < smallest:
        raise ValueError(f"{where}: input_size must be at least {smallest}×{smallest} for {len(widths)} "
                         f"blocks, got {input_size!r}")
    model = nn.Sequential()
    whiten = PatchWhitening(in_channels, whiten_kernel_size)
    model.add_module("whiten", whiten)
    model.add_module("whiten_gelu", nn.GELU())
    cin = whiten.out_channels
    for b, width in enumerate(widths, 1):
        model.add_module(f"conv{b}_1", _conv(cin, width))
        model.add_module(f"pool{b}", nn.MaxPool2d(2))
        model.add_module(f"bn{b}_1", _norm(width, bn_momentum, bn_eps))
        model.add_module(f"gelu{b}_1", nn.GELU())
        model.add_module(f"conv{b}_2", _conv(width, width))
        model.add_module(f"bn{b}_2", _norm(width, bn_momentum, bn_eps))
        model.add_module(f"gelu{b}_2", nn.GELU())
        cin = width
    model.add_module("pool", nn.AdaptiveMaxPool2d(1))
    model.add_module("flatten", nn.Flatten())
    model.add_module("fc", nn.Linear(cin, num_classes, bias=False))
    model.add_module("scale", Mul(scale))
    return model


def airbench94(in_channels: int = 3, num_classes: int = 10, input_size=32):
    """airbench94 (Keller Jordan, 2024): whitening + 3 conv blocks of 64, 256, 256; 1.97 M parameters.

    94.01 % on CIFAR-10 in 9.9 epochs as published (on a GPU); see docs/recipes.md for convlens's runs.
    """
    return airbench(AIRBENCH94_WIDTHS, in_channels, num_classes, input_size)


def airbench93(in_channels: int = 3, num_classes: int = 10, input_size=32):
    """An airbench93-size net: airbench94 with blocks of 64, 128, 128 (about half its FLOPs); 0.57 M parameters.
    """
    return airbench(AIRBENCH93_WIDTHS, in_channels, num_classes, input_size)


def prepare_model(model, images, limit: int = 5000) -> int:
    """Fit every `PatchWhitening` layer of `model` to the first `limit` of (N, C, H, W) `images` (as the net
    will see them: normalised). Returns how many layers were fitted (0 for a model without one)."""
    layers = [m for m in model.modules() if isinstance(m, PatchWhitening)]
    for layer in layers:
        layer.fit(np.asarray(images)[:limit])
    return len(layers)
