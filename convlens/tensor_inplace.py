"""In-place updates of a `Tensor` (``add_``, ``mul_``, ``addcmul_``, ``uniform_``, ``+=``, ``x[i] = v``...).

PyTorch's rules: allowed on anything under no_grad (and on tensors outside any graph), where they write
into the array itself, so views and the parameters behind `.data` see the change; on a leaf that
requires grad they are an error while grad mode is on; on an intermediate result of the graph
(``out += identity`` in a residual block, ``ReLU(inplace=True)``) they are recorded as the out-of-place
op and the tensor is rebound to its result. convlens's graph links tensors rather than versions, so an
intermediate that an earlier recorded op already consumed cannot be rebound (that op would see the new
history): that is an error naming the op, where PyTorch would allow it for ops that saved nothing.
"""

from __future__ import annotations

import numpy as np

from convlens import autograd, ops
from convlens.random import rng_of


def _tensor():
    from convlens.tensor import Tensor

    return Tensor


def _shape_error(name: str, got, expected) -> RuntimeError:
    from convlens.errors import ShapeError

    return ShapeError(f"{name}: the result has shape {tuple(got)}, which does not match the tensor's "
                      f"shape {tuple(expected)} (an in-place op cannot change a tensor's shape)")


def _cast_error(name: str, got, expected) -> RuntimeError:
    return RuntimeError(f"{name}: result type {got} can't be cast to the tensor's dtype {expected}")


