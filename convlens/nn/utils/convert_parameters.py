"""Parameters as one flat vector and back, as ``torch.nn.utils``."""

from __future__ import annotations

import numpy as np

from convlens.tensor import Tensor


def parameters_to_vector(parameters) -> Tensor:
    """All parameters flattened and concatenated, in order (differentiable)."""
    from convlens.ops import cat

    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Copy consecutive slices of `vec` into the parameters, in place."""
    if not isinstance(vec, Tensor) or vec.ndim != 1:
        raise TypeError(f"vector_to_parameters: expected a 1-d Tensor, got {type(vec).__name__}")
    params = list(parameters)
    total = sum(p.numel() for p in params)
    if vec.numel() != total:
        raise ValueError(f"vector_to_parameters: the vector has {vec.numel()} elements, the parameters {total}")
    offset = 0
    for p in params:
        n = p.numel()
        p._data[...] = np.asarray(vec._data[offset:offset + n]).reshape(p.shape)
        offset += n
