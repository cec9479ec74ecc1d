"""The process group: MPI through mpi4py when launched by ``mpiexec``/``srun``, else one process.

``init()`` looks at the environment the launchers set (``PMI_RANK``/``PMI_SIZE`` from MPICH's Hydra and
Slurm's PMI-2, ``PMIX_RANK`` from PMIx, ``OMPI_COMM_WORLD_SIZE`` from Open MPI); ``CONVLENS_DISTRIBUTED=1``
forces MPI, ``=0`` forbids it. Not launched: a single-process group whose collectives return their
input, so one script runs the same on a laptop and on 64 nodes.

Under MPI, ``init()`` also
- holds each process to one thread (convlens's pool and BLAS; ``threads=`` or ``CONVLENS_NUM_THREADS``
  override it), since N ranks on N cores already use every core;
- installs an exception hook that prints ``convlens: rank r of N failed: <error>`` and calls
  ``MPI_Abort``, so an error on one rank ends the whole job instead of leaving the others waiting in a
  collective forever (the same idea as ``python -m mpi4py``).

Buffers are reduced in place with MPI's own datatypes (mpi4py's buffer interface); objects are sent
as JSON, never pickled (mpi4py's lower-case methods pickle).
"""

from __future__ import annotations

import json
import os
import sys
import threading

import numpy as np

__all__ = [
    "init", "is_initialized", "is_mpi", "rank", "world_size", "barrier", "all_reduce", "broadcast",
    "all_gather_json", "broadcast_json", "abort", "get_rank", "get_world_size", "MPIUnavailableError",
]

_LAUNCH_VARS = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")
_INSTALL = 'pip install "convlens[mpi]"'


class MPIUnavailableError(RuntimeError):
    """Launched under MPI (or asked to use it) but mpi4py or an MPI library cannot be loaded."""


class _Group:
    """rank, size and the communicator (None for the single-process group)."""

    def __init__(self, comm=None):
        self.comm = comm
        self.rank = 0 if comm is None else comm.Get_rank()
        self.size = 1 if comm is None else comm.Get_size()


_group: _Group | None = None
_limits = None  # the threadpoolctl limiter holding BLAS to the ranks' thread count (kept alive)
_lock = threading.Lock()


def _launched() -> bool:
    forced = os.environ.get("CONVLENS_DISTRIBUTED", "").strip().lower()
    if forced in ("0", "false", "no", "off"):
        return False
    if forced in ("1", "true", "yes", "on"):
        return True
    return any(v in os.environ for v in _LAUNCH_VARS)


def _import_mpi():
    try:
        import mpi4py
    except ImportError:
        found = next((v for v in _LAUNCH_VARS if v in os.environ), "CONVLENS_DISTRIBUTED")
        raise MPIUnavailableError(
            f"convlens.distributed: this process was started by an MPI launcher ({found} is set) but mpi4py is "
            f"not installed; install MPI support with: {_INSTALL}") from None
    mpi4py.rc.thread_level = "serialized"  # MPI is called from one thread at a time (the training loop's)
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError) as e:
        raise MPIUnavailableError(
            f"convlens.distributed: mpi4py cannot load an MPI library ({e}); install one with {_INSTALL} or "
            "point mpi4py at the cluster's MPI (docs/distributed.md)") from None
    return MPI


def init(threads: int | None = None) -> _Group:
    """Join the job's process group (idempotent; every rank must call it). Returns the group (with
    ``rank``, ``size``, ``comm``: the mpi4py communicator or None)."""
    global _group
    with _lock:
        if _group is not None:
            return _group
        if not _launched():
            _group = _Group(None)
            return _group
        MPI = _import_mpi()
        _group = _Group(MPI.COMM_WORLD.Dup())
        _set_threads(threads)
        _install_abort_hook()
        return _group


def _set_threads(threads: int | None) -> None:
    """One convlens and one BLAS thread per rank unless ``threads``/``CONVLENS_NUM_THREADS`` say more."""
    global _limits
    from convlens import parallel

    env = os.environ.get("CONVLENS_NUM_THREADS")
    n = int(threads) if threads is not None else (int(env) if env else 1)
    parallel.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits

        _limits = threadpool_limits(limits=n, user_api="blas")
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        pass


