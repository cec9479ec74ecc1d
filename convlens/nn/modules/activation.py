"""Activation layers: thin Modules around `convlens.nn.functional`'s non-linearities.

Shape (all): any shape → the same shape.
"""

from __future__ import annotations

import numbers

from convlens.nn import functional as F
from convlens.nn.modules.module import Module


class _Elementwise(Module):
    """Applies a function element by element; the output has the input's shape."""

    def output_shape(self, input_shape):
        return tuple(input_shape)


class ReLU(_Elementwise):
    """max(x, 0). ``inplace`` is accepted for PyTorch compatibility and ignored.

    Shape:
        (*) → (*)
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.relu(input)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(_Elementwise):
    """x for x > 0, negative_slope·x otherwise.

    Shape:
        (*) → (*)
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, numbers.Real):
            raise ValueError(f"LeakyReLU: negative_slope must be a number, got {negative_slope!r}")
        self.negative_slope, self.inplace = float(negative_slope), inplace

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Sigmoid(_Elementwise):
    """1/(1 + e⁻ˣ).

    Shape:
        (*) → (*)
    """

    def forward(self, input):
        return F.sigmoid(input)


class Tanh(_Elementwise):
    """tanh(x).

    Shape:
        (*) → (*)
    """

    def forward(self, input):
        return F.tanh(input)


class Softmax(_Elementwise):
    """e^(xᵢ)/Σⱼ e^(xⱼ) along `dim` (values in (0, 1) summing to 1).

    Shape:
        (*) → (*)
    """

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log softmax(x) along `dim` (pair with NLLLoss).

    Shape:
        (*) → (*)
    """

    def forward(self, input):
        return F.log_softmax(input, self.dim)
