"""Pooling over 1, 2 or 3 spatial axes: max, average, weighted average and adaptive pooling.

Each op is written once for N spatial axes; ``max_pool2d`` and friends are thin wrappers that fix N
and name themselves in error messages. Signatures and results follow ``torch.nn.functional``.

Window pooling (max, avg, weighted avg). Along one axis, output position o of a window of K taps,
D apart, stride S, over the input padded by P reads the padded positions o·S + k·D, k = 0..K−1. For a
fixed kernel offset k the values that offset contributes to *every* window form one strided slice

    x_pad[..., k·D : k·D + (O−1)·S + 1 : S]          (O = number of output positions),

so a pooling op is a loop over the ∏K kernel offsets, each a whole-array NumPy operation on a view
(no copy, any input strides). The backward adds the gradient back into the same slices, which sums
the contributions of overlapping windows (stride < kernel) to a shared input position.

Adaptive pooling is separable: the mean (or max) over a box of bins is the mean (max) along one axis
of the means (maxima) along the others, so it reduces one axis at a time with PyTorch's bins
start = ⌊i·L/O⌋, end = ⌈(i+1)·L/O⌉.
"""

from __future__ import annotations

import functools
import numbers
from functools import reduce

import numpy as np

from convlens import parallel
from convlens.autograd import Function
from convlens.kernels import blockpool, fastpool
from convlens.nn.functional._windows import AdaptiveBins, PoolWindow, pool_window
from convlens.nn.shape import check_input, ntuple
from convlens.tensor import Tensor

__all__ = [
    "MaxPoolNd", "AvgPoolNd", "WeightedAvgPoolNd", "AdaptiveAvgPoolNd", "AdaptiveMaxPoolNd",
    "pool_output_shape", "gaussian_pool_weights",
    "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "weighted_avg_pool1d", "weighted_avg_pool2d", "weighted_avg_pool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
]


def pool_output_shape(input_shape, kernel_size, stride=None, padding=0, dilation=1,
                      ceil_mode: bool = False) -> tuple[int, ...]:
    """The output shape ``(N, C, *out)`` of a window pooling of an ``(N, C, *spatial)`` input."""
    shape = tuple(input_shape)
    dims = len(shape) - 2
    if dims not in (1, 2, 3):
        raise ValueError(f"pool_output_shape: expected an input shape (N, C, *spatial) with 1 to 3 spatial "
                         f"axes, got {shape}")
    window = pool_window("pool_output_shape", shape, dims, kernel_size, stride, padding, dilation, ceil_mode)
    return shape[:2] + window.out


def _lowest(dtype):
    """Padding value of max pooling: no input value is below it."""
    return -np.inf if np.dtype(dtype).kind == "f" else np.iinfo(dtype).min


def _check_tensor(where: str, x, floating: bool = False) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{where}: expected a Tensor input, got {type(x).__name__}")
    if floating and x.dtype.kind != "f":
        raise ValueError(f"{where}: expected a floating-point input, got dtype {x.dtype}")


