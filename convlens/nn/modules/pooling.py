"""Pooling layers: max, average, weighted average and adaptive pooling over 1, 2 or 3 spatial axes.

Each family is one N-d class; ``MaxPool2d`` and friends only fix the number of spatial axes.
"""

from __future__ import annotations

import numpy as np

from convlens.nn import functional as F
from convlens.nn.modules.module import Module
from convlens.nn.shape import check_input, conv_output_size, ntuple


class _PoolNd(Module):
    """Shared window geometry, validation and output_shape of window pooling.

    Shape:
        input (N, C, *spatial) or (C, *spatial) → (N, C, *spatial_out), per axis
        W_out = ⌊(W + 2P − D·(F − 1) − 1)/S⌋ + 1 (rounded up with ceil_mode); stride defaults to kernel_size.
    """

    _dims = 0

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False):
        super().__init__()
        n, name = self._dims, type(self).__name__
        self._where = f"{name}(kernel_size={kernel_size})"
        self._kernel = ntuple(kernel_size, n, "kernel_size", self._where, minimum=1)
        self._stride = self._kernel if stride is None else ntuple(stride, n, "stride", self._where, minimum=1)
        self._padding = ntuple(padding, n, "padding", self._where, minimum=0)
        self._dilation = ntuple(dilation, n, "dilation", self._where, minimum=1)
        if any(p > k // 2 for p, k in zip(self._padding, self._kernel)):
            raise ValueError(f"{self._where}: padding must be at most half the kernel size, got padding={padding}")
        # keep the arguments as given, for repr and for users who read them back (as PyTorch does)
        self.kernel_size, self.stride, self.padding = kernel_size, kernel_size if stride is None else stride, padding
        self.dilation, self.ceil_mode = dilation, bool(ceil_mode)

    def output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        check_input((1,) + input_shape, self._dims, self._where)
        out = conv_output_size(input_shape[1:], self._kernel, self._stride, self._padding, self._dilation,
                               self.ceil_mode)
        if any(o < 1 for o in out):
            raise ValueError(f"{self._where}: input of shape {input_shape} is smaller than the window "
                             f"kernel_size={self._kernel} with padding={self._padding}; the output would be {out}")
        return input_shape[:1] + out

    def _pool(self, input):
        raise NotImplementedError

    def forward(self, input):
        unbatched = input.ndim == self._dims + 1
        if unbatched:
            input = input.unsqueeze(0)
        if input.shape != getattr(self, "_checked_shape", None):  # the layer's own checks, once per shape
            check_input(input.shape, self._dims, self._where)
            self.output_shape(input.shape[1:])
            self._checked_shape = input.shape
        out = self._pool(input)
        return out.squeeze(0) if unbatched else out


class _MaxPoolNd(_PoolNd):
    """Maximum over each window (padding never wins). With ``return_indices=True`` the layer returns
    ``(output, indices)``, the flat in-plane positions of the maxima (for `MaxUnpool2d`). See `_PoolNd`
    for shapes."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)
        self.return_indices = bool(return_indices)

    def forward(self, input):
        if not self.return_indices:
            return super().forward(input)
        self.output_shape(input.shape[1:] if input.ndim == self._dims + 2 else input.shape)
        fn = getattr(F, f"max_pool{self._dims}d")
        return fn(input, self._kernel, self._stride, self._padding, self._dilation, self.ceil_mode, True)

    def _pool(self, input):
        fn = getattr(F, f"max_pool{self._dims}d")
        return fn(input, self._kernel, self._stride, self._padding, self._dilation, self.ceil_mode)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class _AvgPoolNd(_PoolNd):
    """Mean over each window of the zero-padded input (count_include_pad=False: of the real cells)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True):
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        if self._dims == 1:  # PyTorch's AvgPool1d (only) stores its arguments as 1-tuples
            self.kernel_size, self.stride, self.padding = self._kernel, self._stride, self._padding

    def _pool(self, input):
        fn = getattr(F, f"avg_pool{self._dims}d")
        return fn(input, self._kernel, self._stride, self._padding, self.ceil_mode, self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _WeightedAvgPoolNd(_PoolNd):
    """Weighted mean over each window of the zero-padded input with fixed (not learned) weights of the
    kernel's shape, normalised to sum 1; by default a Gaussian centred on the window."""

    def __init__(self, kernel_size, stride=None, padding=0, weights=None):
        super().__init__(kernel_size, stride, padding)
        if weights is not None:
            w = np.array(getattr(weights, "_data", weights), dtype=np.float64)
            if w.shape != self._kernel:
                raise ValueError(f"{self._where}: weights must have the kernel's shape {self._kernel}, "
                                 f"got shape {w.shape}")
            if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
                raise ValueError(f"{self._where}: weights must be finite, non-negative and not all zero, "
                                 f"got {w.tolist()}")
            weights = w
        self.weights = weights

    def _pool(self, input):
        fn = getattr(F, f"weighted_avg_pool{self._dims}d")
        return fn(input, self._kernel, self._stride, self._padding, self.weights)

    def extra_repr(self) -> str:
        kind = "gaussian" if self.weights is None else "custom"
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, weights={kind}"


class _AdaptivePoolNd(Module):
    """Pooling to a fixed output size whatever the input size (PyTorch's bins ⌊iL/O⌋ .. ⌈(i+1)L/O⌉).

    Shape:
        input (N, C, *spatial) or (C, *spatial) → (N, C, *output_size); a None entry keeps that axis.
    """

    _dims = 0
    _kind = ""  # "avg" or "max"

    def __init__(self, output_size):
        super().__init__()
        n = self._dims
        self._where = f"{type(self).__name__}(output_size={output_size})"
        sizes = tuple(output_size) if isinstance(output_size, list | tuple) else (output_size,) * n
        if len(sizes) == 1 and n > 1:
            sizes = sizes * n
        if len(sizes) != n:
            raise ValueError(f"{self._where}: output_size must have {n} entries, got {output_size!r}")
        ntuple(tuple(1 if s is None else s for s in sizes), n, "output_size", self._where, minimum=1)
        self.output_size = output_size

    def output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        check_input((1,) + input_shape, self._dims, self._where)
        sizes = self.output_size if isinstance(self.output_size, list | tuple) else (self.output_size,)
        sizes = tuple(sizes) * (self._dims if len(sizes) == 1 else 1)
        return input_shape[:1] + tuple(n if s is None else int(s) for s, n in zip(sizes, input_shape[1:]))

    def forward(self, input):
        unbatched = input.ndim == self._dims + 1
        if unbatched:
            input = input.unsqueeze(0)
        check_input(input.shape, self._dims, self._where)
        out = getattr(F, f"adaptive_{self._kind}_pool{self._dims}d")(input, self.output_size)
        return out.squeeze(0) if unbatched else out

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class MaxPool1d(_MaxPoolNd):
    """Max pooling over (N, C, L); see `_MaxPoolNd`.

    Shape:
        (N, C, L) → the same layout, spatial sizes ⌊(W + 2P − D·(F − 1) − 1)/S⌋ + 1.
    """

    _dims = 1


class MaxPool2d(_MaxPoolNd):
    """Max pooling over (N, C, H, W); see `_MaxPoolNd`.

    Shape:
        (N, C, H, W) → the same layout, spatial sizes ⌊(W + 2P − D·(F − 1) − 1)/S⌋ + 1.
    """

    _dims = 2


class MaxPool3d(_MaxPoolNd):
    """Max pooling over (N, C, D, H, W); see `_MaxPoolNd`.

    Shape:
        (N, C, D, H, W) → the same layout, spatial sizes ⌊(W + 2P − D·(F − 1) − 1)/S⌋ + 1.
    """

    _dims = 3


class AvgPool1d(_AvgPoolNd):
    """Average pooling over (N, C, L); see `_AvgPoolNd`.

    Shape:
        (N, C, L) → the same layout, spatial sizes ⌊(W + 2P − F)/S⌋ + 1.
    """

    _dims = 1


class AvgPool2d(_AvgPoolNd):
    """Average pooling over (N, C, H, W); see `_AvgPoolNd`.

    Shape:
        (N, C, H, W) → the same layout, spatial sizes ⌊(W + 2P − F)/S⌋ + 1.
    """

    _dims = 2


class AvgPool3d(_AvgPoolNd):
    """Average pooling over (N, C, D, H, W); see `_AvgPoolNd`.

    Shape:
        (N, C, D, H, W) → the same layout, spatial sizes ⌊(W + 2P − F)/S⌋ + 1.
    """

    _dims = 3


class WeightedAvgPool1d(_WeightedAvgPoolNd):
    """Weighted average pooling over (N, C, L); see `_WeightedAvgPoolNd`.

    Shape:
        (N, C, L) → the same layout, spatial sizes ⌊(W + 2P − F)/S⌋ + 1.
    """

    _dims = 1


class WeightedAvgPool2d(_WeightedAvgPoolNd):
    """Weighted average pooling over (N, C, H, W); see `_WeightedAvgPoolNd`.

    Shape:
        (N, C, H, W) → the same layout, spatial sizes ⌊(W + 2P − F)/S⌋ + 1.
    """

    _dims = 2


class WeightedAvgPool3d(_WeightedAvgPoolNd):
    """Weighted average pooling over (N, C, D, H, W); see `_WeightedAvgPoolNd`.

    Shape:
        (N, C, D, H, W) → the same layout, spatial sizes ⌊(W + 2P − F)/S⌋ + 1.
    """

    _dims = 3


class AdaptiveAvgPool1d(_AdaptivePoolNd):
    """Adaptive average pooling over (N, C, L); see `_AdaptivePoolNd`.

    Shape:
        (N, C, L) → (N, C, *output_size).
    """

    _dims = 1
    _kind = "avg"


class AdaptiveAvgPool2d(_AdaptivePoolNd):
    """Adaptive average pooling over (N, C, H, W); see `_AdaptivePoolNd`.

    Shape:
        (N, C, H, W) → (N, C, *output_size).
    """

    _dims = 2
    _kind = "avg"


class AdaptiveAvgPool3d(_AdaptivePoolNd):
    """Adaptive average pooling over (N, C, D, H, W); see `_AdaptivePoolNd`.

    Shape:
        (N, C, D, H, W) → (N, C, *output_size).
    """

    _dims = 3
    _kind = "avg"


class AdaptiveMaxPool1d(_AdaptivePoolNd):
    """Adaptive max pooling over (N, C, L); see `_AdaptivePoolNd`.

    Shape:
        (N, C, L) → (N, C, *output_size).
    """

    _dims = 1
    _kind = "max"


class AdaptiveMaxPool2d(_AdaptivePoolNd):
    """Adaptive max pooling over (N, C, H, W); see `_AdaptivePoolNd`.

    Shape:
        (N, C, H, W) → (N, C, *output_size).
    """

    _dims = 2
    _kind = "max"


class AdaptiveMaxPool3d(_AdaptivePoolNd):
    """Adaptive max pooling over (N, C, D, H, W); see `_AdaptivePoolNd`.

    Shape:
        (N, C, D, H, W) → (N, C, *output_size).
    """

    _dims = 3
    _kind = "max"


class _MaxUnpoolNd(Module):
    """Partial inverse of max pooling: each value goes back to the position its index names (from
    ``MaxPool(return_indices=True)``), every other cell is 0.

    Shape:
        (N, C, *spatial) → (N, C, *out), per axis (W − 1)·S − 2P + K, or ``forward``'s `output_size`.
    """

    _dims = 0

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        where = f"{type(self).__name__}(kernel_size={kernel_size})"
        self.kernel_size = ntuple(kernel_size, self._dims, "kernel_size", where, minimum=1)
        self.stride = self.kernel_size if stride is None else ntuple(stride, self._dims, "stride", where, minimum=1)
        self.padding = ntuple(padding, self._dims, "padding", where, minimum=0)

    def forward(self, input, indices, output_size=None):
        fn = getattr(F, f"max_unpool{self._dims}d")
        return fn(input, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """Max unpooling of (N, C, L); see `_MaxUnpoolNd`.

    Shape:
        (N, C, L) → (N, C, (L − 1)·S − 2P + K)
    """

    _dims = 1


class MaxUnpool2d(_MaxUnpoolNd):
    """Max unpooling of (N, C, H, W); see `_MaxUnpoolNd`.

    Shape:
        (N, C, H, W) → (N, C, (H − 1)·S − 2P + K, (W − 1)·S − 2P + K)
    """

    _dims = 2


class MaxUnpool3d(_MaxUnpoolNd):
    """Max unpooling of (N, C, D, H, W); see `_MaxUnpoolNd`.

    Shape:
        (N, C, D, H, W) → each axis (W − 1)·S − 2P + K
    """

    _dims = 3
