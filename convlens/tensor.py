"""`Tensor`: a NumPy array with an optional gradient and a link to the operation that produced it."""

from __future__ import annotations

import numbers

import numpy as np

from convlens import autograd

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
        data = data.data
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

    `.data` is the NumPy array, `.grad` the accumulated gradient (a Tensor, or None), `.requires_grad`
    whether operations on it are recorded.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_hooks", "_retains_grad", "__weakref__")
    __array_priority__ = 1000  # so `ndarray + Tensor` defers to Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _to_array(data, dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise RuntimeError(f"only floating point tensors can require gradients, got dtype {self.data.dtype}")
        self.grad: Tensor | None = None
        self.requires_grad = bool(requires_grad)
        self._ctx = None
        self._hooks: list = []
        self._retains_grad = False

    @classmethod
    def _wrap(cls, array: np.ndarray, requires_grad: bool = False) -> Tensor:
        """Wrap an array without copying or converting it (the engine's internal constructor)."""
        t = cls.__new__(cls)
        t.data = array if isinstance(array, np.ndarray) else np.asarray(array)
        t.grad = None
        t.requires_grad = requires_grad
        t._ctx = None
        t._hooks = []
        t._retains_grad = False
        return t

    # ---- properties -------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

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
        return int(self.data.size)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    # ---- conversion -------------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        if self.requires_grad:
            raise RuntimeError("can't call numpy() on a tensor that requires grad; use tensor.detach().numpy()")
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): only one-element tensors can be converted, got shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.data.tolist()

    def detach(self) -> Tensor:
        return Tensor._wrap(self.data)

    def clone(self) -> Tensor:
        from convlens.ops import Clone

        return Clone.apply(self)

    def to(self, dtype) -> Tensor:
        from convlens.ops import Cast

        dtype = as_dtype(dtype)
        return self if dtype == self.dtype else Cast.apply(self, dtype=dtype)

    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    def long(self) -> Tensor:
        return self.to(np.int64)

    def requires_grad_(self, mode: bool = True) -> Tensor:
        if mode and self.data.dtype.kind != "f":
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

    def zero_(self) -> Tensor:
        self.data[...] = 0
        return self

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, separator=", ", prefix="tensor(")
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
        if self.data.size != 1:
            raise RuntimeError(f"the truth value of a tensor with shape {self.shape} is ambiguous")
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    # ---- arithmetic (differentiable ops live in convlens.ops) ----------------------------------------
    def __add__(self, other):
        from convlens.ops import Add

        return Add.apply(self, _operand(other, self.data))

    def __radd__(self, other):
        from convlens.ops import Add

        return Add.apply(_operand(other, self.data), self)

    def __sub__(self, other):
        from convlens.ops import Sub

        return Sub.apply(self, _operand(other, self.data))

    def __rsub__(self, other):
        from convlens.ops import Sub

        return Sub.apply(_operand(other, self.data), self)

    def __mul__(self, other):
        from convlens.ops import Mul

        return Mul.apply(self, _operand(other, self.data))

    def __rmul__(self, other):
        from convlens.ops import Mul

        return Mul.apply(_operand(other, self.data), self)

    def __truediv__(self, other):
        from convlens.ops import Div

        return Div.apply(self, _operand(other, self.data))

    def __rtruediv__(self, other):
        from convlens.ops import Div

        return Div.apply(_operand(other, self.data), self)

    def __matmul__(self, other):
        from convlens.ops import MatMul

        return MatMul.apply(self, _operand(other, self.data))

    def __rmatmul__(self, other):
        from convlens.ops import MatMul

        return MatMul.apply(_operand(other, self.data), self)

    def __neg__(self):
        from convlens.ops import Neg

        return Neg.apply(self)

    def __pow__(self, exponent):
        from convlens.ops import Pow, PowScalar

        if isinstance(exponent, numbers.Number):
            return PowScalar.apply(self, exponent=exponent)
        return Pow.apply(self, _operand(exponent, self.data))

    def __rpow__(self, base):
        from convlens.ops import Pow

        return Pow.apply(_operand(base, self.data), self)

    def __getitem__(self, index):
        from convlens.ops import GetItem

        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        return GetItem.apply(self, index=index)

    # comparisons are not differentiable: they return plain boolean tensors
    def _compare(self, other, op):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor._wrap(op(self.data, other))

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
        """Maximum over `dim` (all axes when None). Returns the values only, like `torch.amax`."""
        from convlens.ops import Max

        return Max.apply(self, axis=_axes(dim, axis, self.ndim), keepdims=bool(keepdims or keepdim))

    amax = max

    def min(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        return -((-self).max(dim, keepdim, axis=axis, keepdims=keepdims))

    amin = min

    def var(self, dim=None, keepdim: bool = False, unbiased: bool = True):
        axes = _axes(dim, None, self.ndim)
        n = self.data.size if axes is None else int(np.prod([self.shape[a] for a in axes]))
        centred = self - self.mean(dim, keepdim=True)
        return (centred * centred).sum(dim, keepdim=keepdim) / max(n - int(unbiased), 1)

    def argmax(self, dim=None, keepdim: bool = False):
        out = np.argmax(self.data, axis=dim, keepdims=keepdim) if dim is not None else np.argmax(self.data)
        return Tensor._wrap(np.asarray(out, dtype=np.int64))

    def argmin(self, dim=None, keepdim: bool = False):
        out = np.argmin(self.data, axis=dim, keepdims=keepdim) if dim is not None else np.argmin(self.data)
        return Tensor._wrap(np.asarray(out, dtype=np.int64))

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
_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the generator used by weight initialisation, dropout and `randn`/`rand`."""
    global _generator
    _generator = np.random.default_rng(int(seed))
    return _generator


def default_generator() -> np.random.Generator:
    return _generator


def get_rng_state() -> dict:
    return _generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    _generator.bit_generator.state = state


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
    data = _generator.standard_normal(_shape_arg(shape)).astype(as_dtype(dtype))
    return Tensor._wrap(data, requires_grad)


def rand(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    data = _generator.random(_shape_arg(shape)).astype(as_dtype(dtype))
    return Tensor._wrap(data, requires_grad)


def arange(*args, dtype=None) -> Tensor:
    return Tensor(np.arange(*args), dtype=dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    """Share memory with `array` (no copy), as `torch.from_numpy`."""
    return Tensor._wrap(np.asarray(array))