# ---- max pooling --------------------------------------------------------------------------------------
class MaxPoolNd(Function):
    """out = max over each window of the input padded with −∞; `window` is a `PoolWindow`."""

    def forward(ctx, x, window: PoolWindow):
        ctx.window, ctx.in_shape = window, x.shape
        ctx.fast = fastpool.applies(x, window)
        ctx.blocks = not ctx.fast and blockpool.applies(x, window)
        if ctx.fast:  # 2×2/2 windows on a contiguous input (either memory order): one compiled pass
            ctx.save_for_backward(x)
            return fastpool.max_pool(x)
        if ctx.blocks:  # disjoint blocks (kernel = stride) in 1, 2 or 3-d: one compiled pass, winners kept
            out, ctx.block_state = blockpool.max_pool(x, window.kernel)
            return out
        xp = window.pad(x, _lowest(x.dtype))
        out = np.empty_like(xp, shape=x.shape[:2] + window.out)  # keeps the input's memory order

        def work(lo, hi):
            part, src = out[lo:hi], xp[lo:hi]
            for i, sl in enumerate(window.slices()):
                if i == 0:
                    np.copyto(part, src[sl])
                else:
                    np.maximum(part, src[sl], out=part)

        parallel.run(work, parallel.batch_ranges(xp))
        ctx.save_for_backward(xp, out)
        return out

    def backward(ctx, grad):
        # ∂out/∂x = 1 at the window's maximum (its first occurrence in row-major order, as PyTorch), else 0;
        # a position that is the maximum of several overlapping windows receives the sum of their gradients
        window = ctx.window
        if ctx.fast:
            return fastpool.max_pool_backward(grad, ctx.saved_tensors[0])
        if ctx.blocks:
            return blockpool.max_pool_backward(grad, ctx.block_state)
        xp, out = ctx.saved_tensors
        gp = np.zeros_like(xp, dtype=grad.dtype)

        def work(lo, hi):
            src, top, g, dest = xp[lo:hi], out[lo:hi], grad[lo:hi], gp[lo:hi]
            taken = np.zeros_like(top, dtype=bool)  # windows whose maximum was found at an earlier offset
            nan = np.isnan(top) if top.dtype.kind == "f" and np.isnan(top).any() else None
            for sl in window.slices():
                hit = np.equal(src[sl], top)
                if nan is not None:  # max propagates NaN: the gradient goes to the NaN
                    hit |= nan & np.isnan(src[sl])
                np.greater(hit, taken, out=hit)  # hit and not taken
                taken |= hit
                if window.disjoint:  # each padded cell belongs to one window
                    np.multiply(g, hit, out=dest[sl])
                else:
                    dest[sl] += g * hit

        parallel.run(work, parallel.batch_ranges(xp))
        return gp[window.inner(ctx.in_shape)] if gp.shape != ctx.in_shape else gp


