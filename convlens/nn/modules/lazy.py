"""Lazy layers: `LazyLinear`, `LazyConv1d/2d/3d`, `LazyConvTranspose1d/2d/3d` and `LazyBatchNorm1d/2d/3d`
infer their input size (in_features, in_channels, num_features) from the first input they see, as in
PyTorch (the d2l textbook builds its networks this way).

Until then their parameters are `UninitializedParameter`s of no shape; the first call gives them their
shapes, initialises them as the eager layer would, and turns the module into that layer
(``type(m) is nn.Linear`` afterwards, as PyTorch's ``cls_to_become``). The Parameter objects stay the
same, so an optimizer built before the first call keeps working. Loading a state_dict into a lazy
layer materialises it with the saved shapes.
"""

from __future__ import annotations

import numpy as np

from convlens.dtypes import float_or_default
from convlens.nn.modules.conv import (
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose1d,
    ConvTranspose2d,
    ConvTranspose3d,
    _short,
)
from convlens.nn.modules.linear import Linear
from convlens.nn.modules.module import Parameter
from convlens.nn.modules.normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d


class UninitializedParameter(Parameter):
    """A parameter whose shape is not known yet; `materialize(shape)` gives it one (and makes it a
    plain `Parameter`)."""

    __slots__ = ()

    def __init__(self, requires_grad: bool = True, device=None, dtype=None):
        super().__init__(np.empty(0, dtype=float_or_default(dtype)), requires_grad)

    def materialize(self, shape, device=None, dtype=None) -> None:
        self._data = np.empty(tuple(shape), dtype=self.dtype if dtype is None else float_or_default(dtype))
        self.__class__ = Parameter

    def __repr__(self) -> str:
        return "<UninitializedParameter>"


class LazyModuleMixin:
    """Infers the input size on the first call (`initialize_parameters`), then becomes `cls_to_become`."""

    cls_to_become: type | None = None

    def has_uninitialized_params(self) -> bool:
        return any(isinstance(p, UninitializedParameter) for p in self._parameters.values())

    def forward(self, input, *args, **kwargs):
        if not hasattr(input, "shape"):
            raise TypeError(f"{type(self).__name__}: the first call needs a tensor input to infer its size")
        self._materialize(self._input_size(input.shape))
        return self.forward(input, *args, **kwargs)  # now the eager layer's forward

    def _materialize(self, size: int) -> None:
        self.initialize_parameters(int(size))
        self.reset_parameters()
        if self.cls_to_become is not None:
            self.__class__ = self.cls_to_become

    def _lazy_load(self, state_dict, prefix: str) -> None:
        """Materialise from a state_dict's weight shape (called by `Module.load_state_dict`)."""
        weight = state_dict.get(prefix + "weight")
        if weight is not None:
            self._materialize(self._size_from_weight(tuple(weight.shape)))


