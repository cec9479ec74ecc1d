"""Adagrad (Duchi et al. 2011): step sizes shrink with the sum of all past squared gradients."""

from __future__ import annotations

import numpy as np

from convlens.optim.optimizer import Optimizer


class Adagrad(Optimizer):
    """Adagrad, step for step as `torch.optim.Adagrad`.

    With gradient g (plus ``weight_decay * p``) at step t = 1, 2, ... and accumulator G (starting at
    `initial_accumulator_value`)::

        G = G + g²
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(G) + eps)

    Args:
        params: an iterable of Tensors, or of dicts giving per-group options.
        lr: learning rate (default 1e-2).
        lr_decay: learning-rate decay per step (default 0).
        weight_decay: L2 penalty coefficient (default 0).
        initial_accumulator_value: starting value of G (default 0).
        eps: added to the denominator for stability (default 1e-10).

    A parameter group's own `initial_accumulator_value` is honoured (PyTorch 2.x uses the optimizer-wide
    value for every group).
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, foreach=None, *, maximize: bool = False,
                 differentiable: bool = False, fused=None):
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps,
                        **self.torch_flags(maximize, foreach, differentiable, fused=fused))
        super().__init__(params, defaults)
        # PyTorch creates Adagrad's state up front, so state_dict() has it before the first step
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p] = self._init_state(p._data, group)

    def _validate(self, group: dict) -> None:
        self._check_non_negative(group, "lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def _init_state(self, p: np.ndarray, group: dict) -> dict:
        return {"step": 0, "sum": np.full_like(p, group["initial_accumulator_value"])}

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict, group: dict) -> None:
        state["step"] += 1
        g = self._with_weight_decay(p, g, float(group["weight_decay"]))
        clr = float(group["lr"]) / (1 + (state["step"] - 1) * float(group["lr_decay"]))
        total, tmp = state["sum"], self._scratch(p, 1)
        np.multiply(g, g, out=tmp)
        total += tmp
        np.sqrt(total, out=tmp)
        tmp += float(group["eps"])
        np.divide(g, tmp, out=tmp)
        tmp *= clr
        p -= tmp
