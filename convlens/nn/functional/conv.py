"""Convolution in 1, 2 or 3 spatial dimensions, written once.

A convolution is a linear sum of products: output channel k at position o is

    y[n, k, o] = b[k] + Σ_c Σ_t  w[k, c, t] · x_pad[n, c, o·S + t·D]

over the input channels c of k's group and the kernel taps t. Computed as one matrix product
("im2col"): every receptive field is copied into a row of a matrix `cols` (M = N·∏O rows,
∏F·C columns), and Y = cols · Wᵀ. The engine works channels-last internally — (N, *spatial, C) —
because then each receptive field is a run of contiguous channel vectors, which makes the copy cheap;
the public layout stays PyTorch's (N, C, *spatial): the result is a transposed *view* of the
channels-last array, and an input that is such a view costs nothing to turn back.

Backward (with G = dY as an (M, K) matrix):  dW = Gᵀ · cols,  db = Σ_M G, and the input gradient is
d cols = G · W scattered back onto the padded input ("col2im"). `algorithm` is the one place that picks
how a given layer is computed: a kernel that covers its whole input is a fully-connected layer; layers
with few channels sum their products directly in register tiles; stride-1 3×3 layers with many channels
use Winograd's F(2×2, 3×3); the rest im2col + GEMM. The compiled machinery for all of them lives in
convlens/kernels/; the measured thresholds are tabled in docs/performance.md.
"""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np

from convlens import parallel
from convlens.autograd import Function
from convlens.kernels import direct, im2col, polyphase, winograd
from convlens.nn.functional.linear import column_sums
from convlens.nn.functional.padding import PADDING_MODES, check_pad_fits, pad_array
from convlens.nn.shape import conv_output_size, ntuple

_LAYOUT = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


def channels_last(a: np.ndarray) -> np.ndarray:
    """(N, C, *spatial) → (N, *spatial, C) as a view (free when `a` is a view of channels-last memory)."""
    return np.moveaxis(a, 1, -1)


def channels_first(a: np.ndarray) -> np.ndarray:
    return np.moveaxis(a, -1, 1)