class LazyLinear(LazyModuleMixin, Linear):
    """A `Linear` whose in_features is inferred from the first input's last dimension.

    Shape:
        (*, H_in) → (*, out_features)
    """

    cls_to_become = Linear

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None):
        Linear.__init__(self, 1, out_features, bias, device, dtype)
        self.in_features = 0
        self.weight = UninitializedParameter(dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(dtype=dtype)

    @staticmethod
    def _input_size(shape) -> int:
        return shape[-1]

    @staticmethod
    def _size_from_weight(shape) -> int:
        return shape[1]

    def initialize_parameters(self, in_features: int) -> None:
        self.in_features = in_features
        self.weight.materialize((self.out_features, in_features))
        if self.bias is not None:
            self.bias.materialize((self.out_features,))


class _LazyConvMixin(LazyModuleMixin):
    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, dilation=1, groups: int = 1,
                 bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None, **extra):
        self.cls_to_become.__init__(self, groups, out_channels, kernel_size,
                                    stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias,
                                    padding_mode=padding_mode, device=device, dtype=dtype, **extra)
        self.in_channels = 0
        self.weight = UninitializedParameter(dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(dtype=dtype)

    def _input_size(self, shape) -> int:
        return shape[1] if len(shape) == self._dims + 2 else shape[0]

    def _size_from_weight(self, shape) -> int:
        return shape[0] if self._transposed else shape[1] * self.groups

    def initialize_parameters(self, in_channels: int) -> None:
        if in_channels % self.groups:
            raise ValueError(f"{type(self).__name__}: groups={self.groups} must divide the input's "
                             f"{in_channels} channels")
        self.in_channels = in_channels
        name = self.cls_to_become.__name__
        self._where = f"{name}({in_channels}, {self.out_channels}, kernel_size={_short(self.kernel_size)})"
        if self._transposed:
            shape = (in_channels, self.out_channels // self.groups) + self.kernel_size
        else:
            shape = (self.out_channels, in_channels // self.groups) + self.kernel_size
        self.weight.materialize(shape)
        if self.bias is not None:
            self.bias.materialize((self.out_channels,))


class LazyConv1d(_LazyConvMixin, Conv1d):
    """A `Conv1d` whose in_channels is inferred from the first input.

    Shape:
        as Conv1d.
    """

    cls_to_become = Conv1d


class LazyConv2d(_LazyConvMixin, Conv2d):
    """A `Conv2d` whose in_channels is inferred from the first input (d2l's LeNet is built of these).

    Shape:
        as Conv2d.
    """

    cls_to_become = Conv2d


class LazyConv3d(_LazyConvMixin, Conv3d):
    """A `Conv3d` whose in_channels is inferred from the first input.

    Shape:
        as Conv3d.
    """

    cls_to_become = Conv3d


class _LazyConvTransposeMixin(_LazyConvMixin):
    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0, groups: int = 1,
                 bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__(out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode, device,
                         dtype, output_padding=output_padding)


class LazyConvTranspose1d(_LazyConvTransposeMixin, ConvTranspose1d):
    """A `ConvTranspose1d` whose in_channels is inferred from the first input.

    Shape:
        as ConvTranspose1d.
    """

    cls_to_become = ConvTranspose1d


class LazyConvTranspose2d(_LazyConvTransposeMixin, ConvTranspose2d):
    """A `ConvTranspose2d` whose in_channels is inferred from the first input.

    Shape:
        as ConvTranspose2d.
    """

    cls_to_become = ConvTranspose2d


class LazyConvTranspose3d(_LazyConvTransposeMixin, ConvTranspose3d):
    """A `ConvTranspose3d` whose in_channels is inferred from the first input.

    Shape:
        as ConvTranspose3d.
    """

    cls_to_become = ConvTranspose3d


class _LazyBatchNormMixin(LazyModuleMixin):
    def __init__(self, eps: float = 1e-5, momentum=0.1, affine: bool = True, track_running_stats: bool = True,
                 device=None, dtype=None):
        self.cls_to_become.__init__(self, 1, eps, momentum, affine, track_running_stats, device=device, dtype=dtype)
        self.num_features = 0
        if affine:
            self.weight = UninitializedParameter(dtype=dtype)
            self.bias = UninitializedParameter(dtype=dtype)

    def has_uninitialized_params(self) -> bool:  # also without affine parameters: the buffers wait
        return self.num_features == 0

    def _input_size(self, shape) -> int:
        return shape[1]

    @staticmethod
    def _size_from_weight(shape) -> int:
        return shape[0]

    def _lazy_load(self, state_dict, prefix: str) -> None:
        mean = state_dict.get(prefix + "running_mean", state_dict.get(prefix + "weight"))
        if mean is not None:
            self._materialize(tuple(mean.shape)[0])

    def initialize_parameters(self, num_features: int) -> None:
        self.num_features = num_features
        if self.affine:
            self.weight.materialize((num_features,))
            self.bias.materialize((num_features,))
        if self.track_running_stats:
            dtype = self.running_mean.dtype
            self.running_mean._data = np.zeros(num_features, dtype=dtype)
            self.running_var._data = np.ones(num_features, dtype=dtype)


class LazyBatchNorm1d(_LazyBatchNormMixin, BatchNorm1d):
    """A `BatchNorm1d` whose num_features is inferred from the first input.

    Shape:
        as BatchNorm1d.
    """

    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyBatchNormMixin, BatchNorm2d):
    """A `BatchNorm2d` whose num_features is inferred from the first input.

    Shape:
        as BatchNorm2d.
    """

    cls_to_become = BatchNorm2d


class LazyBatchNorm3d(_LazyBatchNormMixin, BatchNorm3d):
    """A `BatchNorm3d` whose num_features is inferred from the first input.

    Shape:
        as BatchNorm3d.
    """

    cls_to_become = BatchNorm3d

