"""Data types with PyTorch's names (``convlens.float32``, ``convlens.long``, ``convlens.bool``...) and the
default floating-point type (``get_default_dtype`` / ``set_default_dtype``).

A convlens dtype is a NumPy scalar type, so ``x.dtype == convlens.float`` and ``np.float32`` mean the
same thing. Python floats and float factories (``zeros``, ``randn``...) use the default type, float32
unless ``set_default_dtype`` changed it (to float64 for gradient checks, say).
"""

from __future__ import annotations

import numpy as np

float16 = half = np.float16
float32 = np.float32
float64 = double = np.float64
int8, int16, int32, int64, uint8 = np.int8, np.int16, np.int32, np.int64, np.uint8
short, long = np.int16, np.int64
bool_ = np.bool_

# what `torch.<name>` and the strings "torch.<name>" / "<name>" stand for
DTYPE_NAMES = {
    "float16": np.float16, "half": np.float16,
    "float32": np.float32, "float": np.float32,
    "float64": np.float64, "double": np.float64,
    "int8": np.int8, "int16": np.int16, "short": np.int16,
    "int32": np.int32, "int": np.int32, "int64": np.int64, "long": np.int64,
    "uint8": np.uint8, "bool": np.bool_,
}

_default_float = np.dtype(np.float32)


def as_dtype(dtype) -> np.dtype | None:
    """Accept a NumPy dtype, a NumPy scalar type, Python's ``float``/``int``/``bool`` (PyTorch reads
    them as the default float type, int64 and bool) or a name such as ``"float32"``."""
    if dtype is None:
        return None
    if dtype is float:
        return _default_float
    if dtype is int:
        return np.dtype(np.int64)
    if dtype is bool:
        return np.dtype(np.bool_)
    if isinstance(dtype, str):
        name = dtype.removeprefix("torch.")
        if name not in DTYPE_NAMES:
            raise ValueError(f"unknown dtype {dtype!r}; expected one of {sorted(DTYPE_NAMES)}")
        return np.dtype(DTYPE_NAMES[name])
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"expected a dtype such as convlens.float32, got {dtype!r}") from None


def get_default_dtype():
    """The floating-point type of Python floats and float factories (``convlens.float32`` unless set)."""
    return _default_float.type


def set_default_dtype(dtype) -> None:
    """Make `dtype` (float16, float32 or float64) the default floating-point type, as PyTorch."""
    global _default_float
    d = as_dtype(dtype)
    if d is None or d.kind != "f":
        raise TypeError(f"set_default_dtype: only floating-point types can be the default, got {dtype!r}")
    _default_float = d


def default_float() -> np.dtype:
    return _default_float


def float_or_default(dtype) -> np.dtype:
    """`dtype` as a NumPy dtype, the default float type when None."""
    return _default_float if dtype is None else as_dtype(dtype)


finfo = np.finfo  # convlens.finfo(convlens.float32).eps, .max, .tiny as torch.finfo
iinfo = np.iinfo


def is_floating_point(x) -> bool:
    return np.dtype(x.dtype).kind == "f"
