"""Adadelta (Zeiler 2012): per-coordinate step sizes from running averages of g² and of past updates."""

from __future__ import annotations

import numpy as np

from convlens.optim.optimizer import Optimizer


class Adadelta(Optimizer):
    """Adadelta, step for step as `torch.optim.Adadelta`.

    With gradient g (plus ``weight_decay * p``), running averages E[g²] and E[Δ²] (both start at 0)::

        E[g²] = rho * E[g²] + (1 - rho) * g²
        Δ     = sqrt(E[Δ²] + eps) / sqrt(E[g²] + eps) * g
        E[Δ²] = rho * E[Δ²] + (1 - rho) * Δ²
        p     = p - lr * Δ

    The defaults are PyTorch's (rho=0.9, eps=1e-6). ConvNetJS's Adadelta trainer, which inspired this
    library, used rho=0.95 and eps=1e-8: pass those to reproduce it.

    Args:
        params: an iterable of Tensors, or of dicts giving per-group options.
        lr: scale applied to Δ (default 1.0).
        rho: decay of the running averages, in [0, 1] (default 0.9).
        eps: added inside the square roots for stability (default 1e-6).
        weight_decay: L2 penalty coefficient (default 0).
    """

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0,
                 foreach=None, *, capturable: bool = False, maximize: bool = False, differentiable: bool = False):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      **self.torch_flags(maximize, foreach, differentiable, capturable=capturable)))

    def _validate(self, group: dict) -> None:
        self._check_non_negative(group, "lr", "eps", "weight_decay")
        rho = group["rho"]
        self._require(0 <= rho <= 1, "rho", rho, "0 <= rho <= 1")

    def _init_state(self, p: np.ndarray, group: dict) -> dict:
        return {"step": 0, "square_avg": np.zeros_like(p), "acc_delta": np.zeros_like(p)}

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict, group: dict) -> None:
        rho, eps = float(group["rho"]), float(group["eps"])
        state["step"] += 1
        g = self._with_weight_decay(p, g, float(group["weight_decay"]))
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        std, delta = self._scratch(p, 1), self._scratch(p, 2)

        self._average_squares(square_avg, g, rho, std)
        np.add(square_avg, eps, out=std)
        np.sqrt(std, out=std)
        np.add(acc_delta, eps, out=delta)
        np.sqrt(delta, out=delta)
        delta /= std
        delta *= g
        self._average_squares(acc_delta, delta, rho, std)
        delta *= float(group["lr"])
        p -= delta
