"""Channel-wise ("feature") dropout: `dropout1d`, `dropout2d`, `dropout3d` zero whole channels.

Neighbouring pixels of a feature map are strongly correlated, so dropping single pixels regularises
convolutions little; these draw one keep/drop decision per (sample, channel) and scale the kept
channels by 1/(1 − p) (Tompson et al. 2015), as ``torch.nn.functional.dropout2d``.
"""

from __future__ import annotations

import numbers

import numpy as np

from convlens.nn.functional.linear import Dropout
from convlens.tensor import Tensor, default_generator


def feature_dropout(input: Tensor, p: float, training: bool, where: str) -> Tensor:
    """Dropout with one mask value per (N, C) of an (N, C, *) input, broadcast over the other axes."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{where}: expected a Tensor input, got {type(input).__name__}")
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{where}: p must be a probability in [0, 1], got {p!r}")
    if not training or p == 0.0:
        return input
    dtype = input.dtype if input.dtype.kind == "f" else np.dtype(np.float32)
    shape = input.shape[:2] + (1,) * (input.ndim - 2)
    if p == 1.0:
        mask = np.zeros(shape, dtype=dtype)
    else:
        keep = default_generator().random(shape) >= p
        mask = keep.astype(dtype) * dtype.type(1.0 / (1.0 - p))
    return Dropout.apply(input, mask=mask)


def _ranked(input: Tensor, batched: int, where: str, layout: str):
    """Add the batch axis to an unbatched input; returns (input, whether it was added)."""
    if input.ndim == batched - 1:
        return input.unsqueeze(0), True
    if input.ndim != batched:
        raise ValueError(f"{where}: expected a {batched - 1}-d or {batched}-d input {layout}, got shape {input.shape}")
    return input, False


def _channelwise(input, p, training, batched, where, layout):
    x, added = _ranked(input, batched, where, layout)
    out = feature_dropout(x, p, training, where)
    return out.squeeze(0) if added else out


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, L) (or (C, L)) with probability p, scale the rest by 1/(1 − p)."""
    return _channelwise(input, p, training, 3, "dropout1d", "(N, C, L)")


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, H, W) with probability p. A 3-d input is read as (N, C, L), as
    PyTorch 2 does (with a warning there), not as an unbatched (C, H, W)."""
    if isinstance(input, Tensor) and input.ndim == 3:
        return feature_dropout(input, p, training, "dropout2d")
    return _channelwise(input, p, training, 4, "dropout2d", "(N, C, H, W)")


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, D, H, W) (or (C, D, H, W)) with probability p."""
    return _channelwise(input, p, training, 5, "dropout3d", "(N, C, D, H, W)")
