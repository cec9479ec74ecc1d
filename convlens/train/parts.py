"""Reusable pieces of fast-training recipes (airbench's, and any other model's through `Recipe`).

- `warmup_linear`: a learning-rate factor for `LambdaLR`, linear warm-up then linear decay.
- `param_groups`: optimizer groups with their own learning rate for normalisation biases, and weight
  decay that can be "decoupled" from the learning rate.
- `AlternatingFlip`: each image flipped at random in the first epoch, then the other way every epoch.
- `RandomTranslate`: random integer shifts with reflect padding (a batch transform).
- `TTA`: test-time augmentation, the average of the logits over flips and ±1-pixel shifts.
- `whitening_images`: the first training images as the net sees them, to fit a whitening layer.
"""

from __future__ import annotations

import numpy as np

from convlens.data.transforms import Transform
from convlens.nn.modules.module import Module
from convlens.utils.data.dataset import Dataset, batch_reader

__all__ = ["warmup_linear", "param_groups", "AlternatingFlip", "RandomTranslate", "TTA", "whitening_images"]


class warmup_linear:  # noqa: N801 - used like a function: LambdaLR(opt, warmup_linear(...))
    """The factor f(step) on the base learning rate: from ``start`` up to 1 over the first ``warmup``
    fraction of ``total_steps``, then down to ``end`` at ``total_steps`` (straight lines; constant after).

        f(t) = start + (1 − start)·t/w         for t < w = warmup·T
        f(t) = 1 + (end − 1)·(t − w)/(T − w)   for w ≤ t ≤ T

    With ``stop_at`` the factor is 0 from that step on (a parameter group trained only at the start, as
    airbench's whitening bias).
    """

    def __init__(self, total_steps: int, warmup: float = 0.0, start: float = 0.0, end: float = 0.0,
                 stop_at: int | None = None):
        if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(f"warmup_linear: total_steps must be a positive integer, got {total_steps!r}")
        if not 0 <= warmup <= 1:
            raise ValueError(f"warmup_linear: warmup must be a fraction in [0, 1], got {warmup!r}")
        self.total_steps, self.warmup, self.start, self.end = total_steps, float(warmup), float(start), float(end)
        self.stop_at = None if stop_at is None else int(stop_at)

    def __call__(self, step: int) -> float:
        if self.stop_at is not None and step >= self.stop_at:
            return 0.0
        return float(np.interp(step, [0, self.warmup * self.total_steps, self.total_steps],
                               [self.start, 1.0, self.end]))

    def __repr__(self) -> str:
        return (f"warmup_linear(total_steps={self.total_steps}, warmup={self.warmup:g}, start={self.start:g}, "
                f"end={self.end:g}, stop_at={self.stop_at})")


def _is_norm(module) -> bool:
    return "Norm" in type(module).__name__  # BatchNorm*, LayerNorm, GroupNorm, InstanceNorm*, LocalResponseNorm


def param_groups(model, lr: float, weight_decay: float = 0.0, bias_lr_scale: float = 1.0,
                 decoupled_weight_decay: bool = False) -> list[dict]:
    """Optimizer groups for `model`'s trainable parameters: ``[normalisation biases, everything else]``.

    The biases of normalisation layers get ``lr · bias_lr_scale`` (airbench: 64×); the other group gets
    ``lr``. With ``decoupled_weight_decay`` the ``weight_decay`` given is the shrink per step at the
    base lr (p ← p − λ·p·lr_t/lr): each group gets torch's L2 coefficient λ / (its lr), so the decay
    stays the same whatever the learning rates (as airbench sets torch's SGD); otherwise every group
    gets ``weight_decay`` as torch's coefficient. Frozen parameters (``requires_grad=False``) are left
    out; empty groups are dropped. Parameters of a module with ``separate_group = True`` (the patch
    whitening layer) get a third group, so that a schedule can stop training them early. Each group
    has a ``"name"``: "norm_biases", "others" or "separate".
    """
    norm_biases, others, separate, seen = [], [], [], set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if id(p) in seen or not p.requires_grad:
                continue
            seen.add(id(p))
            if getattr(module, "separate_group", False):
                separate.append(p)
            else:
                (norm_biases if _is_norm(module) and name == "bias" else others).append(p)
    groups = []
    for gname, params, group_lr in (("norm_biases", norm_biases, lr * bias_lr_scale), ("others", others, lr),
                                    ("separate", separate, lr)):
        if params:
            wd = weight_decay / group_lr if decoupled_weight_decay and weight_decay else weight_decay
            groups.append({"params": params, "lr": group_lr, "weight_decay": wd, "name": gname})
    if not groups:
        raise ValueError(f"param_groups: {type(model).__name__} has no trainable parameters")
    return groups


