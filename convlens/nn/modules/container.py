"""Containers: `Sequential` (modules applied in order) and `ModuleList` (a registered list)."""

from __future__ import annotations

import numbers
from collections import OrderedDict
from collections.abc import Iterable, Iterator

from convlens.nn.modules.module import Module


def _index(where: str, idx, n: int) -> int:
    if isinstance(idx, bool) or not isinstance(idx, numbers.Integral):
        raise TypeError(f"{where} indices must be integers or slices, got {type(idx).__name__}")
    if not -n <= idx < n:
        raise IndexError(f"{where}: index {idx} is out of range for {n} modules")
    return int(idx) % n


_fusion_types: tuple = ()


def _fusable_conv_relu(first: Module, second: Module) -> bool:
    """A conv layer followed by a ReLU can run as one operation when no hook needs to see the
    intermediate result; the output and the gradients are the same either way."""
    global _fusion_types
    if not _fusion_types:  # imported on first use: those modules import this one
        from convlens.nn.modules.activation import ReLU
        from convlens.nn.modules.conv import _ConvNd

        _fusion_types = (_ConvNd, ReLU)
    conv, relu = _fusion_types
    return (type(second) is relu and isinstance(first, conv)
            and not (first._forward_hooks or first._forward_pre_hooks
                     or second._forward_hooks or second._forward_pre_hooks))


class Sequential(Module):
    """Modules applied one after another: ``Sequential(a, b, c)(x) == c(b(a(x)))``.

    Accepts modules (named '0', '1', ...) or one OrderedDict name → module. Supports indexing, slicing
    (a new Sequential sharing the modules), ``len``, iteration and ``append``.

    Shape:
        whatever the first module accepts → whatever the last one returns; ``output_shape`` composes.
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(args):
                if not isinstance(module, Module):
                    raise TypeError(f"Sequential: argument {i} is a {type(module).__name__}, not a Module")
                self.add_module(str(i), module)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return list(self._modules.values())[_index("Sequential", idx, len(self))]

    def __setitem__(self, idx, module: Module) -> None:
        key = list(self._modules)[_index("Sequential", idx, len(self))]
        setattr(self, key, module)

    def __delitem__(self, idx) -> None:
        keys = list(self._modules)
        for key in (keys[idx] if isinstance(idx, slice) else [keys[_index("Sequential", idx, len(self))]]):
            del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), module)
        return self

    def forward(self, input):
        modules = list(self._modules.values())
        i = 0
        while i < len(modules):
            if i + 1 < len(modules) and _fusable_conv_relu(modules[i], modules[i + 1]):
                input = modules[i].forward(input, activation="relu")  # conv + ReLU in one pass
                i += 2
            else:
                input = modules[i](input)
                i += 1
        return input

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        for module in self._modules.values():
            shape = module.output_shape(shape)
        return shape


class ModuleList(Module):
    """A list of modules whose parameters are registered (a plain Python list would hide them)."""

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        for module in modules or ():
            self.append(module)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ModuleList(list(self._modules.values())[idx])
        return self._modules[str(_index("ModuleList", idx, len(self)))]

    def __setitem__(self, idx, module: Module) -> None:
        setattr(self, str(_index("ModuleList", idx, len(self))), module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for module in modules:
            self.append(module)
        return self

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward(); iterate over it in your module's forward")
