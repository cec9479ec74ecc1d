"""`Tensor`: a NumPy array with an optional gradient and a link to the operation that produced it.

This module holds the core (construction, conversion, arithmetic operators, comparisons, indexing);
the rest of the method set lives in mixins by theme: element-wise math (`tensor_math`), reductions,
sorting and searching (`tensor_reduce`), shapes and indexing (`tensor_shape`) and in-place updates
(`tensor_inplace`). Factories (`zeros`, `randn`...) are in `convlens.factories`, random generators in
`convlens.random`, dtypes in `convlens.dtypes`; their names are re-exported here.
"""

from __future__ import annotations

import numbers

import numpy as np

from convlens import autograd, ops
from convlens.devices import CPU, check_device, device, is_device_like
from convlens.dtypes import as_dtype, default_float
from convlens.errors import ShapeError
from convlens.tensor_inplace import InplaceMixin
from convlens.tensor_math import MathMixin
from convlens.tensor_reduce import ReduceMixin
from convlens.tensor_shape import ShapeMixin


def _to_array(data, dtype=None) -> np.ndarray:
    """PyTorch's rules: Python floats and lists of floats become the default float type (float32),
    Python ints int64, bools bool; a NumPy array keeps its dtype unless `dtype` is given."""
    dtype = as_dtype(dtype)
    if isinstance(data, Tensor):
        data = data._data
    if isinstance(data, np.ndarray | np.generic):
        return np.array(data, dtype=dtype, copy=True) if dtype is not None else np.array(data, copy=True)
    if isinstance(data, list | tuple) and data and any(isinstance(d, Tensor) for d in data):
        data = [d._data if isinstance(d, Tensor) else d for d in data]  # tensor([t1, t2]) of 0-d tensors
    array = np.asarray(data)
    if dtype is not None:
        return array.astype(dtype, copy=False)
    if array.dtype == np.float64:
        return array.astype(default_float())
    if array.dtype.kind in "iu":
        return array.astype(np.int64, copy=False)
    if array.dtype.kind not in "fb":
        raise TypeError(f"tensor(): cannot make a tensor from {type(data).__name__} of dtype {array.dtype}")
    return array


def _operand(value, like: np.ndarray):
    """The Tensor operand of an arithmetic op: a Tensor itself, or a Python number cast to `like`'s
    dtype so that float32 tensors stay float32 (no silent upcast to float64); None for a type that
    is no number (a string, None...), so that the operator returns NotImplemented and Python raises
    its TypeError ("unsupported operand type(s) for +: 'Tensor' and 'str'"), as PyTorch does."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, numbers.Number):
        dtype = like.dtype if like.dtype.kind == "f" else np.result_type(like.dtype, value)
        return Tensor._wrap(np.asarray(value, dtype=dtype))
    if not isinstance(value, np.ndarray | np.generic | list | tuple):
        return None
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        return None
    return Tensor._wrap(_to_array(array, like.dtype if like.dtype.kind == "f" else None))


def broadcast_error(a_shape, b_shape) -> ShapeError:
    """PyTorch's message for shapes that do not broadcast, naming both shapes."""
    for d in range(1, max(len(a_shape), len(b_shape)) + 1):
        x = a_shape[-d] if d <= len(a_shape) else 1
        y = b_shape[-d] if d <= len(b_shape) else 1
        if x != y and x != 1 and y != 1:
            axis = max(len(a_shape), len(b_shape)) - d
            return ShapeError(f"The size of tensor a ({x}) must match the size of tensor b ({y}) at "
                              f"non-singleton dimension {axis} (shapes {tuple(a_shape)} and {tuple(b_shape)})")
    return ShapeError(f"shapes {tuple(a_shape)} and {tuple(b_shape)} do not broadcast")


def _broadcasts(a_shape, b_shape) -> bool:
    try:
        np.broadcast_shapes(a_shape, b_shape)
    except ValueError:
        return False
    return True


def binary(fn, a: Tensor, b: Tensor) -> Tensor:
    """`fn.apply(a, b)` for a broadcasting op; shapes that do not broadcast give PyTorch's error
    naming both shapes instead of NumPy's text (checked only after NumPy refused: no cost otherwise)."""
    try:
        return fn.apply(a, b)
    except ValueError:
        if not _broadcasts(a.shape, b.shape):
            raise broadcast_error(a.shape, b.shape) from None
        raise


