"""One matrix product split over the OpenMP threads: NumPy's own BLAS called from numba's threads.

    C = A · B, row-major, computed as C[lo:hi] = A[lo:hi] · B (rows) or C[:, lo:hi] = A · B[:, lo:hi]

Why: single-image inference has one GEMM per convolution and no batch to split (im2col.py's
`correlate_channels_first`), and inside a model BLAS is held to one thread (launch.hold_blas). Handing
halves to the Python pool costs ~0.1 ms and fights the OpenMP threads that still spin after the last
kernel; letting BLAS have its own two threads made the airbench-style net's single-image pass 10 → 16
ms for the same reason. Here the halves run on the OpenMP threads themselves, each a one-thread BLAS
call: D's 256 → 256 layer on 7×7 (256 × 2304 · 2304 × 49) 837 → 497 µs on 2 AVX2 cores.

Which operand is split: each part packs the whole of the other, so the split goes along the longer of
A's rows and B's columns (the smaller operand is the one packed twice).

The routine is NumPy's bundled OpenBLAS through its ILP64 CBLAS interface (``scipy_cblas_sgemm64_`` in
NumPy 2's wheels, ``cblas_sgemm64_`` in 1.26's), found with threadpoolctl and called by address: the
address is an integer argument and `_gemm` an intrinsic that calls it, because a ctypes function in
compiled code keeps numba from caching the kernel (0.8 s of compiling in every process). Where NumPy's
BLAS is another library (MKL, Accelerate) or the symbol is missing, `available()` is False and `matmul`
is np.matmul.
"""

from __future__ import annotations

import ctypes

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from convlens import parallel
from convlens.kernels import launch

# A product of fewer multiply-adds stays one call: the split saves little below this (64 × 216 · 216 ×
# 961, 13 M: 344 → 269 µs; 8 M: 215 → 170 µs) and a launch costs a few µs.
MIN_SPLIT = 4_000_000
_SYMBOLS = {np.float32: ("scipy_cblas_sgemm64_", "cblas_sgemm64_"),
            np.float64: ("scipy_cblas_dgemm64_", "cblas_dgemm64_")}
_addresses: dict | None = None


def _find() -> dict:
    """{dtype: address of NumPy's ILP64 cblas_?gemm} for the BLAS NumPy itself loaded."""
    found = {}
    try:
        from threadpoolctl import threadpool_info

        libs = [i["filepath"] for i in threadpool_info() if i.get("internal_api") == "openblas"]
        for path in libs[:1]:
            lib = ctypes.CDLL(path)
            for dtype, names in _SYMBOLS.items():
                for name in names:
                    if hasattr(lib, name):
                        found[dtype] = ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
                        break
    except (ImportError, OSError):
        pass
    return found


def available(dtype) -> bool:
    """Whether products of this dtype can be split over the OpenMP threads."""
    global _addresses
    if _addresses is None:
        np.dot(np.ones((2, 2)), np.ones((2, 2)))  # make sure NumPy's BLAS is loaded before looking
        _addresses = _find()
    return np.dtype(dtype).type in _addresses and launch.available()


@intrinsic
def _gemm(typingctx, address, m, n, k, a, lda, b, ldb, c, ldc, one):
    """cblas_?gemm(RowMajor, NoTrans, NoTrans, m, n, k, 1, a, lda, b, ldb, 0, c, ldc) at `address`;
    pointers and sizes are 64-bit integers, `one` a 1 of the arrays' float type."""
    sig = types.void(address, m, n, k, a, lda, b, ldb, c, ldc, one)

    def codegen(context, builder, signature, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        real = ir.FloatType() if signature.args[-1] == types.float32 else ir.DoubleType()
        ptr = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, i64, i64, i64, real, ptr, i64, ptr, i64, real, ptr, i64])
        addr, m_, n_, k_, a_, lda_, b_, ldb_, c_, ldc_, one_ = args
        fn = builder.inttoptr(addr, fnty.as_pointer())
        p = [builder.inttoptr(v, ptr) for v in (a_, b_, c_)]
        builder.call(fn, [i32(101), i32(111), i32(111), m_, n_, k_, one_, p[0], lda_, p[1], ldb_,
                          real(0.0), p[2], ldc_])  # 101 row-major, 111 no transpose
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(nogil=True, parallel=True, cache=True)
def _gemm_parts(address, a, b, c, by_rows, edges):  # pragma: no cover - compiled
    m, k = a.shape
    n = b.shape[1]
    item = a.itemsize
    lda, ldb, ldc = a.strides[0] // item, b.strides[0] // item, c.strides[0] // item
    one = a.dtype.type(1.0)
    pa, pb, pc = np.int64(a.ctypes.data), np.int64(b.ctypes.data), np.int64(c.ctypes.data)  # signed sums
    for p in numba.prange(edges.size - 1):
        lo, hi = edges[p], edges[p + 1]
        if by_rows:  # C[lo:hi] = A[lo:hi] · B
            _gemm(address, hi - lo, n, k, pa + lo * lda * item, lda, pb, ldb, pc + lo * ldc * item, ldc, one)
        else:  # C[:, lo:hi] = A · B[:, lo:hi]
            _gemm(address, m, hi - lo, k, pa, lda, pb + lo * item, ldb, pc + lo * item, ldc, one)


def _row_major(x: np.ndarray) -> bool:
    return x.ndim == 2 and x.strides[1] == x.itemsize and x.strides[0] >= x.shape[1] * x.itemsize


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = a · b for 2-D arrays of one float dtype, split over the threads when the product is big
    enough (`MIN_SPLIT`) and the operands are row-major; otherwise one np.matmul."""
    m, k = a.shape
    n = b.shape[1]
    threads = parallel.get_num_threads()
    if (threads > 1 and m * n * k >= MIN_SPLIT and not parallel.in_serial() and a.dtype == b.dtype == out.dtype
            and available(a.dtype) and all(_row_major(x) for x in (a, b, out))):
        by_rows = m >= n
        parts = min(threads, m if by_rows else n)
        if parts > 1:
            launch.set_threads(threads)  # also holds BLAS to one thread per call
            ranges = parallel.split(m if by_rows else n, parts)
            _gemm_parts(_addresses[a.dtype.type], a, b, out, by_rows, launch.edges(ranges))
            return out
    return np.matmul(a, b, out=out)
