"""Keep freed memory in the process for the next training step (glibc malloc settings).

A training step allocates the same large arrays every time: activations kept for backward, their
gradients, padded copies. glibc hands any block over 32 MiB (and, by its dynamic threshold, many
smaller ones) straight back to the kernel when NumPy frees it, so the next step's array is fresh memory
that the kernel must fault in and zero page by page — and where NumPy asks for transparent huge pages
(it does for arrays of 4 MiB and more) the kernel may first compact memory to find them. Measured on
the 2-vCPU development machine (AMD EPYC, Linux): allocating and filling a 75 MiB array took 13 ms with
ready huge pages, 45–60 ms with small pages and 180–260 ms while the kernel compacted; the fill alone,
on memory the process already holds, 3 ms. In the airbench-style net at batch 512 (benchmark case D)
the kernel's page zeroing (`clear_page_erms`) was 22 % of all CPU samples, and a step spent 0.7–1.5 s
of system time; with the settings below, 0.1 s.

So, on import, convlens asks glibc (`mallopt`) to serve every block from its heap (`M_MMAP_MAX` = 0),
to share one heap between threads (`M_ARENA_MAX` = 1: the pool's workers free what the main thread
allocated and the other way round) and to keep up to 2 GiB of free memory at the top of the heap
(`M_TRIM_THRESHOLD`), so that what one step frees, the next step reuses without faulting. This is the
CPU counterpart of PyTorch's CUDA caching allocator (on the CPU PyTorch suggests preloading jemalloc or
tcmalloc for the same reason). The price: memory a process has freed stays counted in its resident
size until it exits or reuses it; peak memory is unchanged (docs/performance.md).

Set ``CONVLENS_KEEP_FREED_MEMORY=0`` before importing convlens to leave malloc as it is. On systems
without glibc (macOS, Windows, musl) nothing is changed.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8  # glibc's <malloc.h>
KEEP_TOP_BYTES = (2 << 30) - 1  # mallopt takes an int
ENV = "CONVLENS_KEEP_FREED_MEMORY"

configured = False  # whether keep_freed_memory changed the settings in this process


def keep_freed_memory() -> bool:
    """Apply the settings above once; returns whether they are in force."""
    global configured
    if configured:
        return True
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only (musl has no mallopt options to speak of)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    configured = bool(mallopt(M_MMAP_MAX, 0) and mallopt(M_ARENA_MAX, 1)
                      and mallopt(M_TRIM_THRESHOLD, KEEP_TOP_BYTES))
    return configured