def _install_abort_hook() -> None:
    previous = sys.excepthook

    def hook(kind, value, tb):
        if _group is None or _group.size == 1 or issubclass(kind, SystemExit):
            return previous(kind, value, tb)
        if issubclass(kind, KeyboardInterrupt):
            abort("interrupted (Ctrl-C)", code=130)
        previous(kind, value, tb)  # the traceback, then one line naming the rank, then the abort
        abort(f"{kind.__name__}: {value}")

    sys.excepthook = hook


def abort(message: str, code: int = 1) -> None:
    """Print ``convlens: rank r of N failed: message`` and end every process of the job (MPI_Abort).
    In a single process: raise SystemExit(code) after printing."""
    g = init()
    print(f"convlens: rank {g.rank} of {g.size} failed: {message}", file=sys.stderr, flush=True)
    if g.comm is None:
        raise SystemExit(code)
    g.comm.Abort(code)


def is_initialized() -> bool:
    return _group is not None


def is_mpi() -> bool:
    """Whether this process is one rank of an MPI job (even a job of one)."""
    return init().comm is not None


def rank() -> int:
    """This process's index in the job, 0 .. world_size() - 1 (0 when not launched under MPI)."""
    return init().rank


def world_size() -> int:
    """The number of processes in the job (1 when not launched under MPI)."""
    return init().size


get_rank, get_world_size = rank, world_size  # torch.distributed's names


def barrier() -> None:
    """Wait until every rank has reached this call."""
    g = init()
    if g.comm is not None:
        g.comm.Barrier()


_OPS = ("sum", "max", "min", "prod")


def _op_name(op) -> str:
    name = str(op).lower().removeprefix("reduceop.")
    if name not in _OPS:
        raise ValueError(f"all_reduce: op must be one of {', '.join(_OPS)}, got {op!r}")
    return name


def _buffer(x, who: str) -> np.ndarray:
    a = x._data if hasattr(x, "_ctx") else x
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{who}: expected a NumPy array or a convlens Tensor, got {type(x).__name__}")
    if not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"{who}: the buffer must be C-contiguous and writeable (reduced in place); "
                         "pass np.ascontiguousarray(x)")
    return a


def all_reduce(x, op: str = "sum"):
    """Combine ``x`` (a NumPy array or Tensor, contiguous) over all ranks, in place (``op``: sum, max,
    min, prod); returns ``x``. Every rank must call it with the same shape and dtype."""
    a, name = _buffer(x, "all_reduce"), _op_name(op)
    g = init()
    if g.comm is not None and g.size > 1:
        from mpi4py import MPI

        g.comm.Allreduce(MPI.IN_PLACE, a, op={"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN, "prod": MPI.PROD}[name])
    return x


def broadcast(x, src: int = 0):
    """Overwrite ``x`` on every rank with rank ``src``'s values, in place; returns ``x``."""
    a = _buffer(x, "broadcast")
    g = init()
    if g.comm is not None and g.size > 1:
        g.comm.Bcast(a, root=int(src))
    return x


def _gather_bytes(payload: bytes) -> list[bytes]:
    g = init()
    if g.comm is None or g.size == 1:
        return [payload]
    sizes = np.zeros(g.size, np.int64)
    g.comm.Allgather(np.array([len(payload)], np.int64), sizes)
    out = np.empty(int(sizes.sum()), np.uint8)
    counts = sizes.astype(np.int32)
    displs = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32)
    from mpi4py import MPI

    g.comm.Allgatherv(np.frombuffer(payload, np.uint8) if payload else np.empty(0, np.uint8),
                      [out, counts, displs, MPI.BYTE])
    return [out[d:d + c].tobytes() for d, c in zip(displs, counts)]


def all_gather_json(obj) -> list:
    """Every rank's ``obj`` (JSON-able), in rank order, on every rank."""
    return [json.loads(b) for b in _gather_bytes(json.dumps(obj).encode())]


def broadcast_json(obj, src: int = 0):
    """Rank ``src``'s ``obj`` (JSON-able) on every rank."""
    return all_gather_json(obj if rank() == src else None)[src]
