"""`Tensor`: a NumPy array with an optional gradient and a link to the operation that produced it."""

from __future__ import annotations

import numbers

import numpy as np

from convlens import autograd
from convlens.devices import CPU, check_device, device, is_device_like

float16, float32, float64 = np.float16, np.float32, np.float64
int32, int64, uint8, bool_ = np.int32, np.int64, np.uint8, np.bool_

_DTYPE_NAMES = {
    "float16": np.float16, "half": np.float16,
    "float32": np.float32, "float": np.float32,
    "float64": np.float64, "double": np.float64,
    "int32": np.int32, "int": np.int32, "int64": np.int64, "long": np.int64,
    "uint8": np.uint8, "bool": np.bool_,
}


def as_dtype(dtype) -> np.dtype | None:
    """Accept a NumPy dtype, a NumPy scalar type or a PyTorch-style name such as ``"float32"``."""
    if dtype is None:
        return None
    if isinstance(dtype, str):
        name = dtype.removeprefix("torch.")
        if name not in _DTYPE_NAMES:
            raise ValueError(f"unknown dtype {dtype!r}; expected one of {sorted(_DTYPE_NAMES)}")
        return np.dtype(_DTYPE_NAMES[name])
    return np.dtype(dtype)


def _to_array(data, dtype=None) -> np.ndarray:
    """PyTorch's rules: Python floats and lists of floats become float32, Python ints int64, bools bool;
    a NumPy array keeps its dtype unless `dtype` is given."""
    dtype = as_dtype(dtype)
    if isinstance(data, Tensor):
        data = data._data
    if isinstance(data, np.ndarray | np.generic):
        return np.array(data, dtype=dtype, copy=True) if dtype is not None else np.array(data, copy=True)
    array = np.asarray(data)
    if dtype is not None:
        return array.astype(dtype, copy=False)
    if array.dtype == np.float64:
        return array.astype(np.float32)
    if array.dtype.kind in "iu":
        return array.astype(np.int64, copy=False)
    if array.dtype.kind not in "fb":
        raise TypeError(f"tensor(): cannot make a tensor from {type(data).__name__} of dtype {array.dtype}")
    return array


