"""`Module`, the base class of every layer and model, and `Parameter`, a tensor that a module learns."""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterator

import numpy as np

from convlens.autograd import clear_grads
from convlens.devices import check_device, is_device_like
from convlens.tensor import Tensor, as_dtype


class Parameter(Tensor):
    """A tensor that is a learnable part of a module: ``requires_grad=True`` by default, and registered
    by `Module.__setattr__`. Wraps a Tensor's array without copying; other data (lists, numbers) become
    float32 like `convlens.tensor`."""

    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = np.empty(0, dtype=np.float32)
        array = data._data if isinstance(data, Tensor) else data
        if isinstance(array, np.ndarray):
            self._data = array
            if requires_grad and array.dtype.kind != "f":
                raise RuntimeError(f"only floating point parameters can require gradients, got dtype {array.dtype}")
            self.grad, self.requires_grad, self._ctx = None, bool(requires_grad), None
            self._hooks, self._retains_grad, self._consumed = [], False, False
        else:
            super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class RemovableHandle:
    """Returned by `register_forward_hook`; ``handle.remove()`` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: dict):
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _addindent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    return lines[0] if len(lines) == 1 else "\n".join([lines[0]] + [" " * spaces + line for line in lines[1:]])


class Module:
    """Base class of layers and models, as `torch.nn.Module`.

    Subclasses call ``super().__init__()``, assign their parameters and sub-modules as attributes (they
    are registered automatically) and define ``forward``. Calling the module runs ``forward`` and then
    the forward hooks.
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())

    # ---- forward and hooks ----------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward(); subclasses of Module must define it")

    def __call__(self, *args, **kwargs):
        if args and isinstance(args[0], np.ndarray):
            where = self.__dict__.get("_where") or self._get_name()
            raise TypeError(f"{where}: expected a convlens Tensor as input, got numpy.ndarray of shape "
                            f"{args[0].shape}; wrap it with convlens.from_numpy(x) or convlens.tensor(x)")
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    def register_forward_hook(self, hook: Callable) -> RemovableHandle:
        """`hook(module, inputs, output)` runs after every forward; returning a value replaces the output.
        Use it to capture feature maps. Returns a handle whose ``remove()`` unregisters the hook."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    def register_forward_pre_hook(self, hook: Callable) -> RemovableHandle:
        """`hook(module, inputs)` runs before every forward; returning a value replaces the inputs."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    # ---- registration ---------------------------------------------------------------------------------
    def _check_name(self, name, kind: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {kind} before Module.__init__() call")
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError(f"{kind} name can't contain '.' or be empty, got {name!r}")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        self._check_name(name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign {type(param).__name__} as parameter {name!r} "
                            "(convlens.nn.Parameter or None expected)")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute {name!r} already exists")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """A non-learnable state array (e.g. BatchNorm's running mean), saved in state_dict when persistent.
        NumPy arrays are wrapped (not copied) into Tensors."""
        self._check_name(name, "buffer")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute {name!r} already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            if not isinstance(tensor, np.ndarray | np.generic):
                raise TypeError(f"cannot assign {type(tensor).__name__} as buffer {name!r} "
                                "(Tensor, NumPy array or None expected)")
            tensor = Tensor._wrap(np.asarray(tensor))
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        self._check_name(name, "module")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute {name!r} already exists")
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name: str, value) -> None:
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._remove_from(name, self.__dict__, self._buffers, self._modules)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} "
                                "(convlens.nn.Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            if params is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._remove_from(name, self.__dict__, self._parameters, self._buffers)
            self._modules[name] = value
        elif params is not None and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module {name!r} (Module or None expected)")
            self._modules[name] = None
        elif params is not None and name in self._buffers:
            if value is not None and not isinstance(value, Tensor | np.ndarray):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r} (Tensor or None expected)")
            self._buffers[name] = value if value is None or isinstance(value, Tensor) else Tensor._wrap(value)
        else:
            object.__setattr__(self, name, value)

    @staticmethod
    def _remove_from(name, *dicts) -> None:
        for d in dicts:
            d.pop(name, None)

    def __getattr__(self, name: str):
        # only called when normal lookup fails: look in the registries
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    # ---- traversal ----------------------------------------------------------------------------------
    def named_modules(self, memo: set | None = None, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every descendant, pre-order, each once, with dotted names ('' for self)."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(memo, f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry: str, prefix: str, recurse: bool):
        seen = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        yield from self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        yield from self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call `fn` on every sub-module (children first) and then on self, e.g. to re-initialise weights."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients ------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (dropout active, batch norm uses batch statistics) on self and descendants."""
        if not isinstance(mode, bool):
            raise ValueError(f"{type(self).__name__}.train: mode must be a bool, got {mode!r}")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        clear_grads(self.parameters(), set_to_none)

    # ---- dtype ----------------------------------------------------------------------------------------
    def to(self, *args, **kwargs) -> Module:
        """Convert floating-point parameters and buffers to a dtype in place (Parameters stay the same
        objects, so optimizers keep working). ``"cpu"`` is accepted and ignored, as the only device."""
        dtype = kwargs.pop("dtype", None)
        device = kwargs.pop("device", None)
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError(f"{type(self).__name__}.to: unexpected arguments {sorted(kwargs)}")
        for arg in args:
            if is_device_like(arg):
                device = arg
            elif isinstance(arg, Tensor):
                dtype = arg.dtype
            else:
                dtype = arg
        check_device(device, f"{type(self).__name__}.to")
        if dtype is None:
            return self
        dtype = as_dtype(dtype)
        if dtype.kind != "f":
            raise ValueError(f"{type(self).__name__}.to: only floating point dtypes are supported, got {dtype}")
        for t in list(self.parameters()) + list(self.buffers()):
            if t.dtype.kind == "f" and t.dtype != dtype:
                t._data = t._data.astype(dtype)
                if t.grad is not None:
                    t.grad._data = t.grad._data.astype(dtype)
        return self

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    def cpu(self) -> Module:
        return self

    def cuda(self, device=None) -> Module:
        check_device(device or "cuda", f"{type(self).__name__}.cuda")
        return self

    # ---- state dict -----------------------------------------------------------------------------------
    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False) -> OrderedDict:
        """Parameters and persistent buffers as an ordered dict name → tensor, with PyTorch's key names
        and order (``'features.0.weight'``, ``'bn.running_mean'``, ...). As in PyTorch the tensors are
        detached but share memory with the module (copy them to keep a snapshot while training goes
        on); with ``keep_vars=True`` they are the Parameter/Tensor objects themselves."""
        destination = OrderedDict() if destination is None else destination
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers:
                destination[prefix + name] = b if keep_vars else b.detach()
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination, prefix + name + ".", keep_vars)
        return destination

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copy arrays (NumPy arrays or Tensors) into the parameters and persistent buffers, in place and
        cast to each one's dtype. Raises ValueError naming missing/unexpected keys (when ``strict``) or a
        key whose shape differs. Returns ``(missing_keys, unexpected_keys)``."""
        if not hasattr(state_dict, "items"):
            raise ValueError(f"{type(self).__name__}.load_state_dict: expected a dict of arrays, "
                             f"got {type(state_dict).__name__}")
        for name, module in self.named_modules():  # lazy layers take their shapes from the saved weights
            if getattr(module, "_lazy_load", None) and module.has_uninitialized_params():
                module._lazy_load(state_dict, f"{name}." if name else "")
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        if strict and (missing or unexpected):
            if missing:
                errors.append(f"missing key(s): {', '.join(missing)}")
            if unexpected:
                errors.append(f"unexpected key(s): {', '.join(unexpected)}")
        arrays = {}
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            value = np.asarray(value._data if isinstance(value, Tensor) else value)
            if value.shape != target.shape:
                errors.append(f"size mismatch for {key}: copying an array of shape {value.shape}, "
                              f"the parameter in the current model has shape {target.shape}")
            else:
                arrays[key] = value
        if errors:
            raise ValueError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors))
        for key, value in arrays.items():
            own[key]._data[...] = value.astype(own[key].dtype, copy=False)
        return _IncompatibleKeys(missing, unexpected)

    # ---- shapes and printing --------------------------------------------------------------------------
    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Output shape for an input of `input_shape`, both WITHOUT the batch axis."""
        raise NotImplementedError(f"{self._get_name()} does not define output_shape()")

    def _get_name(self) -> str:
        return type(self).__name__

    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr (its configuration)."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        for name, module in self._modules.items():
            lines.append(f"({name}): " + _addindent(repr(module), 2))
        body = self._get_name() + "("
        if lines:
            if len(lines) == 1 and not self._modules:
                body += lines[0]
            else:
                body += "\n  " + "\n  ".join(lines) + "\n"
        return body + ")"
