"""Tensor factories with PyTorch's signatures: ``zeros(2, 3)``, ``zeros((2, 3))``, ``zeros(size=(2, 3))``,
``randn(*size, generator=None, dtype=None, requires_grad=False)``, ``arange``, ``linspace``, ``full``,
``eye``, ``randint``, ``randperm``, the ``*_like`` family.

Float factories make the default dtype (`convlens.get_default_dtype`, float32 unless changed);
``device=`` is accepted for the CPU (another device is an error), ``layout``/``pin_memory``/
``memory_format`` are accepted and ignored (one layout, no pinned memory here).
"""

from __future__ import annotations

import numbers

import numpy as np

from convlens.devices import check_device
from convlens.dtypes import as_dtype, default_float, float_or_default
from convlens.random import rng_of
from convlens.tensor import Tensor

_IGNORED = ("layout", "pin_memory", "memory_format", "non_blocking")


def _options(where: str, kwargs: dict) -> None:
    """Check the keyword arguments every factory accepts besides its own."""
    check_device(kwargs.pop("device", None), where)
    if kwargs.pop("out", None) is not None:
        raise TypeError(f"{where}: out= is not supported in convlens; assign the result instead")
    for name in _IGNORED:
        kwargs.pop(name, None)
    if kwargs:
        raise TypeError(f"{where}() got unexpected keyword argument(s) {', '.join(sorted(kwargs))}")


def _size(where: str, size: tuple, keyword) -> tuple[int, ...]:
    """``f(2, 3)``, ``f((2, 3))``, ``f([2, 3])``, ``f(size=(2, 3))`` → (2, 3)."""
    if keyword is not None:
        if size:
            raise TypeError(f"{where}: give the size either positionally or as size=, not both")
        size = (keyword,)
    if len(size) == 1 and isinstance(size[0], tuple | list):
        size = tuple(size[0])
    out = []
    for s in size:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral | Tensor):
            raise TypeError(f"{where}: size must be integers, got {size!r}")
        s = int(s)
        if s < 0:
            raise RuntimeError(f"{where}: trying to create a tensor with negative dimension {s}: {tuple(size)}")
        out.append(s)
    return tuple(out)


def _make(array: np.ndarray, requires_grad: bool) -> Tensor:
    if requires_grad and array.dtype.kind != "f":
        raise RuntimeError(f"only floating point tensors can require gradients, got dtype {array.dtype}")
    return Tensor._wrap(array, bool(requires_grad))


def tensor(data, dtype=None, device=None, requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """Make a tensor from a number, a (nested) list or a NumPy array (always copied), as ``torch.tensor``:
    Python floats give the default float type, Python ints int64, bools bool."""
    check_device(device, "tensor")
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like `tensor`, but shares memory with a NumPy array or Tensor when no conversion is needed."""
    check_device(device, "as_tensor")
    if isinstance(data, Tensor) and (dtype is None or as_dtype(dtype) == data.dtype):
        return data
    if isinstance(data, np.ndarray) and (dtype is None or as_dtype(dtype) == data.dtype):
        return Tensor._wrap(data)
    return Tensor(data, dtype=dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    """Share memory with `array` (no copy), as ``torch.from_numpy``."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray, got {type(array).__name__}")
    return Tensor._wrap(array)


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def _constant(where, fill, size, dtype, requires_grad, kwargs):
    shape = _size(where, size, kwargs.pop("size", None))
    _options(where, kwargs)
    return _make(np.full(shape, fill, dtype=float_or_default(dtype)), requires_grad)


def zeros(*size, dtype=None, requires_grad: bool = False, **kwargs) -> Tensor:
    """A tensor of zeros: ``zeros(2, 3)``, ``zeros((2, 3))`` or ``zeros(size=(2, 3))``."""
    return _constant("zeros", 0, size, dtype, requires_grad, kwargs)


def ones(*size, dtype=None, requires_grad: bool = False, **kwargs) -> Tensor:
    return _constant("ones", 1, size, dtype, requires_grad, kwargs)


def empty(*size, dtype=None, requires_grad: bool = False, **kwargs) -> Tensor:
    """Uninitialised memory, as ``torch.empty`` (convlens hands out zeros: same cost, no garbage)."""
    return _constant("empty", 0, size, dtype, requires_grad, kwargs)


