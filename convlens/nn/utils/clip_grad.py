"""Gradient clipping, in place, as ``torch.nn.utils``: by the global norm or element-wise by value."""

from __future__ import annotations

import math
import numbers

import numpy as np

from convlens.tensor import Tensor


def _grads(parameters) -> list[np.ndarray]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad._data for p in parameters if p.grad is not None]


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """The `norm_type`-norm of all the arrays together, as if concatenated into one vector."""
    arrays = [t._data if isinstance(t, Tensor) else np.asarray(t) for t in
              ([tensors] if isinstance(tensors, Tensor) else tensors)]
    return _total_norm(arrays, norm_type, error_if_nonfinite)


def _total_norm(arrays, norm_type, error_if_nonfinite) -> Tensor:
    norm_type = float(norm_type)
    dtype = arrays[0].dtype if arrays else np.dtype(np.float32)
    if not arrays:
        return Tensor._wrap(np.zeros((), dtype))
    if norm_type == math.inf:
        total = max(float(np.abs(a).max()) if a.size else 0.0 for a in arrays)
    elif norm_type == 2.0:
        total = math.sqrt(sum(float(np.vdot(a, a).real) for a in arrays))
    else:
        total = sum(float((np.abs(a.astype(np.float64)) ** norm_type).sum()) for a in arrays) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
                           "so it cannot be clipped. To disable this error and scale the gradients by the "
                           "non-finite norm anyway, set `error_if_nonfinite=False`")
    return Tensor._wrap(np.asarray(total, dtype=dtype))


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None) -> Tensor:
    """Scale all gradients together so that their joint `norm_type`-norm is at most `max_norm`:
    g ← g·min(1, max_norm/(‖g‖ + 10⁻⁶)). Returns the norm before clipping (a 0-d tensor)."""
    if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real):
        raise TypeError(f"clip_grad_norm_: max_norm must be a number, got {max_norm!r}")
    grads = _grads(parameters)
    total = _total_norm(grads, norm_type, error_if_nonfinite)
    coefficient = min(float(max_norm) / (float(total) + 1e-6), 1.0)
    for g in grads:
        g *= g.dtype.type(coefficient)
    return total


def clip_grad_norm(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach=None) -> Tensor:
    """The deprecated name of `clip_grad_norm_`."""
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element to [−clip_value, clip_value]."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        np.clip(g, -clip_value, clip_value, out=g)
