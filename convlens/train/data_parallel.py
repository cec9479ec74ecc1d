"""One training step split over threads by batch slices (data parallelism inside one process).

Each op of the engine already runs its batch chunks on the thread pool, but a small network's ops are
short: at batch 32–64 the two threads of this machine spend much of a step handing work over and
waiting for each other (measured: 1.27× from a second thread on the ConvNetJS CIFAR-10 net). Here each
thread instead runs the *whole* forward and backward pass on its own slice of the batch, on a replica of
the model that shares the parameter arrays, and the slices' gradients are added up at the end:

    L = Σ_i (n_i / n) · L_i   ⇒   ∂L/∂θ = Σ_i (n_i / n) · ∂L_i/∂θ

so the update is that of the whole batch (up to float rounding: the sum is split differently, which
also makes results depend on the number of slices — a fixed function of the thread count).

Only for models whose forward pass treats images independently and draws no random numbers: no
batch norm (its statistics span the batch), no dropout (the global generator would be read from two
threads in a racing order), and no forward hooks (the live views watch one model).
"""

from __future__ import annotations

import copy
import math
import threading

import numpy as np

from convlens import parallel
from convlens.tensor import Tensor

_BATCH_COUPLED = ("BatchNorm", "Dropout")

# A slice must hold at least this many images and input values: below that the per-op Python work of
# the threads contends for the interpreter lock and slicing loses. Measured with the register-tile
# convolution, interleaved with PyTorch (img/s, one pass → slices): LeNet-5 batch 64 (25,088 values
# per slice): 9,588 → 7,731 and 9,786 → 8,489; batch 128: 10,236 → 10,831 and 9,895 → 10,990;
# ConvNetJS net batch 32 (49,152 values per slice): 2,514 → 2,551 and 2,559 → 2,520.
MIN_SLICE_IMAGES = 16
MIN_SLICE_VALUES = 32768
# ... and this much forward work (multiply-adds × 2 through the conv and linear layers). Since the
# compiled kernels split themselves over OpenMP threads (issue 12), the plain pass wins on small nets,
# whose slices' Python work contends for the interpreter lock; slices still win on big ones. Measured
# on 2 vCPUs, img/s plain → sliced (forward work per slice): LeNet-5 batch 256 18,066 → 12,936 (0.1
# GFLOP), ConvNetJS net batch 64 3,351 → 2,845 (0.25 GFLOP), batch 256 3,836 → 4,072 (1.0 GFLOP),
# VGG-style batch 128 372 → 570 (4.9 GFLOP).
MIN_SLICE_FLOPS = 500_000_000


def supported(model) -> bool:
    """Whether `model` can be run as independent batch slices (see the module docstring)."""
    for m in model.modules():
        if type(m).__name__.startswith(_BATCH_COUPLED) or m._forward_hooks or m._forward_pre_hooks:
            return False
    return True


class SlicedStep:
    """``step(x, y) -> (loss, logits)``: forward, loss and backward of a batch, gradients left in the
    model's parameters' ``.grad`` as for ``loss_fn(model(x), y).backward()``; the caller zeroes the
    gradients before and steps the optimizer after. ``slices`` defaults to the thread count; a batch
    too small to give every slice `MIN_SLICE_IMAGES` images and `MIN_SLICE_VALUES` input values uses
    fewer, and with one slice (or an unsupported model) it is the plain single pass. The number of slices depends only on the shapes,
    so a run repeats (and resumes) bit for bit on the same thread count."""

    def __init__(self, model, loss_fn, slices: int | None = None):
        self.model, self.loss_fn = model, loss_fn
        self.slices = max(1, parallel.get_num_threads() if slices is None else int(slices))
        if not supported(model):
            self.slices = 1
        self.replicas = [model] + [self._replicate(model) for _ in range(self.slices - 1)]
        self._flops: dict = {}  # forward work per image, by input shape

    def _image_flops(self, x: Tensor) -> int:
        """Forward multiply-adds × 2 of one image of x's shape (`summary.forward_flops`), counted once
        per input shape on a replica (so the slice count stays a function of the shapes: runs repeat and
        resume bit for bit, and the model's own hooks are never touched)."""
        key = tuple(x.shape[1:])
        if key not in self._flops:
            from convlens.summary import forward_flops

            with parallel.serial():
                self._flops[key] = forward_flops(self.replicas[-1], key)
        return self._flops[key]

    @staticmethod
    def _replicate(model):
        """A copy of `model` whose parameters and buffers are new Tensors over the same arrays."""
        shared = {id(t._data): t._data for t in (*model.parameters(), *model.buffers())}
        return copy.deepcopy(model, memo=shared)

    def _sync(self) -> None:
        """Point every replica's tensors at the model's current arrays (a load_state_dict may rebind)."""
        master = [*self.model.parameters(), *self.model.buffers()]
        for replica in self.replicas[1:]:
            for mine, theirs in zip((*replica.parameters(), *replica.buffers()), master):
                mine._data = theirs._data
                mine.grad = None
            replica.train(self.model.training)

    def __call__(self, x: Tensor, y: Tensor):
        n = x.shape[0]
        parts = min(self.slices, max(1, n // MIN_SLICE_IMAGES), max(1, x._data.size // MIN_SLICE_VALUES))
        if parts > 1 and not supported(self.model):  # e.g. a live view hooked the model during training
            parts = 1
        if parts > 1:
            parts = min(parts, max(1, n * self._image_flops(x) // MIN_SLICE_FLOPS))
        if parts == 1:
            out = self.model(x)
            loss = self.loss_fn(out, y)
            loss.backward()
            return float(loss.item()), out._data
        self._sync()
        labels = y._data if isinstance(y, Tensor) else np.asarray(y)
        edges = [n * i // parts for i in range(parts + 1)]
        results: list = [None] * parts
        errors: list = []

        def run(i: int) -> None:
            lo, hi = edges[i], edges[i + 1]
            try:
                with parallel.serial():
                    out = self.replicas[i](Tensor._wrap(x._data[lo:hi]))
                    part = labels[lo:hi]
                    loss = self.loss_fn(out, Tensor._wrap(part) if isinstance(y, Tensor) else part)
                    loss.backward(Tensor._wrap(np.asarray((hi - lo) / n, dtype=loss.dtype)))
                results[i] = (float(loss.item()) * (hi - lo) / n, out._data)
            except BaseException as e:  # re-raised in the calling thread
                errors.append(e)

        with parallel.blas_single_thread():
            workers = [threading.Thread(target=run, args=(i,), name=f"convlens-slice{i}") for i in range(1, parts)]
            for t in workers:
                t.start()
            run(0)
            for t in workers:
                t.join()
        if errors:
            raise errors[0]
        for replica in self.replicas[1:parts]:  # Σ_i of the slices' gradients, into the model's
            for master, mine in zip(self.model.parameters(), replica.parameters()):
                if mine.grad is None:
                    continue
                if master.grad is None:
                    master.grad = mine.grad
                else:
                    master.grad._data += mine.grad._data
                mine.grad = None
        loss = math.fsum(r[0] for r in results)
        return loss, np.concatenate([r[1] for r in results])
