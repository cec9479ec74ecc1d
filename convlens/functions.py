"""Functions of the top-level ``convlens`` namespace that PyTorch code calls as ``torch.<name>(...)``."""

from __future__ import annotations

from convlens.tensor import Tensor, _operand


def maximum(input: Tensor, other: Tensor) -> Tensor:
    """Element-wise maximum (``torch.maximum``); ties share the gradient."""
    from convlens.ops import Maximum

    return Maximum.apply(input, _operand(other, input._data))


def minimum(input: Tensor, other: Tensor) -> Tensor:
    """Element-wise minimum (``torch.minimum``)."""
    return -maximum(-input, -_operand(other, input._data))


def max(input: Tensor, dim=None, keepdim: bool = False):  # noqa: A001 - torch's name
    """``convlens.max(x)``, ``convlens.max(x, dim)`` → ``(values, indices)``, ``convlens.max(x, y)``."""
    return input.max(dim, keepdim)


def min(input: Tensor, dim=None, keepdim: bool = False):  # noqa: A001 - torch's name
    return input.min(dim, keepdim)

