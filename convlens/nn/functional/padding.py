"""Padding: zeros (constant), replicate (the course's copy padding), reflect and circular.

Padding is separable: padding a tensor pads each axis in turn, so forward and backward are written
for one axis and applied axis by axis. The backward of a padding mode sends each padded cell's
gradient back to the input cell it copied: for replicate the edge cell receives its own gradient plus
that of every copy of it in the border.
"""

from __future__ import annotations

import numbers

import numpy as np

from convlens.autograd import Function

PADDING_MODES = ("zeros", "replicate", "reflect", "circular")  # names used by Conv*d(padding_mode=...)
PAD_MODES = ("constant", "replicate", "reflect", "circular")  # names used by F.pad(mode=...)
_NUMPY_MODE = {"constant": "constant", "zeros": "constant", "replicate": "edge", "reflect": "reflect",
               "circular": "wrap"}


def _source_index(j: np.ndarray, before: int, n: int, mode: str) -> np.ndarray:
    """For padded positions `j` (0-based in the padded axis), the input index each one copies."""
    i = j - before
    if mode == "replicate":
        return np.clip(i, 0, n - 1)
    if mode == "reflect":  # mirror without repeating the edge: -1 → 1, n → n-2
        period = 2 * (n - 1)
        i = np.abs(i) % period
        return np.where(i >= n, period - i, i)
    if mode == "circular":
        return i % n
    raise ValueError(f"no source index for mode {mode!r}")


def check_pad_fits(where: str, mode: str, size: int, before: int, after: int, axis: int) -> None:
    """Reflect needs pad < size and circular pad <= size, as in PyTorch."""
    if mode == "reflect" and max(before, after) >= size:
        raise ValueError(
            f"{where}: reflect padding of ({before}, {after}) needs each side smaller than the input size "
            f"{size} along axis {axis}"
        )
    if mode == "circular" and max(before, after) > size:
        raise ValueError(
            f"{where}: circular padding of ({before}, {after}) needs each side at most the input size "
            f"{size} along axis {axis}"
        )


def pad_array(a: np.ndarray, pads: dict[int, tuple[int, int]], mode: str, value: float = 0.0,
              contiguous: bool = False) -> np.ndarray:
    """Pad NumPy array `a`: ``pads`` maps an axis to its (before, after) widths.

    The result keeps `a`'s memory order, or is C-contiguous when `contiguous` is set.
    """
    if not any(b or e for b, e in pads.values()):
        return np.ascontiguousarray(a) if contiguous else a
    if mode in ("constant", "zeros"):
        shape = list(a.shape)
        inner = [slice(None)] * a.ndim
        for axis, (b, e) in pads.items():
            shape[axis] += b + e
            inner[axis] = slice(b, b + a.shape[axis])
        # empty_like keeps `a`'s memory order for the new shape (channels-last stays channels-last)
        out = np.empty(shape, a.dtype) if contiguous else np.empty_like(a, shape=shape)
        out.fill(value)
        out[tuple(inner)] = a
        return out
    widths = [pads.get(axis, (0, 0)) for axis in range(a.ndim)]
    return np.pad(a, widths, mode=_NUMPY_MODE[mode])


def pad_array_backward(grad: np.ndarray, pads: dict[int, tuple[int, int]], mode: str, shape: tuple) -> np.ndarray:
    """Adjoint of `pad_array`: gradient with respect to the unpadded array of shape `shape`."""
    if mode in ("constant", "zeros"):
        inner = [slice(None)] * grad.ndim
        for axis, (b, _) in pads.items():
            inner[axis] = slice(b, b + shape[axis])
        return grad[tuple(inner)]
    for axis, (b, e) in sorted(pads.items(), reverse=True):
        n = shape[axis]
        if not (b or e):
            continue
        take = [slice(None)] * grad.ndim
        take[axis] = slice(b, b + n)
        out = grad[tuple(take)].copy()
        border = np.concatenate([np.arange(b), np.arange(b + n, b + n + e)])
        src = _source_index(border, b, n, mode)
        # border widths are small (≤ the kernel), so this is a short loop over border slices
        for j, s in zip(border.tolist(), src.tolist()):
            dst = [slice(None)] * grad.ndim
            dst[axis] = s
            cell = [slice(None)] * grad.ndim
            cell[axis] = j
            out[tuple(dst)] += grad[tuple(cell)]
        grad = out
    return grad


class Pad(Function):
    def forward(ctx, a, pads, mode, value=0.0):
        ctx.pads, ctx.mode, ctx.shape = pads, mode, a.shape
        return pad_array(a, pads, mode, value)

    def backward(ctx, grad):  # each padded cell's gradient returns to the cell it copied (constant: dropped)
        return pad_array_backward(grad, ctx.pads, ctx.mode, ctx.shape)


def pad(input, pad, mode: str = "constant", value: float = 0.0):
    """Pad `input` as `torch.nn.functional.pad`.

    ``pad`` lists (before, after) widths starting from the LAST axis: ``(left, right)`` pads the last
    axis, ``(left, right, top, bottom)`` the last two, and so on. Negative widths are not supported.

    Shape:
        each padded axis grows from W to W + before + after.
    """
    if mode not in PAD_MODES:
        raise ValueError(f"pad: unknown mode {mode!r}; expected one of {', '.join(PAD_MODES)}")
    widths = tuple(pad)
    if len(widths) % 2 or any(not isinstance(w, numbers.Integral) or w < 0 for w in widths):
        raise ValueError(f"pad: expected an even number of non-negative integers, got {pad!r}")
    n_axes = len(widths) // 2
    if n_axes > input.ndim:
        raise ValueError(f"pad: {len(widths)} widths pad {n_axes} axes but the input has shape {input.shape}")
    if mode != "constant" and input.ndim - n_axes < 1:
        raise ValueError(f"pad: {mode} padding needs a leading (batch or channel) axis, got shape {input.shape}")
    pads = {input.ndim - 1 - k: (int(widths[2 * k]), int(widths[2 * k + 1])) for k in range(n_axes)}
    for axis, (b, e) in pads.items():
        check_pad_fits("pad", mode, input.shape[axis], b, e, axis)
    return Pad.apply(input, pads=pads, mode=mode, value=value)
