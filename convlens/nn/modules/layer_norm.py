"""Per-sample normalisation layers: LayerNorm, GroupNorm, InstanceNorm1d/2d/3d, LocalResponseNorm
(see `convlens.nn.functional.layer_norm` for the formulas)."""

from __future__ import annotations

import numbers

import numpy as np

from convlens.dtypes import float_or_default
from convlens.errors import ShapeError
from convlens.nn.functional.layer_norm import (
    _check_eps,
    group_norm,
    instance_norm,
    layer_norm,
    local_response_norm,
)
from convlens.nn.modules.module import Module, Parameter
from convlens.nn.modules.normalization import _BatchNorm


def _positive(where: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{where}: {name} must be a positive integer, got {value!r}")
    return int(value)


class LayerNorm(Module):
    """y = (x − E[x])/√(Var[x] + ε)·γ + β over the last dims `normalized_shape` of each sample, with
    γ = 1, β = 0 of that shape (``elementwise_affine``; ``bias=False`` drops β), as PyTorch.

    Shape:
        (*, *normalized_shape) → the same shape.
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else tuple(normalized_shape)
        for s in shape:
            _positive("LayerNorm", "normalized_shape", s)
        self.normalized_shape = tuple(int(s) for s in shape)
        self.eps = _check_eps("LayerNorm", eps)
        self.elementwise_affine = bool(elementwise_affine)
        dtype = float_or_default(dtype)
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        if self.weight is not None:
            self.weight._data[...] = 1
        if self.bias is not None:
            self.bias._data[...] = 0

    def forward(self, input):
        return layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Group normalisation: the channels in `num_groups` groups, each group of each sample standardised
    over its channels and positions, then a per-channel γ (1) and β (0) when ``affine``.

    Shape:
        (N, C, *) → the same shape, C = num_channels divisible by num_groups.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, dtype=None):
        super().__init__()
        self.num_groups = _positive("GroupNorm", "num_groups", num_groups)
        self.num_channels = _positive("GroupNorm", "num_channels", num_channels)
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        self.eps, self.affine = _check_eps("GroupNorm", eps), bool(affine)
        dtype = float_or_default(dtype)
        if affine:
            self.weight = Parameter(np.ones(self.num_channels, dtype=dtype))
            self.bias = Parameter(np.zeros(self.num_channels, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        if self.affine:
            self.weight._data[...] = 1
            self.bias._data[...] = 0

    def forward(self, input):
        if input.ndim < 2 or input.shape[1] != self.num_channels:
            raise ShapeError(f"GroupNorm({self.num_groups}, {self.num_channels}): expected input (N, "
                             f"{self.num_channels}, *), got shape {input.shape}")
        return group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class _InstanceNorm(_BatchNorm):
    """Each channel of each sample standardised over its positions. As PyTorch: no affine γ, β and no
    running statistics by default; with ``track_running_stats=True`` evaluation uses running stats.

    Shape:
        see the subclasses; unbatched inputs (without N) are accepted.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = False,
                 track_running_stats: bool = False, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device=device, dtype=dtype)

    def forward(self, input):
        unbatched = input.ndim == self._ranks[0] - 1
        if unbatched:
            input = input.unsqueeze(0)
        self._check(input.shape)
        use_input_stats = self.training or not self.track_running_stats
        out = instance_norm(input, self.running_mean, self.running_var, self.weight, self.bias,
                               use_input_stats, 0.1 if self.momentum is None else self.momentum, self.eps)
        return out.squeeze(0) if unbatched else out

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of sequences; see `_InstanceNorm`.

    Shape:
        (N, C, L) → (N, C, L), or (C, L) → (C, L)
    """

    _ranks, _layout = (3,), "(N, C, L)"


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of images (style transfer's normalisation); see `_InstanceNorm`.

    Shape:
        (N, C, H, W) → (N, C, H, W), or (C, H, W) → (C, H, W)
    """

    _ranks, _layout = (4,), "(N, C, H, W)"


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation of volumes; see `_InstanceNorm`.

    Shape:
        (N, C, D, H, W) → (N, C, D, H, W), or (C, D, H, W) → (C, D, H, W)
    """

    _ranks, _layout = (5,), "(N, C, D, H, W)"


class LocalResponseNorm(Module):
    """AlexNet's local response normalisation across `size` neighbouring channels.

    Shape:
        (N, C, *) → the same shape.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size = _positive("LocalResponseNorm", "size", size)
        self.alpha, self.beta, self.k = float(alpha), float(beta), float(k)

    def forward(self, input):
        return local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