def _operand(value, like: np.ndarray):
    """The NumPy operand for an arithmetic op: a Tensor's array, or a Python number cast to `like`'s
    dtype so that float32 tensors stay float32 (no silent upcast to float64)."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, numbers.Number):
        dtype = like.dtype if like.dtype.kind == "f" else np.result_type(like.dtype, value)
        return Tensor._wrap(np.asarray(value, dtype=dtype))
    return Tensor._wrap(_to_array(value, like.dtype if like.dtype.kind == "f" else None))


class Tensor:
    """An n-dimensional array that can record the operations applied to it for back-propagation.

    `._data` is the NumPy array (`.data` a detached tensor sharing it, as in PyTorch), `.grad` the accumulated gradient (a Tensor, or None), `.requires_grad`
    whether operations on it are recorded.
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
        return _CPU

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
    def T(self) -> Tensor:
        return self.permute(*reversed(range(self.ndim)))

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return int(self._data.size)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    # ---- conversion -------------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        if self.requires_grad:
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

    def clone(self) -> Tensor:
        from convlens.ops import Clone

        return Clone.apply(self)

    def to(self, *args, **kwargs) -> Tensor:
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(other)`` as in PyTorch; the CPU is
        the only device (another is an error). Returns ``self`` when nothing changes (unless
        ``copy=True``)."""
        from convlens.ops import Cast, Clone

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
            return Cast.apply(self, dtype=dtype)
        return Clone.apply(self) if copy else self

    def cpu(self) -> Tensor:
        return self

    def cuda(self, device=None, non_blocking: bool = False) -> Tensor:
        check_device(device or "cuda", "Tensor.cuda")
        return self

    def type(self, dtype=None):
        """With no argument, the PyTorch type name (``'torch.FloatTensor'``); else a cast, as ``to``."""
        if dtype is None:
            return "torch." + _TYPE_NAMES.get(self.dtype, f"{self.dtype}Tensor")
        if isinstance(dtype, str) and dtype.endswith("Tensor"):
            names = {v: k for k, v in _TYPE_NAMES.items()}
            if dtype.removeprefix("torch.") not in names:
                raise ValueError(f"Tensor.type: unknown type {dtype!r}; expected e.g. 'torch.FloatTensor'")
            dtype = names[dtype.removeprefix("torch.")]
        return self.to(dtype)

    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    def long(self) -> Tensor:
        return self.to(np.int64)

    def requires_grad_(self, mode: bool = True) -> Tensor:
        if mode and self._data.dtype.kind != "f":
            raise RuntimeError(f"only floating point tensors can require gradients, got dtype {self.dtype}")
        self.requires_grad = mode
        return self

    def retain_grad(self) -> None:
        self._retains_grad = True

    def register_hook(self, hook) -> None:
        """`hook(grad_array) -> grad_array` runs on this tensor's gradient during backward."""
        self._hooks.append(hook)

    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        autograd.backward(self, gradient, retain_graph=retain_graph)

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

    # ---- in-place updates ---------------------------------------------------------------------------
    # PyTorch's rules: allowed on anything under no_grad (and on tensors outside any graph), where they
    # write into the array itself, so views and the parameters behind `.data` see the change; on a leaf
    # that requires grad they are an error while grad mode is on; on an intermediate result of the
    # graph (``out += identity`` in a residual block, ``ReLU(inplace=True)``) they are recorded as the
    # out-of-place op and the tensor is rebound to its result. convlens's graph links tensors rather
    # than versions, so an intermediate that an earlier recorded op already consumed cannot be rebound
    # (that op would see the new history): that is an error naming the op, where PyTorch would allow it
    # for ops that saved nothing.
    def _inplace(self, name: str, fn, *args, **params) -> Tensor:
        """Replace this tensor by ``fn.apply(self, *args, **params)``, in place."""
        if autograd.is_grad_enabled() and (
            self.requires_grad or any(isinstance(a, Tensor) and a.requires_grad for a in args)
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
            out = fn.apply(before, *args, **params)
            if out.dtype != self.dtype:
                if self.dtype.kind != "f" or out.dtype.kind != "f":
                    raise _cast_error(name, out.dtype, self.dtype)
                out = out.to(self.dtype)
            if out.shape != self.shape:
                raise _shape_error(name, out.shape, self.shape)
            self._data, self._ctx, self.requires_grad, self._hooks = out._data, out._ctx, out.requires_grad, []
            return self
        with autograd.no_grad():
            out = fn.apply(self, *args, **params)._data
        if out.shape != self.shape:
            raise _shape_error(name, out.shape, self.shape)
        if not np.can_cast(out.dtype, self.dtype, "same_kind"):
            raise _cast_error(name, out.dtype, self.dtype)
        np.copyto(self._data, out, casting="same_kind")
        return self

    def _binary_inplace(self, name: str, fn, other, alpha=1):
        other = _operand(other, self._data)
        if alpha != 1:
            other = other * alpha
        return self._inplace(name, fn, other)

    def add_(self, other, *, alpha=1) -> Tensor:
        from convlens.ops import Add

        return self._binary_inplace("add_", Add, other, alpha)

    def sub_(self, other, *, alpha=1) -> Tensor:
        from convlens.ops import Sub

        return self._binary_inplace("sub_", Sub, other, alpha)

    def mul_(self, other) -> Tensor:
        from convlens.ops import Mul

        return self._binary_inplace("mul_", Mul, other)

    def div_(self, other) -> Tensor:
        from convlens.ops import Div

        return self._binary_inplace("div_", Div, other)

    __iadd__ = add_
    __isub__ = sub_
    __imul__ = mul_
    __itruediv__ = div_

    def clamp_(self, min=None, max=None) -> Tensor:
        from convlens.ops import Clamp

        return self._inplace("clamp_", Clamp, low=min, high=max)

    def fill_(self, value) -> Tensor:
        from convlens.ops import Fill

        return self._inplace("fill_", Fill, value=float(value) if self.dtype.kind == "f" else value)

    def zero_(self) -> Tensor:
        return self.fill_(0)

    def copy_(self, src, non_blocking: bool = False) -> Tensor:
        from convlens.ops import CopyFrom

        src = src if isinstance(src, Tensor) else Tensor._wrap(np.asarray(src))
        try:
            np.broadcast_shapes(src.shape, self.shape)
        except ValueError:
            raise _shape_error("copy_", src.shape, self.shape) from None
        return self._inplace("copy_", CopyFrom, src)

    def __setitem__(self, index, value) -> None:
        from convlens.ops import SetItem

        index = _index_arrays(index)
        value = value if isinstance(value, Tensor) else _operand(value, self._data)
        if not (autograd.is_grad_enabled() and (self.requires_grad or value.requires_grad)):
            self._data[index] = value._data  # the direct write: views see it
            return
        self._inplace("__setitem__", SetItem, value, index=index)

    # ---- arithmetic (differentiable ops live in convlens.ops) ----------------------------------------
    def __add__(self, other):
        from convlens.ops import Add

        return Add.apply(self, _operand(other, self._data))

    def __radd__(self, other):
        from convlens.ops import Add

        return Add.apply(_operand(other, self._data), self)

    def __sub__(self, other):
        from convlens.ops import Sub

        return Sub.apply(self, _operand(other, self._data))

    def __rsub__(self, other):
        from convlens.ops import Sub

        return Sub.apply(_operand(other, self._data), self)

    def __mul__(self, other):
        from convlens.ops import Mul

        return Mul.apply(self, _operand(other, self._data))

    def __rmul__(self, other):
        from convlens.ops import Mul

        return Mul.apply(_operand(other, self._data), self)

    def __truediv__(self, other):
        from convlens.ops import Div

        return Div.apply(self, _operand(other, self._data))

    def __rtruediv__(self, other):
        from convlens.ops import Div

        return Div.apply(_operand(other, self._data), self)

    def __matmul__(self, other):
        from convlens.ops import MatMul

        return MatMul.apply(self, _operand(other, self._data))

    def __rmatmul__(self, other):
        from convlens.ops import MatMul

        return MatMul.apply(_operand(other, self._data), self)

    def __neg__(self):
        from convlens.ops import Neg

        return Neg.apply(self)

    def __pow__(self, exponent):
        from convlens.ops import Pow, PowScalar

        if isinstance(exponent, numbers.Number):
            return PowScalar.apply(self, exponent=exponent)
        return Pow.apply(self, _operand(exponent, self._data))

    def __rpow__(self, base):
        from convlens.ops import Pow

        return Pow.apply(_operand(base, self._data), self)

    def __getitem__(self, index):
        from convlens.ops import GetItem

        return GetItem.apply(self, index=_index_arrays(index))

    # comparisons are not differentiable: they return plain boolean tensors
    def _compare(self, other, op):
        other = other._data if isinstance(other, Tensor) else other
        return Tensor._wrap(op(self._data, other))

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

    # ---- methods delegating to convlens.ops ----------------------------------------------------------
    def exp(self):
        from convlens.ops import Exp

        return Exp.apply(self)

    def log(self):
        from convlens.ops import Log

        return Log.apply(self)

    def sqrt(self):
        from convlens.ops import Sqrt

        return Sqrt.apply(self)

    def abs(self):
        from convlens.ops import Abs

        return Abs.apply(self)

    def relu(self):
        from convlens.ops import ReLU

        return ReLU.apply(self)

    def sigmoid(self):
        from convlens.ops import Sigmoid

        return Sigmoid.apply(self)

    def tanh(self):
        from convlens.ops import Tanh

        return Tanh.apply(self)

    def clamp(self, min=None, max=None):
        from convlens.ops import Clamp

        return Clamp.apply(self, low=min, high=max)

    def sum(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        from convlens.ops import Sum

        return Sum.apply(self, axis=_axes(dim, axis, self.ndim), keepdims=bool(keepdims or keepdim))

    def mean(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        from convlens.ops import Mean

        return Mean.apply(self, axis=_axes(dim, axis, self.ndim), keepdims=bool(keepdims or keepdim))

    def max(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        """As ``torch.max``: over everything, the maximum; over one ``dim``, the named tuple
        ``(values, indices)``; given another tensor, the element-wise maximum."""
        if isinstance(dim, Tensor):
            from convlens.functions import maximum

            return maximum(self, dim)
        return _reduce_extreme(self, "max", dim, axis, bool(keepdims or keepdim))

    def min(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        """As ``torch.min``: the minimum, ``(values, indices)`` over one ``dim``, or element-wise."""
        if isinstance(dim, Tensor):
            from convlens.functions import minimum

            return minimum(self, dim)
        return _reduce_extreme(self, "min", dim, axis, bool(keepdims or keepdim))

    def amax(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        """Maximum over one or several dims (values only; the gradient is shared between ties)."""
        from convlens.ops import Max

        return Max.apply(self, axis=_axes(dim, axis, self.ndim), keepdims=bool(keepdims or keepdim))

    def amin(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        return -((-self).amax(dim, keepdim, axis=axis, keepdims=keepdims))

    def var(self, dim=None, keepdim: bool = False, unbiased: bool = True):
        axes = _axes(dim, None, self.ndim)
        n = self._data.size if axes is None else int(np.prod([self.shape[a] for a in axes]))
        centred = self - self.mean(dim, keepdim=True)
        return (centred * centred).sum(dim, keepdim=keepdim) / max(n - int(unbiased), 1)

    def argmax(self, dim=None, keepdim: bool = False, *, axis=None):
        return _arg_extreme(self._data, np.argmax, dim if dim is not None else axis, keepdim)

    def argmin(self, dim=None, keepdim: bool = False, *, axis=None):
        return _arg_extreme(self._data, np.argmin, dim if dim is not None else axis, keepdim)

    def reshape(self, *shape):
        from convlens.ops import Reshape

        if len(shape) == 1 and isinstance(shape[0], tuple | list):
            shape = tuple(shape[0])
        return Reshape.apply(self, shape=tuple(int(s) for s in shape))

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        start = start_dim % max(self.ndim, 1)
        end = end_dim % max(self.ndim, 1)
        if self.ndim == 0:
            return self.reshape(1)
        shape = self.shape[:start] + (-1,) + self.shape[end + 1 :]
        return self.reshape(shape)

    def permute(self, *dims):
        from convlens.ops import Permute

        if len(dims) == 1 and isinstance(dims[0], tuple | list):
            dims = tuple(dims[0])
        return Permute.apply(self, dims=tuple(d % self.ndim for d in dims))

    def transpose(self, dim0: int, dim1: int):
        dims = list(range(self.ndim))
        dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
        return self.permute(*dims)

    def unsqueeze(self, dim: int):
        dim = dim % (self.ndim + 1)
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim: int | None = None):
        if dim is None:
            return self.reshape(tuple(s for s in self.shape if s != 1))
        dim = dim % self.ndim
        if self.shape[dim] != 1:
            return self
        return self.reshape(self.shape[:dim] + self.shape[dim + 1 :])

    def expand(self, *shape):
        from convlens.ops import Expand

        if len(shape) == 1 and isinstance(shape[0], tuple | list):
            shape = tuple(shape[0])
        shape = tuple(s if s != -1 else self.shape[i - len(shape) + self.ndim] for i, s in enumerate(shape))
        return Expand.apply(self, shape=shape)


_TYPE_NAMES = {
    np.dtype(np.float32): "FloatTensor", np.dtype(np.float64): "DoubleTensor",
    np.dtype(np.float16): "HalfTensor", np.dtype(np.int64): "LongTensor", np.dtype(np.int32): "IntTensor",
    np.dtype(np.int16): "ShortTensor", np.dtype(np.int8): "CharTensor", np.dtype(np.uint8): "ByteTensor",
    np.dtype(np.bool_): "BoolTensor",
}
_CPU = CPU


def _index_arrays(index):
    """Tensors inside an index become their arrays (so ``x[mask]`` and ``x[idx, 0]`` index NumPy)."""
    if isinstance(index, Tensor):
        return index._data
    if isinstance(index, tuple):
        return tuple(i._data if isinstance(i, Tensor) else i for i in index)
    return index


def _shape_error(name: str, got, expected) -> RuntimeError:
    return RuntimeError(f"{name}: the result has shape {tuple(got)}, which does not match the tensor's "
                        f"shape {tuple(expected)} (an in-place op cannot change a tensor's shape)")


def _cast_error(name: str, got, expected) -> RuntimeError:
    return RuntimeError(f"{name}: result type {got} can't be cast to the tensor's dtype {expected}")


def _one_axis(dim, ndim: int) -> int:
    if not isinstance(dim, numbers.Integral):
        raise TypeError(f"expected dim to be an int, got {dim!r} (for several dims use amax/amin)")
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"dimension {dim} out of range for a tensor with {ndim} dimensions")
    return int(dim) % max(ndim, 1)


def _arg_extreme(array: np.ndarray, fn, dim, keepdim: bool) -> Tensor:
    if dim is None:
        out = fn(array.reshape(-1))
        return Tensor._wrap(np.asarray(out, dtype=np.int64).reshape((1,) * array.ndim if keepdim else ()))
    if array.ndim == 0:
        return Tensor._wrap(np.zeros((), dtype=np.int64))
    return Tensor._wrap(np.asarray(fn(array, axis=_one_axis(dim, array.ndim), keepdims=keepdim), np.int64))


def _reduce_extreme(t: Tensor, kind: str, dim, axis, keepdim: bool):
    from convlens import return_types
    from convlens.ops import TakeAlong

    dim = dim if dim is not None else axis
    if dim is None:
        return t.amax() if kind == "max" else t.amin()
    if isinstance(dim, tuple | list):
        raise TypeError(f"{kind}(): dim must be an int, got {dim!r}; for several dims use a{kind}()")
    d = _one_axis(dim, t.ndim)
    if t.ndim == 0:
        return getattr(return_types, kind)(t, Tensor._wrap(np.zeros((), dtype=np.int64)))
    if t.shape[d] == 0:
        raise IndexError(f"{kind}(): cannot reduce the empty dimension {d} of a tensor of shape {t.shape}")
    index = (np.argmax if kind == "max" else np.argmin)(t._data, axis=d, keepdims=True)
    values = TakeAlong.apply(t, indices=index, axis=d)
    if not keepdim:
        values, index = values.squeeze(d), np.squeeze(index, d)
    return getattr(return_types, kind)(values, Tensor._wrap(index.astype(np.int64, copy=False)))


def _axes(dim, axis, ndim: int):
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
    return tuple(sorted(out))


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """Make a tensor from a number, a (nested) list or a NumPy array (copied)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


# ---- random numbers ----------------------------------------------------------------------------------
class Generator:
    """A random number generator as ``torch.Generator``: ``Generator().manual_seed(42)``, passed as
    ``generator=`` to factories, samplers and ``random_split``. It wraps a NumPy ``Generator`` (PCG64),
    so the streams differ from PyTorch's (Mersenne Twister): same seed, different numbers.
    ``get_state()`` is the bit generator's state dict (PyTorch returns a ByteTensor)."""

    def __init__(self, device="cpu"):
        check_device(device, "Generator")
        self._initial_seed = int(np.random.SeedSequence().entropy % (1 << 63))
        self.rng = np.random.default_rng(self._initial_seed)

    def manual_seed(self, seed: int) -> Generator:
        self._initial_seed = int(seed)
        self.rng = np.random.default_rng(self._initial_seed)
        return self

    def seed(self) -> int:
        """Re-seed from OS entropy; returns the new seed."""
        self.manual_seed(int(np.random.SeedSequence().entropy % (1 << 63)))
        return self._initial_seed

    def initial_seed(self) -> int:
        return self._initial_seed

    def get_state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> Generator:
        self.rng.bit_generator.state = state
        return self

    @property
    def device(self):
        return _CPU


_default = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the default generator (weight initialisation, dropout, ``randn``/``rand``, shuffling)."""
    return _default.manual_seed(seed)


def default_generator() -> np.random.Generator:
    """The NumPy generator behind the default `Generator` (what the engine draws from)."""
    return _default.rng


def initial_seed() -> int:
    return _default.initial_seed()


def seed() -> int:
    return _default.seed()


def get_rng_state() -> dict:
    return _default.get_state()


def set_rng_state(state: dict) -> None:
    _default.set_state(state)


# ---- factories -------------------------------------------------------------------------------------
def _shape_arg(shape) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        shape = shape[0]
    return tuple(int(s) for s in shape)


def zeros(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    return Tensor._wrap(np.zeros(_shape_arg(shape), dtype=as_dtype(dtype)), requires_grad)


def ones(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    return Tensor._wrap(np.ones(_shape_arg(shape), dtype=as_dtype(dtype)), requires_grad)


def randn(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    data = default_generator().standard_normal(_shape_arg(shape)).astype(as_dtype(dtype))
    return Tensor._wrap(data, requires_grad)


def rand(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    data = default_generator().random(_shape_arg(shape)).astype(as_dtype(dtype))
    return Tensor._wrap(data, requires_grad)


def arange(*args, dtype=None) -> Tensor:
    return Tensor(np.arange(*args), dtype=dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    """Share memory with `array` (no copy), as `torch.from_numpy`."""
    return Tensor._wrap(np.asarray(array))
