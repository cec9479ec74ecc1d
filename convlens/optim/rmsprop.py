"""RMSprop (Hinton's lecture 6e): divide the gradient by a running root-mean-square of its history."""

from __future__ import annotations

import numpy as np

from convlens.optim.optimizer import Optimizer


class RMSprop(Optimizer):
    """RMSprop, step for step as `torch.optim.RMSprop`.

    With gradient g (plus ``weight_decay * p``), running averages v of g² and (centered) m of g::

        v = alpha * v + (1 - alpha) * g²
        m = alpha * m + (1 - alpha) * g            (centered only)
        d = sqrt(v - m²) + eps   if centered,   sqrt(v) + eps   otherwise
        b = momentum * b + g / d;  p = p - lr * b  (momentum > 0)
        p = p - lr * g / d                         (momentum == 0)

    Args:
        params: an iterable of Tensors, or of dicts giving per-group options.
        lr: learning rate (default 1e-2).
        alpha: smoothing constant of the running averages (default 0.99).
        eps: added to the denominator for stability (default 1e-8).
        weight_decay: L2 penalty coefficient (default 0).
        momentum: momentum factor (default 0).
        centered: normalise by an estimate of the gradient's variance instead of its second moment.
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False, capturable: bool = False,
                 foreach=None, maximize: bool = False, differentiable: bool = False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, **self.torch_flags(maximize, foreach, differentiable, capturable=capturable))
        super().__init__(params, defaults)

    def _validate(self, group: dict) -> None:
        self._check_non_negative(group, "lr", "alpha", "eps", "weight_decay", "momentum")

    def _init_state(self, p: np.ndarray, group: dict) -> dict:
        state = {"step": 0, "square_avg": np.zeros_like(p)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = np.zeros_like(p)
        if group["centered"]:
            state["grad_avg"] = np.zeros_like(p)
        return state

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict, group: dict) -> None:
        alpha, momentum = float(group["alpha"]), float(group["momentum"])
        state["step"] += 1
        g = self._with_weight_decay(p, g, float(group["weight_decay"]))
        square_avg, avg = state["square_avg"], self._scratch(p, 1)

        self._average_squares(square_avg, g, alpha, avg)
        if group["centered"]:
            grad_avg = state.setdefault("grad_avg", np.zeros_like(p))
            np.subtract(g, grad_avg, out=avg)  # m += (1 - alpha) * (g - m), PyTorch's lerp
            avg *= 1 - alpha
            grad_avg += avg
            np.multiply(grad_avg, grad_avg, out=avg)
            np.subtract(square_avg, avg, out=avg)
            np.sqrt(avg, out=avg)
        else:
            np.sqrt(square_avg, out=avg)
        avg += float(group["eps"])
        np.divide(g, avg, out=avg)
        if momentum > 0:
            buf = state.setdefault("momentum_buffer", np.zeros_like(p))
            buf *= momentum
            buf += avg
            np.multiply(buf, float(group["lr"]), out=avg)
        else:
            avg *= float(group["lr"])
        p -= avg
