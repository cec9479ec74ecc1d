"""Functions of the top-level ``convlens`` namespace that PyTorch code calls as ``torch.<name>(...)``.

Most are the Tensor method of the same name with the tensor as first argument (``convlens.sum(x, 1)``
is ``x.sum(1)``); those are generated from `_METHODS` below, so both stay one implementation.
"""

from __future__ import annotations

import numpy as np

from convlens.tensor import Tensor, _operand, binary


def _as_tensor(value, where: str) -> Tensor:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        return Tensor._wrap(value)
    raise TypeError(f"{where}(): argument 'input' must be a Tensor, got {type(value).__name__}")


def _method(name: str):
    def function(input, *args, **kwargs):
        if not isinstance(input, Tensor) and args and isinstance(args[0], Tensor):
            number = _operand(input, args[0]._data)  # torch.div(1.0, x): a number first
            input = number if number is not None else input
        return getattr(_as_tensor(input, name), name)(*args, **kwargs)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"``convlens.{name}(input, ...)`` is ``input.{name}(...)``, as ``torch.{name}``."
    return function


# torch.<name>(input, ...) == input.<name>(...)
_METHODS = (
    "abs", "absolute", "neg", "negative", "exp", "log", "log1p", "log2", "log10", "sqrt", "rsqrt",
    "square", "sin", "cos", "sign", "floor", "ceil", "trunc", "round", "frac", "reciprocal", "relu",
    "sigmoid", "tanh", "clamp", "clip", "clamp_min", "clamp_max", "pow", "float_power",
    "add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "floor_divide",
    "remainder", "fmod", "matmul", "mm", "bmm", "mv", "dot", "outer", "lerp", "addcmul", "addcdiv",
    "masked_fill", "isnan", "isinf", "isfinite", "isclose", "allclose", "equal", "logical_not",
    "logical_and", "logical_or", "logical_xor", "nan_to_num", "softmax", "log_softmax",
    "sum", "nansum", "mean", "prod", "cumsum", "var", "std", "norm", "logsumexp", "amax", "amin",
    "argmax", "argmin", "median", "kthvalue", "all", "any", "count_nonzero", "argsort", "sort", "topk",
    "nonzero", "argwhere", "unique", "bincount",
    "reshape", "flatten", "ravel", "unflatten", "permute", "transpose", "swapaxes", "swapdims", "t",
    "movedim", "moveaxis", "unsqueeze", "squeeze", "broadcast_to", "tile", "repeat_interleave",
    "narrow", "split", "chunk", "tensor_split", "unbind", "select", "index_select", "masked_select",
    "take", "gather", "scatter", "scatter_add", "index_fill", "flip", "fliplr", "flipud", "roll",
    "tril", "triu", "diagonal", "clone", "detach", "numel", "eq", "ne", "lt", "le", "gt", "ge",
    "greater", "greater_equal", "less", "less_equal", "not_equal",
)
for _name in _METHODS:
    globals()[_name] = _method(_name)


def maximum(input: Tensor, other: Tensor) -> Tensor:
    """Element-wise maximum (``torch.maximum``); ties share the gradient."""
    from convlens.ops import Maximum

    return binary(Maximum, input, _operand(other, input._data))


def minimum(input: Tensor, other: Tensor) -> Tensor:
    """Element-wise minimum (``torch.minimum``)."""
    return -maximum(-input, -_operand(other, input._data))


def max(input: Tensor, dim=None, keepdim: bool = False):  # noqa: A001 - torch's name
    """``convlens.max(x)``, ``convlens.max(x, dim)`` → ``(values, indices)``, ``convlens.max(x, y)``."""
    return input.max(dim, keepdim)


def min(input: Tensor, dim=None, keepdim: bool = False):  # noqa: A001 - torch's name
    return input.min(dim, keepdim)


def where(condition, input=None, other=None):
    """`input` where `condition` holds, else `other` (numbers allowed); with only a condition, the
    indices of its true elements (``nonzero(as_tuple=True)``)."""
    condition = _as_tensor(condition, "where")
    if input is None and other is None:
        return condition.nonzero(as_tuple=True)
    if not isinstance(input, Tensor):
        if not isinstance(other, Tensor):
            raise TypeError("where(): at least one of input and other must be a Tensor")
        input = _operand(input, other._data)
    return input.where(condition, other)


def var_mean(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    return input.var(dim, unbiased, keepdim, correction=correction), input.mean(dim, keepdim)


def std_mean(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    return input.std(dim, unbiased, keepdim, correction=correction), input.mean(dim, keepdim)


def numel(input: Tensor) -> int:
    return _as_tensor(input, "numel").numel()


def broadcast_tensors(*tensors):
    shape = np.broadcast_shapes(*(t.shape for t in tensors))
    return tuple(t.expand(shape) for t in tensors)


def broadcast_shapes(*shapes) -> tuple:
    return tuple(np.broadcast_shapes(*shapes))


def meshgrid(*tensors, indexing: str = "ij"):
    """Grids of coordinates (``indexing="ij"`` by default, as PyTorch; "xy" swaps the first two)."""
    if len(tensors) == 1 and isinstance(tensors[0], list | tuple):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    shape = [t.numel() for t in tensors]
    if indexing == "xy" and len(shape) >= 2:
        shape[0], shape[1] = shape[1], shape[0]
    out = []
    for i, t in enumerate(tensors):
        axis = (1 - i if i < 2 else i) if indexing == "xy" and len(shape) >= 2 else i
        view = [1] * len(shape)
        view[axis] = t.numel()
        out.append(t.reshape(view).expand(shape))
    return tuple(out)


def hstack(tensors):
    from convlens.ops import cat

    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    from convlens.ops import cat

    return cat([t.reshape(1, -1) if t.ndim == 1 else t for t in tensors], 0)


def cdist(x1: Tensor, x2: Tensor, p: float = 2.0) -> Tensor:
    """Pairwise p-norm distances between the rows of x1 (…, P, M) and x2 (…, R, M)."""
    return (x1.unsqueeze(-2) - x2.unsqueeze(-3)).norm(p, dim=-1)


def einsum(equation: str, *operands):
    """Not differentiable through a general contraction: raises unless no operand requires grad."""
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        operands = tuple(operands[0])
    if any(t.requires_grad for t in operands):
        raise NotImplementedError("einsum: gradients through einsum are not implemented in convlens; "
                                  "write the product with matmul / sum")
    return Tensor._wrap(np.einsum(equation, *(t._data for t in operands)))


__all__ = [*_METHODS, "maximum", "minimum", "max", "min", "where", "var_mean", "std_mean", "numel",
           "broadcast_tensors", "broadcast_shapes", "meshgrid", "hstack", "vstack", "cdist", "einsum"]