class InplaceMixin:
    __slots__ = ()

    def _inplace_with(self, name: str, compute, tensors=(), reshape: bool = False):
        """Replace this tensor's value by ``compute(self)`` (a Tensor expression), in place, with the
        rules above; `tensors` are the other tensor inputs (their requires_grad decides recording)."""
        Tensor = _tensor()
        if autograd.is_grad_enabled() and (
            self.requires_grad or any(isinstance(a, Tensor) and a.requires_grad for a in tensors)
        ):
            if self.requires_grad and self._ctx is None:
                raise RuntimeError(
                    f"{name}: a leaf tensor that requires grad is being used in an in-place operation; "
                    "update parameters inside `with convlens.no_grad():` (or through .data)"
                )
            if self._consumed:
                raise RuntimeError(
                    f"{name}: this tensor was already used by an earlier operation of the graph, so it "
                    "cannot be changed in place in convlens; write the out-of-place form (x = x + y)"
                )
            before = Tensor._wrap(self._data, self.requires_grad)
            before._ctx, before._hooks = self._ctx, self._hooks
            out = compute(before)
            if out.dtype != self.dtype:
                if self.dtype.kind != "f" or out.dtype.kind != "f":
                    raise _cast_error(name, out.dtype, self.dtype)
                out = out.to(self.dtype)
            if out.shape != self.shape and not reshape:
                raise _shape_error(name, out.shape, self.shape)
            self._data, self._ctx, self.requires_grad, self._hooks = out._data, out._ctx, out.requires_grad, []
            return self
        with autograd.no_grad():
            out = compute(self)._data
        if reshape:  # squeeze_/unsqueeze_ and friends: the same cells under a new shape
            self._data = out
            return self
        if out.shape != self.shape:
            raise _shape_error(name, out.shape, self.shape)
        if not np.can_cast(out.dtype, self.dtype, "same_kind"):
            raise _cast_error(name, out.dtype, self.dtype)
        np.copyto(self._data, out, casting="same_kind")
        return self

    def _inplace(self, name: str, fn, *args, **params):
        """Replace this tensor by ``fn.apply(self, *args, **params)``, in place."""
        return self._inplace_with(name, lambda t: fn.apply(t, *args, **params), args)

    def _operand(self, value):
        from convlens.tensor import _operand

        other = _operand(value, self._data)
        if other is None:
            raise TypeError(f"expected a Tensor or a number, got {type(value).__name__}")
        return other

    def _binary_inplace(self, name: str, fn, other, alpha=1):
        other = self._operand(other)
        if alpha != 1:
            other = other * alpha
        return self._inplace(name, fn, other)

    # ---- arithmetic ---------------------------------------------------------------------------------
    def add_(self, other, *, alpha=1):
        return self._binary_inplace("add_", ops.Add, other, alpha)

    def sub_(self, other, *, alpha=1):
        return self._binary_inplace("sub_", ops.Sub, other, alpha)

    def mul_(self, other):
        return self._binary_inplace("mul_", ops.Mul, other)

    def div_(self, other, *, rounding_mode=None):
        if rounding_mode is not None:
            other = self._operand(other)
            return self._inplace_with("div_", lambda t: t.div(other, rounding_mode=rounding_mode), (other,))
        return self._binary_inplace("div_", ops.Div, other)

    __iadd__ = add_
    __isub__ = sub_
    __imul__ = mul_
    __itruediv__ = div_

    def __ipow__(self, exponent):
        return self.pow_(exponent)

    def __iand__(self, other):
        return self._inplace_with("__iand__", lambda t: t & other)

    def __ior__(self, other):
        return self._inplace_with("__ior__", lambda t: t | other)

    def addcmul_(self, tensor1, tensor2, *, value=1):
        """self += value · tensor1 · tensor2 (Adam's second moment, written by hand)."""
        return self._inplace_with("addcmul_", lambda t: t + value * tensor1 * tensor2, (tensor1, tensor2))

    def addcdiv_(self, tensor1, tensor2, *, value=1):
        """self += value · tensor1 / tensor2."""
        return self._inplace_with("addcdiv_", lambda t: t + value * tensor1 / tensor2, (tensor1, tensor2))

    def lerp_(self, end, weight):
        """self += weight · (end − self) (an exponential moving average: ``ema.lerp_(p, 1 − decay)``)."""
        return self._inplace_with("lerp_", lambda t: t.lerp(end, weight), (end, weight))

    def pow_(self, exponent):
        return self._inplace_with("pow_", lambda t: t**exponent, (exponent,))

    def clamp_(self, min=None, max=None):
        return self._inplace_with("clamp_", lambda t: t.clamp(min, max), (min, max))

    clip_ = clamp_

    def clamp_min_(self, min):
        return self.clamp_(min=min)

    def clamp_max_(self, max):
        return self.clamp_(max=max)

    # ---- element-wise functions ---------------------------------------------------------------------
    def _unary_(self, name: str):
        method = name[:-1]
        return self._inplace_with(name, lambda t: getattr(t, method)())

    def neg_(self):
        return self._unary_("neg_")

    def sqrt_(self):
        return self._unary_("sqrt_")

    def rsqrt_(self):
        return self._unary_("rsqrt_")

    def exp_(self):
        return self._unary_("exp_")

    def log_(self):
        return self._unary_("log_")

    def abs_(self):
        return self._unary_("abs_")

    def sign_(self):
        return self._unary_("sign_")

    def floor_(self):
        return self._unary_("floor_")

    def ceil_(self):
        return self._unary_("ceil_")

    def round_(self):
        return self._unary_("round_")

    def reciprocal_(self):
        return self._unary_("reciprocal_")

    def square_(self):
        return self._unary_("square_")

    def relu_(self):
        return self._unary_("relu_")

    def sigmoid_(self):
        return self._unary_("sigmoid_")

    def tanh_(self):
        return self._unary_("tanh_")

    # ---- filling ------------------------------------------------------------------------------------
    def fill_(self, value):
        if hasattr(value, "item"):
            value = value.item()
        return self._inplace("fill_", ops.Fill, value=float(value) if self.dtype.kind == "f" else value)

    def zero_(self):
        return self.fill_(0)

    def copy_(self, src, non_blocking: bool = False):
        Tensor = _tensor()
        src = src if isinstance(src, Tensor) else Tensor._wrap(np.asarray(src))
        try:
            np.broadcast_shapes(src.shape, self.shape)
        except ValueError:
            raise _shape_error("copy_", src.shape, self.shape) from None
        return self._inplace("copy_", ops.CopyFrom, src)

    def _fill_random(self, name: str, values: np.ndarray):
        return self._inplace(name, ops.CopyFrom, _tensor()._wrap(values.astype(self.dtype, copy=False)))

    def uniform_(self, a: float = 0.0, b: float = 1.0, *, generator=None):
        """Fill with samples of U(a, b) (from `generator`, else the default generator)."""
        return self._fill_random("uniform_", rng_of(generator).uniform(a, b, self.shape))

    def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator=None):
        """Fill with samples of N(mean, std²)."""
        return self._fill_random("normal_", rng_of(generator).normal(mean, std, self.shape))

    def bernoulli_(self, p=0.5, *, generator=None):
        """Fill with 1 where a uniform sample falls below `p` (a number or a tensor), else 0."""
        probs = p._data if hasattr(p, "_data") else p
        return self._fill_random("bernoulli_", rng_of(generator).random(self.shape) < probs)

    def exponential_(self, lambd: float = 1.0, *, generator=None):
        return self._fill_random("exponential_", rng_of(generator).exponential(1.0 / lambd, self.shape))

    def random_(self, from_: int = 0, to: int | None = None, *, generator=None):
        """Fill with integers uniform in [from, to) (to defaults to 2^mantissa for floats, as PyTorch)."""
        if to is None:
            from_, to = 0, (from_ if from_ else (2 ** np.finfo(self.dtype).nmant + 1 if self.dtype.kind == "f"
                                                 else np.iinfo(self.dtype).max))
        return self._fill_random("random_", rng_of(generator).integers(from_, to, self.shape))

    def masked_fill_(self, mask, value):
        return self._inplace_with("masked_fill_", lambda t: t.masked_fill(mask, value), (value,))

    def scatter_(self, dim: int, index, src=None, *, value=None, reduce=None):
        """``self[index[i][j]][j] = src[i][j]`` for dim 0 (and likewise for others), as PyTorch;
        ``reduce="add"`` adds (as `scatter_add_`)."""
        if reduce not in (None, "add"):
            raise ValueError(f"scatter_: reduce must be None or 'add' in convlens, got {reduce!r}")
        if reduce == "add":
            return self.scatter_add_(dim, index, src)
        return self._inplace_with("scatter_", lambda t: t.scatter(dim, index, src, value=value), (src,))

    def scatter_add_(self, dim: int, index, src):
        return self._inplace_with("scatter_add_", lambda t: t.scatter_add(dim, index, src), (src,))

    def index_fill_(self, dim: int, index, value):
        return self._inplace_with("index_fill_", lambda t: t.index_fill(dim, index, value), (value,))

    # ---- shape ----------------------------------------------------------------------------------------
    def unsqueeze_(self, dim: int):
        return self._inplace_with("unsqueeze_", lambda t: t.unsqueeze(dim), reshape=True)

    def squeeze_(self, dim=None):
        return self._inplace_with("squeeze_", lambda t: t.squeeze(dim), reshape=True)

    def t_(self):
        return self._inplace_with("t_", lambda t: t.t(), reshape=True)

    def transpose_(self, dim0: int, dim1: int):
        return self._inplace_with("transpose_", lambda t: t.transpose(dim0, dim1), reshape=True)

    def __setitem__(self, index, value) -> None:
        from convlens.tensor import _index_arrays

        index = _index_arrays(index)
        value = self._operand(value)
        if not (autograd.is_grad_enabled() and (self.requires_grad or value.requires_grad)):
            try:
                self._data[index] = value._data  # the direct write: views see it
            except ValueError:
                raise _shape_error("__setitem__", value.shape, np.shape(self._data[index])) from None
            return
        self._inplace("__setitem__", ops.SetItem, value, index=index)
