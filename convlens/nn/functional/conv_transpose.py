"""Transposed convolution ("deconvolution") in 1, 2 or 3 spatial dimensions, written once on top of
convolution (conv.py).

A convolution y = A(w)·x is linear in x; the transposed convolution is its adjoint, y = A(w)ᵀ·x: every
input cell spreads its value, weighted by the kernel, over a window of the (larger) output. So

    forward:   y  = the convolution's input gradient, for "upstream gradient" x   (conv._input_grad)
    backward:  dx = A(w)·dy, a convolution of dy with the same kernel                (conv.ConvNd)
               dw = that convolution's weight gradient, with x in the role of dY  (conv.ConvNd)

and dx, dw come from one forward and one backward call of the convolution Function. The weight has
PyTorch's transposed layout (in_channels, out_channels/groups, *kernel); per axis

    L_out = (L − 1)·S − 2P + D·(F − 1) + output_padding + 1,

where output_padding (< stride or < dilation) picks one of the S sizes that the convolution maps to L.
"""

from __future__ import annotations

import numbers

import numpy as np

from convlens.autograd import Function
from convlens.errors import ShapeError
from convlens.nn.functional import conv as C
from convlens.nn.functional.linear import column_sums
from convlens.nn.shape import ntuple
from convlens.tensor import Tensor


def transposed_output_size(size, kernel, stride, padding, output_padding, dilation) -> tuple[int, ...]:
    return tuple((n - 1) * s - 2 * p + d * (f - 1) + op + 1
                 for n, f, s, p, op, d in zip(size, kernel, stride, padding, output_padding, dilation))


class ConvTransposeNd(Function):
    """y = A(w)ᵀ·x + b for x (N, C_in, *L), w (C_in, C_out/G, *F), b (C_out,) or None."""

    def forward(ctx, x, w, b, stride, padding, output_padding, dilation, groups):
        kernel, in_size = w.shape[2:], x.shape[2:]
        out_size = transposed_output_size(in_size, kernel, stride, padding, output_padding, dilation)
        c_out = w.shape[1] * groups
        pads = tuple((p, p) for p in padding)
        padded = tuple(o + 2 * p for o, p in zip(out_size, padding))
        # the convolution's padded input is only read for its shape: a zero-stride stand-in
        stand_in = np.broadcast_to(np.zeros((), dtype=x.dtype), (1, *padded, c_out))
        gl = np.ascontiguousarray(C.channels_last(x))  # x plays the conv's output gradient (N, *L, C_in)
        y = C._input_grad(gl, stand_in, w, C.weight_matrix(w, groups), (x.shape[0], c_out, *out_size), in_size,
                          stride, pads, dilation, groups, "zeros")  # (N, *L_out, C_out), channels-last
        if b is not None:
            y += b
        ctx.save_for_backward(x, w)
        ctx.geom = stride, pads, dilation, groups
        return C.channels_first(y)

    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        stride, pads, dilation, groups = ctx.geom
        conv = C.ConvNd()  # A(w)·dy and its weight gradient, from the convolution's own Function
        conv.needs_input_grad = (False, ctx.needs_input_grad[1], False)
        dx_full = conv.forward(grad, w, None, stride, pads, dilation, groups, "zeros")  # (N, C_in, *L')
        inner = (slice(None), slice(None)) + tuple(slice(0, n) for n in x.shape[2:])
        gx = np.ascontiguousarray(dx_full[inner]) if ctx.needs_input_grad[0] else None
        gw = None
        if ctx.needs_input_grad[1]:
            # L' exceeds L when output_padding >= stride (allowed below the dilation): zeros there
            x_full = x if dx_full.shape == x.shape else np.zeros(dx_full.shape, x.dtype)
            if x_full is not x:
                x_full[inner] = x
            gw = conv.backward(x_full)[1]
        gb = None
        if ctx.needs_input_grad[2]:
            gb = column_sums(np.ascontiguousarray(C.channels_last(grad)).reshape(-1, grad.shape[1]))
        return gx, gw, gb


def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                   dims=None, name="conv_transpose"):
    """N-d transposed convolution behind `conv_transpose1d/2d/3d` (validates, then `ConvTransposeNd`)."""
    d = dims if dims is not None else input.ndim - 2
    where = name
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(f"{where}: expected Tensors for input and weight, got {type(input).__name__} and "
                        f"{type(weight).__name__}")
    if input.ndim != d + 2:
        raise ShapeError(f"{where}: expected a {d + 2}-d input {C._LAYOUT.get(d, '')}, got a {input.ndim}-d "
                         f"input of shape {input.shape}")
    if weight.ndim != d + 2:
        raise ShapeError(f"{where}: expected a {d + 2}-d weight (in_channels, out_channels/groups, *kernel), "
                         f"got shape {weight.shape}")
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1:
        raise ValueError(f"{where}: groups must be a positive integer, got {groups!r}")
    c_in = weight.shape[0]
    if input.shape[1] != c_in:
        raise ShapeError(f"{where}: weight of shape {weight.shape} expects input with {c_in} channels, "
                         f"got {input.shape}")
    if c_in % groups:
        raise ValueError(f"{where}: groups={groups} must divide in_channels ({c_in})")
    c_out = weight.shape[1] * groups
    if bias is not None and bias.shape != (c_out,):
        raise ShapeError(f"{where}: bias must have shape ({c_out},), got {bias.shape}")
    if input.dtype != weight.dtype or (bias is not None and bias.dtype != weight.dtype):
        raise ValueError(f"{where}: input ({input.dtype}), weight ({weight.dtype}) and bias must share a dtype")
    stride = ntuple(stride, d, "stride", where, minimum=1)
    padding = ntuple(padding, d, "padding", where, minimum=0)
    output_padding = ntuple(output_padding, d, "output_padding", where, minimum=0)
    dilation = ntuple(dilation, d, "dilation", where, minimum=1)
    if any(op >= s and op >= dl for op, s, dl in zip(output_padding, stride, dilation)):
        raise ValueError(f"{where}: output_padding {output_padding} must be smaller than either stride "
                         f"{stride} or dilation {dilation}")
    out = transposed_output_size(input.shape[2:], weight.shape[2:], stride, padding, output_padding, dilation)
    if any(o < 1 for o in out):
        raise ShapeError(f"{where}: input of shape {input.shape} with kernel {tuple(weight.shape[2:])}, "
                         f"stride {stride} and padding {padding} gives an empty output {out}")
    return ConvTransposeNd.apply(input, weight, bias, stride=stride, padding=padding,
                                 output_padding=output_padding, dilation=dilation, groups=int(groups))


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 1-d convolution (N, C_in, L) → (N, C_out, L_out); see the module docstring.

    Shape:
        L_out = (L − 1)·S − 2P + D·(F − 1) + output_padding + 1
    """
    return conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, 1,
                          "conv_transpose1d")


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 2-d convolution (N, C_in, H, W) → (N, C_out, H_out, W_out), as PyTorch's.

    Shape:
        H_out = (H − 1)·S − 2P + D·(F − 1) + output_padding + 1, likewise W_out
    """
    return conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, 2,
                          "conv_transpose2d")


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 3-d convolution (N, C_in, D, H, W) → (N, C_out, D_out, H_out, W_out).

    Shape:
        each spatial axis as in conv_transpose1d
    """
    return conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, 3,
                          "conv_transpose3d")
