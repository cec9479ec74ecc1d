"""Fully connected layer and shape helpers: Linear, Flatten, Dropout, Identity."""

from __future__ import annotations

import math
import numbers

import numpy as np

from convlens.devices import check_device
from convlens.dtypes import float_or_default
from convlens.errors import ShapeError
from convlens.nn import functional as F
from convlens.nn import init
from convlens.nn.modules.module import Module, Parameter


class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. to remove a layer); arguments are ignored.

    Shape:
        (*) → (*)
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input

    def output_shape(self, input_shape):
        return tuple(input_shape)


class Linear(Module):
    """y = x Wᵀ + b, every output connected to every input.

    Weight (out_features, in_features) ~ kaiming_uniform_(a=√5) = U(±1/√in_features), bias ~ the same
    bound, as PyTorch. Parameters: in_features·out_features + out_features.

    Shape:
        (*, in_features) → (*, out_features)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        check_device(device, "Linear")
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"Linear: {name} must be a positive integer, got {value!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        dtype = float_or_default(dtype)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype=dtype))
        self.bias = Parameter(np.empty(self.out_features, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def _check(self, shape) -> None:
        if len(shape) < 1 or shape[-1] != self.in_features:
            rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
            raise ShapeError(f"{self._get_name()}({self.extra_repr()}): mat1 and mat2 shapes cannot be multiplied "
                             f"({rows}x{shape[-1] if shape else 0} and {self.in_features}x{self.out_features}): "
                             f"expected input with last dimension {self.in_features}, got {tuple(shape)}")

    def forward(self, input):
        self._check(input.shape)
        return F.linear(input, self.weight, self.bias)

    def output_shape(self, input_shape):
        self._check(tuple(input_shape))
        return tuple(input_shape)[:-1] + (self.out_features,)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Flatten(Module):
    """Merges axes start_dim..end_dim into one; by default everything but the batch axis.

    Shape:
        (N, *dims) → (N, ∏dims) with the defaults.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return F.flatten(input, self.start_dim, self.end_dim)

    def output_shape(self, input_shape):
        full = (1,) + tuple(input_shape)  # the batch axis counts for start_dim/end_dim
        n = len(full)
        if not (-n <= self.start_dim < n and -n <= self.end_dim < n) or self.start_dim % n > self.end_dim % n:
            raise ValueError(f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim}): invalid for an "
                             f"input of shape {tuple(input_shape)} (plus the batch axis)")
        start, end = self.start_dim % n, self.end_dim % n
        out = full[:start] + (int(np.prod(full[start:end + 1])),) + full[end + 1:]
        if start == 0:
            raise ValueError(f"Flatten(start_dim={self.start_dim}): output_shape() needs the batch axis kept")
        return out[1:]

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """During training zeroes each element with probability p and scales the others by 1/(1 − p);
    the identity in evaluation mode (`model.eval()`).

    Shape:
        (*) → (*)
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability between 0 and 1, got {p!r}")
        self.p, self.inplace = float(p), inplace

    def forward(self, input):
        return F.dropout(input, self.p, self.training)

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class _DropoutNd(Dropout):
    """Channel-wise dropout: each (sample, channel) is zeroed as a whole with probability p, the kept
    ones scaled by 1/(1 − p); the identity in evaluation mode."""

    _fn = None

    def forward(self, input):
        return type(self)._fn(input, self.p, self.training)


class Dropout1d(_DropoutNd):
    """Channel-wise dropout of sequences; see `_DropoutNd`.

    Shape:
        (N, C, L) → (N, C, L), or (C, L) → (C, L)
    """

    _fn = staticmethod(F.dropout1d)


class Dropout2d(_DropoutNd):
    """Channel-wise dropout of feature maps; see `_DropoutNd` (a 3-d input is read as (N, C, L), as
    PyTorch 2 does).

    Shape:
        (N, C, H, W) → (N, C, H, W)
    """

    _fn = staticmethod(F.dropout2d)


class Dropout3d(_DropoutNd):
    """Channel-wise dropout of volumes; see `_DropoutNd`.

    Shape:
        (N, C, D, H, W) → (N, C, D, H, W), or (C, D, H, W) → (C, D, H, W)
    """

    _fn = staticmethod(F.dropout3d)


class Unflatten(Module):
    """Splits dimension `dim` into `unflattened_size` (the inverse of Flatten).

    Shape:
        (*, S, *) → (*, U₁, …, U_n, *) with ∏U = S.
    """

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, input):
        return input.unflatten(self.dim, self.unflattened_size)

    def output_shape(self, input_shape):
        full = (1,) + tuple(input_shape)
        d = self.dim % len(full)
        if d == 0:
            raise ValueError(f"Unflatten(dim={self.dim}): output_shape() needs the batch axis kept")
        return (full[:d] + self.unflattened_size + full[d + 1:])[1:]

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
