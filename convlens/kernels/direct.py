"""Direct convolution in register tiles (compiled with numba): no im2col copy, no GEMM call.

im2col copies every receptive field, ∏F·C values per output position, and OpenBLAS then packs that
copy once more before its GEMM; for the small layers of LeNet-5 and the ConvNetJS nets (1–20
channels) those copies cost more than the products. Here the products are summed in place.

The "flat shift": lay out the padded input channel-major, each channel one flat run over
(batch, *padded spatial), ``src[c, i]`` with i = n·P + (h·Wp + w) in 2-d, P = ∏ padded sizes. For
stride 1, kernel tap t = (r, s) reads, for the output at grid position i, ``src[c, i + off_t]`` with
off_t = (r·Wp + s)·D. Eight outputs that are neighbours along the last axis are then eight
neighbouring values of every (channel, tap) run: one vector load (simd.py). The outputs are cut into
"slots" of up to eight neighbours along the last axis, and a tile of outputs — `kb` channels × `nv`
slots — is held in registers while the whole sum over channels and taps is added into it:

    y[k, i..i+7] = b[k] + Σ_c Σ_t  w[k, c, t] · src[c, i+off_t .. i+off_t+7]

The same tiles give the input gradient, a correlation of dY laid out on the padded input's grid
(zeros elsewhere, `reach` zeros in front) with the transposed kernel and offsets reach − off_t. The
weight gradient is a sum over output positions; its tile holds `m` taps of one input channel × `kv`
vectors of output channels, and each position adds m broadcast inputs times kv vectors of a
channels-last copy of dY (so rows of any length fill every lane):

    dx_pad[c, j] = Σ_k Σ_t  w[k, c, t] · dy[k, j − off_t]        dw[k, c, t] = Σ_i  dy[k, i] · src[c, i + off_t]

Used for stride 1 and groups 1, up to `MAX_CHANNELS` input and `MAX_OUT_CHANNELS` output channels (both
per number of spatial axes), when at least `MIN_USEFUL` of the vector lanes hold real outputs (see
`applies`); beyond that im2col's GEMM or Winograd is faster. The batch is cut into image ranges run on
convlens's thread pool (the kernels release the GIL).
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from convlens import parallel
from convlens.kernels import col2im, launch, workspace
from convlens.kernels.simd import LANES
from convlens.nn.functional.linear import column_sums
from convlens.nn.functional.padding import pad_array, pad_array_backward

# Beyond these im2col + GEMM or Winograd is faster. Measured, one thread, forward + backward at batch
# 64 (ms, direct / Winograd / im2col): VGG's 32 → 32 layer on 32×32 70 / 91 / 105; its 32 → 64 layer on
# 16×16 55 / 58 / 48, its 64 → 64 layer 101 / 68 / 68. Both limits depend on the number of spatial
# axes (keys): a 2-d 3×3 layer to 64 channels is faster through Winograd or im2col (airbench's 24 → 64
# on 31×31, VGG's 32 → 64 on 16×16: the whole training step 4–6 % slower when direct); 1-d layers
# (no Winograd) are faster direct up to 64 outputs (the speech net's 32 → 64: step 3 %) but not from
# 64 inputs (3–5 % slower); in 3-d, where im2col copies 27 taps per channel, the direct tiles win up
# to 64 → 128 (the video net's 32 → 64 layer: step 7–9 % faster, its 64 → 128 layer 5–10 %). In-process
# A/B of the whole plain training step, two runs each, 2 threads, AVX-512.
MAX_CHANNELS = {1: 32, 2: 32, 3: 64}
MAX_OUT_CHANNELS = {1: 64, 2: 32, 3: 128}
# Fraction of the vector lanes that must hold real outputs: a row of 10 outputs fills 10 of 16.
MIN_USEFUL = 0.5

# Tile shapes, within AVX2's 16 vector registers: accumulators plus the operands of one step.
# Forward and input gradient: kb output channels × NV slots of positions (kb·NV accumulators, NV
# loaded vectors, kb broadcast weights), kb chosen per layer from TILE_CHANNELS to waste the fewest
# padded channels. Weight gradient: m taps × kv vectors of output channels (GRAD_TILES as (kv, m)),
# chosen by `grad_tile`.
NV = 2  # fixed: direct_kernels.correlate compiles its shapes with two slots
TILE_CHANNELS = (4, 6, 5, 3, 2)  # each one of direct_kernels.correlate's shapes (2 … 6, NV = 2)
GRAD_TILES = ((2, 5), (3, 3), (1, 9))  # direct_kernels.weight_grad tells them apart by kv

_kernels = None


def _compile():
    """The compiled kernels (direct_kernels.py), imported on first use: numba compiles each tile shape
    once and caches it on disk."""
    global _kernels
    if _kernels is None:
        from convlens.kernels import direct_kernels

        _kernels = direct_kernels
    return _kernels


def applies(in_channels: int, out_channels: int, stride, groups: int, padded, out_size) -> bool:
    """Whether the direct tiles beat im2col for this layer (see the module docstring)."""
    if (groups != 1 or any(s != 1 for s in stride) or in_channels > MAX_CHANNELS[len(out_size)]
            or out_channels > MAX_OUT_CHANNELS[len(out_size)]):
        return False
    row = out_size[-1]
    return row / (-(-row // LANES) * LANES) >= MIN_USEFUL


def tile_channels(k: int) -> int:
    """The tile height (output channels per tile) that pads `k` channels the least."""
    return min(TILE_CHANNELS, key=lambda kb: -(-k // kb) * kb)


def grad_tile(k: int, taps: int) -> tuple[int, int]:
    """The weight-gradient tile (kv, m) for `k` channels and `taps` taps: the fewest loads per step
    over the padded work, (kv + m) loads per kv·m products of kv·LANES channels × m taps each.
    Measured (GFLOP/s, one thread): the ConvNetJS net's 3 → 16 layer 54 → 95 with (2, 5) against the
    slot tiles this replaced, its 20 → 20 layers 64 → 75 with (3, 3), LeNet-5's 6 → 16 layer 30 → 100."""
    def cost(tile):
        kv, m = tile
        return -(-k // (kv * LANES)) * kv * LANES * -(-taps // m) * m * (kv + m) / (kv * m)

    return min(GRAD_TILES, key=cost)


def weight_blocks(wf: np.ndarray, kb: int) -> np.ndarray:
    """(K, C, T) weights → (⌈K/kb⌉, C·T·kb): block b holds channels b·kb … as (C, T, kb), zero-padded."""
    k, c, t = wf.shape
    nb = -(-k // kb)
    wp = np.zeros((nb * kb, c, t), dtype=wf.dtype)
    wp[:k] = wf
    return np.ascontiguousarray(wp.reshape(nb, kb, c, t).transpose(0, 2, 3, 1)).reshape(nb, -1)


@functools.lru_cache(maxsize=256)
def row_starts(padded: tuple, box: tuple, origin: tuple) -> np.ndarray:
    """Grid index of the first cell of every row (along the last axis) of a box of positions of one
    image's padded grid: the box's sizes `box` start at grid index `origin`; rows in C order."""
    steps = col2im.grid_steps(padded)
    return np.array([sum((i + o) * st for i, o, st in zip(lead, origin, steps)) + origin[-1]
                     for lead in itertools.product(*(range(b) for b in box[:-1]))], dtype=np.int64)


@functools.lru_cache(maxsize=256)
def slots(padded: tuple, box: tuple, origin: tuple, nv: int):
    """(starts, outs, lanes) of the slots covering a box of positions (see `row_starts`). Slot s holds
    lanes[s] ≤ LANES neighbours along the last axis from grid position starts[s], which are elements
    outs[s] … of the box flattened. Padded with empty slots to a multiple of `nv`."""
    row = box[-1]
    starts, outs, lanes = [], [], []
    for r, g in enumerate(row_starts(padded, box, origin).tolist()):
        for j in range(0, row, LANES):
            starts.append(g + j)
            outs.append(r * row + j)
            lanes.append(min(LANES, row - j))
    while len(starts) % nv:
        starts.append(starts[-1])
        outs.append(outs[-1])
        lanes.append(0)
    return tuple(np.array(v, dtype=np.int64) for v in (starts, outs, lanes))


class Geometry:
    """The flat padded grid of a batch: P = ∏ padded sizes per image, L = N·P, and the tap offsets."""

    def __init__(self, n, padded, out_size, kernel, dilation):
        self.n, self.padded, self.out_size, self.kernel = n, tuple(padded), tuple(out_size), tuple(kernel)
        self.plane = math.prod(padded)
        self.length = n * self.plane
        self.offsets = col2im.tap_offsets(kernel, dilation, padded)
        self.reach = int(self.offsets[-1])  # the largest offset: tiles read this far past a position

    def grid(self, channels: int, dtype, front: int = 0, scratch: bool = False) -> np.ndarray:
        """A zeroed (channels, front + L + reach + LANES) array: `front` cells before the grid, and
        room behind it for the last tile's reads. `scratch`: from the workspace (hand it back)."""
        shape = (channels, front + self.length + self.reach + LANES)
        if not scratch:
            return np.zeros(shape, dtype=dtype)
        a = workspace.take(shape, dtype)
        a.fill(0)
        return a

    def ranges(self, bytes_per_image: int):
        """Image ranges, one per thread when the work is big enough to share."""
        return parallel.compiled_ranges(self.n, self.n * bytes_per_image)


def _correlate(src, wf, offsets, bias, geo, box, origin, out, relu):
    """`out` (N, K, ∏box) = tiles of `src` ★ `wf` (K, C, T) over the box of grid positions (see
    `correlate_tiles`)."""
    k = wf.shape[0]
    kb = tile_channels(k)
    wb = weight_blocks(wf, kb)
    bias_p = np.zeros(wb.shape[0] * kb, dtype=src.dtype)
    if bias is not None:
        bias_p[:k] = bias
    starts, outs, lanes = slots(geo.padded, tuple(box), tuple(origin), NV)
    kernels = _compile()
    flat = out.reshape(out.shape[0], k, -1)
    parallel.run_compiled(kernels.correlate_parts, kernels.correlate,
                          (src, wb, offsets, bias_p, starts, outs, lanes, geo.plane, flat, relu, kb),
                          geo.ranges(k * geo.plane * src.itemsize))


def forward(x, w, b, pads, padded, out_size, dilation, padding_mode, relu):
    """Direct convolution of (N, C, *S) `x` with (K, C, *F) `w` (`padded`: the padded sizes, `out_size`:
    the output's): returns (y, state) where y is a C-contiguous (N, K, *O) array and `state` what
    `backward` needs."""
    n, c = x.shape[:2]
    k = w.shape[0]
    geo = Geometry(n, padded, out_size, w.shape[2:], dilation)
    src = geo.grid(c, x.dtype)  # (C, L + reach + LANES): tiles read past the last position
    grid = src[:, :geo.length].reshape(c, n, *padded)
    xc = np.moveaxis(x, 1, 0)  # (C, N, *S) view
    if padding_mode == "zeros":
        grid[(slice(None), slice(None), *(slice(p0, p0 + s) for (p0, _), s in zip(pads, x.shape[2:])))] = xc
    else:
        grid[...] = pad_array(xc, {2 + a: p for a, p in enumerate(pads)}, padding_mode)
    wf = w.reshape(k, c, -1)
    y = np.empty((n, k, *out_size), dtype=x.dtype)
    _correlate(src, wf, geo.offsets, b, geo, out_size, (0,) * len(out_size), y, relu)
    return y, (src, wf, geo, y if relu else None)


def backward(grad, state, x_shape, pads, padding_mode, needs):
    """(dx, dw, db) of the direct convolution; `needs` says which of the three to compute."""
    src, wf, geo, y = state
    k, c, taps = wf.shape
    n, dtype = geo.n, src.dtype
    q = math.prod(geo.out_size)
    # dL/dz (after the fused ReLU's mask) channels-last, (N, q, kp): kp pads the channels to whole
    # vectors of the weight gradient's tile
    tile = grad_tile(k, taps)
    kp = -(-k // (tile[0] * LANES)) * tile[0] * LANES
    dzc = workspace.take((n, q, kp), dtype)
    g = np.ascontiguousarray(grad).reshape(n, k, q)
    kernels = _compile()
    parallel.run_compiled(kernels.channels_last_grad_parts, kernels.channels_last_grad,
                          (g, g if y is None else y.reshape(n, k, q), y is not None, dzc),
                          geo.ranges(2 * k * q * dtype.itemsize))
    dx = dw = db = None
    if needs[2]:
        db = column_sums(dzc.reshape(-1, kp))[:k]  # Σ over batch and positions
    if needs[1]:
        dw = _weight_grad(dzc, src, geo, tile)[:k]
    if needs[0]:
        gz = geo.grid(k, dtype, front=geo.reach, scratch=True)  # dL/dz on the padded grid, `reach` zeros in front
        rows = row_starts(geo.padded, geo.out_size, (0,) * len(geo.out_size))
        parallel.run_compiled(kernels.grid_grad_parts, kernels.grid_grad,
                              (dzc, gz, geo.reach, rows, geo.out_size[-1], geo.plane), geo.ranges(2 * k * q * dtype.itemsize))
        dx = _input_grad(gz, wf, geo, x_shape, pads, padding_mode)
        workspace.give(gz)
    workspace.give(dzc)
    return dx, dw, db


def _weight_grad(dzc, src, geo, tile):
    """dW (kp, C, *F) from the channels-last dL/dz `dzc` (N, q, kp) and the gridded input `src`, in tiles
    of `tile` = (kv, m) (see `weight_grad_tiles`)."""
    kv, m = tile
    kp, c, taps = dzc.shape[-1], src.shape[0], geo.offsets.size
    tp = -(-taps // m) * m
    offs = np.concatenate([geo.offsets, np.full(tp - taps, geo.offsets[-1], dtype=np.int64)])
    rows = row_starts(geo.padded, geo.out_size, (0,) * len(geo.out_size))
    kernels = _compile()
    flat, zero = dzc.reshape(-1), np.zeros(m, dtype=src.dtype)
    args = (flat, src, offs, rows, geo.out_size[-1], geo.plane)
    ranges = geo.ranges((kp + c) * dzc.shape[1] * src.itemsize)
    if len(ranges) > 1 and launch.available() and not parallel.in_serial():
        parts = np.zeros((len(ranges), c * tp * kp), dtype=src.dtype)  # one sum per range, added up below
        launch.set_threads(parallel.get_num_threads())
        kernels.weight_grad_parts(*args, parts, zero, kv, launch.edges(ranges))
        dwv = parts.sum(axis=0)
    else:
        def part(lo, hi):
            dwv = np.zeros(c * tp * kp, dtype=src.dtype)
            kernels.weight_grad(*args, dwv, zero, kv, lo, hi)
            return dwv

        dwv = sum(parallel.run(part, ranges))
    return np.moveaxis(dwv.reshape(c, tp, kp)[:, :taps], -1, 0).reshape(kp, c, *geo.kernel)


def _input_grad(gz, wf, geo, x_shape, pads, padding_mode):
    """dL/dx (N, C, *S) from dL/dz on the padded grid `gz` (K, reach + L + …; zeros at the positions
    that are no output and in the `reach` cells in front), correlated with the transposed kernel at
    offsets reach − off_t. With zero padding only the input's own cells are computed; the other modes
    need the whole padded grid for the adjoint of their padding."""
    n, c, dtype = geo.n, wf.shape[1], gz.dtype
    back = geo.reach - geo.offsets  # dx[j] reads dY[j − off_t] = gz[j + reach − off_t]
    wt = np.ascontiguousarray(wf.transpose(1, 0, 2))  # (C, K, T)
    spatial = tuple(x_shape[2:])
    if padding_mode == "zeros":
        dx = np.empty((n, c, *spatial), dtype=dtype)
        _correlate(gz, wt, back, None, geo, spatial, tuple(p0 for p0, _ in pads), dx, False)
        return dx
    dxp = np.empty((n, c, *geo.padded), dtype=dtype)
    _correlate(gz, wt, back, None, geo, geo.padded, (0,) * len(spatial), dxp, False)
    return pad_array_backward(dxp, {2 + a: p for a, p in enumerate(pads)}, padding_mode, x_shape)