def _fill_dtype(fill_value, dtype) -> np.dtype:
    if dtype is not None:
        return as_dtype(dtype)
    if isinstance(fill_value, bool | np.bool_):
        return np.dtype(np.bool_)
    if isinstance(fill_value, numbers.Integral):
        return np.dtype(np.int64)
    return default_float()


def full(size, fill_value, *, dtype=None, requires_grad: bool = False, **kwargs) -> Tensor:
    """A tensor of `fill_value`; its dtype follows the value (bool, int64, or the default float)."""
    _options("full", kwargs)
    fill_value = fill_value.item() if isinstance(fill_value, Tensor) else fill_value
    array = np.full(_size("full", (size,), None), fill_value, dtype=_fill_dtype(fill_value, dtype))
    return _make(array, requires_grad)


def _like(where, input, dtype, kwargs) -> tuple[tuple[int, ...], np.dtype]:
    _options(where, kwargs)
    if not isinstance(input, Tensor):
        raise TypeError(f"{where}(): argument 'input' must be a Tensor, got {type(input).__name__}")
    return input.shape, input.dtype if dtype is None else as_dtype(dtype)


def zeros_like(input, *, dtype=None, requires_grad: bool = False, **kwargs) -> Tensor:
    shape, dt = _like("zeros_like", input, dtype, kwargs)
    return _make(np.zeros(shape, dt), requires_grad)


def ones_like(input, *, dtype=None, requires_grad: bool = False, **kwargs) -> Tensor:
    shape, dt = _like("ones_like", input, dtype, kwargs)
    return _make(np.ones(shape, dt), requires_grad)


def empty_like(input, *, dtype=None, requires_grad: bool = False, **kwargs) -> Tensor:
    shape, dt = _like("empty_like", input, dtype, kwargs)
    return _make(np.zeros(shape, dt), requires_grad)


def full_like(input, fill_value, *, dtype=None, requires_grad: bool = False, **kwargs) -> Tensor:
    shape, dt = _like("full_like", input, dtype, kwargs)
    return _make(np.full(shape, fill_value, dt), requires_grad)


def _float_dtype(where: str, dtype) -> np.dtype:
    d = float_or_default(dtype)
    if d.kind != "f":
        raise TypeError(f"{where}: expected a floating-point dtype, got {d}")
    return d


def randn(*size, generator=None, dtype=None, requires_grad: bool = False, **kwargs) -> Tensor:
    """Standard normal samples N(0, 1): ``randn(2, 3)``, ``randn(size=(2, 3), generator=g)``."""
    shape = _size("randn", size, kwargs.pop("size", None))
    _options("randn", kwargs)
    d = _float_dtype("randn", dtype)
    return _make(rng_of(generator).standard_normal(shape).astype(d, copy=False), requires_grad)


def rand(*size, generator=None, dtype=None, requires_grad: bool = False, **kwargs) -> Tensor:
    """Uniform samples in [0, 1)."""
    shape = _size("rand", size, kwargs.pop("size", None))
    _options("rand", kwargs)
    d = _float_dtype("rand", dtype)
    return _make(rng_of(generator).random(shape).astype(d, copy=False), requires_grad)


def randn_like(input, *, generator=None, dtype=None, requires_grad: bool = False, **kwargs) -> Tensor:
    shape, dt = _like("randn_like", input, dtype, kwargs)
    return _make(rng_of(generator).standard_normal(shape).astype(dt, copy=False), requires_grad)


def rand_like(input, *, generator=None, dtype=None, requires_grad: bool = False, **kwargs) -> Tensor:
    shape, dt = _like("rand_like", input, dtype, kwargs)
    return _make(rng_of(generator).random(shape).astype(dt, copy=False), requires_grad)


