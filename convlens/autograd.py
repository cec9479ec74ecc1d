"""Reverse-mode automatic differentiation: the `Function` base class and the graph walk.

Every differentiable operation is a subclass of `Function` with a `forward(ctx, *arrays, **params)` that
computes on NumPy arrays and a `backward(ctx, grad)` that returns one gradient per tensor input, written
next to each other (tinygrad's 2020 design). `Function.apply` records the graph only when some input
requires a gradient and grad mode is on, so inference pays nothing for autograd.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "grad_enabled", True)


def _set_grad(mode: bool) -> None:
    _state.grad_enabled = bool(mode)


class _GradMode(contextlib.ContextDecorator):
    """Sets grad mode inside a ``with`` block or a decorated function and restores it afterwards;
    usable as ``@no_grad()`` and ``@no_grad`` alike (as PyTorch)."""

    _mode = False

    def __new__(cls, *args, **kwargs):
        if len(args) == 1 and callable(args[0]) and not kwargs and not isinstance(args[0], bool):
            return cls()(args[0])  # the decorator used without parentheses
        return super().__new__(cls)

    def __enter__(self):
        self._prev = is_grad_enabled()
        _set_grad(self._mode)
        return self

    def __exit__(self, *exc):
        _set_grad(self._prev)
        return False


class no_grad(_GradMode):
    """Context manager (and decorator) that disables graph recording, as ``torch.no_grad``."""

    _mode = False


class enable_grad(_GradMode):
    _mode = True


class inference_mode(_GradMode):
    """As ``torch.inference_mode(mode=True)``: here the same as `no_grad` (convlens has no separate,
    faster inference mode: a graph-free forward already costs nothing for autograd)."""

    def __init__(self, mode: bool = True):
        self._mode = not mode


class set_grad_enabled(contextlib.ContextDecorator):
    """``set_grad_enabled(False)`` switches graph recording off at once (a call) or for a ``with``
    block / decorated function, restoring the previous mode afterwards, as PyTorch."""

    def __init__(self, mode: bool):
        self.prev, self.mode = is_grad_enabled(), bool(mode)
        _set_grad(self.mode)

    def __call__(self, func):
        _set_grad(self.prev)
        return super().__call__(func)

    def __enter__(self):
        _set_grad(self.mode)
        return self

    def __exit__(self, *exc):
        _set_grad(self.prev)
        return False


def clear_grads(params, set_to_none: bool = True) -> None:
    """Forget accumulated gradients: `.grad = None` (the default, as PyTorch) or filled with zeros."""
    for p in params:
        if p.grad is None:
            continue
        if set_to_none:
            p.grad = None
        else:
            p.grad._data[...] = 0


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` back down to `shape`: the adjoint of NumPy broadcasting.

    Broadcasting copies a value along new leading axes and along axes of size 1, so the gradient of
    that value is the sum over those axes.
    """
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


class Function:
    """One differentiable operation. Subclasses define `forward` and `backward` on NumPy arrays.

    Positional arguments of `apply` are the tensor inputs (``None`` is allowed for an optional input
    such as a bias); keyword arguments are non-differentiable parameters passed to `forward`.
    `backward(ctx, grad)` returns a gradient (or ``None``) for each positional input, in order.
    """

    parents: tuple = ()
    saved_tensors: tuple = ()
    needs_input_grad: tuple[bool, ...] = ()

    def save_for_backward(self, *arrays) -> None:
        self.saved_tensors = arrays

    def forward(self, *args, **kwargs) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad: np.ndarray):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **params):
        from convlens.tensor import Tensor

        ctx = cls()
        ctx.needs_input_grad = tuple(t is not None and t.requires_grad for t in inputs)
        out = ctx.forward(*[None if t is None else t._data for t in inputs], **params)
        # only floating-point results carry gradients (e.g. a cast to int64 ends the graph, as in PyTorch)
        track = any(ctx.needs_input_grad) and is_grad_enabled() and out.dtype.kind == "f"
        result = Tensor._wrap(out, requires_grad=track)
        if track:
            ctx.parents = inputs
            result._ctx = ctx
            for t in inputs:  # an in-place op on these may no longer rebind them (Tensor._inplace)
                if t is not None:
                    t._consumed = True
        return result

    def __repr__(self) -> str:
        return f"<{type(self).__name__}Backward>"


