"""Reductions, sorting and searching on a `Tensor`, with PyTorch's names, arguments and return types:
sum/mean/prod, var/std (``correction``/``unbiased``), max/min over a dim (the named tuple
``(values, indices)``), argmax, norm, cumsum, all/any, topk, sort, argsort, nonzero, unique.

``dim`` is PyTorch's argument; NumPy's ``axis``/``keepdims`` are accepted as keywords too.
"""

from __future__ import annotations

import numbers

import numpy as np

from convlens import ops, return_types
from convlens.ops_math import Cumsum, Norm2, Prod


def _wrap(array):
    from convlens.tensor import Tensor

    return Tensor._wrap(np.asarray(array))


def axes_of(dim, axis, ndim: int):
    """Normalise PyTorch's `dim` / NumPy's `axis` (an int, a tuple or None) to a sorted tuple or None."""
    chosen = dim if dim is not None else axis
    if chosen is None:
        return None
    if isinstance(chosen, numbers.Integral):
        chosen = (chosen,)
    out = []
    for d in chosen:
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(f"dimension {d} out of range for a tensor with {ndim} dimensions")
        out.append(d % max(ndim, 1))
    if ndim == 0:  # PyTorch accepts dim 0 (or -1) of a 0-d tensor: reducing it is the identity
        return None
    return tuple(sorted(set(out)))


def one_axis(dim, ndim: int) -> int:
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"expected dim to be an int, got {dim!r} (for several dims use amax/amin)")
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"dimension {dim} out of range for a tensor with {ndim} dimensions")
    return int(dim) % max(ndim, 1)


def _count(shape, axes) -> int:
    return int(np.prod(shape)) if axes is None else int(np.prod([shape[a] for a in axes]))