def randint(*args, size=None, generator=None, dtype=None, requires_grad: bool = False, **kwargs) -> Tensor:
    """Integers uniform in [low, high): ``randint(high, size)`` or ``randint(low, high, size)``; int64."""
    if size is not None:
        args = (*args, size)
    if len(args) == 2:
        low, (high, size) = 0, args
    elif len(args) == 3:
        low, high, size = args
    else:
        raise TypeError("randint: expected randint(high, size) or randint(low, high, size)")
    _options("randint", kwargs)
    if int(high) <= int(low):
        raise RuntimeError(f"randint: expected low < high, got low={low}, high={high}")
    shape = _size("randint", (size,), None)
    d = np.dtype(np.int64) if dtype is None else as_dtype(dtype)
    return _make(rng_of(generator).integers(int(low), int(high), shape).astype(d, copy=False), requires_grad)


def randint_like(input, low=0, high=None, *, generator=None, dtype=None, **kwargs) -> Tensor:
    if high is None:
        low, high = 0, low
    shape, dt = _like("randint_like", input, dtype, kwargs)
    return Tensor._wrap(rng_of(generator).integers(int(low), int(high), shape).astype(dt, copy=False))


def randperm(n: int, *, generator=None, dtype=None, requires_grad: bool = False, **kwargs) -> Tensor:
    """A random permutation of 0..n−1 (int64)."""
    _options("randperm", kwargs)
    d = np.dtype(np.int64) if dtype is None else as_dtype(dtype)
    return _make(rng_of(generator).permutation(int(n)).astype(d, copy=False), requires_grad)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, **kwargs) -> Tensor:
    """Samples N(mean, std²): tensors `mean`/`std` (broadcast) or numbers with a `size`."""
    _options("normal", kwargs)
    m = mean._data if isinstance(mean, Tensor) else mean
    s = std._data if isinstance(std, Tensor) else std
    if size is None and not (isinstance(mean, Tensor) or isinstance(std, Tensor)):
        raise TypeError("normal: give tensors mean/std or a size")
    shape = _size("normal", (size,), None) if size is not None else np.broadcast_shapes(np.shape(m), np.shape(s))
    like = m if isinstance(mean, Tensor) else s if isinstance(std, Tensor) else None
    d = as_dtype(dtype) or (like.dtype if like is not None else default_float())
    return Tensor._wrap(rng_of(generator).normal(m, s, shape).astype(d, copy=False))


def bernoulli(input, p=None, *, generator=None) -> Tensor:
    """1 with probability `input` (or `p`) per element, else 0, in `input`'s dtype."""
    probs = input._data if p is None else np.broadcast_to(p, input.shape)
    return Tensor._wrap((rng_of(generator).random(input.shape) < probs).astype(input.dtype))


def _is_float(*values) -> bool:
    return any(isinstance(v, float | np.floating) or (isinstance(v, Tensor) and v.dtype.kind == "f")
               for v in values)


def arange(start=0, end=None, step=1, *, dtype=None, requires_grad: bool = False, **kwargs) -> Tensor:
    """Values start, start + step, ... below end: int64 for integer arguments, else the default float."""
    _options("arange", kwargs)
    if end is None:
        start, end = 0, start
    start, end, step = (v.item() if isinstance(v, Tensor) else v for v in (start, end, step))
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    d = as_dtype(dtype) or (default_float() if _is_float(start, end, step) else np.dtype(np.int64))
    return _make(np.arange(start, end, step).astype(d, copy=False), requires_grad)


def linspace(start, end, steps: int, *, dtype=None, requires_grad: bool = False, **kwargs) -> Tensor:
    """`steps` evenly spaced values from start to end inclusive."""
    _options("linspace", kwargs)
    if int(steps) < 0:
        raise RuntimeError(f"linspace: number of steps must be non-negative, got {steps}")
    d = float_or_default(dtype)
    return _make(np.linspace(float(start), float(end), int(steps)).astype(d), requires_grad)


def logspace(start, end, steps: int, base: float = 10.0, *, dtype=None, requires_grad: bool = False,
             **kwargs) -> Tensor:
    _options("logspace", kwargs)
    d = float_or_default(dtype)
    return _make(np.logspace(float(start), float(end), int(steps), base=base).astype(d), requires_grad)


def eye(n: int, m: int | None = None, *, dtype=None, requires_grad: bool = False, **kwargs) -> Tensor:
    """The identity matrix (n × m, m = n by default)."""
    _options("eye", kwargs)
    return _make(np.eye(int(n), None if m is None else int(m), dtype=float_or_default(dtype)), requires_grad)
