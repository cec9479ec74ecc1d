"""Convolution layers: one `_ConvNd` for 1, 2 and 3 spatial dimensions, and thin named subclasses."""

from __future__ import annotations

import math
import numbers

import numpy as np

from convlens.devices import check_device
from convlens.dtypes import float_or_default
from convlens.nn import init
from convlens.nn.functional.conv import conv as _conv
from convlens.nn.functional.conv_transpose import conv_transpose, transposed_output_size
from convlens.nn.functional.padding import PADDING_MODES
from convlens.nn.modules.module import Module, Parameter
from convlens.nn.shape import check_input, conv_output_size, ntuple


def _short(value: tuple) -> int | tuple:
    """(5, 5) → 5 for messages; unequal entries stay a tuple."""
    return value[0] if len(set(value)) == 1 else value


class _ConvNd(Module):
    """A bank of K learnable filters slid over an input with C channels and `n` spatial axes.

    Weight shape (out_channels, in_channels/groups, *kernel_size), bias (out_channels,). Defaults as
    PyTorch: weight ~ kaiming_uniform_(a=√5), i.e. U(±1/√fan_in), bias ~ U(±1/√fan_in),
    fan_in = in_channels/groups · ∏kernel_size. Parameters: (∏F · C/groups)·K + K.

    Shape:
        input (N, C_in, *spatial) or (C_in, *spatial) → output (N, C_out, *spatial_out) with, per axis,
        W_out = ⌊(W + 2P − D·(F − 1) − 1)/S⌋ + 1 (`convlens.nn.conv_output_size`).
    """

    _dims = 0
    _transposed = False  # ConvTranspose: weight (in_channels, out_channels/groups, *kernel_size)

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__()
        check_device(device, type(self).__name__)
        n = self._dims
        name = type(self).__name__
        for arg, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name}: {arg} must be a positive integer, got {value!r}")
        where = f"{name}({in_channels}, {out_channels}, kernel_size={kernel_size})"
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size = ntuple(kernel_size, n, "kernel_size", where, minimum=1)
        self._where = f"{name}({in_channels}, {out_channels}, kernel_size={_short(self.kernel_size)})"
        where = self._where
        self.stride = ntuple(stride, n, "stride", where, minimum=1)
        self.dilation = ntuple(dilation, n, "dilation", where, minimum=1)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{where}: padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{where}: padding='same' is not supported for strided convolutions, "
                                 f"got stride={_short(self.stride)}")
            self.padding = padding
        else:
            self.padding = ntuple(padding, n, "padding", where, minimum=0)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{where}: groups={groups} must divide both in_channels ({in_channels}) "
                             f"and out_channels ({out_channels})")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{where}: padding_mode must be one of {', '.join(map(repr, PADDING_MODES))}, "
                             f"got {padding_mode!r}")
        self.padding_mode = padding_mode
        dtype = float_or_default(dtype)
        if self._transposed:
            shape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        else:
            shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dtype))
        self.bias = Parameter(np.empty(self.out_channels, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def _padding_pairs(self) -> tuple:
        if self.padding == "valid":
            return (0,) * self._dims
        if self.padding == "same":  # total D·(F−1): the output keeps the input's size
            totals = [d * (f - 1) for f, d in zip(self.kernel_size, self.dilation)]
            return tuple((t // 2, t - t // 2) for t in totals)
        return self.padding

    def forward(self, input, activation=None):
        """``activation="relu"`` fuses a following ReLU into the same pass (see `nn.Sequential`)."""
        unbatched = input.ndim == self._dims + 1
        if unbatched:
            input = input.unsqueeze(0)
        check_input(input.shape, self._dims, self._where, channels=self.in_channels)
        out = _conv(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
                    self.padding_mode, dims=self._dims, name=self._where, activation=activation)
        return out.squeeze(0) if unbatched else out

    def output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        check_input((1,) + input_shape, self._dims, self._where, channels=self.in_channels)
        spatial = conv_output_size(input_shape[1:], self.kernel_size, self.stride, self._padding_pairs(),
                                   self.dilation)
        if any(s < 1 for s in spatial):
            raise ValueError(f"{self._where}: input of shape {input_shape} is too small for kernel_size="
                             f"{self.kernel_size} with padding={self.padding}, dilation={self.dilation}; "
                             f"the output would have spatial size {spatial}")
        return (self.out_channels,) + spatial

    def extra_repr(self) -> str:
        n = self._dims
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if getattr(self, "output_padding", (0,) * n) != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    """1-d convolution over signals (N, C, L); see `_ConvNd`.

    Shape:
        (N, C_in, L) → (N, C_out, L_out), L_out = ⌊(L + 2P − D·(F − 1) − 1)/S⌋ + 1.
    """

    _dims = 1


class Conv2d(_ConvNd):
    """2-d convolution over images (N, C, H, W); see `_ConvNd`.

    Shape:
        (N, C_in, H, W) → (N, C_out, H_out, W_out), H_out = ⌊(H + 2P − D·(F − 1) − 1)/S⌋ + 1, likewise W.
    """

    _dims = 2


class Conv3d(_ConvNd):
    """3-d convolution over volumes (N, C, D, H, W), e.g. video or MRI; see `_ConvNd`.

    Shape:
        (N, C_in, D, H, W) → (N, C_out, D_out, H_out, W_out), each axis as in Conv1d.
    """

    _dims = 3


class _ConvTransposeNd(_ConvNd):
    """A transposed convolution ("deconvolution", the adjoint of a convolution): each input cell spreads
    its value times the kernel over a window of the output, as in decoders, U-Nets and GANs' generators.

    Weight (in_channels, out_channels/groups, *kernel_size), bias (out_channels,), initialised as
    PyTorch (fan_in from out_channels/groups · ∏kernel_size). ``forward(input, output_size=None)``:
    `output_size` picks the output_padding that gives that size, as PyTorch.

    Shape:
        (N, C_in, *spatial) or (C_in, *spatial) → (N, C_out, *spatial_out) with, per axis,
        W_out = (W − 1)·S − 2P + D·(F − 1) + output_padding + 1.
    """

    _transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None,
                 dtype=None):
        name = type(self).__name__
        if isinstance(padding, str):
            raise ValueError(f"{name}: padding must be an int or a tuple (no 'same'/'valid' for transposed "
                             f"convolutions), got {padding!r}")
        if padding_mode != "zeros":
            raise ValueError(f"{name}: only padding_mode='zeros' is supported for transposed convolutions, "
                             f"got {padding_mode!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device=device, dtype=dtype)
        self.output_padding = ntuple(output_padding, self._dims, "output_padding", self._where, minimum=0)
        if any(op >= s and op >= d for op, s, d in zip(self.output_padding, self.stride, self.dilation)):
            raise ValueError(f"{self._where}: output_padding {self.output_padding} must be smaller than either "
                             f"stride {self.stride} or dilation {self.dilation}")

    def _output_padding(self, input_shape, output_size):
        """The output_padding that gives `output_size` (the last `dims` entries count), as PyTorch."""
        if output_size is None:
            return self.output_padding
        sizes = tuple(output_size)[-self._dims:]
        smallest = transposed_output_size(input_shape[-self._dims:], self.kernel_size, self.stride, self.padding,
                                          (0,) * self._dims, self.dilation)
        extra = tuple(o - s for o, s in zip(sizes, smallest))
        if any(e < 0 or e >= max(st, d) for e, st, d in zip(extra, self.stride, self.dilation)):
            largest = tuple(s + max(st, d) - 1 for s, st, d in zip(smallest, self.stride, self.dilation))
            raise ValueError(f"{self._where}: requested an output size of {sizes}, but valid sizes range from "
                             f"{smallest} to {largest} (for an input of {tuple(input_shape)})")
        return extra

    def forward(self, input, output_size=None):
        unbatched = input.ndim == self._dims + 1
        if unbatched:
            input = input.unsqueeze(0)
        check_input(input.shape, self._dims, self._where, channels=self.in_channels)
        out = conv_transpose(input, self.weight, self.bias, self.stride, self.padding,
                             self._output_padding(input.shape, output_size), self.groups, self.dilation,
                             dims=self._dims, name=self._where)
        return out.squeeze(0) if unbatched else out

    def output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        check_input((1,) + input_shape, self._dims, self._where, channels=self.in_channels)
        return (self.out_channels,) + transposed_output_size(input_shape[1:], self.kernel_size, self.stride,
                                                             self.padding, self.output_padding, self.dilation)


class ConvTranspose1d(_ConvTransposeNd):
    """Transposed 1-d convolution; see `_ConvTransposeNd`.

    Shape:
        (N, C_in, L) → (N, C_out, L_out), L_out = (L − 1)·S − 2P + D·(F − 1) + output_padding + 1.
    """

    _dims = 1


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed 2-d convolution (upsampling by a learned kernel); see `_ConvTransposeNd`.

    Shape:
        (N, C_in, H, W) → (N, C_out, H_out, W_out), H_out = (H − 1)·S − 2P + D·(F − 1) + output_padding + 1.
    """

    _dims = 2


class ConvTranspose3d(_ConvTransposeNd):
    """Transposed 3-d convolution; see `_ConvTransposeNd`.

    Shape:
        (N, C_in, D, H, W) → (N, C_out, D_out, H_out, W_out), each axis as in ConvTranspose1d.
    """

    _dims = 3