class ReduceMixin:
    __slots__ = ()

    # ---- sums and means -------------------------------------------------------------------------------
    def sum(self, dim=None, keepdim: bool = False, *, dtype=None, axis=None, keepdims=None):
        x = self if dtype is None else self.to(dtype)
        return ops.Sum.apply(x, axis=axes_of(dim, axis, self.ndim), keepdims=bool(keepdims or keepdim))

    def mean(self, dim=None, keepdim: bool = False, *, dtype=None, axis=None, keepdims=None):
        x = self if dtype is None else self.to(dtype)
        if x.dtype.kind != "f":
            raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be a floating point "
                               f"type, got {x.dtype}; use .float().mean()")
        return ops.Mean.apply(x, axis=axes_of(dim, axis, self.ndim), keepdims=bool(keepdims or keepdim))

    def nansum(self, dim=None, keepdim: bool = False):
        return self.masked_fill(self.isnan(), 0).sum(dim, keepdim)

    def prod(self, dim=None, keepdim: bool = False, *, dtype=None):
        x = self if dtype is None else self.to(dtype)
        axis = None if dim is None else one_axis(dim, self.ndim)
        if x.ndim == 0:
            return x.clone()
        return Prod.apply(x, axis=axis, keepdims=bool(keepdim) if axis is not None else False)

    def cumsum(self, dim, *, dtype=None):
        x = self if dtype is None else self.to(dtype)
        if x.ndim == 0:
            return x.clone()
        return Cumsum.apply(x, axis=one_axis(dim, self.ndim))

    def var(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
        """Variance Σ(x − x̄)²/max(0, N − correction) over `dim`: correction 1 (Bessel's, the default,
        also ``unbiased=True``) or 0 (``unbiased=False``), as ``torch.var``."""
        if isinstance(dim, bool):  # var(unbiased) of PyTorch's older overload
            dim, unbiased = None, dim
        if correction is not None and unbiased is not None:
            raise RuntimeError("var/std: give either correction= or unbiased=, not both")
        c = float(correction) if correction is not None else (0.0 if unbiased is False else 1.0)
        axes = axes_of(dim, None, self.ndim)
        n = _count(self.shape, axes)
        centred = self - self.mean(axes, keepdim=True)
        total = (centred * centred).sum(axes, keepdim=keepdim)
        return total * (1.0 / (n - c) if n > c else float("inf"))

    def std(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
        """√var, see `var`."""
        return self.var(dim, unbiased, keepdim, correction=correction).sqrt()

    def norm(self, p="fro", dim=None, keepdim: bool = False, dtype=None):
        """The vector p-norm over `dim` (all cells by default): p = 2 / "fro" (zero gradient at 0, as
        PyTorch), 1, inf, −inf, 0 (the count of non-zeros) or any other number."""
        x = self if dtype is None else self.to(dtype)
        axes = axes_of(dim, None, self.ndim)
        if p in (2, 2.0, "fro"):
            return Norm2.apply(x, axis=axes, keepdims=bool(keepdim))
        if p == 1:
            return x.abs().sum(axes, keepdim)
        if p == float("inf"):
            return x.abs().amax(axes, keepdim)
        if p == float("-inf"):
            return x.abs().amin(axes, keepdim)
        if p == 0:
            return (x != 0).to(x.dtype).sum(axes, keepdim)
        if not isinstance(p, numbers.Real):
            raise ValueError(f"norm: p must be a number or 'fro', got {p!r}")
        return (x.abs() ** p).sum(axes, keepdim) ** (1.0 / p)

    def logsumexp(self, dim, keepdim: bool = False):
        """log Σ exp(x) over `dim`, computed stably (the maximum is taken out first)."""
        axes = axes_of(dim, None, self.ndim)
        top = self.amax(axes, keepdim=True).detach()
        top = top.masked_fill(~top.isfinite(), 0)
        out = (self - top).exp().sum(axes, keepdim=True).log() + top
        return out if keepdim else out.squeeze(axes) if axes is not None else out.reshape(())

    # ---- extremes -------------------------------------------------------------------------------------
    def max(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        """As ``torch.max``: over everything, the maximum; over one ``dim``, the named tuple
        ``(values, indices)``; given another tensor, the element-wise maximum."""
        if hasattr(dim, "_data"):
            from convlens.functions import maximum

            return maximum(self, dim)
        return _reduce_extreme(self, "max", dim, axis, bool(keepdims or keepdim))

    def min(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        """As ``torch.min``: the minimum, ``(values, indices)`` over one ``dim``, or element-wise."""
        if hasattr(dim, "_data"):
            from convlens.functions import minimum

            return minimum(self, dim)
        return _reduce_extreme(self, "min", dim, axis, bool(keepdims or keepdim))

    def amax(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        """Maximum over one or several dims (values only; the gradient is shared between ties)."""
        return ops.Max.apply(self, axis=axes_of(dim, axis, self.ndim), keepdims=bool(keepdims or keepdim))

    def amin(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        return -((-self).amax(dim, keepdim, axis=axis, keepdims=keepdims))

    def argmax(self, dim=None, keepdim: bool = False, *, axis=None):
        return _arg_extreme(self._data, np.argmax, dim if dim is not None else axis, keepdim)

    def argmin(self, dim=None, keepdim: bool = False, *, axis=None):
        return _arg_extreme(self._data, np.argmin, dim if dim is not None else axis, keepdim)

    def median(self, dim=None, keepdim: bool = False):
        """The lower median (as PyTorch): of everything, or ``(values, indices)`` over `dim`."""
        if dim is None:
            flat = self.reshape(-1)
            return flat[int(np.argsort(flat._data, kind="stable")[(flat.numel() - 1) // 2])]
        d = one_axis(dim, self.ndim)
        order = np.argsort(self._data, axis=d, kind="stable")
        index = np.take(order, [(self.shape[d] - 1) // 2], axis=d)
        values = ops.TakeAlong.apply(self, indices=index, axis=d)
        if not keepdim:
            values, index = values.squeeze(d), np.squeeze(index, d)
        return return_types.median(values, _wrap(index.astype(np.int64)))

    # ---- logic ----------------------------------------------------------------------------------------
    def all(self, dim=None, keepdim: bool = False):
        return _wrap(np.all(self._data, axis=axes_of(dim, None, self.ndim), keepdims=keepdim))

    def any(self, dim=None, keepdim: bool = False):
        return _wrap(np.any(self._data, axis=axes_of(dim, None, self.ndim), keepdims=keepdim))

    def count_nonzero(self, dim=None):
        return _wrap(np.count_nonzero(self._data, axis=axes_of(dim, None, self.ndim)).astype(np.int64))

    # ---- sorting and searching --------------------------------------------------------------------------
    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False):
        """Indices that sort along `dim`; always stable (ties keep their order), so ``stable`` is implied."""
        return _wrap(_sort_indices(self._data, one_axis(dim, self.ndim), descending))

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False):
        """``(values, indices)`` sorted along `dim` (stable; NaN counts as the largest value)."""
        if self.ndim == 0:
            return return_types.sort(self.clone(), _wrap(np.zeros((), np.int64)))
        d = one_axis(dim, self.ndim)
        index = _sort_indices(self._data, d, descending)
        return return_types.sort(ops.TakeAlong.apply(self, indices=index, axis=d), _wrap(index))

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
        """The `k` largest (or smallest) values along `dim` and their indices, largest first."""
        if self.ndim == 0:
            return return_types.topk(self.clone(), _wrap(np.zeros((), np.int64)))
        d = one_axis(dim, self.ndim)
        if not 0 <= k <= self.shape[d]:
            raise RuntimeError(f"topk: k ({k}) is out of range for dimension {d} of size {self.shape[d]}")
        index = np.take(_sort_indices(self._data, d, descending=largest), np.arange(k), axis=d)
        return return_types.topk(ops.TakeAlong.apply(self, indices=index, axis=d), _wrap(index))

    def kthvalue(self, k: int, dim: int = -1, keepdim: bool = False):
        """The k-th smallest value (k from 1) along `dim`, with its index."""
        d = one_axis(dim, self.ndim)
        index = np.take(_sort_indices(self._data, d, False), [k - 1], axis=d)
        values = ops.TakeAlong.apply(self, indices=index, axis=d)
        if not keepdim:
            values, index = values.squeeze(d), np.squeeze(index, d)
        return return_types.kthvalue(values, _wrap(index))

    def nonzero(self, *, as_tuple: bool = False):
        """Indices of the non-zero elements: an (n, ndim) int64 tensor, or one 1-d tensor per dim."""
        found = np.nonzero(self._data) if self.ndim else np.nonzero(self._data.reshape(1))
        if as_tuple:
            return tuple(_wrap(i.astype(np.int64)) for i in found)
        return _wrap(np.stack(found, axis=1).astype(np.int64) if self.ndim else
                     np.zeros((len(found[0]), 0), np.int64))

    def argwhere(self):
        return self.nonzero()

    def unique(self, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False, dim=None):
        """The distinct values (sorted), optionally with each element's position in them and the counts."""
        axis = None if dim is None else one_axis(dim, self.ndim)
        values, inverse, counts = np.unique(self._data, return_inverse=True, return_counts=True, axis=axis)
        out = [_wrap(values)]
        if return_inverse:
            out.append(_wrap(inverse.reshape(self.shape if axis is None else -1).astype(np.int64)))
        if return_counts:
            out.append(_wrap(counts.astype(np.int64)))
        return out[0] if len(out) == 1 else tuple(out)

    def bincount(self, weights=None, minlength: int = 0):
        w = None if weights is None else np.asarray(getattr(weights, "_data", weights))
        return _wrap(np.bincount(self._data, w, minlength))


def _sort_indices(a: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """Stable sorting indices; descending keeps ties in their original order and puts NaN first
    (the reverse of a stable ascending sort of the reversed array)."""
    if not descending:
        return np.argsort(a, axis=axis, kind="stable").astype(np.int64, copy=False)
    n = a.shape[axis]
    flipped = np.argsort(np.flip(a, axis), axis=axis, kind="stable")
    return (n - 1 - np.flip(flipped, axis)).astype(np.int64, copy=False)


def _arg_extreme(array: np.ndarray, fn, dim, keepdim: bool):
    if dim is None:
        out = fn(array.reshape(-1))
        return _wrap(np.asarray(out, dtype=np.int64).reshape((1,) * array.ndim if keepdim else ()))
    if array.ndim == 0:
        return _wrap(np.zeros((), dtype=np.int64))
    return _wrap(np.asarray(fn(array, axis=one_axis(dim, array.ndim), keepdims=keepdim), np.int64))


def _reduce_extreme(t, kind: str, dim, axis, keepdim: bool):
    dim = dim if dim is not None else axis
    if dim is None:
        return t.amax() if kind == "max" else t.amin()
    if isinstance(dim, tuple | list):
        raise TypeError(f"{kind}(): dim must be an int, got {dim!r}; for several dims use a{kind}()")
    d = one_axis(dim, t.ndim)
    if t.ndim == 0:
        return getattr(return_types, kind)(t, _wrap(np.zeros((), dtype=np.int64)))
    if t.shape[d] == 0:
        raise IndexError(f"{kind}(): cannot reduce the empty dimension {d} of a tensor of shape {t.shape}")
    index = (np.argmax if kind == "max" else np.argmin)(t._data, axis=d, keepdims=True)
    values = ops.TakeAlong.apply(t, indices=index, axis=d)
    if not keepdim:
        values, index = values.squeeze(d), np.squeeze(index, d)
    return getattr(return_types, kind)(values, _wrap(index.astype(np.int64, copy=False)))
