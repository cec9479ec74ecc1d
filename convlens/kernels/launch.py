"""Launching compiled kernels over ranges of their work on OpenMP threads (numba's `prange`).

convlens's kernels take the range of work they do as their last two arguments, ``kernel(*args, lo,
hi)``. `parallel.run` hands such ranges to Python threads, and on a 2-vCPU machine one hand-off through
`ThreadPoolExecutor` — a future, a lock, a thread woken by the OS, the GIL taken back — costs 75–130
µs, as much as a small layer's whole forward pass. A kernel's *parts* launcher instead calls it inside a
numba parallel loop over ranges,

    @numba.njit(nogil=True, parallel=True, cache=True)
    def kernel_parts(*args, edges):         # written out per kernel, next to it
        for p in numba.prange(edges.size - 1):
            kernel(*args, edges[p], edges[p + 1])

and OpenMP's threads, which wait spinning for a moment before they sleep, take a part in 2–5 µs
(measured: a no-op over two ranges, 2.4 µs against 128 µs through the pool). The launchers are
module-level functions because numba caches only those on disk (a launcher made by a closure over the
kernel was recompiled in every process, 0.4 s each), and a parallel loop takes no tuple arguments, so
kernels with compile-time tile shapes choose the shape inside the loop.

Only numba's thread-safe layers (OpenMP, TBB) are used: convlens may be called from several threads at
once (data-loader threads, a web server's), and the "workqueue" layer aborts the process when two
threads launch together. Without one (no libgomp on the machine, or ``NUMBA_THREADING_LAYER=workqueue``)
`available()` is False and `parallel.run_compiled` uses the Python pool instead. GNU OpenMP is not
fork-safe: a process forked after convlens has trained must not call convlens's kernels (convlens's
own data-loader workers are threads; ``CONVLENS_NUM_THREADS=1`` keeps OpenMP out altogether). Once
kernels run on OpenMP, NumPy's BLAS is held to one thread (`hold_blas` says why).
"""

from __future__ import annotations

import numba
import numpy as np

_available: bool | None = None
_blas_held = False


def available() -> bool:
    """Whether numba has a thread-safe threading layer (OpenMP or TBB) to launch kernels on."""
    global _available
    if _available is None:
        layer = str(numba.config.THREADING_LAYER).lower()
        names = {"omp": ("omp",), "tbb": ("tbb",)}.get(layer, ("tbb", "omp"))
        found = False
        if layer != "workqueue":
            for name in names:
                try:
                    __import__(f"numba.np.ufunc.{name}pool")
                    found = True
                    break
                except ImportError:
                    continue
        _available = found
    return _available


def edges(ranges: list) -> np.ndarray:
    """[lo₀, lo₁, …, hi_last] of consecutive ranges, the `edges` a parts launcher takes."""
    return np.array([lo for lo, _ in ranges] + [ranges[-1][1]], dtype=np.int64)


def set_threads(threads: int) -> None:
    """numba's thread count for launches from the calling thread (numba's setting is per thread); on the
    first launch, BLAS is held to one thread (see `hold_blas`)."""
    if not _blas_held:
        hold_blas()
    threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    if numba.get_num_threads() != threads:
        numba.set_num_threads(threads)


def hold_blas() -> None:
    """Hold NumPy's BLAS to one thread for the rest of the process, once convlens launches kernels on
    OpenMP threads. Two thread pools that both spin while they wait for work fight over the cores:
    with OpenBLAS's threads awake beside OpenMP's, LeNet-5's plain training loop at batch 64 ran at
    2,900–3,100 img/s on 2 vCPUs, and 10,200 with OpenBLAS held to one thread (ConvNetJS net 1,230 →
    2,900, VGG-style 256 → 345). convlens's big products are split over its own threads anyway (im2col
    and Winograd chunks, parallel.py); a user's own NumPy matmul after this runs on one thread
    (``CONVLENS_NUM_THREADS=1`` leaves BLAS alone: nothing is launched on OpenMP then)."""
    global _blas_held
    _blas_held = True
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # threadpoolctl is a dependency; without it BLAS keeps its threads
        return
    threadpool_limits(limits=1, user_api="blas")
