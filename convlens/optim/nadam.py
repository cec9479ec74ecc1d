"""NAdam (Dozat 2016: Adam with Nesterov momentum) and RAdam (Liu et al. 2020: Adam with the variance of
the adaptive step rectified), step for step as PyTorch's."""

from __future__ import annotations

import math

import numpy as np

from convlens.dtypes import default_float
from convlens.optim.adam import AdamMoments


class NAdam(AdamMoments):
    """NAdam, as ``torch.optim.NAdam``. With μ_t = β1·(1 − ½·0.96^(t·ψ)) (ψ = momentum_decay) and
    Π_t = μ_1⋯μ_t::

        m, v as Adam;   v̂ = v/(1 − β2^t)
        p = p − lr·(1 − μ_t)/(1 − Π_t)·g/(√v̂ + ε) − lr·μ_{t+1}/(1 − Π_t·μ_{t+1})·m/(√v̂ + ε)

    Π_t is kept in the default float type, as PyTorch keeps it in a scalar tensor of that type.
    """

    _scalar_state = ("step", "mu_product")

    def __init__(self, params, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3, decoupled_weight_decay: bool = False, *,
                 foreach=None, maximize: bool = False, capturable: bool = False, differentiable: bool = False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay,
                        **self.torch_flags(maximize, foreach, differentiable, capturable=capturable))
        super().__init__(params, defaults)

    def _validate(self, group: dict) -> None:
        super()._validate(group)
        self._check_non_negative(group, "momentum_decay")

    def _init_state(self, p: np.ndarray, group: dict) -> dict:
        return {"step": 0, "mu_product": 1.0, "exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)}

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict, group: dict) -> None:
        t, g, m, v = self._moments(p, g, state, group)
        lr, eps, psi = float(group["lr"]), float(group["eps"]), float(group["momentum_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
        scalar = default_float().type
        mu_product = float(scalar(state["mu_product"]) * scalar(mu))
        state["mu_product"] = mu_product
        denom = self._scratch(p, 2)
        np.divide(v, 1 - beta2**t, out=denom)
        np.sqrt(denom, out=denom)
        denom += eps
        tmp = self._scratch(p, 1)
        np.divide(g, denom, out=tmp)  # addcdiv: p += value·(g/denom)
        tmp *= -lr * (1.0 - mu) / (1.0 - mu_product)
        p += tmp
        np.divide(m, denom, out=tmp)
        tmp *= (-lr * mu_next) / (1.0 - mu_product * mu_next)
        p += tmp


class RAdam(AdamMoments):
    """RAdam, as ``torch.optim.RAdam``. With ρ∞ = 2/(1 − β2) − 1 and ρ_t = ρ∞ − 2tβ2^t/(1 − β2^t)::

        m, v as Adam;   m̂ = m/(1 − β1^t)
        p = p − lr·m̂·r_t·√(1 − β2^t)/(√v + ε)   when ρ_t > 5,  r_t = √((ρ_t−4)(ρ_t−2)ρ∞/((ρ∞−4)(ρ∞−2)ρ_t))
        p = p − lr·m̂                            otherwise (the first steps: plain momentum SGD)
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, decoupled_weight_decay: bool = False, *, foreach=None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay,
                        **self.torch_flags(maximize, foreach, differentiable, capturable=capturable))
        super().__init__(params, defaults)

    def _init_state(self, p: np.ndarray, group: dict) -> dict:
        return {"step": 0, "exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)}

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict, group: dict) -> None:
        t, g, m, v = self._moments(p, g, state, group)
        lr, eps = float(group["lr"]), float(group["eps"])
        beta1, beta2 = (float(b) for b in group["betas"])
        correction1, correction2 = 1 - beta1**t, 1 - beta2**t
        step = self._scratch(p, 1)
        np.divide(m, correction1, out=step)  # m̂
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * t * (beta2**t) / correction2
        step *= lr
        if rho_t > 5.0:
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            denom = self._scratch(p, 2)
            np.sqrt(v, out=denom)
            denom += eps
            np.divide(correction2**0.5, denom, out=denom)  # the adaptive learning rate
            step *= denom
            step *= rect
        p -= step
