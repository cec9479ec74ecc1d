"""Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019, decoupled weight decay)."""

from __future__ import annotations

import numbers

import numpy as np

from convlens.optim.optimizer import Optimizer


class AdamMoments(Optimizer):
    """What Adam, NAdam and RAdam share: the (beta1, beta2) checks and the moving averages."""

    def _validate(self, group: dict) -> None:
        self._check_non_negative(group, "lr", "eps", "weight_decay")
        betas = group["betas"]
        self._require(isinstance(betas, tuple | list) and len(betas) == 2, "betas", betas, "a pair (beta1, beta2)")
        group["betas"] = tuple(betas)
        for i, beta in enumerate(betas):
            self._require(isinstance(beta, numbers.Real) and 0 <= beta < 1, f"betas[{i}]", beta, "0 <= beta < 1")

    def _moments(self, p: np.ndarray, g: np.ndarray, state: dict, group: dict):
        """Count the step, apply the weight decay (L2 into g, or decoupled: p ← p·(1 − lr·wd)) and update
        m ← β1·m + (1 − β1)·g, v ← β2·v + (1 − β2)·g² in place; returns (t, g, m, v)."""
        lr, weight_decay = float(group["lr"]), float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        state["step"] += 1
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                p *= 1 - lr * weight_decay
            else:
                g = self._with_weight_decay(p, g, weight_decay)
        m, v, tmp = state["exp_avg"], state["exp_avg_sq"], self._scratch(p, 1)
        np.subtract(g, m, out=tmp)  # m += (1 - beta1) * (g - m), PyTorch's lerp
        tmp *= 1 - beta1
        m += tmp
        self._average_squares(v, g, beta2, tmp)
        return state["step"], g, m, v


class Adam(AdamMoments):
    """Adam, step for step as `torch.optim.Adam`.

    With gradient g (plus ``weight_decay * p`` unless the decay is decoupled) at step t = 1, 2, ...::

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g²
        v̂ = max(v̂, v) with amsgrad=True, else v
        p = p - lr / (1 - beta1^t) * m / (sqrt(v̂) / sqrt(1 - beta2^t) + eps)

    With ``decoupled_weight_decay=True`` (what `AdamW` sets) the decay shrinks the weights directly,
    ``p = p * (1 - lr * weight_decay)``, before the step instead of entering g.

    Args:
        params: an iterable of Tensors, or of dicts giving per-group options.
        lr: learning rate (default 1e-3).
        betas: decay rates (beta1, beta2) of the running averages of g and g² (default (0.9, 0.999)).
        eps: added to the denominator for stability (default 1e-8).
        weight_decay: weight decay coefficient (default 0).
        amsgrad: use the running maximum of v (Reddi et al. 2018).
        decoupled_weight_decay: AdamW's decay rule.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, foreach=None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False, fused=None,
                 decoupled_weight_decay: bool = False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        decoupled_weight_decay=decoupled_weight_decay,
                        **self.torch_flags(maximize, foreach, differentiable, fused=fused, capturable=capturable))
        super().__init__(params, defaults)

    def _init_state(self, p: np.ndarray, group: dict) -> dict:
        state = {"step": 0, "exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = np.zeros_like(p)
        return state

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict, group: dict) -> None:
        lr, eps = float(group["lr"]), float(group["eps"])
        beta1, beta2 = (float(b) for b in group["betas"])
        t, g, exp_avg, exp_avg_sq = self._moments(p, g, state, group)
        tmp = self._scratch(p, 1)
        if group["amsgrad"]:
            v = state.setdefault("max_exp_avg_sq", np.zeros_like(p))
            np.maximum(v, exp_avg_sq, out=v)
        else:
            v = exp_avg_sq

        # bias corrections: m and v start at 0, so early averages are too small by (1 - beta^t)
        step_size = lr / (1 - beta1**t)
        np.sqrt(v, out=tmp)
        tmp /= (1 - beta2**t) ** 0.5
        tmp += eps
        np.divide(exp_avg, tmp, out=tmp)
        tmp *= step_size
        p -= tmp


class AdamW(Adam):
    """Adam with decoupled weight decay, step for step as `torch.optim.AdamW`: before each Adam step the
    weights shrink by ``p = p * (1 - lr * weight_decay)``, independently of the gradient's scale.

    Args: as `Adam`, with weight_decay defaulting to 1e-2.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False, foreach=None,
                 capturable: bool = False, differentiable: bool = False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        for group in self.param_groups:  # AdamW always decouples, whatever an older checkpoint says
            group["decoupled_weight_decay"] = True