def _max_pool(dims: int, where: str, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    _check_tensor(where, input)
    unbatched = return_indices and input.ndim == dims + 1
    if unbatched:
        input = input.unsqueeze(0)
    window = pool_window(where, input.shape, dims, kernel_size, stride, padding, dilation, ceil_mode)
    out = MaxPoolNd.apply(input, window=window)
    if not return_indices:
        return out
    from convlens.nn.functional.unpool import max_pool_indices

    indices = Tensor._wrap(max_pool_indices(input._data, out._data, window))
    return (out.squeeze(0), indices.squeeze(0)) if unbatched else (out, indices)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling over (N, C, L); see `max_pool2d`."""
    return _max_pool(1, "max_pool1d", input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling over (N, C, H, W) → (N, C, H_out, W_out), as ``torch.nn.functional.max_pool2d``.

    Each output is the maximum of a kernel_size window (taps `dilation` apart) moved by `stride`
    (default: kernel_size) over the input padded with −∞ (so padding never wins); requires
    padding <= kernel_size // 2. Output sizes: `convlens.nn.shape.conv_output_size` (with ceil_mode,
    a last partial window is kept if it starts inside the input or left padding). The gradient flows
    only to each window's maximum (the first one on ties); overlapping windows add up.
    """
    return _max_pool(2, "max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling over (N, C, D, H, W); see `max_pool2d`."""
    return _max_pool(3, "max_pool3d", input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


# ---- average pooling ---------------------------------------------------------------------------------
def _avg_scale(window: PoolWindow, spatial, count_include_pad: bool, divisor_override, dtype):
    """1/divisor per output position: a scalar when all windows share it, else an array over *out
    (cached per geometry and shared: callers do not write to it).

    PyTorch's divisor: a window clipped to the padded input (count_include_pad=True) or to the input
    itself (False); the product over axes since windows are boxes.
    """
    if divisor_override is not None:
        return dtype.type(1.0 / divisor_override)
    return _avg_divisor(window, tuple(spatial), bool(count_include_pad), np.dtype(dtype))


@functools.lru_cache(maxsize=256)
def _avg_divisor(window: PoolWindow, spatial: tuple, count_include_pad: bool, dtype: np.dtype):
    counts = []
    for o, k, s, p, n in zip(window.out, window.kernel, window.stride, window.padding, spatial):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        counts.append(end - start if count_include_pad else np.minimum(end, n) - np.maximum(start, 0))
    divisor = reduce(np.multiply.outer, counts)
    if np.all(divisor == divisor.flat[0]):
        return dtype.type(1.0 / divisor.flat[0])
    return (1.0 / divisor).astype(dtype)


class AvgPoolNd(Function):
    """out = (Σ over the window of the zero-padded input) / divisor; see `_avg_scale` for the divisor."""

    def forward(ctx, x, window: PoolWindow, count_include_pad: bool = True, divisor_override=None):
        scale = _avg_scale(window, x.shape[2:], count_include_pad, divisor_override, x.dtype)
        ctx.scale, ctx.window, ctx.in_shape = scale, window, x.shape
        ctx.fast = fastpool.applies(x, window, scale)
        if ctx.fast:  # 2×2/2 windows on a contiguous input (either memory order): one compiled pass
            ctx.layout = fastpool.layout(x)
            return fastpool.avg_pool(x, scale)
        xp = window.pad(x, 0)
        acc = np.empty_like(xp, shape=x.shape[:2] + window.out)

        def work(lo, hi):
            part, src = acc[lo:hi], xp[lo:hi]
            for i, sl in enumerate(window.slices()):
                if i == 0:
                    np.copyto(part, src[sl])
                else:
                    part += src[sl]
            part *= scale

        parallel.run(work, parallel.batch_ranges(xp))
        ctx.padded_shape = xp.shape
        return acc

    def backward(ctx, grad):
        # out = scale·Σ_k x_pad[window + k]  ⇒  ∂L/∂x_pad[window + k] += scale·∂L/∂out for every offset k
        window = ctx.window
        if ctx.fast:
            return fastpool.avg_pool_backward(grad, ctx.scale, ctx.in_shape, ctx.layout)
        g = grad * ctx.scale
        gp = np.zeros_like(g, shape=ctx.padded_shape)  # grad's memory order

        def work(lo, hi):
            for sl in window.slices():
                gp[lo:hi][sl] += g[lo:hi]

        parallel.run(work, parallel.batch_ranges(gp))
        return gp[window.inner(ctx.in_shape)] if gp.shape != ctx.in_shape else gp


def _avg_pool(dims, where, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    _check_tensor(where, input, floating=True)
    if divisor_override is not None and (isinstance(divisor_override, bool) or
                                         not isinstance(divisor_override, numbers.Integral) or divisor_override < 1):
        raise ValueError(f"{where}: divisor_override must be a positive integer, got {divisor_override!r}")
    window = pool_window(where, input.shape, dims, kernel_size, stride, padding, 1, ceil_mode)
    return AvgPoolNd.apply(input, window=window, count_include_pad=bool(count_include_pad),
                           divisor_override=divisor_override)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Average pooling over (N, C, L); see `avg_pool2d`."""
    return _avg_pool(1, "avg_pool1d", input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Average pooling over (N, C, H, W) → (N, C, H_out, W_out), as ``torch.nn.functional.avg_pool2d``.

    Each output is the sum of its window over the zero-padded input divided by: the window's size
    clipped to the padded input (count_include_pad=True; only ceil_mode's last windows are clipped),
    or the number of real input cells in it (count_include_pad=False), or `divisor_override`.
    """
    return _avg_pool(2, "avg_pool2d", input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Average pooling over (N, C, D, H, W); see `avg_pool2d`."""
    return _avg_pool(3, "avg_pool3d", input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


# ---- weighted average pooling (the course's) -----------------------------------------------------------
def gaussian_pool_weights(kernel_size: tuple[int, ...]) -> np.ndarray:
    """The default weights: a separable Gaussian centred on the window, σ = k/4 per axis, sum 1.

    w[i₁, …, i_d] ∝ Π_a exp(−(i_a − (k_a − 1)/2)² / (2σ_a²)).
    """
    axes = []
    for k in kernel_size:
        i = np.arange(k) - (k - 1) / 2
        axes.append(np.exp(-(i**2) / (2 * (k / 4) ** 2)))
    w = reduce(np.multiply.outer, axes)
    return np.asarray(w / w.sum(), dtype=np.float64)


def _pool_weights(where: str, weights, kernel: tuple[int, ...]) -> np.ndarray:
    if weights is None:
        return gaussian_pool_weights(kernel)
    w = np.asarray(weights._data if isinstance(weights, Tensor) else weights, dtype=np.float64)
    if w.shape != kernel:
        raise ValueError(f"{where}: weights must have the kernel's shape {kernel}, got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"{where}: weights must be finite and non-negative, got {w.tolist()}")
    total = w.sum()
    if total <= 0:
        raise ValueError(f"{where}: weights must not be all zero, got {w.tolist()}")
    return w / total


class WeightedAvgPoolNd(Function):
    """out = Σ_k w_k · x_pad[window + k], with fixed weights w (sum 1) over the zero-padded input."""

    def forward(ctx, x, window: PoolWindow, weights: np.ndarray):
        xp = window.pad(x, 0)
        w = weights.astype(x.dtype).reshape(-1)
        acc = tmp = None
        for wk, sl in zip(w, window.slices()):
            if acc is None:
                acc = np.multiply(xp[sl], wk)
                tmp = np.empty_like(acc)
            else:
                acc += np.multiply(xp[sl], wk, out=tmp)
        ctx.w, ctx.window, ctx.in_shape, ctx.padded_shape = w, window, x.shape, xp.shape
        return acc

    def backward(ctx, grad):
        # out = Σ_k w_k·x_pad[window + k]  ⇒  ∂L/∂x_pad[window + k] += w_k·∂L/∂out
        window = ctx.window
        gp = np.zeros_like(grad, shape=ctx.padded_shape)
        for wk, sl in zip(ctx.w.astype(grad.dtype), window.slices()):
            gp[sl] += wk * grad
        return gp[window.inner(ctx.in_shape)] if gp.shape != ctx.in_shape else gp


def _weighted_avg_pool(dims, where, input, kernel_size, stride, padding, weights):
    _check_tensor(where, input, floating=True)
    window = pool_window(where, input.shape, dims, kernel_size, stride, padding)
    return WeightedAvgPoolNd.apply(input, window=window, weights=_pool_weights(where, weights, window.kernel))


def weighted_avg_pool1d(input, kernel_size, stride=None, padding=0, weights=None):
    """Weighted average pooling over (N, C, L); see `weighted_avg_pool2d`."""
    return _weighted_avg_pool(1, "weighted_avg_pool1d", input, kernel_size, stride, padding, weights)


def weighted_avg_pool2d(input, kernel_size, stride=None, padding=0, weights=None):
    """The course's weighted-average pooling over (N, C, H, W) → (N, C, H_out, W_out).

    out[n, c, o] = Σ_k w[k] · x_pad[n, c, o·stride + k], a fixed (not learned) weighted mean of each
    window of the input padded with zeros (padded cells count with their weight, like
    count_include_pad=True). `weights`: an array of the kernel's shape, non-negative, normalised here
    to sum 1; by default `gaussian_pool_weights`: a separable Gaussian centred on the window with
    σ = kernel_size/4 per axis. Same channels in and out, stride defaults to kernel_size, output sizes
    as `avg_pool2d` (no ceil_mode). Equivalent to a depthwise convolution with the kernel w.
    """
    return _weighted_avg_pool(2, "weighted_avg_pool2d", input, kernel_size, stride, padding, weights)


def weighted_avg_pool3d(input, kernel_size, stride=None, padding=0, weights=None):
    """Weighted average pooling over (N, C, D, H, W); see `weighted_avg_pool2d`."""
    return _weighted_avg_pool(3, "weighted_avg_pool3d", input, kernel_size, stride, padding, weights)


# ---- adaptive pooling ------------------------------------------------------------------------------
class AdaptiveAvgPoolNd(Function):
    """Mean over PyTorch's adaptive bins, one spatial axis at a time (global mean when all outputs are 1)."""

    def forward(ctx, x, output_size: tuple[int, ...]):
        d = len(output_size)
        ctx.in_shape, ctx.global_ = x.shape, all(o == 1 for o in output_size)
        if ctx.global_:
            return x.mean(axis=tuple(range(-d, 0)), keepdims=True)
        ctx.bins = [AdaptiveBins(n, o) for n, o in zip(x.shape[2:], output_size)]
        y = x
        for axis in reversed(range(2, x.ndim)):
            y = ctx.bins[axis - 2].mean(y, axis)
        return np.ascontiguousarray(y)

    def backward(ctx, grad):
        # global: ∂mean/∂x = 1/(number of cells); otherwise the per-axis means undone in reverse order
        if ctx.global_:
            g = np.empty(ctx.in_shape, dtype=grad.dtype)
            g[...] = grad * grad.dtype.type(1.0 / np.prod(ctx.in_shape[2:]))
            return g
        for axis in range(2, grad.ndim):
            grad = ctx.bins[axis - 2].mean_backward(grad, axis)
        return np.ascontiguousarray(grad)


class AdaptiveMaxPoolNd(Function):
    """Max over PyTorch's adaptive bins, one spatial axis at a time (global max when all outputs are 1)."""

    def forward(ctx, x, output_size: tuple[int, ...]):
        d = len(output_size)
        ctx.global_ = all(o == 1 for o in output_size)
        if ctx.global_:
            ctx.save_for_backward(x)
            return x.max(axis=tuple(range(-d, 0)), keepdims=True)
        ctx.bins = [AdaptiveBins(n, o) for n, o in zip(x.shape[2:], output_size)]
        stages = [x]  # the input of each one-axis reduction, last axis first
        for axis in reversed(range(2, x.ndim)):
            stages.append(ctx.bins[axis - 2].max(stages[-1], axis))
        ctx.save_for_backward(*stages)
        return np.ascontiguousarray(stages[-1])

    def backward(ctx, grad):
        # the gradient goes to each bin's maximum, the first in row-major order on ties (as PyTorch):
        # the last axis reduced first, then the first maximal row picked, is exactly that cell
        if ctx.global_:
            (x,) = ctx.saved_tensors
            flat = x.reshape(x.shape[:2] + (-1,))
            g = np.zeros(flat.shape, dtype=grad.dtype)
            np.put_along_axis(g, flat.argmax(axis=-1)[..., None], grad.reshape(grad.shape[:2] + (1,)), axis=-1)
            return g.reshape(x.shape)
        stages = ctx.saved_tensors
        d = grad.ndim - 2
        for k, axis in enumerate(range(2, grad.ndim)):  # stages[d - k] is the max of stages[d - 1 - k] along axis
            grad = ctx.bins[axis - 2].max_backward(stages[d - 1 - k], stages[d - k], grad, axis)
        return grad


def _output_size(where: str, output_size, shape, dims: int) -> tuple[int, ...]:
    check_input(shape, dims, where)
    if isinstance(output_size, list | tuple):
        if len(output_size) != dims:
            raise ValueError(f"{where}: output_size must have {dims} entries, got {output_size!r}")
        filled = tuple(n if o is None else o for o, n in zip(output_size, shape[2:]))
    else:
        filled = output_size
    out = ntuple(filled, dims, "output_size", where, minimum=1)
    if any(n < 1 for n in shape[2:]):
        raise ValueError(f"{where}: expected non-empty spatial axes, got input of shape {tuple(shape)}")
    return out


def _adaptive(fn, dims, where, input, output_size, floating=False):
    _check_tensor(where, input, floating=floating)
    return fn.apply(input, output_size=_output_size(where, output_size, input.shape, dims))


def adaptive_avg_pool1d(input, output_size):
    """Adaptive average pooling (N, C, L) → (N, C, output_size); see `adaptive_avg_pool2d`."""
    return _adaptive(AdaptiveAvgPoolNd, 1, "adaptive_avg_pool1d", input, output_size, floating=True)


def adaptive_avg_pool2d(input, output_size):
    """Adaptive average pooling (N, C, H, W) → (N, C, *output_size), as PyTorch.

    Output cell i along an axis of length L averages input cells ⌊iL/O⌋ .. ⌈(i+1)L/O⌉ − 1. `output_size`
    is an int or a tuple whose None entries keep the input's size; output_size=1 is global average pooling.
    """
    return _adaptive(AdaptiveAvgPoolNd, 2, "adaptive_avg_pool2d", input, output_size, floating=True)


def adaptive_avg_pool3d(input, output_size):
    """Adaptive average pooling over (N, C, D, H, W); see `adaptive_avg_pool2d`."""
    return _adaptive(AdaptiveAvgPoolNd, 3, "adaptive_avg_pool3d", input, output_size, floating=True)


def _adaptive_max(dims, where, input, output_size, return_indices):
    if return_indices:
        raise ValueError(f"{where}: return_indices=True is not supported, got return_indices={return_indices!r}")
    return _adaptive(AdaptiveMaxPoolNd, dims, where, input, output_size)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Adaptive max pooling (N, C, L) → (N, C, output_size); see `adaptive_max_pool2d`."""
    return _adaptive_max(1, "adaptive_max_pool1d", input, output_size, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Adaptive max pooling (N, C, H, W) → (N, C, *output_size), with the bins of `adaptive_avg_pool2d`."""
    return _adaptive_max(2, "adaptive_max_pool2d", input, output_size, return_indices)


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """Adaptive max pooling over (N, C, D, H, W); see `adaptive_max_pool2d`."""
    return _adaptive_max(3, "adaptive_max_pool3d", input, output_size, return_indices)
