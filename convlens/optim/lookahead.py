"""Lookahead (Zhang, Lucas, Hinton and Ba, 2019): slow weights that follow the fast ones every k steps.

Every `k` steps of the wrapped optimizer (the "fast" weights θ), the slow weights φ move a fraction α
of the way towards them and the fast weights restart from there:

    φ ← φ + α (θ − φ)        θ ← φ

φ starts as the parameters' values when Lookahead is built. ``buffers`` (e.g. batch-norm running
statistics) are averaged the same way: airbench applies its Lookahead to every float tensor of the state
dict, so that the statistics the evaluation uses belong to the slow weights, not to the last fast ones. With α = 1 it changes nothing; airbench
uses α(t) = 1 − 0.95⁵ (t/T)³, so that the slow weights weigh more and more towards the end of training
(`airbench_alpha`), and a last sync at step T (`sync_at`) that leaves the model on the slow weights.

PyTorch has no Lookahead; the class keeps torch's optimizer protocol (param_groups, state, step,
zero_grad, state_dict) by wrapping another convlens optimizer, so schedulers and checkpoints work on it
unchanged: the slow weights are state entries ``lookahead_slow`` of the wrapped optimizer and the step
counter is ``lookahead_step`` in the first parameter group.
"""

from __future__ import annotations

import numbers

import numpy as np

from convlens.optim.optimizer import Optimizer

__all__ = ["Lookahead", "airbench_alpha"]


class airbench_alpha:  # noqa: N801 - a function-like callable, named like one
    """α(t) = 1 − decay · (t/T)³ (airbench's schedule; ``decay`` defaults to 0.95⁵)."""

    def __init__(self, total_steps: int, decay: float = 0.95 ** 5):
        self.total_steps, self.decay = int(total_steps), float(decay)

    def __call__(self, step: int) -> float:
        return 1.0 - self.decay * (min(step, self.total_steps) / self.total_steps) ** 3


class Lookahead(Optimizer):
    """``Lookahead(optimizer, k=5, alpha=0.5)``: wrap `optimizer` (any convlens optimizer).

    Args:
        optimizer: the inner ("fast") optimizer.
        k: synchronise every k steps.
        alpha: the slow weights' step, a number in [0, 1] or a function of the step count.
        sync_at: at exactly this step (e.g. the last one), put the model back on the slow weights
            (θ ← φ, φ unchanged), whatever ``k`` says.
        buffers: other float tensors to follow in the same way (a model's batch-norm statistics:
            ``[b for b in model.buffers() if b.is_floating_point()]``); their slow copies are in
            ``state_dict()["lookahead_buffers"]``.
    """

    def __init__(self, optimizer: Optimizer, k: int = 5, alpha=0.5, sync_at: int | None = None, buffers=()):
        if not isinstance(optimizer, Optimizer) or isinstance(optimizer, Lookahead):
            raise TypeError(f"Lookahead: expected a convlens optimizer to wrap, got {type(optimizer).__name__}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"Lookahead: invalid k {k!r} (expected a positive integer)")
        if not callable(alpha) and not (isinstance(alpha, numbers.Real) and 0 <= alpha <= 1):
            raise ValueError(f"Lookahead: invalid alpha {alpha!r} (expected a number in [0, 1] or a function)")
        self.optimizer, self.k, self.alpha, self.sync_at = optimizer, k, alpha, sync_at
        self.defaults = optimizer.defaults
        self._scalar_state = (*optimizer._scalar_state, "lookahead_step")
        self.param_groups[0].setdefault("lookahead_step", 0)
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["lookahead_slow"] = np.array(p._data, copy=True)
        self.buffers = list(buffers)
        for b in self.buffers:
            if not np.issubdtype(b._data.dtype, np.floating):
                raise TypeError(f"Lookahead: buffers must be float tensors, got one of dtype {b._data.dtype}")
        self.slow_buffers = [np.array(b._data, copy=True) for b in self.buffers]

    # the wrapped optimizer's groups and state, seen through (load_state_dict replaces them there)
    @property
    def param_groups(self):
        return self.optimizer.param_groups

    @param_groups.setter
    def param_groups(self, value):
        self.optimizer.param_groups = value

    @property
    def state(self):
        return self.optimizer.state

    @state.setter
    def state(self, value):
        self.optimizer.state = value

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none)

    def step(self, closure=None):
        loss = self.optimizer.step(closure)
        group0 = self.param_groups[0]
        t = group0["lookahead_step"] = int(group0.get("lookahead_step", 0)) + 1
        if t % self.k == 0 or t == self.sync_at:
            # at sync_at the model goes back to the slow weights as they are (airbench's last step)
            alpha = 0.0 if t == self.sync_at else float(self.alpha(t) if callable(self.alpha) else self.alpha)
            self._sync(alpha)
        return loss

    def _sync(self, alpha: float) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                slow = self.state[p].get("lookahead_slow")
                if slow is None:  # a parameter added after construction
                    slow = self.state[p]["lookahead_slow"] = np.array(p._data, copy=True)
                slow += alpha * (p._data - slow)  # φ ← φ + α (θ − φ)
                p._data[...] = slow  # θ ← φ
        for b, slow in zip(self.buffers, self.slow_buffers):
            slow += alpha * (b._data - slow)
            b._data[...] = slow

    def state_dict(self) -> dict:
        sd = self.optimizer.state_dict()
        if self.buffers:
            sd["lookahead_buffers"] = [slow.copy() for slow in self.slow_buffers]
        return sd

    def load_state_dict(self, state_dict: dict) -> None:
        saved = state_dict.get("lookahead_buffers") or []
        if len(saved) != len(self.buffers):
            raise ValueError(f"Lookahead.load_state_dict: the state holds {len(saved)} slow buffer(s), this "
                             f"Lookahead follows {len(self.buffers)}")
        for i, (b, v) in enumerate(zip(self.buffers, saved)):
            if np.shape(v) != b._data.shape:
                raise ValueError(f"Lookahead.load_state_dict: slow buffer {i} has shape {np.shape(v)}, expected "
                                 f"{b._data.shape}")
        # Optimizer.load_state_dict converts the scalar state using the class's _scalar_state
        self.optimizer._scalar_state = self._scalar_state
        try:
            self.optimizer.load_state_dict({k: v for k, v in state_dict.items() if k != "lookahead_buffers"})
        finally:
            self.optimizer._scalar_state = type(self.optimizer)._scalar_state
        self.slow_buffers = [np.array(v, dtype=b._data.dtype, copy=True) for b, v in zip(self.buffers, saved)]

    def __repr__(self) -> str:
        return f"Lookahead(k={self.k}, alpha={self.alpha!r}, optimizer={self.optimizer!r})"
