"""Data parallelism over batch chunks with a small thread pool.

NumPy releases the GIL inside copies, ufuncs and BLAS calls, so the im2col copy, the GEMM and the
col2im adds of different batch chunks can run at the same time in ordinary Python threads. While the
pool runs, BLAS is held to one thread per worker (threadpoolctl), so the two levels of parallelism do
not fight over the cores; outside the pool BLAS keeps its own threads (e.g. for one big Linear layer).

`convlens.set_num_threads(n)` sets the pool size (default: the CPUs this process may use, at most 8, or
the ``CONVLENS_NUM_THREADS`` environment variable).
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

_pool: ThreadPoolExecutor | None = None
_controller = None


def _default_threads() -> int:
    env = os.environ.get("CONVLENS_NUM_THREADS")
    if env:
        return max(1, int(env))
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


_threads = _default_threads()


def set_num_threads(n: int) -> None:
    """Number of threads convlens uses for its own parallel work (like `torch.set_num_threads`)."""
    global _threads, _pool
    if int(n) < 1:
        raise ValueError(f"set_num_threads: expected a positive number of threads, got {n!r}")
    _threads = int(n)
    if _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None


def get_num_threads() -> int:
    return _threads


_local = threading.local()


@contextlib.contextmanager
def serial():
    """Within this block, `run` calls its ranges one after another in the current thread (for a
    thread that is itself one of several running slices of a batch: convlens.train.data_parallel)."""
    before = getattr(_local, "serial", False)
    _local.serial = True
    try:
        yield
    finally:
        _local.serial = before


def in_serial() -> bool:
    """Whether the calling thread is inside `serial()`."""
    return getattr(_local, "serial", False)


def blas_single_thread():
    """A context in which BLAS uses one thread (ours provide the parallelism)."""
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController()
        except ImportError:  # without threadpoolctl the pool still works, BLAS threads may oversubscribe
            _controller = False
    return _controller.limit(limits=1, user_api="blas") if _controller else contextlib.nullcontext()


def split(n: int, parts: int) -> list[tuple[int, int]]:
    """[lo, hi) ranges cutting range(n) into `parts` nearly equal runs."""
    parts = max(1, min(parts, n))
    edges = [n * i // parts for i in range(parts + 1)]
    return [(edges[i], edges[i + 1]) for i in range(parts)]


# Below this many bytes a compiled kernel is not worth splitting over threads even when the hand-off is
# OpenMP's (a few µs, kernels/launch.py).
MIN_BYTES_COMPILED = 256 << 10

# Below this many bytes an array operation is not worth handing to the pool: a hand-off costs ~0.2 ms
# on the 2-vCPU development machine (a no-op `run` over two ranges: 180 µs). Measured: LeNet-5 at
# batch 64 in one pass ran at 7,362 img/s with a 256 KiB threshold and 9,588 with 4 MiB.
MIN_BYTES = 4 << 20


def batch_ranges(a, nbytes: int | None = None) -> list[tuple[int, int]]:
    """Ranges over the first axis of `a` (an array, or a length): one per thread when the work touches
    at least MIN_BYTES (``nbytes``, by default the array's size), else one."""
    n, size = (a, nbytes) if isinstance(a, int) else (a.shape[0], a.nbytes if nbytes is None else nbytes)
    return split(n, _threads if size >= MIN_BYTES else 1)


def run(fn, ranges) -> list:
    """Call ``fn(lo, hi)`` for every range, in parallel when there are several and threads to spare.
    The calling thread takes the first range itself: one hand-off fewer (a hand-off costs tens of µs,
    which adds up over the few dozen parallel steps of a small network's training step)."""
    ranges = list(ranges)
    if _threads == 1 or len(ranges) == 1 or getattr(_local, "serial", False):
        return [fn(lo, hi) for lo, hi in ranges]
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_threads, thread_name_prefix="convlens")
    with blas_single_thread():
        rest = [_pool.submit(fn, lo, hi) for lo, hi in ranges[1:]]
        try:
            first = fn(*ranges[0])
        except BaseException:
            for f in rest:  # let the other ranges finish before the error leaves (they write shared arrays)
                f.exception()
            raise
        return [first] + [f.result() for f in rest]


def compiled_ranges(n: int, nbytes: int) -> list[tuple[int, int]]:
    """Ranges over `n` items for a compiled kernel that touches `nbytes`: one per thread when that is at
    least MIN_BYTES_COMPILED (where the kernels' OpenMP launcher is there) or MIN_BYTES (where only the
    Python pool is), else one."""
    from convlens.kernels import launch

    return split(n, _threads if nbytes >= (MIN_BYTES_COMPILED if launch.available() else MIN_BYTES) else 1)


def run_compiled(parts, kernel, args: tuple, ranges) -> None:
    """``kernel(*args, lo, hi)`` for every range, for a compiled (numba, nogil) kernel that writes its
    results into arrays among `args`. Several ranges run at once: through `parts(*args, edges)`, the
    kernel's OpenMP launcher (kernels/launch.py), where numba has a thread-safe threading layer, else
    on the Python pool (`run`)."""
    ranges = list(ranges)
    if _threads == 1 or len(ranges) == 1 or in_serial():
        for lo, hi in ranges:
            kernel(*args, lo, hi)
        return
    from convlens.kernels import launch

    if launch.available():
        launch.set_threads(_threads)
        parts(*args, launch.edges(ranges))
    else:
        run(lambda lo, hi: kernel(*args, lo, hi), ranges)