def weight_matrix(w: np.ndarray, groups: int) -> np.ndarray:
    """(K, C/G, *F) → (G, ∏F·C/G, K/G): per group, rows ordered (*F, C) like the im2col columns."""
    k, cg = w.shape[:2]
    taps = int(np.prod(w.shape[2:]))
    wg = w.reshape(groups, k // groups, cg, taps)
    return np.ascontiguousarray(wg.transpose(0, 3, 2, 1)).reshape(groups, taps * cg, k // groups)


def _covers_input(spatial, kernel, pads, dilation, groups) -> bool:
    """Whether one window covers the whole unpadded input (LeNet-5's 5×5 kernel on a 5×5 map): then
    the convolution is the fully-connected layer y = x·Wᵀ + b on the flattened input."""
    return (groups == 1 and not any(p0 or p1 for p0, p1 in pads) and all(d == 1 for d in dilation)
            and tuple(kernel) == tuple(spatial))


def _relu_grad(grad_cl: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dL/d(pre-activation) = dL/dy · [y > 0], in parallel over the batch."""
    out = np.empty(y.shape, dtype=grad_cl.dtype)

    def work(lo, hi):
        np.multiply(grad_cl[lo:hi], y[lo:hi] > 0, out=out[lo:hi])

    parallel.run(work, parallel.batch_ranges(y))
    return out


def algorithm(x_shape, w_shape, stride, pads, dilation, groups, padded, out_size) -> str:
    """How a convolution of this geometry is computed: "dense", "direct", "winograd", "polyphase" or
    "im2col"."""
    kernel = tuple(w_shape[2:])
    if _covers_input(x_shape[2:], kernel, pads, dilation, groups):
        return "dense"  # y = x·Wᵀ + b on the flattened input
    if direct.applies(x_shape[1], w_shape[0], stride, groups, padded, out_size):
        return "direct"  # few channels: products summed in registers, no im2col (kernels/direct.py)
    if winograd.applies(kernel, stride, dilation, groups, x_shape[1], w_shape[0], x_shape[0] * math.prod(out_size)):
        return "winograd"  # 2.25× fewer GEMM flops for 3×3 stride 1 (kernels/winograd.py)
    if polyphase.plan(x_shape, w_shape, stride, dilation, groups, out_size) is not None:
        return "polyphase"  # strided, few channels: stride 1 on the input's phases, direct (polyphase.py)
    return "im2col"  # copy the receptive fields, one GEMM per batch chunk (kernels/im2col.py)


class ConvNd(Function):
    """y = conv(x, w) + b for x (N, C, *S), w (K, C/G, *F), b (K,) or None; `pads` are (before, after).

    With ``activation="relu"`` the result is max(y, 0), computed in the same pass (a fused conv + ReLU;
    `nn.Sequential` uses it for a conv layer followed by a ReLU when no hooks watch either).
    """

    def forward(ctx, x, w, b, stride, pads, dilation, groups, padding_mode, activation=None):
        kernel = w.shape[2:]
        padded = tuple(s + p0 + p1 for s, (p0, p1) in zip(x.shape[2:], pads))
        out_size = tuple(conv_output_size(p, f, s, 0, dl) for p, f, s, dl in zip(padded, kernel, stride, dilation))
        relu = activation == "relu"
        ctx.geom = (x.shape, out_size, stride, pads, dilation, groups, padding_mode)
        algo = algorithm(x.shape, w.shape, stride, pads, dilation, groups, padded, out_size)
        ctx.dense, ctx.direct, ctx.winograd = algo == "dense", algo == "direct", algo == "winograd"
        ctx.polyphase = polyphase.plan(x.shape, w.shape, stride, dilation, groups, out_size) if algo == "polyphase" else None
        if ctx.dense:  # the kernel covers the whole input: a fully-connected layer, y = x·Wᵀ + b
            xf, wf = x.reshape(x.shape[0], -1), w.reshape(w.shape[0], -1)  # (N, C·∏S), (K, C·∏F): same order
            y = xf @ wf.T
            if b is not None:
                y += b
            if relu:
                np.maximum(y, 0, out=y)
            ctx.save_for_backward(xf, wf, y if relu else None)
            return y.reshape(y.shape + (1,) * len(out_size))
        if ctx.direct:  # few channels: products summed in registers, no im2col (direct.py)
            y, state = direct.forward(x, w, b, pads, padded, out_size, dilation, padding_mode, relu)
            ctx.save_for_backward(*state)
            return y
        if ctx.polyphase is not None:  # strided, few channels: the direct tiles on the input's phases
            y, ctx.polyphase_state = polyphase.forward(x, w, b, pads, padding_mode, relu, ctx.polyphase)
            return y
        if algo == "im2col" and im2col.few_outputs(x.shape[0], x.shape[0] * math.prod(out_size), w.shape[0], groups):
            if padding_mode == "zeros":  # the columns read the padding as zeros: no padded copy
                xpc, zero_pads = np.ascontiguousarray(x), pads
            else:
                xpc, zero_pads = pad_array(x, {2 + i: p for i, p in enumerate(pads)}, padding_mode, contiguous=True), None
            y = im2col.correlate_channels_first(xpc, np.ascontiguousarray(w), out_size, kernel, stride, dilation,
                                                bias=b, relu=relu, pads=zero_pads)
            ctx.save_for_backward(x, w, None, channels_last(y) if relu else None)  # backward pads x itself
            return y
        xp = pad_array(channels_last(x), {1 + i: p for i, p in enumerate(pads)}, padding_mode, contiguous=True)
        wmat = weight_matrix(w, groups)
        if algo == "winograd":
            y = winograd.correlate_3x3(xp, wmat, out_size, im2col.batch_chunks, bias=b, relu=relu)  # (N, *O, K)
        else:
            y = im2col.correlate(xp, wmat, out_size, kernel, stride, dilation, bias=b, relu=relu)
        ctx.save_for_backward(xp, w, wmat, y if relu else None)
        return channels_first(y)  # a view: the memory stays channels-last

    def backward(ctx, grad):
        x_shape, out_size, stride, pads, dilation, groups, padding_mode = ctx.geom
        if ctx.dense:  # y = x·Wᵀ + b: dx = dY·W, dW = dYᵀ·x, db = Σ dY
            xf, wf, y = ctx.saved_tensors
            g = grad.reshape(grad.shape[0], -1)
            if y is not None:  # fused ReLU
                g = _relu_grad(g, y)
            gx = (g @ wf).reshape(x_shape) if ctx.needs_input_grad[0] else None
            # the kernel has the input's shape: W is (K, C, *S)
            gw = (g.T @ xf).reshape(g.shape[1], *x_shape[1:]) if ctx.needs_input_grad[1] else None
            gb = column_sums(g) if ctx.needs_input_grad[2] else None
            return gx, gw, gb
        if ctx.direct:
            return direct.backward(grad, ctx.saved_tensors, x_shape, pads, padding_mode, ctx.needs_input_grad)
        if ctx.polyphase is not None:
            return polyphase.backward(grad, ctx.polyphase_state, x_shape, pads, padding_mode, ctx.needs_input_grad,
                                      ctx.polyphase)
        xp, w, wmat, y = ctx.saved_tensors
        if wmat is None:  # the channels-first forward (im2col.correlate_channels_first) kept x and w only
            xp = pad_array(channels_last(xp), {1 + i: p for i, p in enumerate(pads)}, padding_mode, contiguous=True)
            wmat = weight_matrix(w, groups)
        k = grad.shape[1]
        if y is not None:  # fused ReLU: d max(z, 0)/dz = [z > 0] = [y > 0]
            gl = _relu_grad(channels_last(grad), y)
        else:
            gl = np.ascontiguousarray(channels_last(grad))  # (N, *O, K); free if grad is channels-last already
        gx = gw = gb = None
        if ctx.needs_input_grad[2]:
            gb = column_sums(gl.reshape(-1, k))  # db = Σ over batch and positions of dY
        if ctx.needs_input_grad[1] and ctx.winograd:  # dW through Winograd's transforms
            gw = winograd.weight_grad(gl, xp, w.shape, im2col.batch_chunks)
        elif ctx.needs_input_grad[1]:  # dW = colsᵀ · dY
            gw = im2col.weight_grad(gl, xp, w.shape, wmat, out_size, stride, dilation, groups)
        if ctx.needs_input_grad[0] and ctx.winograd and winograd.input_grad_applies(pads, padding_mode):
            gx = channels_first(winograd.input_grad(gl, wmat, x_shape, pads, im2col.batch_chunks))
        elif ctx.needs_input_grad[0]:
            gx = channels_first(_input_grad(gl, xp, w, wmat, x_shape, out_size, stride, pads, dilation,
                                            groups, padding_mode))
        return gx, gw, gb


def _input_grad(gl, xp, w, wmat, x_shape, out_size, stride, pads, dilation, groups, padding_mode):
    """dL/dx (channels-last) from dL/dy (channels-last `gl`): d cols = dY · Wᵀ added back onto the
    receptive fields (col2im), then the padding's adjoint (kernels/im2col.py; ConvTranspose's forward)."""
    return im2col.input_grad(gl, xp, w, wmat, x_shape, out_size, stride, pads, dilation, groups, padding_mode)


def _resolve_padding(padding, d, kernel, stride, dilation, where):
    """Per-axis (before, after) padding from an int, a tuple, "valid" or "same"."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * d
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{where}: padding='same' is not supported for strided convolutions, got stride={stride}")
            # total padding D·(F−1) keeps W₂ = W; the odd extra cell goes after, as in PyTorch
            total = [dl * (f - 1) for f, dl in zip(kernel, dilation)]
            return tuple((t // 2, t - t // 2) for t in total)
        raise ValueError(f"{where}: padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
    p = ntuple(padding, d, "padding", where, minimum=0)
    return tuple((v, v) for v in p)


def _plain(v) -> bool:
    return type(v) in (int, str) or (type(v) is tuple and all(type(e) is int for e in v))


@functools.lru_cache(maxsize=1024)
def _checked_geometry(x_shape, w_shape, b_shape, stride, padding, dilation, groups, padding_mode, d, where,
                      activation):
    """`conv`'s checks of everything but the tensors' dtypes, and the normalised (stride, pads,
    dilation): a function of shapes and arguments only, so its result is kept for the next call with the
    same ones (a network's forward pass repeats them every step; the checks were a fifth of LeNet-5's
    single-image inference)."""
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1:
        raise ValueError(f"{where}: groups must be a positive integer, got {groups!r}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"{where}: unknown padding_mode {padding_mode!r}; expected one of {', '.join(PADDING_MODES)}")
    k, cg = w_shape[:2]
    c = x_shape[1]
    if c % groups or k % groups:
        raise ValueError(f"{where}: groups={groups} must divide both in_channels ({c}) and out_channels ({k})")
    if cg * groups != c:
        raise ValueError(
            f"{where}: weight of shape {w_shape} with groups={groups} expects input with {cg * groups} "
            f"channels, got {x_shape}"
        )
    if b_shape is not None and b_shape != (k,):
        raise ValueError(f"{where}: bias must have shape ({k},), got {b_shape}")
    stride = ntuple(stride, d, "stride", where, minimum=1)
    dilation = ntuple(dilation, d, "dilation", where, minimum=1)
    kernel = w_shape[2:]
    pads = _resolve_padding(padding, d, kernel, stride, dilation, where)
    spatial = x_shape[2:]
    for i in range(d):
        span = dilation[i] * (kernel[i] - 1) + 1
        if spatial[i] + sum(pads[i]) < span:
            raise ValueError(
                f"{where}: kernel of size {tuple(kernel)} (dilation {dilation}) is larger than the padded input "
                f"{tuple(s + sum(p) for s, p in zip(spatial, pads))} (input {x_shape}, padding {padding})"
            )
        if padding_mode != "zeros":
            check_pad_fits(where, padding_mode, spatial[i], *pads[i], axis=2 + i)
    if activation not in (None, "relu"):
        raise ValueError(f"{where}: activation must be None or 'relu', got {activation!r}")
    return stride, pads, dilation


def conv(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros", dims=None,
         name="conv", activation=None):
    """N-d convolution behind `conv1d`, `conv2d` and `conv3d` (validates, then calls `ConvNd`)."""
    d = dims if dims is not None else input.ndim - 2
    where = name
    if input.ndim != d + 2:
        raise ValueError(
            f"{where}: expected a {d + 2}-d input {_LAYOUT.get(d, '')}, got a {input.ndim}-d input of shape {input.shape}"
        )
    if weight.ndim != d + 2:
        raise ValueError(f"{where}: expected a {d + 2}-d weight (out_channels, in_channels/groups, *kernel), "
                         f"got shape {weight.shape}")
    if input.dtype != weight.dtype or (bias is not None and bias.dtype != weight.dtype):
        raise ValueError(f"{where}: input ({input.dtype}), weight ({weight.dtype}) and bias must share a dtype")
    key = (input.shape, weight.shape, None if bias is None else bias.shape, stride, padding, dilation, groups,
           padding_mode, d, where, activation)
    if (all(_plain(v) for v in (stride, padding, dilation, groups)) and type(padding_mode) is str
            and (activation is None or type(activation) is str)):  # hashable, and no bool to pass for an int
        stride, pads, dilation = _checked_geometry(*key)
    else:
        stride, pads, dilation = _checked_geometry.__wrapped__(*key)
    return ConvNd.apply(input, weight, bias, stride=stride, pads=pads, dilation=dilation, groups=int(groups),
                        padding_mode=padding_mode, activation=activation)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """1-d convolution of signals (N, C, L) with kernels (K, C/groups, F).

    Shape:
        L_out = ⌊(L + 2P − D·(F − 1) − 1)/S⌋ + 1
    """
    return conv(input, weight, bias, stride, padding, dilation, groups, padding_mode, dims=1, name="conv1d")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """2-d convolution of images (N, C, H, W) with kernels (K, C/groups, Fh, Fw).

    Shape:
        H_out = ⌊(H + 2P − D·(F − 1) − 1)/S⌋ + 1, likewise W_out; the course's (W − F + 2P)/S + 1.
    """
    return conv(input, weight, bias, stride, padding, dilation, groups, padding_mode, dims=2, name="conv2d")


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """3-d convolution of volumes (N, C, D, H, W) — video 3×s×m×n, MRI 1×s×m×n — with kernels
    (K, C/groups, Fd, Fh, Fw).

    Shape:
        each spatial axis: ⌊(W + 2P − D·(F − 1) − 1)/S⌋ + 1
    """
    return conv(input, weight, bias, stride, padding, dilation, groups, padding_mode, dims=3, name="conv3d")
