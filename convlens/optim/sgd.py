"""Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay."""

from __future__ import annotations

import numpy as np

from convlens.optim.optimizer import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent, step for step as `torch.optim.SGD`.

    With gradient g (plus ``weight_decay * p`` when weight_decay > 0) and momentum buffer b::

        b = g                                  on the first step
        b = momentum * b + (1 - dampening) * g  afterwards
        p = p - lr * (g + momentum * b)         with nesterov=True
        p = p - lr * b                          otherwise (p - lr * g when momentum == 0)

    Args:
        params: an iterable of Tensors, or of dicts giving per-group options.
        lr: learning rate (default 1e-3, as PyTorch).
        momentum: momentum factor (default 0).
        dampening: how much of the new gradient is damped in the buffer (default 0).
        weight_decay: L2 penalty coefficient (default 0).
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening == 0).
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False, foreach=None,
                 differentiable: bool = False, fused=None):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, **self.torch_flags(maximize, foreach, differentiable, fused=fused))
        super().__init__(params, defaults)

    def _validate(self, group: dict) -> None:
        self._check_non_negative(group, "lr", "momentum", "weight_decay")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                f"SGD: nesterov=True requires momentum > 0 and dampening == 0, "
                f"got momentum={group['momentum']!r}, dampening={group['dampening']!r}"
            )

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict, group: dict) -> None:
        momentum = float(group["momentum"])
        g = self._with_weight_decay(p, g, float(group["weight_decay"]))
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, copy=True)
            else:
                buf *= momentum
                dampening = float(group["dampening"])
                if dampening != 0:
                    tmp = self._scratch(p, 1)
                    np.multiply(g, 1 - dampening, out=tmp)
                    buf += tmp
                else:
                    buf += g
            if group["nesterov"]:
                tmp = self._scratch(p, 1)
                np.multiply(buf, momentum, out=tmp)
                tmp += g
                g = tmp
            else:
                g = buf
        tmp = self._scratch(p, 1)  # may be `g` itself: an element-wise op can write over its input
        np.multiply(g, float(group["lr"]), out=tmp)
        p -= tmp
