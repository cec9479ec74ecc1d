"""convlens: convolutional neural networks you can use and see through.

A NumPy engine with PyTorch's names and conventions (``convlens.tensor``, ``convlens.nn``,
``convlens.nn.functional``, ``convlens.optim``), data sets and loaders (``convlens.data``), a model zoo
(``convlens.models``), training and checkpoints, and a local web app that shows every layer at work.
"""

import sys as _sys

from convlens import _cli_start, return_types  # noqa: F401 - _cli_start first: see its docstring
from convlens.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from convlens.devices import accelerator, backends, cuda, device
from convlens.functions import max, maximum, min, minimum
from convlens.kernels import allocator as _allocator
from convlens.ops import cat, concatenate, stack
from convlens.tensor import (
    Generator,
    Tensor,
    arange,
    as_dtype,
    bool_,
    default_generator,
    float16,
    float32,
    float64,
    from_numpy,
    get_rng_state,
    initial_seed,
    int32,
    int64,
    manual_seed,
    ones,
    rand,
    randn,
    seed,
    set_rng_state,
    tensor,
    uint8,
    zeros,
)

_allocator.keep_freed_memory()  # freed arrays stay for the next step: kernels/allocator.py

__version__ = "0.1.0"

# ---- the torch-shaped surface of issue 11: factories, functions, dtypes, autograd ----------------------
from convlens import autograd, functions  # noqa: E402
from convlens.autograd import inference_mode  # noqa: E402
from convlens.dtypes import bool_ as bool  # noqa: E402,A001 - torch's names
from convlens.dtypes import (  # noqa: E402
    double,
    finfo,
    get_default_dtype,
    half,
    iinfo,
    int8,
    int16,
    long,
    set_default_dtype,
    short,
)
from convlens.dtypes import float32 as float  # noqa: E402,A001
from convlens.dtypes import int32 as int  # noqa: E402,A001
from convlens.factories import (  # noqa: E402
    as_tensor,
    bernoulli,
    empty,
    empty_like,
    eye,
    full,
    full_like,
    is_tensor,
    linspace,
    logspace,
    normal,
    ones_like,
    rand_like,
    randint,
    randint_like,
    randn_like,
    randperm,
    zeros_like,
)
from convlens.functions import (  # noqa: E402
    _METHODS,
    broadcast_shapes,
    broadcast_tensors,
    cdist,
    einsum,
    hstack,
    meshgrid,
    numel,
    std_mean,
    var_mean,
    vstack,
    where,
)

# torch.<name>(input, ...) for the Tensor methods (convlens.sum(x, 1) is x.sum(1))
for _name in _METHODS:
    globals()[_name] = getattr(functions, _name)
concat = cat
is_floating_point = Tensor.is_floating_point

# `import convlens.cuda` (and friends) work as for torch's modules of the same names
for _name, _module in (("cuda", cuda), ("accelerator", accelerator), ("backends", backends)):
    _sys.modules[f"convlens.{_name}"] = _module

__all__ = [
    "Tensor", "Generator", "initial_seed", "seed", "tensor", "from_numpy", "zeros", "ones", "randn", "rand", "arange", "cat", "concatenate",
    "stack", "no_grad", "enable_grad", "is_grad_enabled", "set_grad_enabled", "manual_seed",
    "default_generator", "get_rng_state", "set_rng_state", "as_dtype", "float16", "float32", "float64",
    "int32", "int64", "uint8", "bool_", "device", "cuda", "accelerator", "backends", "return_types",
    "max", "min", "maximum", "minimum", "summary", "save_checkpoint", "load_checkpoint", "__version__",
    "autograd", "inference_mode", "float", "double", "half", "long", "int", "bool", "int8", "int16", "short",
    "finfo", "iinfo", "get_default_dtype", "set_default_dtype", "as_tensor", "bernoulli", "empty",
    "empty_like", "eye", "full", "full_like", "is_tensor", "linspace", "logspace", "normal", "ones_like",
    "rand_like", "randint", "randint_like", "randn_like", "randperm", "zeros_like", "where", "var_mean",
    "std_mean", "numel", "broadcast_shapes", "broadcast_tensors", "meshgrid", "hstack", "vstack", "cdist",
    "einsum", "concat", "is_floating_point",
    "save", "load", "utils", "vision",
    "set_num_threads", "get_num_threads",
]
__all__ += list(_METHODS)


def __getattr__(name):
    # Heavier pieces load on first use so that `import convlens` stays fast.
    if name == "summary":
        from convlens.summary import summary

        return summary
    if name in ("save_checkpoint", "load_checkpoint"):
        from convlens import checkpoint

        return getattr(checkpoint, name)
    if name in ("set_num_threads", "get_num_threads"):  # torch.set_num_threads / get_num_threads
        from convlens import parallel

        return getattr(parallel, name)
    if name in ("save", "load"):
        from convlens import serialization

        return getattr(serialization, name)
    if name in ("nn", "optim", "data", "models", "train", "utils", "vision"):
        import importlib

        return importlib.import_module(f"convlens.{name}")
    raise AttributeError(f"module 'convlens' has no attribute {name!r}")
