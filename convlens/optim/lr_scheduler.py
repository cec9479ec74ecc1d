"""Learning-rate schedulers with PyTorch's names and sequences: `StepLR`, `CosineAnnealingLR`,
`OneCycleLR` here; `MultiStepLR`, `ExponentialLR`, `LambdaLR`, `MultiplicativeLR`, `LinearLR`,
`ConstantLR`, `PolynomialLR`, `CosineAnnealingWarmRestarts`, `SequentialLR`, `ChainedScheduler` and
`ReduceLROnPlateau` in `convlens.optim.schedulers`, re-exported here.

A scheduler rewrites ``group["lr"]`` (and, for `OneCycleLR`, the momentum or Adam's beta1) in its
optimizer's `param_groups`. Call `scheduler.step()` after `optimizer.step()`: once per epoch for
`StepLR`/`CosineAnnealingLR` as usually configured, once per batch for `OneCycleLR`.
"""

from __future__ import annotations

import copy
import math
import numbers

from convlens.optim.optimizer import Optimizer


class LRScheduler:
    """Base class. `last_epoch` counts the `step()` calls (0 right after construction); `base_lrs` are
    the groups' ``"initial_lr"``. Subclasses define `get_lr()`, the learning rates for `last_epoch`."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        name = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: expected a convlens.optim.Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise ValueError(
                        f"{name}: resuming with last_epoch={last_epoch} needs 'initial_lr' in "
                        f"param_groups[{i}]; load the optimizer's state_dict first"
                    )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def get_lr(self) -> list[float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self, epoch: int | None = None) -> None:
        """Advance one step (epoch or batch) and write the new learning rates into the optimizer.

        ``step(epoch)`` (deprecated in PyTorch, still used by `SequentialLR`) jumps to `epoch` with the
        closed form of the schedule where there is one."""
        self._step_count += 1
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            closed_form = getattr(self, "_get_closed_form_lr", None)
            values = closed_form() if closed_form is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _initial_step(self) -> None:
        """The step a scheduler takes when it is built (SequentialLR repeats it for later schedulers)."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_last_lr(self) -> list[float]:
        """The learning rates of the last `step()` (or of construction), one per parameter group."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """Everything but the optimizer: numbers, strings and lists, so it can be written as JSON."""
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update(copy.deepcopy(state_dict))

    def _group_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]


def _positive_int(owner: str, arg: str, value) -> None:
    if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0):
        raise ValueError(f"{owner}: invalid {arg} {value!r} (expected a positive integer)")


class StepLR(LRScheduler):
    """Multiply the learning rate by `gamma` every `step_size` steps: lr = base_lr * gamma^(epoch // step_size).

    Like PyTorch it applies the factor to the groups' current lr, so changes made by others persist.
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        _positive_int("StepLR", "step_size", step_size)
        self.step_size = int(step_size)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._group_lrs()
        return [lr * self.gamma for lr in self._group_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from each base lr down to `eta_min` over `T_max` steps (then back up, periodically):

        lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2

    computed with PyTorch's recursive form (each lr from the previous one), so the sequences match
    PyTorch's to the last bit.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        _positive_int("CosineAnnealingLR", "T_max", T_max)
        self.T_max = int(T_max)
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        epoch, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._group_lrs()
        if (epoch - 1 - T) % (2 * T) == 0:  # at the trough the ratio form would divide by 0
            return [
                lr + (base - eta_min) * (1 - math.cos(math.pi / T)) / 2
                for lr, base in zip(self._group_lrs(), self.base_lrs)
            ]
        return [
            (1 + math.cos(math.pi * epoch / T)) / (1 + math.cos(math.pi * (epoch - 1) / T)) * (lr - eta_min)
            + eta_min
            for lr in self._group_lrs()
        ]

    def _get_closed_form_lr(self) -> list[float]:
        return [self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base in self.base_lrs]


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin 2018), as `torch.optim.lr_scheduler.OneCycleLR`: the lr rises
    from ``max_lr / div_factor`` to `max_lr` over the first `pct_start` of `total_steps`, then anneals
    to ``max_lr / div_factor / final_div_factor``; momentum (or Adam's beta1) moves the opposite way
    between `max_momentum` and `base_momentum` when `cycle_momentum`. With `three_phase`, the lr comes
    back down symmetrically before the final annealing. Step it once per batch.

    Give `total_steps`, or `epochs` and `steps_per_epoch`. `max_lr`, `base_momentum` and `max_momentum`
    may be lists with one value per parameter group.
    """

    def __init__(self, optimizer: Optimizer, max_lr, total_steps: int | None = None, epochs: int | None = None,
                 steps_per_epoch: int | None = None, pct_start: float = 0.3, anneal_strategy: str = "cos",
                 div_factor: float = 25.0, final_div_factor: float = 1e4, three_phase: bool = False,
                 cycle_momentum: bool = True, base_momentum=0.85, max_momentum=0.95, last_epoch: int = -1):
        name = "OneCycleLR"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: expected a convlens.optim.Optimizer, got {type(optimizer).__name__}")
        if total_steps is not None:
            _positive_int(name, "total_steps", total_steps)
            self.total_steps = int(total_steps)
        elif epochs is not None and steps_per_epoch is not None:
            _positive_int(name, "epochs", epochs)
            _positive_int(name, "steps_per_epoch", steps_per_epoch)
            self.total_steps = int(epochs) * int(steps_per_epoch)
        else:
            raise ValueError(f"{name}: give total_steps, or both epochs and steps_per_epoch")
        if not (isinstance(pct_start, numbers.Real) and 0 <= pct_start <= 1):
            raise ValueError(f"{name}: invalid pct_start {pct_start!r} (expected 0 <= pct_start <= 1)")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"{name}: invalid anneal_strategy {anneal_strategy!r} (expected 'cos' or 'linear')")
        self.anneal_strategy = anneal_strategy

        # each phase anneals lr and momentum between two group keys until step `end_step`
        n = self.total_steps
        if three_phase:
            self._schedule_phases = [
                _phase(float(pct_start * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                _phase(float(2 * pct_start * n) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                _phase(n - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            self._schedule_phases = [
                _phase(float(pct_start * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                _phase(n - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]

        groups = optimizer.param_groups
        max_lrs = _per_group(name, "max_lr", max_lr, len(groups))
        if last_epoch == -1:
            for group, top in zip(groups, max_lrs):
                group["initial_lr"] = top / div_factor
                group["max_lr"] = top
                group["min_lr"] = group["initial_lr"] / final_div_factor

        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(
                    f"{name}: cycle_momentum=True needs an optimizer with momentum or betas, "
                    f"got {type(optimizer).__name__}; pass cycle_momentum=False"
                )
            self.use_beta1 = "betas" in optimizer.defaults
            max_momenta = _per_group(name, "max_momentum", max_momentum, len(groups))
            base_momenta = _per_group(name, "base_momentum", base_momentum, len(groups))
            if last_epoch == -1:
                for group, top, base in zip(groups, max_momenta, base_momenta):
                    self._set_momentum(group, top)
                    group["max_momentum"] = top
                    group["base_momentum"] = base
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group: dict, value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(
                f"OneCycleLR: tried to step {step} times, but total_steps is {self.total_steps}"
            )
        lrs = []
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end = phase["end_step"]
                if step <= end or i == len(self._schedule_phases) - 1:
                    pct = (step - start) / (end - start)
                    lrs.append(self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct))
                    if self.cycle_momentum:
                        momentum = self._anneal(group[phase["start_momentum"]], group[phase["end_momentum"]], pct)
                        self._set_momentum(group, momentum)
                    break
                start = end
        return lrs


def _phase(end_step: float, start_lr: str, end_lr: str, start_momentum: str, end_momentum: str) -> dict:
    return dict(end_step=end_step, start_lr=start_lr, end_lr=end_lr, start_momentum=start_momentum,
                end_momentum=end_momentum)


def _per_group(owner: str, arg: str, value, n_groups: int) -> list:
    if isinstance(value, list | tuple):
        if len(value) != n_groups:
            raise ValueError(
                f"{owner}: {arg} has {len(value)} values, expected one per parameter group ({n_groups})"
            )
        return list(value)
    return [value] * n_groups


# the rest of torch.optim.lr_scheduler (they build on LRScheduler above)
from convlens.optim.schedulers import (  # noqa: E402
    ChainedScheduler,
    ConstantLR,
    CosineAnnealingWarmRestarts,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    MultiplicativeLR,
    MultiStepLR,
    PolynomialLR,
    ReduceLROnPlateau,
    SequentialLR,
)

_LRScheduler = LRScheduler  # PyTorch's older name

__all__ = ["LRScheduler", "StepLR", "CosineAnnealingLR", "OneCycleLR", "MultiStepLR", "ExponentialLR", "LambdaLR",
           "MultiplicativeLR", "LinearLR", "ConstantLR", "PolynomialLR", "CosineAnnealingWarmRestarts",
           "SequentialLR", "ChainedScheduler", "ReduceLROnPlateau"]
