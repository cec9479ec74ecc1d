"""A strided convolution as a stride-1 convolution of the input's polyphase components (space-to-depth).

With stride s along an axis, output o reads the input at o·s + t for the taps t < F. Write t = j·s + r
(0 ≤ r < s, 0 ≤ j < F' = ⌈F/s⌉, taps past F weigh zero) and split the input into its s phases,
x'[c·s + r, i] = x[c, i·s + r]; then

    y[k, o] = Σ_c Σ_t w[k, c, t]·x[c, o·s + t] = Σ_(c,r) Σ_j w'[k, c·s + r, j]·x'[c·s + r, o + j]

with w'[k, c·s + r, j] = w[k, c, j·s + r]: a stride-1 convolution with C·s channels and F' taps, the
same products (plus the zero taps), no im2col copy. Per axis, in any number of dimensions. This lets
the direct kernels (direct.py), which take stride 1 only, run strided layers with few channels such as
the 1-D speech net's first layer (1 channel, F = 80, s = 4 → 4 channels, F' = 20), which im2col ran
copying 80 values per output. Both gradients come back through the same reshapes, reversed.

The (padded) input is cut or extended with zeros on the far side to (O − 1 + F')·s cells per axis, so
the stride-1 output has exactly the O positions of the strided one.
"""

from __future__ import annotations

import math

import numpy as np

from convlens.kernels import direct
from convlens.nn.functional.padding import pad_array, pad_array_backward

# The phases multiply the channels (C·∏s) and pad the taps (F' = ⌈F/s⌉ per axis): measured worth it up
# to 32 phase channels (the speech net's first layer has 4), in any number of axes; the direct tiles'
# own 3-d limit (direct.MAX_CHANNELS[3]) was measured on stride-1 layers only.
MAX_CHANNELS = 32


class Plan:
    """The stride-1 problem standing in for a strided one: `taps` F' and `length` L' per axis (cells of
    the padded input read, (O − 1 + F')·s), `channels` C·∏s."""

    def __init__(self, x_shape, w_shape, stride, out_size):
        self.stride, self.out_size = tuple(stride), tuple(out_size)
        self.kernel = tuple(w_shape[2:])
        self.taps = tuple(-(-f // s) for f, s in zip(self.kernel, stride))
        self.length = tuple((o - 1 + fk) * s for o, fk, s in zip(out_size, self.taps, stride))
        self.phases = math.prod(stride)
        self.channels = x_shape[1] * self.phases
        self.grid = tuple(n // s for n, s in zip(self.length, stride))  # the stride-1 input's sizes


def plan(x_shape, w_shape, stride, dilation, groups, out_size) -> Plan | None:
    """A Plan when a strided convolution runs faster this way: the direct kernels take the stride-1
    problem (few channels after the split), else None."""
    if groups != 1 or all(s == 1 for s in stride) or any(d != 1 for d in dilation):
        return None
    p = Plan(x_shape, w_shape, stride, out_size)
    if p.channels > MAX_CHANNELS or not direct.applies(p.channels, w_shape[0], (1,) * len(stride), 1, p.grid,
                                                       out_size):
        return None
    return p


def _fit(a: np.ndarray, sizes) -> np.ndarray:
    """`a` (N, C, *S) cut or zero-extended on the far side of each spatial axis to `sizes`."""
    if tuple(a.shape[2:]) == tuple(sizes):
        return a
    out = np.zeros(a.shape[:2] + tuple(sizes), dtype=a.dtype)
    common = tuple(slice(0, min(n, m)) for n, m in zip(a.shape[2:], sizes))
    out[(slice(None), slice(None), *common)] = a[(slice(None), slice(None), *common)]
    return out


def _split(a: np.ndarray, stride) -> np.ndarray:
    """(N, C, *(L'·s)) → (N, C·∏s, *L'): a[n, c, i·s + r] → out[n, c·s + r, i] per axis (C-order
    phases)."""
    n, c, *sizes = a.shape
    d = len(sizes)
    split = a.reshape(n, c, *[v for size, s in zip(sizes, stride) for v in (size // s, s)])
    order = (0, 1, *(3 + 2 * i for i in range(d)), *(2 + 2 * i for i in range(d)))
    return np.ascontiguousarray(split.transpose(order)).reshape(n, c * math.prod(stride), *(v // s for v, s in zip(sizes, stride)))


def _merge(a: np.ndarray, stride, channels: int) -> np.ndarray:
    """The inverse of `_split`: (N, C·∏s, *L') → (N, C, *(L'·s))."""
    n, _, *sizes = a.shape
    d = len(sizes)
    phased = a.reshape(n, channels, *stride, *sizes)
    order = (0, 1, *(v for i in range(d) for v in (2 + d + i, 2 + i)))
    return phased.transpose(order).reshape(n, channels, *(v * s for v, s in zip(sizes, stride)))


def weight(w: np.ndarray, p: Plan) -> np.ndarray:
    """w' (K, C·∏s, *F'): w zero-extended to F'·s taps per axis, then split into phases."""
    return _split(_fit(w, tuple(fk * s for fk, s in zip(p.taps, p.stride))), p.stride)


def weight_grad(gw: np.ndarray, p: Plan) -> np.ndarray:
    """dL/dw (K, C, *F) from dL/dw' (the zero taps' gradients are dropped)."""
    full = _merge(gw, p.stride, gw.shape[1] // p.phases)
    return np.ascontiguousarray(full[(slice(None), slice(None), *(slice(0, f) for f in p.kernel))])


def forward(x, w, b, pads, padding_mode, relu, p: Plan):
    """y (N, K, *O) and the state `backward` needs, through the direct kernels on the phases."""
    xp = pad_array(x, {2 + a: pd for a, pd in enumerate(pads)}, padding_mode)
    padded = xp.shape[2:]
    xs = _split(_fit(xp, p.length), p.stride)
    d = len(p.stride)
    y, state = direct.forward(xs, weight(w, p), b, ((0, 0),) * d, p.grid, p.out_size, (1,) * d, "zeros", relu)
    return y, (state, xs.shape, padded)


def backward(grad, saved, x_shape, pads, padding_mode, needs, p: Plan):
    """(dx, dw, db) of `forward`."""
    state, xs_shape, padded = saved
    d = len(p.stride)
    gxs, gws, gb = direct.backward(grad, state, xs_shape, ((0, 0),) * d, "zeros", needs)
    gx = gw = None
    if needs[0]:
        gxp = _fit(_merge(gxs, p.stride, x_shape[1]), padded)  # cells past the read length: 0
        gx = pad_array_backward(gxp, {2 + a: pd for a, pd in enumerate(pads)}, padding_mode, tuple(x_shape))
    if needs[1]:
        gw = weight_grad(gws.reshape(gws.shape[0], p.channels, *p.taps), p)
    return gx, gw, gb
