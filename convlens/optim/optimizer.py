"""`Optimizer`: the base class of every update rule, with PyTorch's `param_groups`, `state` and
`state_dict` conventions.

A subclass gives its hyper-parameter defaults, checks them in `_validate(group)`, creates a parameter's
state in `_init_state(p, group)` and updates one parameter in `_update(p, g, state, group)`, where `p`
and `g` are the parameter's and its gradient's NumPy arrays. Updates are in place (`p -= ...`): the
model holds the same `Tensor` objects, and views of them stay valid. Temporaries go into reusable
scratch buffers so that a step allocates nothing after the first one.
"""

from __future__ import annotations

import copy
import numbers
from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from convlens.autograd import clear_grads, enable_grad
from convlens.tensor import Tensor


class Optimizer:
    """Base class: holds `param_groups` (a list of dicts with a ``"params"`` list and hyper-parameters)
    and `state` (a dict from each parameter `Tensor` to its own dict of buffers).

    `params` is an iterable of Tensors, or of dicts ``{"params": [...], "lr": ..., ...}`` giving some
    groups their own options; options a group leaves out take the optimizer's defaults.
    """

    # state entries that are counters (Python numbers), never arrays shaped like the parameter
    _scalar_state: tuple[str, ...] = ("step",)

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.state: defaultdict[Tensor, dict] = defaultdict(dict)
        self.param_groups: list[dict] = []
        self._scratch_buffers: dict[tuple[np.dtype, int], np.ndarray] = {}
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(
                f"{name}: params must be an iterable of Tensors or of dicts, got a single Tensor "
                "(pass [tensor] or model.parameters())"
            )
        if not isinstance(params, Iterable):
            raise TypeError(f"{name}: params must be an iterable of Tensors or of dicts, got {type(params).__name__}")
        groups = list(params)
        if not groups:
            raise ValueError(f"{name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ---- groups and validation ---------------------------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own options (e.g. a new layer unfrozen while fine-tuning)."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: a parameter group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{name}: a parameter group must have a 'params' entry, got keys {sorted(param_group)}")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(f"{name}: params must be an ordered collection (list), not a set")
        group["params"] = params = list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors, but params[{i}] is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{name}: can't optimize a non-leaf Tensor (params[{i}] has grad_fn {p.grad_fn})")
            if p.dtype.kind != "f":
                raise ValueError(f"{name}: can only optimize floating point Tensors, params[{i}] has dtype {p.dtype}")
        if not params:
            raise ValueError(f"{name}: got an empty parameter list")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name}: a parameter group contains the same parameter more than once")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        for key, default in self.defaults.items():
            group.setdefault(key, default)
        if group.get("differentiable"):
            raise NotImplementedError(f"{name}: differentiable=True (an update step inside the graph) is not "
                                      "supported in convlens")
        self._validate(group)
        self.param_groups.append(group)

    def _validate(self, group: dict) -> None:
        """Raise ValueError for an invalid hyper-parameter in `group` (subclasses)."""

    @staticmethod
    def torch_flags(maximize=False, foreach=None, differentiable=False, **switches) -> dict:
        """PyTorch's implementation switches, kept in each group as PyTorch keeps them (so state_dicts
        have PyTorch's keys). ``maximize`` is honoured; ``foreach``, ``fused`` and ``capturable`` choose
        between PyTorch kernels and are accepted and ignored (one NumPy implementation here);
        ``differentiable=True`` is refused."""
        return dict(maximize=bool(maximize), foreach=foreach, differentiable=bool(differentiable), **switches)

    def _require(self, ok: bool, arg: str, value, expected: str) -> None:
        if not ok:
            raise ValueError(f"{type(self).__name__}: invalid {arg} {value!r} (expected {expected})")

    def _check_non_negative(self, group: dict, *args: str) -> None:
        for arg in args:
            value = group[arg]
            self._require(isinstance(value, numbers.Real) and value >= 0, arg, value, ">= 0")

    # ---- the update --------------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients of all parameters: set `.grad` to None (default) or fill it with zeros."""
        clear_grads((p for group in self.param_groups for p in group["params"]), set_to_none)

    def step(self, closure=None):
        """Update every parameter that has a gradient. `closure`, if given, re-evaluates the model and
        returns the loss (called with gradients enabled before the update)."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(self._init_state(p._data, group))
                g = p.grad._data
                if group.get("maximize", False):  # ascend: the update rule sees −g (PyTorch's order)
                    g = np.negative(g, out=self._scratch(g, 9))
                self._update(p._data, g, state, group)
        return loss

    def _init_state(self, p: np.ndarray, group: dict) -> dict:
        return {}

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict, group: dict) -> None:  # pragma: no cover
        raise NotImplementedError

    def _scratch(self, like: np.ndarray, slot: int) -> np.ndarray:
        """A reusable work array shaped like `like` (same dtype); `slot` tells concurrent ones apart."""
        key = (like.dtype, slot)
        buf = self._scratch_buffers.get(key)
        if buf is None or buf.size < like.size:
            buf = self._scratch_buffers[key] = np.empty(like.size, dtype=like.dtype)
        return buf[: like.size].reshape(like.shape)

    @staticmethod
    def _average_squares(avg: np.ndarray, g: np.ndarray, decay: float, tmp: np.ndarray) -> None:
        """avg ← decay·avg + (1 − decay)·g², in place, in PyTorch's order of operations (`tmp` is scratch)."""
        np.multiply(g, g, out=tmp)
        tmp *= 1 - decay
        avg *= decay
        avg += tmp

    def _with_weight_decay(self, p: np.ndarray, g: np.ndarray, weight_decay: float) -> np.ndarray:
        """L2 penalty folded into the gradient: g + weight_decay * p (never written into `g` itself)."""
        if weight_decay == 0:
            return g
        out = self._scratch(p, 0)
        np.multiply(p, weight_decay, out=out)
        out += g
        return out

    # ---- saving and loading -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"state": {index: {name: ndarray or number}}, "param_groups": [{options..., "params": [index]}]}``
        with parameters numbered in group order, as PyTorch. Arrays are copies, so the result can be
        written out later while training goes on; nothing in it needs pickle."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {}
        for p, entries in self.state.items():
            if id(p) in index and entries:
                state[index[id(p)]] = {
                    k: v.copy() if isinstance(v, np.ndarray) else v for k, v in entries.items()
                }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what `state_dict` returned (possibly after a trip through JSON: string keys and lists
        for tuples are accepted). Arrays are copied and cast to their parameter's dtype."""
        name = type(self).__name__
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: expected {len(self.param_groups)} parameter groups, "
                f"got {len(saved_groups)}"
            )
        id_map = {}
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: parameter group {i} has {len(group['params'])} parameters, "
                    f"the saved one has {len(saved['params'])}"
                )
            id_map.update({int(k): p for k, p in zip(saved["params"], group["params"])})

        new_state: defaultdict[Tensor, dict] = defaultdict(dict)
        for key, entries in state_dict["state"].items():
            if int(key) not in id_map:
                raise ValueError(f"{name}.load_state_dict: state for parameter {key} that no group lists")
            p = id_map[int(key)]
            restored = {}
            for k, v in entries.items():
                if k in self._scalar_state:
                    restored[k] = v.item() if isinstance(v, np.ndarray | np.generic) else v
                elif isinstance(v, np.ndarray):
                    if v.shape != p.shape:
                        raise ValueError(
                            f"{name}.load_state_dict: state {k!r} of parameter {key} has shape {v.shape}, "
                            f"expected the parameter's shape {p.shape}"
                        )
                    restored[k] = np.array(v, dtype=p.dtype, copy=True)
                else:
                    restored[k] = v
            new_state[p] = restored

        new_groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            options = {k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}
            for k, v in options.items():
                if isinstance(self.defaults.get(k), tuple) and isinstance(v, list):
                    options[k] = tuple(v)
            options["params"] = group["params"]
            new_groups.append(options)
        self.state = new_state
        self.param_groups = new_groups

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines + [")"])