def _flip_rows(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    out = np.array(x, copy=True)
    out[rows] = out[rows][..., ::-1]
    return out


class AlternatingFlip(Dataset):
    """Wrap an image data set so that image i is mirrored in epoch e iff ``first[i] XOR (e odd)``, where
    ``first`` is a seeded coin per image: random flips in the first epoch, then every image seen the
    other way round than in the epoch before (airbench's "alternating flip"; fewer repeats of the same
    view than independent random flips). The DataLoader calls `set_epoch` (also when resuming).

    Shape:
        items (image (C, H, W), label) → the same, the image maybe flipped along W.
    """

    def __init__(self, dataset, seed: int = 0):
        self.dataset, self.seed, self.epoch = dataset, int(seed), 0
        self.first = np.random.default_rng(np.random.SeedSequence([int(seed), 0x0F11])).random(len(dataset)) < 0.5

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def flipped(self, indices) -> np.ndarray:
        return self.first[np.asarray(indices)] ^ bool(self.epoch % 2)

    def __getitem__(self, index):
        from convlens.tensor import Tensor

        x, *rest = self.dataset[index]
        if self.flipped(index):  # the item keeps its type (Tensor or array)
            flipped = np.ascontiguousarray(np.asarray(x._data if isinstance(x, Tensor) else x)[..., ::-1])
            x = Tensor(flipped) if isinstance(x, Tensor) else flipped
        return (x, *rest)

    def _batch_reader(self):
        parent = batch_reader(self.dataset)
        if parent is None:
            return None
        from convlens.tensor import Tensor

        def read(indices):
            x, *rest = parent(indices)
            data = _flip_rows(x._data if isinstance(x, Tensor) else np.asarray(x), self.flipped(indices))
            return (Tensor._wrap(data) if isinstance(x, Tensor) else data, *rest)

        return read

    @property
    def classes(self):
        return getattr(self.dataset, "classes", None)


class RandomTranslate(Transform):
    """Shift each image by integers (dx, dy) drawn uniformly in [−max_shift, max_shift], filling with
    ``padding_mode`` ("reflect" by default, airbench's): torchvision's ``RandomCrop(size, padding=max_shift,
    padding_mode=...)`` with the crop as large as the image."""

    _fields = ("max_shift", "padding_mode")

    def __init__(self, max_shift: int = 2, padding_mode: str = "reflect"):
        from convlens.data import imageops as ops

        self.max_shift, self.padding_mode = int(max_shift), padding_mode
        if self.max_shift < 0:
            raise ValueError(f"RandomTranslate: max_shift must be >= 0, got {max_shift!r}")
        if padding_mode not in ops.PADDING_MODES:
            raise ValueError(f"RandomTranslate: padding_mode must be one of {', '.join(ops.PADDING_MODES)}, "
                             f"found {padding_mode!r}")

    def batch(self, x, rng):
        from convlens.data import imageops as ops

        m = self.max_shift
        if m == 0:
            return x
        n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
        padded = ops.pad(x, m, 0, self.padding_mode)
        top, left = rng.integers(0, 2 * m + 1, size=n), rng.integers(0, 2 * m + 1, size=n)
        return ops.crop_windows(padded, top, left, h, w)


class TTA(Module):
    """Test-time augmentation around a trained `model` (evaluation only, no gradients).

    level 0: the model itself; level 1: the mean of the logits of x and of x mirrored; level 2:
    ½ · level-1(x) + ¼ · level-1(x shifted by (+1, +1)) + ¼ · level-1(x shifted by (−1, −1)), the shifts
    with reflect padding (airbench's). Level 2 costs 6 forward passes per image.

    Shape:
        (N, C, H, W) → the model's (N, num_classes).
    """

    def __init__(self, model, level: int = 2):
        super().__init__()
        if level not in (0, 1, 2):
            raise ValueError(f"TTA: level must be 0, 1 or 2, got {level!r}")
        self.model, self.level = model, int(level)

    def _mirror(self, x: np.ndarray) -> np.ndarray:
        from convlens.tensor import Tensor

        out = self.model(Tensor(x))._data
        if self.level == 0:
            return out
        return 0.5 * out + 0.5 * self.model(Tensor(np.ascontiguousarray(x[..., ::-1])))._data

    def forward(self, input):
        from convlens.autograd import no_grad
        from convlens.tensor import Tensor

        x = np.asarray(input._data if isinstance(input, Tensor) else input)
        with no_grad():
            logits = self._mirror(x)
            if self.level == 2:
                h, w = x.shape[-2:]
                padded = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)], mode="reflect")
                shifted = [padded[..., :h, :w], padded[..., 2:h + 2, 2:w + 2]]
                logits = 0.5 * logits + 0.25 * sum(self._mirror(np.ascontiguousarray(s)) for s in shifted)
        return Tensor(np.asarray(logits, dtype=np.float32))

    def extra_repr(self) -> str:
        return f"level={self.level}"


def whitening_images(dataset, transform=None, limit: int = 5000) -> np.ndarray:
    """The first `limit` images of `dataset` as a (N, C, H, W) float32 array, after `transform`
    (normalisation), as a whitening layer's `fit` needs them."""
    from convlens.data import DataLoader, Subset

    n = min(limit, len(dataset))
    loader = DataLoader(Subset(dataset, list(range(n))), 500, transform=transform)
    return np.concatenate([np.asarray(x._data) for x, *_ in loader]).astype(np.float32)
