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


def set_grad_enabled(mode: bool) -> None:
    _state.grad_enabled = bool(mode)


class no_grad(contextlib.ContextDecorator):
    """Context manager (and decorator) that disables graph recording, as `torch.no_grad`."""

    def __enter__(self):
        self._prev = is_grad_enabled()
        set_grad_enabled(False)
        return self

    def __exit__(self, *exc):
        set_grad_enabled(self._prev)
        return False


class enable_grad(contextlib.ContextDecorator):
    def __enter__(self):
        self._prev = is_grad_enabled()
        set_grad_enabled(True)
        return self

    def __exit__(self, *exc):
        set_grad_enabled(self._prev)
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


def _topological_order(root) -> list:
    """Nodes reachable from `root` through recorded operations, each after all nodes that use it."""
    order, visited = [], set()
    stack = [(root, False)]
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


def backward(root, gradient=None, retain_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf) into `leaf.grad` for every leaf that requires a gradient."""
    from convlens.tensor import Tensor

    if not root.requires_grad:
        raise RuntimeError("backward(): this tensor does not require grad and has no grad_fn")
    if gradient is None:
        if root._data.size != 1:
            raise RuntimeError(
                f"backward(): grad can be implicitly created only for scalar outputs, got shape {root.shape}"
            )
        seed = np.ones_like(root._data)
    else:
        seed = gradient._data if isinstance(gradient, Tensor) else np.asarray(gradient, dtype=root.dtype)
        if seed.shape != root.shape:
            raise ValueError(f"backward(): gradient has shape {seed.shape}, expected {root.shape}")

    grads: dict[int, np.ndarray] = {id(root): seed}
    owned: set[int] = set()  # arrays we allocated ourselves and may update in place
    for node in _topological_order(root):
        grad = grads.pop(id(node), None)
        if grad is None:
            continue
        for hook in node._hooks:  # leaves' hooks run too, before accumulation; None keeps the gradient
            result = hook(grad)
            grad = grad if result is None else (result._data if hasattr(result, "_ctx") else result)
        ctx = node._ctx
        if ctx is None:  # a leaf
            if node.grad is None:
                node.grad = Tensor._wrap(np.array(grad, dtype=node.dtype, copy=True))
            else:
                node.grad._data += grad
            continue
        if getattr(ctx, "released", False):
            raise RuntimeError(
                "backward(): trying to backward through the graph a second time; "
                "pass retain_graph=True to the first backward() call"
            )
        if node._retains_grad:
            node.grad = Tensor._wrap(np.array(grad, copy=True))
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