def _matmul(a: Tensor, b: Tensor) -> Tensor:
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: both arguments need at least 1 dimension, got shapes {a.shape} and {b.shape}")
    k_a, k_b = a.shape[-1], b.shape[-2] if b.ndim > 1 else b.shape[0]
    if k_a != k_b:
        raise ShapeError(f"mat1 and mat2 shapes cannot be multiplied ({'x'.join(map(str, a.shape))} and "
                         f"{'x'.join(map(str, b.shape))}): {k_a} != {k_b}")
    try:
        return ops.MatMul.apply(a, b)
    except ValueError:
        raise broadcast_error(a.shape[:-2], b.shape[:-2]) from None


class _HookHandle:
    """What `Tensor.register_hook` returns: ``handle.remove()`` takes the hook away."""

    def __init__(self, hooks: list, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


class Tensor(InplaceMixin, MathMixin, ReduceMixin, ShapeMixin):
    """An n-dimensional array that can record the operations applied to it for back-propagation.

    `._data` is the NumPy array (`.data` a detached tensor sharing it, as in PyTorch), `.grad` the
    accumulated gradient (a Tensor, or None), `.requires_grad` whether operations on it are recorded.
    """

    __slots__ = ("_data", "grad", "requires_grad", "_ctx", "_hooks", "_retains_grad", "_consumed", "__weakref__")
    __array_priority__ = 1000  # so `ndarray + Tensor` defers to Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self._data = _to_array(data, dtype)
        if requires_grad and self._data.dtype.kind != "f":
            raise RuntimeError(f"only floating point tensors can require gradients, got dtype {self._data.dtype}")
        self.grad: Tensor | None = None
        self.requires_grad = bool(requires_grad)
        self._ctx = None
        self._hooks: list = []
        self._retains_grad = False
        self._consumed = False  # True once a recorded operation has taken this tensor as an input

    @classmethod
    def _wrap(cls, array: np.ndarray, requires_grad: bool = False) -> Tensor:
        """Wrap an array without copying or converting it (the engine's internal constructor)."""
        t = cls.__new__(cls)
        t._data = array if isinstance(array, np.ndarray) else np.asarray(array)
        t.grad = None
        t.requires_grad = requires_grad
        t._ctx = None
        t._hooks = []
        t._retains_grad = False
        t._consumed = False
        return t

    # ---- properties -------------------------------------------------------------------------------
    @property
    def data(self) -> Tensor:
        """A tensor sharing this one's memory, detached from the graph (as ``torch.Tensor.data``):
        ``p.data.sub_(lr * p.grad)`` updates ``p`` in place. The NumPy array is ``.numpy()``."""
        return Tensor._wrap(self._data)

    @data.setter
    def data(self, value) -> None:
        array = value._data if isinstance(value, Tensor) else np.asarray(value)
        if self.requires_grad and array.dtype.kind != "f":
            raise RuntimeError(f"data: a tensor that requires grad needs floating point data, got {array.dtype}")
        self._data = array

    @property
    def device(self) -> device:
        return CPU

    @property
    def is_cuda(self) -> bool:
        return False

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def grad_fn(self):
        return self._ctx

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def itemsize(self) -> int:
        return self._data.itemsize

    @property
    def nbytes(self) -> int:
        return self._data.nbytes

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return self.ndim

    ndimension = dim

    def numel(self) -> int:
        return int(self._data.size)

    nelement = numel

    def element_size(self) -> int:
        return self._data.itemsize

    def stride(self, dim: int | None = None):
        """Strides in elements, as PyTorch (NumPy counts bytes)."""
        strides = tuple(s // self._data.itemsize for s in self._data.strides)
        return strides if dim is None else strides[dim]

    def is_contiguous(self, memory_format=None) -> bool:
        return bool(self._data.flags.c_contiguous)

    def is_floating_point(self) -> bool:
        return self.dtype.kind == "f"

    def data_ptr(self) -> int:
        return int(self._data.__array_interface__["data"][0])

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    # ---- conversion -------------------------------------------------------------------------------
    def numpy(self, force: bool = False) -> np.ndarray:
        if self.requires_grad and not force:
            raise RuntimeError("can't call numpy() on a tensor that requires grad; use tensor.detach().numpy()")
        return self._data

    def item(self):
        if self._data.size != 1:
            raise ValueError(f"item(): only one-element tensors can be converted, got shape {self.shape}")
        return self._data.reshape(()).item()

    def tolist(self):
        return self._data.tolist()

    def detach(self) -> Tensor:
        return Tensor._wrap(self._data)

    def detach_(self) -> Tensor:
        """Cut this tensor from the graph in place (it becomes a leaf that needs no gradient)."""
        self._ctx, self.requires_grad = None, False
        return self

    def clone(self, *, memory_format=None) -> Tensor:
        return ops.Clone.apply(self)

    def to(self, *args, **kwargs) -> Tensor:
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(other)`` as in PyTorch; the CPU is
        the only device (another is an error). Returns ``self`` when nothing changes (unless
        ``copy=True``)."""
        dtype, dev = kwargs.pop("dtype", None), kwargs.pop("device", None)
        copy = bool(kwargs.pop("copy", False))
        kwargs.pop("non_blocking", None), kwargs.pop("memory_format", None)
        if kwargs:
            raise TypeError(f"Tensor.to: unexpected keyword argument(s) {sorted(kwargs)}")
        for arg in args:
            if isinstance(arg, Tensor):
                dtype = arg.dtype
            elif is_device_like(arg):
                dev = arg
            elif arg is not None:
                dtype = arg
        check_device(dev, "Tensor.to")
        dtype = as_dtype(dtype)
        if dtype is not None and dtype != self.dtype:
            return ops.Cast.apply(self, dtype=dtype)
        return ops.Clone.apply(self) if copy else self

    def cpu(self, memory_format=None) -> Tensor:
        return self

    def cuda(self, device=None, non_blocking: bool = False) -> Tensor:
        check_device(device or "cuda", "Tensor.cuda")
        return self

    def type(self, dtype=None, non_blocking: bool = False):
        """With no argument, the PyTorch type name (``'torch.FloatTensor'``); else a cast, as ``to``."""
        if dtype is None:
            return "torch." + _TYPE_NAMES.get(self.dtype, f"{self.dtype}Tensor")
        if isinstance(dtype, str) and dtype.endswith("Tensor"):
            names = {v: k for k, v in _TYPE_NAMES.items()}
            if dtype.removeprefix("torch.") not in names:
                raise ValueError(f"Tensor.type: unknown type {dtype!r}; expected e.g. 'torch.FloatTensor'")
            dtype = names[dtype.removeprefix("torch.")]
        return self.to(dtype)

    def type_as(self, other: Tensor) -> Tensor:
        return self.to(other.dtype)

    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    def half(self) -> Tensor:
        return self.to(np.float16)

    def long(self) -> Tensor:
        return self.to(np.int64)

    def int(self) -> Tensor:
        return self.to(np.int32)

    def short(self) -> Tensor:
        return self.to(np.int16)

    def char(self) -> Tensor:
        return self.to(np.int8)

    def byte(self) -> Tensor:
        return self.to(np.uint8)

    def bool(self) -> Tensor:
        return self.to(np.bool_)

    def new_tensor(self, data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
        check_device(device, "new_tensor")
        return Tensor(data, requires_grad=requires_grad, dtype=dtype or self.dtype)

    def _new(self, where, fill, size, dtype, device, requires_grad) -> Tensor:
        from convlens.factories import _size

        check_device(device, where)
        array = np.full(_size(where, size, None), fill, dtype=self.dtype if dtype is None else as_dtype(dtype))
        return Tensor._wrap(array, requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
        return self._new("new_zeros", 0, size, dtype, device, requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
        return self._new("new_ones", 1, size, dtype, device, requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
        return self._new("new_empty", 0, size, dtype, device, requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
        return self._new("new_full", fill_value, (size,), dtype, device, requires_grad)

    # ---- autograd -----------------------------------------------------------------------------------
    def requires_grad_(self, mode: bool = True) -> Tensor:
        if mode and self._data.dtype.kind != "f":
            raise RuntimeError(f"only floating point tensors can require gradients, got dtype {self.dtype}")
        self.requires_grad = mode
        return self

    def retain_grad(self) -> None:
        self._retains_grad = True

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def register_hook(self, hook) -> _HookHandle:
        """`hook(grad)` runs on this tensor's gradient during backward (it receives the gradient's
        array; a returned value replaces it). Returns a handle whose ``remove()`` unregisters it."""
        self._hooks.append(hook)
        return _HookHandle(self._hooks, hook)

    def backward(self, gradient=None, retain_graph: bool | None = None, create_graph: bool = False,
                 inputs=None) -> None:
        autograd.backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph, inputs=inputs)

    def __repr__(self) -> str:
        body = np.array2string(self._data, precision=4, separator=", ", prefix="tensor(")
        extra = ""
        if self.dtype not in (np.float32, np.int64, np.bool_):
            extra += f", dtype={self.dtype}"
        if self._ctx is not None:
            extra += f", grad_fn={self._ctx!r}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    def __hash__(self):
        return id(self)

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(f"the truth value of a tensor with shape {self.shape} is ambiguous")
        return bool(self._data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __array__(self, dtype=None, copy=None):
        return self._data if dtype is None else self._data.astype(dtype)

    def __index__(self) -> int:
        if self._data.size != 1 or self.dtype.kind not in "iub":
            raise TypeError(f"only integer tensors of a single element can be converted to an index, "
                            f"got shape {self.shape} and dtype {self.dtype}")
        return int(self._data.reshape(()))

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __contains__(self, value) -> bool:
        return bool(np.any(self._data == (value._data if isinstance(value, Tensor) else value)))

    # ---- arithmetic (differentiable ops live in convlens.ops) ----------------------------------------
    def __add__(self, other):
        other = _operand(other, self._data)
        return NotImplemented if other is None else binary(ops.Add, self, other)

    def __radd__(self, other):
        other = _operand(other, self._data)
        return NotImplemented if other is None else binary(ops.Add, other, self)

    def __sub__(self, other):
        other = _operand(other, self._data)
        return NotImplemented if other is None else binary(ops.Sub, self, other)

    def __rsub__(self, other):
        other = _operand(other, self._data)
        return NotImplemented if other is None else binary(ops.Sub, other, self)

    def __mul__(self, other):
        other = _operand(other, self._data)
        return NotImplemented if other is None else binary(ops.Mul, self, other)

    def __rmul__(self, other):
        other = _operand(other, self._data)
        return NotImplemented if other is None else binary(ops.Mul, other, self)

    def __truediv__(self, other):
        other = _operand(other, self._data)
        if other is None:
            return NotImplemented
        a, b = _true_division_operands(self, other)
        return binary(ops.Div, a, b)

    def __rtruediv__(self, other):
        other = _operand(other, self._data)
        if other is None:
            return NotImplemented
        a, b = _true_division_operands(other, self)
        return binary(ops.Div, a, b)

    def __floordiv__(self, other):
        return self.div(other, rounding_mode="floor")

    def __rfloordiv__(self, other):
        other = _operand(other, self._data)
        return NotImplemented if other is None else other.div(self, rounding_mode="floor")

    def __mod__(self, other):
        from convlens.ops_math import Remainder

        other = _operand(other, self._data)
        return NotImplemented if other is None else binary(Remainder, self, other)

    def __rmod__(self, other):
        from convlens.ops_math import Remainder

        other = _operand(other, self._data)
        return NotImplemented if other is None else binary(Remainder, other, self)

    def __matmul__(self, other):
        other = _operand(other, self._data)
        return NotImplemented if other is None else _matmul(self, other)

    def __rmatmul__(self, other):
        other = _operand(other, self._data)
        return NotImplemented if other is None else _matmul(other, self)

    def __neg__(self):
        return ops.Neg.apply(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return ops.Abs.apply(self)

    def __pow__(self, exponent):
        if isinstance(exponent, numbers.Number):
            return ops.PowScalar.apply(self, exponent=exponent)
        exponent = _operand(exponent, self._data)
        return NotImplemented if exponent is None else binary(ops.Pow, self, exponent)

    def __rpow__(self, base):
        base = _operand(base, self._data)
        return NotImplemented if base is None else binary(ops.Pow, base, self)

    def __getitem__(self, index):
        return ops.GetItem.apply(self, index=_index_arrays(index))

    # logical operators on boolean (or integer: bitwise) tensors, never differentiable
    def _logical(self, other, fn, symbol: str):
        if isinstance(other, Tensor):
            other = other._data
        elif not isinstance(other, numbers.Number | np.ndarray | np.generic):
            return NotImplemented
        if self.dtype.kind == "f" or np.asarray(other).dtype.kind == "f":
            raise TypeError(f"{symbol} is only defined for boolean and integer tensors, got {self.dtype}")
        try:
            return Tensor._wrap(np.asarray(fn(self._data, other)))
        except ValueError:
            raise broadcast_error(self.shape, np.shape(other)) from None

    def __and__(self, other):
        return self._logical(other, np.bitwise_and, "&")

    def __or__(self, other):
        return self._logical(other, np.bitwise_or, "|")

    def __xor__(self, other):
        return self._logical(other, np.bitwise_xor, "^")

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    def __invert__(self):
        if self.dtype.kind == "f":
            raise TypeError(f"~ is only defined for boolean and integer tensors, got {self.dtype}")
        return Tensor._wrap(np.invert(self._data))

    # comparisons are not differentiable: they return plain boolean tensors
    def _compare(self, other, op):
        other = other._data if isinstance(other, Tensor) else other
        if isinstance(other, str | bytes) or other is None:
            return NotImplemented  # == and != fall back to identity, <, > raise Python's TypeError
        try:
            return Tensor._wrap(np.asarray(op(self._data, other)))
        except ValueError:
            raise broadcast_error(self.shape, np.shape(other)) from None

    def __eq__(self, other):  # type: ignore[override]
        return self._compare(other, np.equal)

    def __ne__(self, other):  # type: ignore[override]
        return self._compare(other, np.not_equal)

    def __lt__(self, other):
        return self._compare(other, np.less)

    def __le__(self, other):
        return self._compare(other, np.less_equal)

    def __gt__(self, other):
        return self._compare(other, np.greater)

    def __ge__(self, other):
        return self._compare(other, np.greater_equal)

    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__
    greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne


def _true_division_operands(a: Tensor, b: Tensor):
    """PyTorch's true division of integers gives the default float type (NumPy's would be float64)."""
    if a.dtype.kind in "biu" and b.dtype.kind in "biu":
        return a.to(default_float()), b.to(default_float())
    return a, b


_TYPE_NAMES = {
    np.dtype(np.float32): "FloatTensor", np.dtype(np.float64): "DoubleTensor",
    np.dtype(np.float16): "HalfTensor", np.dtype(np.int64): "LongTensor", np.dtype(np.int32): "IntTensor",
    np.dtype(np.int16): "ShortTensor", np.dtype(np.int8): "CharTensor", np.dtype(np.uint8): "ByteTensor",
    np.dtype(np.bool_): "BoolTensor",
}


def _index_arrays(index):
    """Tensors inside an index become their arrays (so ``x[mask]`` and ``x[idx, 0]`` index NumPy)."""
    if isinstance(index, Tensor):
        return index._data
    if isinstance(index, tuple):
        return tuple(i._data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list) and any(isinstance(i, Tensor) for i in index):
        return [i._data if isinstance(i, Tensor) else i for i in index]
    return index


# ---- re-exports: what `from convlens.tensor import ...` has always offered ------------------------------
from convlens.dtypes import bool_, float16, float32, float64, int32, int64, uint8  # noqa: E402
from convlens.factories import arange, from_numpy, ones, rand, randn, tensor, zeros  # noqa: E402
from convlens.random import (  # noqa: E402
    Generator,
    default_generator,
    get_rng_state,
    initial_seed,
    manual_seed,
    seed,
    set_rng_state,
)

__all__ = [
    "Tensor", "tensor", "zeros", "ones", "rand", "randn", "arange", "from_numpy", "as_dtype", "Generator",
    "default_generator", "manual_seed", "initial_seed", "seed", "get_rng_state", "set_rng_state",
    "float16", "float32", "float64", "int32", "int64", "uint8", "bool_",
]
