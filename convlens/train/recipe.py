"""`Recipe`: every choice that shapes a training run, in one JSON-able dataclass.

A recipe starts from the model zoo's default for the model (``convlens.models.default_recipe``) and is
overridden by command-line flags; it is printed when training starts and stored in every checkpoint, so
a run can be resumed or repeated exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

__all__ = ["Recipe", "OPTIMIZERS", "SCHEDULES", "fingerprint", "fingerprint_change"]

OPTIMIZERS = ("sgd", "adadelta", "adam", "adamw", "adagrad", "rmsprop")
SCHEDULES = ("none", "step", "cosine", "onecycle", "linear")
_AUGMENTS = ("flip", "shift", "crop", "translate", "altflip")


@dataclass
class Recipe:
    """What to train and how. ``model`` is a zoo name or a spec file; ``dataset`` a data set name, an
    image folder or a ``.tar.gz`` of one. ``augment`` is a comma-separated list (``"flip,shift"``, or
    ``""``); ``normalize`` standardises each channel with the training set's mean and std; ``limit``
    keeps a random ``limit`` images of the training set (before the validation split)."""

    model: str = "lenet5"
    dataset: str = "mnist-mini"
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    rho: float | None = None  # Adadelta's decay of its running averages (None: the optimizer's default, 0.9)
    eps: float | None = None  # added for stability by the adaptive optimizers (None: the optimizer's default)
    schedule: str = "none"
    batch_size: int = 64
    epochs: int = 10
    augment: str = ""
    normalize: bool = True
    label_smoothing: float = 0.0
    seed: int = 0
    val_split: float = 0.1
    limit: int | None = None
    early_stopping: int | None = None
    size: list[int] | None = None  # [H, W]: resize a folder's images (photos of many sizes); None keeps them
    # the epoch at which the current schedule started: 0, or where a finished run was extended (the
    # schedule then runs again over the added epochs, as a second one-cycle / cosine / step phase)
    schedule_start: int = 0
    # fast-training options (airbench's recipe; docs/recipes.md). schedule "linear": warm-up from lr·lr_start
    # to lr over the first `warmup` fraction of the steps, then down to lr·lr_end, per batch.
    nesterov: bool = False
    decoupled_weight_decay: bool = False  # weight_decay is the per-step shrink at the base lr (parts.param_groups)
    bias_lr_scale: float = 1.0  # lr multiplier of the normalisation layers' biases
    warmup: float = 0.0
    lr_start: float = 0.0
    lr_end: float = 0.0
    lookahead: int = 0  # Lookahead every k steps with airbench's α schedule (0: off)
    whiten_bias_epochs: int | None = None  # train the patch-whitening bias only in the first N epochs
    tta: int = 0  # test-time augmentation level: 0 none, 1 flip, 2 flip and ±1-pixel shifts

    # ---- construction ---------------------------------------------------------------------------------
    @classmethod
    def for_model(cls, model: str = "lenet5", **overrides) -> Recipe:
        """The zoo's default recipe for ``model`` (built-in defaults for a spec file), then ``overrides``
        (None values are ignored, so unset command-line flags keep the default)."""
        base: dict = {}
        try:
            from convlens import models

            if model in models.list_models():
                base = dict(models.default_recipe(model))
        except ImportError:  # pragma: no cover - the zoo is part of the package
            pass
        values = {k: v for k, v in base.items() if k in cls.field_names()}
        values["model"] = model
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(values)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, d: dict) -> Recipe:
        unknown = sorted(set(d) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"Recipe: unknown field(s) {', '.join(unknown)}; expected {', '.join(cls.field_names())}")
        recipe = cls(**d)
        recipe.validate()
        return recipe

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> Recipe:
        out = dataclasses.replace(self, **changes)
        out.validate()
        return out

    # ---- checks ---------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ValueError naming the field, the expected and the received value."""

        def bad(name, expected):
            raise ValueError(f"Recipe: {name} must be {expected}, got {getattr(self, name)!r}")

        self.optimizer = str(self.optimizer).lower()
        self.schedule = str(self.schedule or "none").lower()
        self.augment = ",".join(t.strip().lower() for t in str(self.augment or "").split(",")
                                if t.strip() and t.strip().lower() != "none")
        if self.optimizer not in OPTIMIZERS:
            bad("optimizer", f"one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            bad("schedule", f"one of {', '.join(SCHEDULES)}")
        for token in filter(None, self.augment.split(",")):
            if token.split(":")[0] not in _AUGMENTS:
                bad("augment", f"a comma-separated list of {', '.join(_AUGMENTS)} (e.g. 'flip,shift') or ''")
        if not self.lr > 0:
            bad("lr", "> 0")
        if not self.momentum >= 0:
            bad("momentum", ">= 0")
        if not self.weight_decay >= 0:
            bad("weight_decay", ">= 0")
        if self.rho is not None and not 0 <= self.rho <= 1:
            bad("rho", "in [0, 1] or None")
        if self.eps is not None and not self.eps > 0:
            bad("eps", "> 0 or None")
        if not 0 <= self.label_smoothing < 1:
            bad("label_smoothing", "in [0, 1)")
        if int(self.batch_size) < 1:
            bad("batch_size", "an integer >= 1")
        if int(self.epochs) < 1:
            bad("epochs", "an integer >= 1")
        if not 0 <= self.val_split < 1:
            bad("val_split", "in [0, 1) (0 turns validation off)")
        if self.limit is not None and int(self.limit) < 2:
            bad("limit", "an integer >= 2 or None")
        if self.early_stopping is not None and int(self.early_stopping) < 1:
            bad("early_stopping", "an integer >= 1 (epochs without improvement) or None")
        if not 0 <= int(self.schedule_start) < int(self.epochs):
            bad("schedule_start", f"in [0, epochs = {self.epochs})")
        self.schedule_start = int(self.schedule_start)
        self.batch_size, self.epochs, self.seed = int(self.batch_size), int(self.epochs), int(self.seed)
        self.lr, self.momentum, self.weight_decay = float(self.lr), float(self.momentum), float(self.weight_decay)
        self.label_smoothing, self.val_split = float(self.label_smoothing), float(self.val_split)
        self.rho = None if self.rho is None else float(self.rho)
        self.eps = None if self.eps is None else float(self.eps)
        self.normalize = bool(self.normalize)
        if self.size is not None:
            try:
                hw = [int(v) for v in self.size]
            except (TypeError, ValueError):
                hw = []
            if len(hw) != 2 or min(hw) < 1:
                bad("size", "[H, W] of positive integers or None")
            self.size = hw
        self._validate_fast()

    def _validate_fast(self) -> None:
        def bad(name, expected):
            raise ValueError(f"Recipe: {name} must be {expected}, got {getattr(self, name)!r}")

        if not self.bias_lr_scale > 0:
            bad("bias_lr_scale", "> 0")
        if not 0 <= self.warmup <= 1:
            bad("warmup", "a fraction in [0, 1]")
        if self.lookahead is None or int(self.lookahead) < 0:
            bad("lookahead", "an integer >= 0 (0 turns it off)")
        if self.tta not in (0, 1, 2):
            bad("tta", "0, 1 or 2")
        if self.whiten_bias_epochs is not None and int(self.whiten_bias_epochs) < 0:
            bad("whiten_bias_epochs", "an integer >= 0 or None")
        if self.whiten_bias_epochs is not None and self.schedule not in ("linear", "none"):
            bad("whiten_bias_epochs", f"None with the {self.schedule} schedule (it needs 'linear' or 'none')")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            bad("nesterov", "False unless the optimizer is sgd with momentum > 0")
        self.nesterov, self.decoupled_weight_decay = bool(self.nesterov), bool(self.decoupled_weight_decay)
        self.bias_lr_scale, self.warmup = float(self.bias_lr_scale), float(self.warmup)
        self.lr_start, self.lr_end, self.lookahead = float(self.lr_start), float(self.lr_end), int(self.lookahead)
        self.whiten_bias_epochs = None if self.whiten_bias_epochs is None else int(self.whiten_bias_epochs)

    # ---- the objects a run needs ----------------------------------------------------------------------
    def make_optimizer(self, params):
        """The optimizer with this recipe's lr, weight decay and (for SGD and RMSprop) momentum. `params`
        may be the model itself: then its parameters are grouped by `convlens.train.parts.param_groups`
        (bias_lr_scale, decoupled_weight_decay; frozen parameters left out); with `lookahead` the
        optimizer is wrapped in `convlens.optim.Lookahead` (its α schedule is set by make_scheduler)."""
        import numpy as np

        from convlens.nn.modules.module import Module

        grouped = self.bias_lr_scale != 1 or self.decoupled_weight_decay or self.whiten_bias_epochs is not None
        buffers = []
        if isinstance(params, Module):  # Lookahead follows the float buffers too (batch-norm statistics)
            buffers = [b for b in params.buffers() if np.issubdtype(b._data.dtype, np.floating)]
        if isinstance(params, Module) and not grouped:  # one group, as before these options existed
            params = params.parameters()
        if isinstance(params, Module):
            from convlens.train.parts import param_groups

            params = param_groups(params, self.lr, self.weight_decay, self.bias_lr_scale, self.decoupled_weight_decay)
            opt = self._make_optimizer(params, weight_decay=None)
        else:
            opt = self._make_optimizer(list(params), self.weight_decay)
        if self.lookahead:
            from convlens.optim.lookahead import Lookahead

            opt = Lookahead(opt, k=self.lookahead, buffers=buffers)
        return opt

    def _make_optimizer(self, params, weight_decay):
        from convlens import optim

        common = {"lr": self.lr}
        if weight_decay is not None:  # else each group carries its own
            common["weight_decay"] = weight_decay
        if self.eps is not None and self.optimizer != "sgd":
            common["eps"] = self.eps
        if self.optimizer == "sgd":
            return optim.SGD(params, momentum=self.momentum, nesterov=self.nesterov, **common)
        if self.optimizer == "rmsprop":
            return optim.RMSprop(params, momentum=self.momentum, **common)
        if self.optimizer == "adadelta" and self.rho is not None:
            common["rho"] = self.rho
        cls = {"adadelta": optim.Adadelta, "adam": optim.Adam, "adamw": optim.AdamW,
               "adagrad": optim.Adagrad}[self.optimizer]
        return cls(params, **common)

    def make_scheduler(self, optimizer, steps_per_epoch: int):
        """``(scheduler or None, "epoch" | "batch")``: when to call its ``step()``. step: ×0.1 every third
        of the run; cosine: to 0 over the run; onecycle: warm-up to ``lr`` then anneal, per batch."""
        from convlens.optim import lr_scheduler as S

        span = self.epochs - self.schedule_start  # the epochs this schedule phase covers
        total = span * steps_per_epoch
        if hasattr(optimizer, "sync_at"):  # Lookahead: airbench's α(t), and the model left on the slow weights
            from convlens.optim.lookahead import airbench_alpha

            optimizer.alpha, optimizer.sync_at = airbench_alpha(total), total
        if self.schedule == "linear" or self.whiten_bias_epochs is not None:
            from convlens.train.parts import warmup_linear

            shape = (self.warmup, self.lr_start, self.lr_end) if self.schedule == "linear" else (0.0, 1.0, 1.0)
            stop = None if self.whiten_bias_epochs is None else self.whiten_bias_epochs * steps_per_epoch
            lambdas = [warmup_linear(total, *shape, stop_at=stop if g.get("name") == "separate" else None)
                       for g in optimizer.param_groups]
            return S.LambdaLR(optimizer, lambdas), "batch"
        if self.schedule == "step":
            return S.StepLR(optimizer, step_size=max(1, span // 3), gamma=0.1), "epoch"
        if self.schedule == "cosine":
            return S.CosineAnnealingLR(optimizer, T_max=span), "epoch"
        if self.schedule == "onecycle":
            cycle = self.optimizer in ("sgd", "rmsprop", "adam", "adamw") and (
                self.optimizer not in ("sgd", "rmsprop") or self.momentum > 0)
            return S.OneCycleLR(optimizer, max_lr=self.lr, epochs=span, steps_per_epoch=steps_per_epoch,
                                cycle_momentum=cycle), "batch"
        return None, "epoch"

    def split_data(self, full):
        """The data this recipe trains on: `limit` images of `full` (a seeded random pick), split into
        training and validation sets (`val_split`), and the training set's per-channel mean and std when
        `normalize` is on. Returns (train, val or None, mean or None, std or None)."""
        import numpy as np

        from convlens import data

        if self.limit is not None and self.limit < len(full):
            pick = np.random.default_rng(self.seed).permutation(len(full))[: self.limit]
            full = data.Subset(full, np.sort(pick))
        train, val = full, None
        if self.val_split > 0:
            n_val = int(round(self.val_split * len(full)))
            if n_val < 1 or n_val >= len(full):
                raise ValueError(f"val_split {self.val_split} of {len(full)} images leaves {n_val} for "
                                 "validation; use more images or a validation split of 0")
            train, val = data.split(full, self.val_split, seed=self.seed)
        mean = std = None
        if self.normalize:
            mean, std = (a.tolist() for a in data.mean_std(train))
            std = [s if s > 0 else 1.0 for s in std]  # a constant channel: leave it unscaled
        return train, val, mean, std

    def augmentation(self):
        """The random training-time transforms (a list; normalisation is added by the caller)."""
        from convlens.data import transforms as T

        out = []
        for token in filter(None, self.augment.split(",")):
            name, *args = token.split(":")
            if name == "translate":  # random shifts with reflect padding (convlens.train.parts)
                from convlens.train.parts import RandomTranslate

                out.append(RandomTranslate(*(int(a) for a in args)))
            elif name != "altflip":  # a data set wrapper, see training_set
                out += list(T.from_spec(token).transforms)
        return out

    def training_set(self, train):
        """`train` wrapped for the data-set level augmentations: ``altflip`` (`parts.AlternatingFlip`)."""
        if "altflip" in [t.split(":")[0] for t in self.augment.split(",")]:
            from convlens.train.parts import AlternatingFlip

            return AlternatingFlip(train, seed=self.seed)
        return train

    # ---- display --------------------------------------------------------------------------------------
    def describe(self) -> str:
        """A few aligned lines, as printed when training starts."""
        opt = f"{self.optimizer} lr={self.lr:g}"
        if self.optimizer in ("sgd", "rmsprop"):
            opt += f" momentum={self.momentum:g}"
        if self.optimizer == "adadelta" and self.rho is not None:
            opt += f" rho={self.rho:g}"
        if self.eps is not None and self.optimizer != "sgd":
            opt += f" eps={self.eps:g}"
        if self.weight_decay:
            opt += f" weight_decay={self.weight_decay:g}"
        rows = [
            ("model", self.model), ("dataset", self.dataset + (f" (limit {self.limit})" if self.limit else "")),
            ("optimizer", opt),
            ("schedule", self.schedule + (f" (a new phase from epoch {self.schedule_start + 1})"
                                          if self.schedule_start and self.schedule != "none" else "")),
            ("epochs", f"{self.epochs}, batch size {self.batch_size}"),
            ("augment", self.augment or "none"), ("normalize", "yes" if self.normalize else "no"),
            ("label smoothing", f"{self.label_smoothing:g}"),
            ("validation", f"{self.val_split:.0%} of the training set" if self.val_split else "none"),
            ("seed", str(self.seed)),
        ]
        if self.size:
            rows.append(("resize", f"{self.size[0]}×{self.size[1]}"))
        fast = [k for k, on in (("nesterov", self.nesterov), ("decoupled weight decay", self.decoupled_weight_decay),
                                (f"bias lr ×{self.bias_lr_scale:g}", self.bias_lr_scale != 1),
                                (f"lookahead k={self.lookahead}", self.lookahead),
                                (f"whitening bias {self.whiten_bias_epochs} epochs", self.whiten_bias_epochs is not None),
                                (f"TTA level {self.tta}", self.tta)) if on]
        if self.schedule == "linear":
            fast.insert(0, f"warm-up {self.warmup:.0%} from ×{self.lr_start:g}, then to ×{self.lr_end:g}")
        if fast:
            rows.append(("fast training", ", ".join(fast)))
        if self.early_stopping:
            rows.append(("early stopping", f"after {self.early_stopping} epochs without improvement"))
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


# ---- what a run trained on ----------------------------------------------------------------------------
def fingerprint(dataset) -> dict:
    """What identifies a data set's contents: count, classes, image shape and BLAKE2 hashes of the
    labels and of the pixels (~1 GB/s: 0.05 s for MNIST's 47 MB). Stored in a run's checkpoints so that
    a resume on different data is refused (`fingerprint_change`) instead of silently training on it."""
    import hashlib

    import numpy as np

    images = np.ascontiguousarray(dataset.images)
    labels = np.ascontiguousarray(np.asarray(dataset.labels, dtype=np.int64))
    return {"n": int(labels.shape[0]), "classes": [str(c) for c in dataset.classes],
            "shape": [int(s) for s in images.shape[1:]],
            "labels_hash": hashlib.blake2b(labels.tobytes(), digest_size=16).hexdigest(),
            "images_hash": hashlib.blake2b(memoryview(images).cast("B"), digest_size=16).hexdigest()}


def fingerprint_change(saved: dict | None, now: dict) -> str | None:
    """None when ``now`` is the data ``saved`` describes, else what changed, in words."""
    if not isinstance(saved, dict):
        return None  # a run from before fingerprints: nothing to compare
    changes = []
    if saved.get("n") != now["n"]:
        changes.append(f"{saved.get('n')} images then, {now['n']} now")
    if saved.get("classes") != now["classes"]:
        changes.append(f"classes {saved.get('classes')} then, {now['classes']} now")
    if saved.get("shape") != now["shape"]:
        changes.append(f"image shape {tuple(saved.get('shape') or ())} then, {tuple(now['shape'])} now")
    if not changes and saved.get("labels_hash") != now["labels_hash"]:
        changes.append("the same count and classes but different labels")
    if not changes and saved.get("images_hash") != now["images_hash"]:
        changes.append("the same count, classes and labels but different pixels")
    return "; ".join(changes) or None
