"""Shape arithmetic shared by convolution, pooling, the layers and every summary.

The one formula: an axis of size W, a window of F taps spaced D apart (dilation), P zeros of padding
on each side and a stride of S give

    W₂ = ⌊(W + 2P − D·(F − 1) − 1) / S⌋ + 1,

which for D = 1 is the course's W₂ = (W − F + 2P)/S + 1. With ``ceil_mode`` the division rounds up,
but a window must still start inside the input or the left padding (PyTorch's rule).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

from convlens.errors import ShapeError


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1, ceil_mode: bool = False):
    """Output length along one axis (ints) or along several (equal-length tuples); see module docstring.

    ``padding`` may be a pair ``(before, after)`` per axis for asymmetric padding.
    """
    if type(size) is int and type(padding) is int and not ceil_mode:  # the common case, without the ABC checks
        room = size + 2 * padding - dilation * (kernel_size - 1) - 1
        return room // stride + 1 if room >= 0 else 0
    if not isinstance(size, numbers.Integral):
        sizes = tuple(size)
        n = len(sizes)
        args = [_expand(v, n, name) for v, name in
                ((kernel_size, "kernel_size"), (stride, "stride"), (padding, "padding"), (dilation, "dilation"))]
        return tuple(conv_output_size(sizes[i], *(a[i] for a in args), ceil_mode=ceil_mode) for i in range(n))
    before, after = (padding, padding) if isinstance(padding, numbers.Integral) else tuple(padding)
    span = dilation * (kernel_size - 1) + 1  # the window's extent in input samples
    room = size + before + after - span
    if room < 0:
        return 0
    if ceil_mode:
        out = -(-room // stride) + 1
        if (out - 1) * stride >= size + before:  # the last window would start in the right padding
            out -= 1
        return out
    return room // stride + 1


def _expand(value, n: int, name: str) -> tuple:
    if isinstance(value, numbers.Integral):
        return (value,) * n
    value = tuple(value)
    if len(value) != n:
        raise ValueError(f"conv_output_size: {name} has {len(value)} entries, expected {n}")
    return value


def ntuple(value, n: int, name: str, where: str, minimum: int | None = None) -> tuple[int, ...]:
    """Expand an int to an n-tuple, check a tuple's length, that entries are integers and ≥ `minimum`.

    `where` names the function or layer for the error message, e.g. ``"Conv2d(3, 16, kernel_size=5)"``.
    """
    if type(value) is tuple and len(value) == n and all(type(v) is int for v in value):
        out = value  # the common case, checked cheaply (layers call this on every forward pass)
    elif type(value) is int:
        out = (value,) * n
    elif isinstance(value, bool):
        raise ValueError(f"{where}: {name} must be an integer or a tuple of {n} integers, got {value!r}")
    elif isinstance(value, numbers.Integral):
        out = (int(value),) * n
    elif isinstance(value, Sequence) and not isinstance(value, str):
        out = tuple(value)
        if len(out) == 1 and n > 1:
            out = out * n
        if len(out) != n:
            raise ValueError(f"{where}: {name} must have {n} entries for {n}-d input, got {value!r}")
        for v in out:
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise ValueError(f"{where}: {name} entries must be integers, got {value!r}")
        out = tuple(int(v) for v in out)
    else:
        raise ValueError(f"{where}: {name} must be an integer or a tuple of {n} integers, got {value!r}")
    if minimum is not None and any(v < minimum for v in out):
        raise ValueError(f"{where}: {name} must be >= {minimum}, got {value!r}")
    return out


def check_input(x_shape: tuple, dims: int, where: str, channels: int | None = None) -> None:
    """Inputs are ``(N, C, *spatial)`` with `dims` spatial axes."""
    if len(x_shape) != dims + 2:
        layout = "(N, C, " + ", ".join(["L"] if dims == 1 else ["H", "W"] if dims == 2 else ["D", "H", "W"]) + ")"
        raise ShapeError(
            f"{where}: expected a {dims + 2}-d input {layout}, got a {len(x_shape)}-d input of shape {tuple(x_shape)}"
        )
    if channels is not None and x_shape[1] != channels:
        raise ShapeError(f"{where}: expected input with {channels} channels, got {tuple(x_shape)}")
