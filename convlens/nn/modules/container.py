"""Containers: `Sequential` (modules applied in order), `ModuleList` and `ModuleDict` (registered
modules by position or name), `ParameterList` and `ParameterDict` (registered parameters)."""

from __future__ import annotations

import numbers
from collections import OrderedDict
from collections.abc import Iterable, Iterator

from convlens.autograd import is_grad_enabled
from convlens.nn.modules.module import Module


def _index(where: str, idx, n: int) -> int:
    if isinstance(idx, bool) or not isinstance(idx, numbers.Integral):
        raise TypeError(f"{where} indices must be integers or slices, got {type(idx).__name__}")
    if not -n <= idx < n:
        raise IndexError(f"{where}: index {idx} is out of range for {n} modules")
    return int(idx) % n


_fusion_types: tuple = ()


def _watched(*modules: Module) -> bool:
    return any(m._forward_hooks or m._forward_pre_hooks for m in modules)


def _fusion(first: Module, second: Module) -> str | None:
    """The activation `first.forward` can apply itself in the same pass as `second`, when no hook needs
    to see the intermediate result; the output (and, for conv + ReLU, the gradients) is the same either
    way. Conv then ReLU: always. Batch norm then exact GELU: in eval mode with running statistics,
    while no gradient is recorded (inference: one pass instead of two, nothing kept for a backward)."""
    global _fusion_types
    if not _fusion_types:  # imported on first use: those modules import this one
        from convlens.nn.modules.activation import ReLU
        from convlens.nn.modules.conv import _ConvNd
        from convlens.nn.modules.nonlinearities import GELU
        from convlens.nn.modules.normalization import _BatchNorm

        _fusion_types = (_ConvNd, ReLU, _BatchNorm, GELU)
    conv, relu, batch_norm, gelu = _fusion_types
    if type(second) is relu and isinstance(first, conv) and not _watched(first, second):
        return "relu"
    if (type(second) is gelu and second.approximate == "none" and isinstance(first, batch_norm)
            and not first.training and first.running_mean is not None and not _watched(first, second)
            and not is_grad_enabled()):
        return "gelu"
    return None


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
            fused = _fusion(modules[i], modules[i + 1]) if i + 1 < len(modules) else None
            if fused:  # conv + ReLU, or batch norm + GELU, in one pass
                input = modules[i].forward(input, activation=fused)
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


class ModuleDict(Module):
    """A dict of modules whose parameters are registered, keeping insertion order (``torch.nn.ModuleDict``)."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        if key not in self._modules:
            raise KeyError(f"ModuleDict has no module {key!r}; it has {list(self._modules)}")
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key) -> bool:
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def pop(self, key: str) -> Module:
        module = self[key]
        del self[key]
        return module

    def clear(self) -> None:
        self._modules.clear()

    def update(self, modules) -> None:
        pairs = modules.items() if hasattr(modules, "items") else modules
        for i, pair in enumerate(pairs):
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise TypeError(f"ModuleDict.update: element {i} should be a (name, module) pair, got {pair!r}")
            self[pair[0]] = pair[1]

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleDict has no forward(); look modules up by name in your module's forward")


def _as_parameter(value):
    from convlens.nn.modules.module import Parameter
    from convlens.tensor import Tensor

    if isinstance(value, Parameter):
        return value
    if isinstance(value, Tensor):
        return Parameter(value, requires_grad=value.requires_grad or value.dtype.kind == "f")
    raise TypeError(f"expected a Parameter or Tensor, got {type(value).__name__}")


class ParameterList(Module):
    """A list of parameters registered with the module (``torch.nn.ParameterList``); tensors appended
    become Parameters. State-dict keys are the positions: ``'0'``, ``'1'``, ..."""

    def __init__(self, values=None):
        super().__init__()
        for value in values or ():
            self.append(value)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ParameterList(list(self._parameters.values())[idx])
        return self._parameters[str(_index("ParameterList", idx, len(self)))]

    def __setitem__(self, idx, value) -> None:
        self.register_parameter(str(_index("ParameterList", idx, len(self))), _as_parameter(value))

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())

    def append(self, value) -> ParameterList:
        self.register_parameter(str(len(self)), _as_parameter(value))
        return self

    def extend(self, values) -> ParameterList:
        for value in values:
            self.append(value)
        return self

    def extra_repr(self) -> str:
        return "\n".join(f"({i}): Parameter containing: [{type(p).__name__} of size {'x'.join(map(str, p.shape))}]"
                         for i, p in enumerate(self))

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ParameterList has no forward(); use its parameters in your module's forward")


class ParameterDict(Module):
    """A dict of parameters registered with the module (``torch.nn.ParameterDict``)."""

    def __init__(self, parameters=None):
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key: str):
        if key not in self._parameters:
            raise KeyError(f"ParameterDict has no parameter {key!r}; it has {list(self._parameters)}")
        return self._parameters[key]

    def __setitem__(self, key: str, value) -> None:
        self.register_parameter(key, _as_parameter(value))

    def __delitem__(self, key: str) -> None:
        del self._parameters[key]

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters)

    def __contains__(self, key) -> bool:
        return key in self._parameters

    def keys(self):
        return self._parameters.keys()

    def items(self):
        return self._parameters.items()

    def values(self):
        return self._parameters.values()

    def get(self, key: str, default=None):
        return self._parameters.get(key, default)

    def pop(self, key: str):
        value = self[key]
        del self[key]
        return value

    def update(self, parameters) -> None:
        pairs = parameters.items() if hasattr(parameters, "items") else parameters
        for key, value in pairs:
            self[key] = value

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ParameterDict has no forward(); use its parameters in your module's forward")
