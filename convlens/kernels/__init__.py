"""The compiled machinery behind convlens.nn.functional: every kernel that is about speed, in one place.

nn/functional/ holds each op's math (definition, formula, backward) and picks an algorithm; the code
that runs it fast is here:

    simd.py            eight-lane vector type and register-tile intrinsics for numba kernels
    direct.py          direct convolution in register tiles (driver); direct_kernels.py its numba loops
    polyphase.py       strided convolutions with few channels as stride-1 ones on the input's phases
    im2col.py          im2col + GEMM convolution, its weight and input gradients, batch chunking; the
                       channels-first form for one image (single-image inference)
    col2im.py          compiled scatter-add of d cols back onto the padded input
    winograd.py        Winograd F(2×2, 3×3) for stride-1 3×3 layers with many channels, forward and both
                       gradients; winograd_kernels.py its data transforms compiled
    fastpool.py        2×2 stride-2 pooling (driver); pool_kernels.py its numba loops
    blockpool.py       max pooling over disjoint blocks (kernel = stride) in 1, 2 and 3-d
    batchnorm.py       batch norm statistics, normalisation and backward, both memory orders
    elementwise.py     element-wise ops of the step compiled (ReLU both ways, split over the threads)
    gelu.py            GELU's exact forward in one compiled pass (float32: a rational erf that vectorises)
    workspace.py       reusable scratch arrays for the large temporaries
    special.py         special functions NumPy lacks (erf, for GELU) as numba ufuncs
    launch.py          compiled kernels' ranges on OpenMP threads (each kernel's `*_parts` launcher)
    allocator.py       glibc malloc settings that keep freed memory in the process

Thread-level parallelism is convlens/parallel.py: `run_compiled` for the compiled kernels (OpenMP
through launch.py where numba has it), `run` (a Python thread pool) for chunks of NumPy work.
Measured thresholds for every choice: docs/performance.md.
"""
