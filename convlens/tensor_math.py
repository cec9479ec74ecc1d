"""Element-wise `Tensor` methods with PyTorch's names: exp, log, sqrt, clamp, pow, the named arithmetic
(``add(other, alpha=)``, ``div(rounding_mode=)``), matrix products, where/masked_fill, lerp, tests such as
isnan, and softmax over a dim. Differentiable ones are `convlens.ops` Functions."""

from __future__ import annotations

import numpy as np

from convlens import ops
from convlens.ops_indexing import Where
from convlens.ops_math import Cos, Log1p, PiecewiseConstant, Sin


def _wrap(array) -> object:
    from convlens.tensor import Tensor

    return Tensor._wrap(np.asarray(array))


def _array(value):
    return value._data if hasattr(value, "_data") else np.asarray(value)


class MathMixin:
    __slots__ = ()

    # ---- element-wise functions ---------------------------------------------------------------------
    def exp(self):
        return ops.Exp.apply(self)

    def log(self):
        return ops.Log.apply(self)

    def log1p(self):
        return Log1p.apply(self)

    def log2(self):
        return self.log() / float(np.log(2.0))

    def log10(self):
        return self.log() / float(np.log(10.0))

    def sqrt(self):
        return ops.Sqrt.apply(self)

    def rsqrt(self):
        return 1.0 / ops.Sqrt.apply(self)

    def square(self):
        return ops.PowScalar.apply(self, exponent=2)

    def abs(self):
        return ops.Abs.apply(self)

    absolute = abs

    def neg(self):
        return ops.Neg.apply(self)

    negative = neg

    def reciprocal(self):
        return 1.0 / self

    def sin(self):
        return Sin.apply(self)

    def cos(self):
        return Cos.apply(self)

    def relu(self):
        return ops.ReLU.apply(self)

    def sigmoid(self):
        return ops.Sigmoid.apply(self)

    def tanh(self):
        return ops.Tanh.apply(self)

    def _flat(self, fn: str, **params):
        if self.dtype.kind != "f":  # integers are their own floor, ceil, round
            return _wrap(np.sign(self._data) if fn == "sign" else self._data.copy())
        return PiecewiseConstant.apply(self, fn=fn, **params)

    def sign(self):
        return self._flat("sign")

    def floor(self):
        return self._flat("floor")

    def ceil(self):
        return self._flat("ceil")

    def trunc(self):
        return self._flat("trunc")

    def round(self, decimals: int = 0):
        return self._flat("round", decimals=decimals)

    def frac(self):
        return self - self.trunc()

    def clamp(self, min=None, max=None):
        """Limit to [min, max]; either bound may be a number or a tensor (then element-wise)."""
        if hasattr(min, "_data") or hasattr(max, "_data"):
            from convlens.functions import maximum, minimum

            out = self
            if min is not None:
                out = maximum(out, min)
            if max is not None:
                out = minimum(out, max)
            return out
        if min is None and max is None:
            raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
        return ops.Clamp.apply(self, low=min, high=max)

    clip = clamp

    def clamp_min(self, min):
        return self.clamp(min=min)

    def clamp_max(self, max):
        return self.clamp(max=max)

    def pow(self, exponent):
        return self**exponent

    def float_power(self, exponent):
        return self.double() ** exponent

    # ---- named arithmetic -------------------------------------------------------------------------
    def add(self, other, *, alpha=1):
        return self + (other * alpha if alpha != 1 else other)

    def sub(self, other, *, alpha=1):
        return self - (other * alpha if alpha != 1 else other)

    subtract = sub

    def mul(self, other):
        return self * other

    multiply = mul

    def div(self, other, *, rounding_mode=None):
        """True division, or with ``rounding_mode="floor"``/``"trunc"`` the rounded quotient
        (integer tensors stay integer; the rounded quotient has no gradient, as in PyTorch)."""
        if rounding_mode is None:
            return self / other
        if rounding_mode not in ("floor", "trunc"):
            raise ValueError(f"div: rounding_mode must be None, 'floor' or 'trunc', got {rounding_mode!r}")
        a, b = self._data, _array(other)
        if a.dtype.kind in "iu" and np.asarray(b).dtype.kind in "iub":
            q = np.floor_divide(a, b)
            if rounding_mode == "trunc":
                q = np.where((q < 0) & (q * b != a), q + 1, q)
            return _wrap(q)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.true_divide(a, np.asarray(b, dtype=a.dtype) if a.dtype.kind == "f" else b)
        return _wrap((np.floor(q) if rounding_mode == "floor" else np.trunc(q)).astype(q.dtype, copy=False))

    divide = true_divide = div

    def floor_divide(self, other):
        return self.div(other, rounding_mode="floor")

    def remainder(self, other):
        return self % other

    def fmod(self, other):
        """Remainder with the sign of the dividend (C's fmod)."""
        return self - (self / other).trunc() * other

    def matmul(self, other):
        return self @ other

    def mm(self, mat2):
        if self.ndim != 2 or mat2.ndim != 2:
            raise RuntimeError(f"mm: expected 2-d matrices, got shapes {self.shape} and {mat2.shape}")
        return self @ mat2

    def bmm(self, mat2):
        if self.ndim != 3 or mat2.ndim != 3 or self.shape[0] != mat2.shape[0]:
            raise RuntimeError(f"bmm: expected 3-d batches of matrices with equal batch sizes, got shapes "
                               f"{self.shape} and {mat2.shape}")
        return self @ mat2

    def mv(self, vec):
        return self @ vec

    def dot(self, other):
        if self.ndim != 1 or other.ndim != 1:
            raise RuntimeError(f"dot: expected 1-d tensors, got shapes {self.shape} and {other.shape}")
        return self @ other

    def outer(self, vec2):
        return self.reshape(-1, 1) * vec2.reshape(1, -1)

    def lerp(self, end, weight):
        """self + weight · (end − self)."""
        return self + weight * (end - self)

    def addcmul(self, tensor1, tensor2, *, value=1):
        return self + value * tensor1 * tensor2

    def addcdiv(self, tensor1, tensor2, *, value=1):
        return self + value * tensor1 / tensor2

    def maximum(self, other):
        from convlens.functions import maximum

        return maximum(self, other)

    def minimum(self, other):
        from convlens.functions import minimum

        return minimum(self, other)

    # ---- selection ----------------------------------------------------------------------------------
    def where(self, condition, other):
        """``self`` where `condition` holds, else `other` (``torch.where(condition, self, other)``)."""
        from convlens.tensor import _operand, binary

        cond = _array(condition).astype(bool, copy=False)
        other = _operand(other, self._data)
        try:
            return Where.apply(self, other, cond=cond)
        except ValueError:
            binary(ops.Add, self, other)  # raises PyTorch's error naming the shapes
            raise

    def masked_fill(self, mask, value):
        """`value` where `mask` is True, the tensor elsewhere (the gradient flows where mask is False)."""
        mask = _array(mask)
        if mask.dtype != np.bool_:
            raise RuntimeError(f"masked_fill only supports boolean masks, but got mask with dtype {mask.dtype}")
        if hasattr(value, "_data") and value.ndim != 0:
            raise RuntimeError(f"masked_fill only supports a 0-dimensional value tensor, got shape {value.shape}")
        return self._masked(mask, value)

    def _masked(self, mask, value):
        from convlens.tensor import _operand

        return _operand(value, self._data).where(mask, self)

    # ---- tests, never differentiable ----------------------------------------------------------------
    def isnan(self):
        return _wrap(np.isnan(self._data))

    def isinf(self):
        return _wrap(np.isinf(self._data))

    def isfinite(self):
        return _wrap(np.isfinite(self._data))

    def isclose(self, other, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False):
        return _wrap(np.isclose(self._data, _array(other), rtol=rtol, atol=atol, equal_nan=equal_nan))

    def allclose(self, other, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> bool:
        return bool(np.allclose(self._data, _array(other), rtol=rtol, atol=atol, equal_nan=equal_nan))

    def equal(self, other) -> bool:
        """True if both tensors have the same shape and elements (``torch.equal``)."""
        other = _array(other)
        return self.shape == other.shape and bool(np.array_equal(self._data, other))

    def logical_not(self):
        return _wrap(np.logical_not(self._data))

    def logical_and(self, other):
        return _wrap(np.logical_and(self._data, _array(other)))

    def logical_or(self, other):
        return _wrap(np.logical_or(self._data, _array(other)))

    def logical_xor(self, other):
        return _wrap(np.logical_xor(self._data, _array(other)))

    def nan_to_num(self, nan: float = 0.0, posinf=None, neginf=None):
        mask = ~np.isfinite(self._data)
        if not mask.any():
            return self.clone()
        filled = np.nan_to_num(self._data, nan=nan, posinf=posinf, neginf=neginf)
        return self._masked(mask, 0.0) + _wrap(np.where(mask, filled, 0).astype(self.dtype))

    # ---- softmax over a dim (the functional forms live in nn.functional) ------------------------------
    def softmax(self, dim, dtype=None):
        from convlens.nn.functional.activation import softmax

        return softmax(self, dim, dtype=dtype)

    def log_softmax(self, dim, dtype=None):
        from convlens.nn.functional.activation import log_softmax

        return log_softmax(self, dim, dtype=dtype)