def _topological_order(roots) -> list:
    """Nodes reachable from `roots` through recorded operations, each after all nodes that use it."""
    order, visited = [], set()
    stack = [(root, False) for root in reversed(roots)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            for parent in node._ctx.parents:
                if parent is not None and parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    order.reverse()
    return order


def _as_sequence(value) -> list:
    if value is None or hasattr(value, "_ctx") or isinstance(value, np.ndarray | np.generic | int | float):
        return [value]
    return list(value)


def _seeds(where: str, roots: list, gradients) -> list:
    """The gradient each root starts with: given, or 1 for a one-element root."""
    from convlens.tensor import Tensor

    gradients = [None] * len(roots) if gradients is None else _as_sequence(gradients)
    if len(gradients) != len(roots):
        raise RuntimeError(f"{where}: got {len(gradients)} gradients for {len(roots)} outputs")
    seeds = []
    for i, (root, g) in enumerate(zip(roots, gradients)):
        if not isinstance(root, Tensor):
            raise TypeError(f"{where}: outputs must be Tensors, got {type(root).__name__}")
        if not root.requires_grad:
            raise RuntimeError(f"{where}: element {i} of tensors does not require grad and does not have a grad_fn")
        if g is None:
            if root._data.size != 1:
                raise RuntimeError(f"{where}: grad can be implicitly created only for scalar outputs, "
                                   f"got shape {root.shape}")
            seeds.append(np.ones_like(root._data))
            continue
        seed = g._data if isinstance(g, Tensor) else np.asarray(g, dtype=root.dtype)
        if seed.shape != root.shape:
            from convlens.errors import ShapeError

            raise ShapeError(f"{where}: gradient has shape {seed.shape}, expected {root.shape} (the output's)")
        seeds.append(seed)
    return seeds


def _not_higher_order(where: str, create_graph: bool) -> None:
    if create_graph:
        raise NotImplementedError(
            f"{where}: create_graph=True (higher-order gradients) is not supported: convlens's backward "
            "functions compute on NumPy arrays, outside the graph, so a gradient cannot be differentiated again"
        )


def _walk(roots: list, seeds: list, retain_graph: bool, targets: set | None, collect: dict | None) -> None:
    """Propagate `seeds` from `roots` through the graph. With `collect` (autograd.grad) the gradients of
    the tensors whose ids are in `targets` are stored there and nothing is accumulated into ``.grad``;
    otherwise leaves (all of them, or only those in `targets`) accumulate into ``.grad``."""
    from convlens.tensor import Tensor

    accumulate_leaves = targets is None and collect is None
    grads: dict[int, np.ndarray] = {}
    owned: set[int] = set()  # arrays we allocated ourselves and may update in place
    for root, seed in zip(roots, seeds):
        if id(root) in grads:
            grads[id(root)] = grads[id(root)] + seed
            owned.add(id(root))
        else:
            grads[id(root)] = seed
    for node in _topological_order(roots):
        grad = grads.pop(id(node), None)
        if grad is None:
            continue
        for hook in node._hooks:  # leaves' hooks run too, before accumulation; None keeps the gradient
            result = hook(grad)
            grad = grad if result is None else (result._data if hasattr(result, "_ctx") else result)
        if accumulate_leaves:
            if node._ctx is None:
                if node.grad is None:
                    node.grad = Tensor._wrap(np.array(grad, dtype=node.dtype, copy=True))
                else:
                    node.grad._data += grad
                continue
            if node._retains_grad:
                node.grad = Tensor._wrap(np.array(grad, copy=True))
        elif collect is not None:
            if id(node) in targets:
                collect[id(node)] = np.array(grad, dtype=node.dtype, copy=True)
        elif id(node) in targets:
            if node.grad is None:
                node.grad = Tensor._wrap(np.array(grad, dtype=node.dtype, copy=True))
            else:
                node.grad._data += grad
        elif node._retains_grad:
            node.grad = Tensor._wrap(np.array(grad, copy=True))
        ctx = node._ctx
        if ctx is None:
            continue
        if getattr(ctx, "released", False):
            raise RuntimeError(
                "backward(): trying to backward through the graph a second time; "
                "pass retain_graph=True to the first backward() call"
            )
        input_grads = ctx.backward(grad)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        for parent, g in zip(ctx.parents, input_grads):
            if parent is None or g is None or not parent.requires_grad:
                continue
            key = id(parent)
            if key not in grads:
                grads[key] = g
            elif key in owned:
                grads[key] += g
            else:  # never write into an array that another op handed us
                grads[key] = grads[key] + g
                owned.add(key)
        if not retain_graph:
            ctx.saved_tensors = ()
            ctx.released = True


def backward(tensors, grad_tensors=None, retain_graph: bool | None = None, create_graph: bool = False,
             inputs=None) -> None:
    """Accumulate d(tensors)/d(leaf) into ``leaf.grad`` for every leaf that requires a gradient (or
    only for `inputs`), as ``torch.autograd.backward``. `tensors` is one tensor or a sequence, each
    with its gradient in `grad_tensors` (None for a one-element tensor)."""
    _not_higher_order("backward", create_graph)
    if grad_tensors is None and hasattr(tensors, "_ctx") and tensors.requires_grad and tensors._data.size == 1:
        roots, seeds = [tensors], [np.ones_like(tensors._data)]  # loss.backward(): the common case, directly
    else:
        roots = _as_sequence(tensors)
        seeds = _seeds("backward", roots, grad_tensors)
    targets = None if inputs is None else {id(t) for t in _as_sequence(inputs)}
    _walk(roots, seeds, bool(retain_graph), targets, None)


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None, create_graph: bool = False,
         only_inputs: bool = True, allow_unused: bool | None = None, is_grads_batched: bool = False,
         materialize_grads: bool = False) -> tuple:
    """The gradients of `outputs` with respect to `inputs`, returned instead of accumulated into
    ``.grad`` (``torch.autograd.grad``): one tensor per input, None for an input the outputs do not
    depend on when ``allow_unused=True`` (zeros with ``materialize_grads=True``).

    ``create_graph=True`` (gradients of gradients) raises NotImplementedError: see `_not_higher_order`.
    """
    from convlens.tensor import Tensor

    _not_higher_order("grad", create_graph)
    if is_grads_batched:
        raise NotImplementedError("grad: is_grads_batched=True is not supported")
    roots = _as_sequence(outputs)
    single = isinstance(inputs, Tensor)
    wanted = _as_sequence(inputs)
    for i, t in enumerate(wanted):
        if not isinstance(t, Tensor):
            raise TypeError(f"grad: inputs must be Tensors, got {type(t).__name__} at position {i}")
        if not t.requires_grad:
            raise RuntimeError(f"grad: one of the differentiated Tensors (input {i}) does not require grad")
    seeds = _seeds("grad", roots, grad_outputs)
    found: dict[int, np.ndarray] = {}
    _walk(roots, seeds, bool(retain_graph), {id(t) for t in wanted}, found)
    result = []
    for i, t in enumerate(wanted):
        if id(t) in found:
            result.append(Tensor._wrap(found[id(t)]))
        elif materialize_grads:
            result.append(Tensor._wrap(np.zeros_like(t._data)))
        elif allow_unused:
            result.append(None)
        else:
            raise RuntimeError(f"grad: one of the differentiated Tensors (input {i}, shape {t.shape}) appears "
                               "to not have been used in the graph; set allow_unused=True if this is the "
                               "desired behavior")
    return tuple(result) if not single or len(result) != 1 else (result[0],)
