"""More activation layers (ELU, SELU, CELU, GELU, SiLU, Mish, Hardswish, Hardsigmoid, Hardtanh, ReLU6,
Softplus, Softsign, LogSigmoid, PReLU), thin Modules over `convlens.nn.functional.nonlinearities`.

Shape (all): (*) → (*). ``inplace`` is accepted for PyTorch compatibility; a new tensor is returned.
"""

from __future__ import annotations

import numbers

import numpy as np

from convlens.dtypes import float_or_default
from convlens.nn.functional import nonlinearities as NF
from convlens.nn.modules.activation import _Elementwise
from convlens.nn.modules.module import Parameter


class ELU(_Elementwise):
    """x for x > 0, α(eˣ − 1) otherwise.

    Shape:
        (*) → (*)
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha, self.inplace = NF._number("ELU", "alpha", alpha), inplace

    def forward(self, input):
        return NF.elu(input, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class CELU(ELU):
    """max(0, x) + min(0, α(e^(x/α) − 1)).

    Shape:
        (*) → (*)
    """

    def forward(self, input):
        return NF.celu(input, self.alpha)


class SELU(_Elementwise):
    """λ·elu(x, α), λ ≈ 1.0507, α ≈ 1.6733.

    Shape:
        (*) → (*)
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return NF.selu(input)


class _Plain(_Elementwise):
    _fn = None

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return type(self)._fn(input)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class GELU(_Elementwise):
    """x·Φ(x), Φ the standard normal CDF; ``approximate='tanh'`` for the tanh formula.

    Shape:
        (*) → (*)
    """

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        return NF.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(_Plain):
    """x·σ(x).

    Shape:
        (*) → (*)
    """

    _fn = staticmethod(NF.silu)


class Mish(_Plain):
    """x·tanh(softplus(x)).

    Shape:
        (*) → (*)
    """

    _fn = staticmethod(NF.mish)


class Hardswish(_Plain):
    """x·relu6(x + 3)/6.

    Shape:
        (*) → (*)
    """

    _fn = staticmethod(NF.hardswish)


class Hardsigmoid(_Plain):
    """relu6(x + 3)/6.

    Shape:
        (*) → (*)
    """

    _fn = staticmethod(NF.hardsigmoid)


class ReLU6(_Plain):
    """min(max(x, 0), 6).

    Shape:
        (*) → (*)
    """

    _fn = staticmethod(NF.relu6)


class Hardtanh(_Elementwise):
    """x clipped to [min_val, max_val].

    Shape:
        (*) → (*)
    """

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__()
        if min_val > max_val:
            raise ValueError(f"Hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
        self.min_val, self.max_val, self.inplace = float(min_val), float(max_val), inplace

    def forward(self, input):
        return NF.hardtanh(input, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"


class Softplus(_Elementwise):
    """(1/β)·log(1 + e^(βx)), the identity where βx > threshold.

    Shape:
        (*) → (*)
    """

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta = NF._number("Softplus", "beta", beta)
        self.threshold = NF._number("Softplus", "threshold", threshold)

    def forward(self, input):
        return NF.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Softsign(_Elementwise):
    """x/(1 + |x|).

    Shape:
        (*) → (*)
    """

    def forward(self, input):
        return NF.softsign(input)


class LogSigmoid(_Elementwise):
    """log σ(x).

    Shape:
        (*) → (*)
    """

    def forward(self, input):
        return NF.logsigmoid(input)


class PReLU(_Elementwise):
    """x for x > 0, a·x otherwise with a learned `a`: one shared (num_parameters=1) or one per channel,
    initialised to `init` (0.25), as PyTorch.

    Shape:
        (N, C, *) → (N, C, *); num_parameters is 1 or C.
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, dtype=None):
        super().__init__()
        if isinstance(num_parameters, bool) or not isinstance(num_parameters, numbers.Integral) or num_parameters < 1:
            raise ValueError(f"PReLU: num_parameters must be a positive integer, got {num_parameters!r}")
        self.num_parameters = int(num_parameters)
        self.init = NF._number("PReLU", "init", init)
        self.weight = Parameter(np.full(self.num_parameters, self.init, dtype=float_or_default(dtype)))

    def reset_parameters(self) -> None:
        self.weight._data[...] = self.init

    def forward(self, input):
        return NF.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"
