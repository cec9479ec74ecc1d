"""Reusable scratch arrays for the convolution's large temporaries.

A fresh multi-megabyte NumPy array costs a page fault per 4 KiB page the first time it is written
(about 0.4 µs each here). The convolution copies its im2col blocks, d cols blocks and (direct.py) its
gridded dY into the same shapes every step, so it takes them from here and hands them back as soon
as each is used: the pages stay mapped. Measured, interleaved: LeNet-5 at batch 256 21 % faster, the
ConvNetJS net at 64 17 %, the VGG-style net 9 % (docs/performance.md).

Only arrays that never escape to the user go through here. At most `KEEP` spare arrays per shape and
`MAX_BYTES` in all are held, so memory between steps stays below what one step already needed.
"""

from __future__ import annotations

import threading

import numpy as np

KEEP = 2
MAX_BYTES = 256 << 20
_spare: dict[tuple, list[np.ndarray]] = {}
_lock = threading.Lock()  # batch slices may run ops in several threads at once


def take(shape, dtype) -> np.ndarray:
    """An uninitialised array of `shape` and `dtype`: a spare one when there is one, else a new one."""
    key = (tuple(shape), np.dtype(dtype).str)
    with _lock:
        stack = _spare.get(key)
        if stack:
            return stack.pop()
    return np.empty(shape, dtype=dtype)


def give(*arrays) -> None:
    """Hand arrays back for reuse; the caller must hold no other reference to them (None is skipped)."""
    for a in arrays:
        if a is None or a.base is not None or not a.flags.c_contiguous:
            continue  # views cannot be reused safely: their base may be referenced elsewhere
        with _lock:
            stack = _spare.setdefault((a.shape, a.dtype.str), [])
            held = sum(x.nbytes for spares in _spare.values() for x in spares)
            if len(stack) < KEEP and held + a.nbytes <= MAX_BYTES and all(s is not a for s in stack):
                stack.append(a)


def clear() -> None:
    """Drop every spare array (frees the memory)."""
    with _lock:
        _spare.clear()
