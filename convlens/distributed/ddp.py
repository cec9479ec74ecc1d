"""``DistributedDataParallel``: synchronous data parallelism, gradients averaged over the ranks.

Every rank holds a full copy of the model and runs forward and backward on its own part of the global
batch (B/N images). With the loss a mean over each rank's batch, the gradient of the global batch is

    ∂L/∂θ = (1/B) Σ_images ∂ℓ/∂θ = (1/N) Σ_ranks ∂L_r/∂θ

so averaging the ranks' gradients (an all-reduce sum, then ÷N) gives every rank the gradient of the
whole batch, every optimizer takes the same step, and the copies stay identical. Parameters and
buffers are broadcast from rank 0 when the wrapper is built (and buffers again before every training
forward, as torch does), so the ranks start identical even when their seeds differ.

How (torch's Reducer, in small): the parameters are packed, in reverse order (backward produces the
last layers' gradients first), into a few flat buckets (1 MiB for the first, ``bucket_cap_mb`` for the
rest). A hook on each parameter copies its gradient into its bucket slot when backward reaches it;
when a bucket is full it is all-reduced in place, without blocking (``MPI_Iallreduce``), while backward
goes on with the earlier layers (``overlap=True``; with ``overlap=False`` every bucket is reduced after
backward with a blocking ``MPI_Allreduce``). When the last gradient arrives the reductions are awaited,
divided by N, and each parameter's ``.grad`` becomes a view of its bucket slot. So ``loss.backward()``
returns with averaged gradients and the training loop is unchanged.

Differences from torch: one process per rank on the CPU (``device_ids``/``output_device`` accepted for
torch code, ignored); batch norm uses each rank's local batch statistics (no SyncBatchNorm); a second
``backward()`` through the same forward accumulates without averaging.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np

from convlens.distributed import comm
from convlens.nn.modules.module import Module

__all__ = ["DistributedDataParallel"]

FIRST_BUCKET_BYTES = 1 << 20  # torch's: a small first bucket starts communication early


class _Bucket:
    def __init__(self, dtype, entries: list, total: int):
        self.buffer = np.zeros(total, dtype=dtype)
        self.entries = entries  # (param index, offset, size, shape)
        self.pending = len(entries)
        self.request = None


class DistributedDataParallel(Module):
    """Wrap ``module`` so that ``backward()`` leaves gradients averaged over all ranks in ``.grad``.

    Args (torch's order): module; device_ids, output_device, dim: accepted, unused on the CPU;
    broadcast_buffers: copy rank 0's buffers to all ranks before each training forward;
    init_sync: broadcast rank 0's parameters and buffers now; process_group: unused (the world);
    bucket_cap_mb: bucket size in MiB (default 25); find_unused_parameters: after each forward, find
    the parameters the output does not depend on and count them as reduced (with zero gradient), instead
    of raising at the next forward. convlens's addition: overlap (default True): start each bucket's
    all-reduce as soon as it is full.
    """

    def __init__(self, module, device_ids=None, output_device=None, dim: int = 0, broadcast_buffers: bool = True,
                 init_sync: bool = True, process_group=None, bucket_cap_mb: float | None = None,
                 find_unused_parameters: bool = False, check_reduction: bool = False,
                 gradient_as_bucket_view: bool = False, static_graph: bool = False, *, overlap: bool = True):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected a convlens.nn.Module, got {type(module).__name__}")
        self.module = module
        g = comm.init()
        object.__setattr__(self, "_group", g)
        object.__setattr__(self, "broadcast_buffers", bool(broadcast_buffers))
        object.__setattr__(self, "find_unused_parameters", bool(find_unused_parameters))
        object.__setattr__(self, "overlap", bool(overlap))
        object.__setattr__(self, "require_backward_grad_sync", True)
        object.__setattr__(self, "comm_seconds", 0.0)  # time spent launching and waiting for reductions
        cap = int((25 if bucket_cap_mb is None else float(bucket_cap_mb)) * (1 << 20))
        params = [p for p in module.parameters() if p.requires_grad]
        object.__setattr__(self, "_params", params)
        object.__setattr__(self, "_names", {id(p): n for n, p in module.named_parameters()})
        object.__setattr__(self, "_buckets", self._make_buckets(params, cap))
        object.__setattr__(self, "_slots", {})  # param index -> (bucket, slot view)
        for b in self._buckets:
            for i, off, size, shape in b.entries:
                self._slots[i] = (b, b.buffer[off:off + size].reshape(shape))
        object.__setattr__(self, "_armed", False)
        object.__setattr__(self, "_arrived", 0)
        object.__setattr__(self, "_next", 0)
        object.__setattr__(self, "_done", set())
        if init_sync and g.size > 1:
            self._broadcast_state(params=True)
        if g.size > 1:
            for i, p in enumerate(params):
                p.register_hook(self._hook(i))

    # ---- setup ------------------------------------------------------------------------------------
    @staticmethod
    def _make_buckets(params: list, cap: int) -> list[_Bucket]:
        buckets: list = []
        open_: dict = {}  # dtype -> (entries, total bytes) of the bucket being filled
        for i in reversed(range(len(params))):
            a = params[i]._data
            entries, total = open_.get(a.dtype, ([], 0))
            limit = min(FIRST_BUCKET_BYTES, cap) if not buckets else cap
            if entries and (total + a.nbytes > limit):
                buckets.append(_Bucket(a.dtype, entries, total // a.itemsize))
                entries, total = [], 0
            entries.append((i, total // a.itemsize, a.size, a.shape))
            open_[a.dtype] = (entries, total + a.nbytes)
        for dtype, (entries, total) in open_.items():
            if entries:
                buckets.append(_Bucket(dtype, entries, total // np.dtype(dtype).itemsize))
        return buckets

    def _broadcast_state(self, params: bool) -> None:
        tensors = list(self.module.buffers()) + (list(self.module.parameters()) if params else [])
        for t in tensors:
            if t._data.flags.c_contiguous and t._data.flags.writeable:
                comm.broadcast(t._data)
            else:
                t._data = comm.broadcast(np.ascontiguousarray(t._data))

    # ---- forward ----------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        from convlens.autograd import is_grad_enabled

        g = self._group
        if g.size > 1:
            self._check_previous()
            if self.broadcast_buffers and self.training:
                self._broadcast_state(params=False)
        out = self.module(*args, **kwargs)
        if g.size > 1 and self.training and is_grad_enabled() and self.require_backward_grad_sync:
            self._arm(out)
        return out

    def _check_previous(self) -> None:
        if self._armed and self._arrived:
            missing = [self._names.get(id(self._params[i]), f"#{i}") for i in range(len(self._params))
                       if i not in self._done]
            self._armed = False
            raise RuntimeError(
                "DistributedDataParallel: the previous backward produced no gradient for "
                f"{len(missing)} parameter(s) ({', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}), so "
                "their reduction never finished; pass find_unused_parameters=True if the model leaves some "
                "parameters unused")

    def _arm(self, out) -> None:
        self._armed, self._arrived, self._next = True, 0, 0
        self._done.clear()
        for b in self._buckets:
            b.pending, b.request = len(b.entries), None
        if self.find_unused_parameters:
            from convlens.autograd import _topological_order

            roots = [t for t in (out if isinstance(out, list | tuple) else [out]) if hasattr(t, "_ctx")]
            used = {id(n) for n in _topological_order([t for t in roots if t.requires_grad])}
            for i, p in enumerate(self._params):
                if id(p) not in used:
                    self._ready(i, None)

    @contextlib.contextmanager
    def no_sync(self):
        """Inside, backward accumulates local gradients without communicating (gradient accumulation);
        the first backward after the block averages the accumulated sum."""
        before = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = before

    # ---- backward: the reducer --------------------------------------------------------------------
    def _hook(self, i: int):
        def hook(grad):
            if not self._armed or i in self._done:
                return None
            return self._ready(i, grad)

        return hook

    def _ready(self, i: int, grad):
        """Parameter i's gradient for this step is known: into its slot (plus what ``.grad`` already
        accumulated); launch the full buckets in order; after the last one, finish."""
        p = self._params[i]
        bucket, slot = self._slots[i]
        if p.grad is not None and grad is not None:
            np.add(p.grad._data, grad, out=slot)
        elif p.grad is not None:
            np.copyto(slot, p.grad._data)
        elif grad is not None:
            np.copyto(slot, grad)
        else:
            slot[...] = 0
        p.grad = None  # the engine accumulates this gradient into a new array; the slot holds the sum
        self._done.add(i)
        self._arrived += 1
        bucket.pending -= 1
        t0 = time.perf_counter()
        while self._next < len(self._buckets) and self._buckets[self._next].pending == 0:
            self._launch(self._buckets[self._next])
            self._next += 1
        if self._arrived == len(self._params):
            result = self._finish(i if grad is not None else None)
            self.comm_seconds += time.perf_counter() - t0
            return result
        if self.overlap and self._next:
            from mpi4py import MPI

            MPI.Request.Testall([b.request for b in self._buckets[:self._next] if b.request is not None])
        self.comm_seconds += time.perf_counter() - t0
        return None

    def _launch(self, bucket: _Bucket) -> None:
        if self.overlap:
            from mpi4py import MPI

            bucket.request = self._group.comm.Iallreduce(MPI.IN_PLACE, bucket.buffer, op=MPI.SUM)

    def _finish(self, last: int):
        from mpi4py import MPI

        from convlens.tensor import Tensor

        n = self._group.size
        for b in self._buckets:
            if b.request is not None:
                b.request.Wait()
                b.request = None
            else:
                self._group.comm.Allreduce(MPI.IN_PLACE, b.buffer, op=MPI.SUM)
            np.divide(b.buffer, n, out=b.buffer)
        self._armed = False
        for j, p in enumerate(self._params):
            if j != last:
                p.grad = Tensor._wrap(self._slots[j][1])
        return None if last is None else self._slots[last][1]  # the engine copies it into .grad
