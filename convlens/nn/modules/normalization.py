"""Batch normalisation layers: one `_BatchNorm` for (N, C, *) inputs, thin 1d/2d/3d subclasses."""

from __future__ import annotations

import numbers

import numpy as np

from convlens.devices import check_device
from convlens.dtypes import float_or_default
from convlens.nn import functional as F
from convlens.nn.modules.module import Module, Parameter
from convlens.tensor import Tensor


class _BatchNorm(Module):
    """y = (x − μ)/√(σ² + ε)·γ + β per channel.

    Training: μ, σ² are the batch's statistics over every axis but the channel axis, and the running
    stats are updated, r ← (1 − momentum)·r + momentum·stat (momentum=None: a cumulative average),
    with the unbiased variance. Evaluation (`eval()`): the running statistics. γ = 1, β = 0 initially
    (``bias=False``, keyword-only as in PyTorch 2.13: no β).

    Shape:
        see the subclasses; the output has the input's shape.
    """

    _ranks: tuple[int, ...] = ()
    _layout = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        check_device(device, type(self).__name__)
        name = type(self).__name__
        if isinstance(num_features, bool) or not isinstance(num_features, numbers.Integral) or num_features < 1:
            raise ValueError(f"{name}: num_features must be a positive integer, got {num_features!r}")
        if not isinstance(eps, numbers.Real) or eps < 0:
            raise ValueError(f"{name}({num_features}): eps must be a non-negative number, got {eps!r}")
        if momentum is not None and (not isinstance(momentum, numbers.Real) or not 0 <= momentum <= 1):
            raise ValueError(f"{name}({num_features}): momentum must be in [0, 1] or None, got {momentum!r}")
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        dtype = float_or_default(dtype)
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(num_features, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            for buffer in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(buffer, None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean._data[...] = 0
            self.running_var._data[...] = 1
            self.num_batches_tracked._data[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            self.weight._data[...] = 1
            if self.bias is not None:
                self.bias._data[...] = 0

    def _check(self, shape, batched: bool = True) -> None:
        where = f"{self._get_name()}({self.num_features})"
        ranks = self._ranks if batched else tuple(r - 1 for r in self._ranks)
        if len(shape) not in ranks:
            raise ValueError(f"{where}: expected a {' or '.join(f'{r}-d' for r in ranks)} input "
                             f"{self._layout if batched else '(C, *) without the batch axis'}, got shape {tuple(shape)}")
        channels = shape[1] if batched else shape[0]
        if channels != self.num_features:
            raise ValueError(f"{where}: expected input with {self.num_features} channels, got {tuple(shape)}")

    def forward(self, input: Tensor, activation: str | None = None) -> Tensor:
        """``activation="gelu"`` fuses a following exact GELU into the same pass, for inference in eval
        mode (see `nn.Sequential`)."""
        self._check(input.shape)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked._data += 1
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked._data)
        use_batch_stats = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if track else None, self.running_var if track else None,
                            self.weight, self.bias, use_batch_stats, factor, self.eps, activation=activation)

    def output_shape(self, input_shape):
        self._check(tuple(input_shape), batched=False)
        return tuple(input_shape)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of features (N, C) or sequences (N, C, L); see `_BatchNorm`.

    Shape:
        (N, C) → (N, C), (N, C, L) → (N, C, L)
    """

    _ranks, _layout = (2, 3), "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of images (N, C, H, W), one mean/variance per channel; see `_BatchNorm`.

    Shape:
        (N, C, H, W) → (N, C, H, W)
    """

    _ranks, _layout = (4,), "(N, C, H, W)"


class BatchNorm3d(_BatchNorm):
    """Batch normalisation of volumes (N, C, D, H, W); see `_BatchNorm`.

    Shape:
        (N, C, D, H, W) → (N, C, D, H, W)
    """

    _ranks, _layout = (5,), "(N, C, D, H, W)"
