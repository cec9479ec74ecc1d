"""Upsampling layers over `convlens.nn.functional.interpolate`."""

from __future__ import annotations

from convlens.nn.functional.interpolate import MODES, interpolate
from convlens.nn.modules.module import Module


class Upsample(Module):
    """Resize (N, C, *spatial) inputs to `size` or by `scale_factor` with `mode` (nearest, nearest-exact,
    linear, bilinear, bicubic, trilinear, area), as ``torch.nn.Upsample``.

    Shape:
        (N, C, *spatial) → (N, C, *size) or (N, C, ⌊spatial·scale_factor⌋).
    """

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"Upsample: mode must be one of {', '.join(MODES)}, got {mode!r}")
        if (size is None) == (scale_factor is None):
            raise ValueError("Upsample: give exactly one of size and scale_factor")
        self.size, self.mode, self.align_corners = size, mode, align_corners
        self.scale_factor = float(scale_factor) if isinstance(scale_factor, int | float) else scale_factor
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                           self.recompute_scale_factor)

    def output_shape(self, input_shape):
        import math

        spatial = tuple(input_shape)[1:]
        if self.size is not None:
            sizes = tuple(self.size) if isinstance(self.size, tuple | list) else (self.size,) * len(spatial)
        else:
            factors = self.scale_factor if isinstance(self.scale_factor, tuple | list) else (self.scale_factor,) * len(spatial)
            sizes = tuple(int(math.floor(n * f)) for n, f in zip(spatial, factors))
        return (input_shape[0],) + tuple(sizes)

    def extra_repr(self) -> str:
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return what + f", mode='{self.mode}'" + ("" if self.align_corners is None else
                                                f", align_corners={self.align_corners}")


class UpsamplingNearest2d(Upsample):
    """Nearest-neighbour upsampling of images.

    Shape:
        (N, C, H, W) → (N, C, H_out, W_out)
    """

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Bilinear upsampling of images with align_corners=True (as PyTorch's class).

    Shape:
        (N, C, H, W) → (N, C, H_out, W_out)
    """

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
