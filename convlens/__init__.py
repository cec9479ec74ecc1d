"""convlens: convolutional neural networks you can use and see through.

A NumPy engine with PyTorch's names and conventions (``convlens.tensor``, ``convlens.nn``,
``convlens.nn.functional``, ``convlens.optim``), data sets and loaders (``convlens.data``), a model zoo
(``convlens.models``), training and checkpoints, and a local web app that shows every layer at work.
"""

import sys as _sys

from convlens import return_types
from convlens.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from convlens.devices import accelerator, backends, cuda, device
from convlens.functions import max, maximum, min, minimum
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

__version__ = "0.1.0"

# `import convlens.cuda` (and friends) work as for torch's modules of the same names
for _name, _module in (("cuda", cuda), ("accelerator", accelerator), ("backends", backends)):
    _sys.modules[f"convlens.{_name}"] = _module

__all__ = [
    "Tensor", "Generator", "initial_seed", "seed", "tensor", "from_numpy", "zeros", "ones", "randn", "rand", "arange", "cat", "concatenate",
    "stack", "no_grad", "enable_grad", "is_grad_enabled", "set_grad_enabled", "manual_seed",
    "default_generator", "get_rng_state", "set_rng_state", "as_dtype", "float16", "float32", "float64",
    "int32", "int64", "uint8", "bool_", "device", "cuda", "accelerator", "backends", "return_types",
    "max", "min", "maximum", "minimum", "summary", "save_checkpoint", "load_checkpoint", "__version__",
    "save", "load", "utils", "vision",
]


def __getattr__(name):
    # Heavier pieces load on first use so that `import convlens` stays fast.
    if name == "summary":
        from convlens.summary import summary

        return summary
    if name in ("save_checkpoint", "load_checkpoint"):
        from convlens import checkpoint

        return getattr(checkpoint, name)
    if name in ("save", "load"):
        from convlens import serialization

        return getattr(serialization, name)
    if name in ("nn", "optim", "data", "models", "train", "utils", "vision"):
        import importlib

        return importlib.import_module(f"convlens.{name}")
    raise AttributeError(f"module 'convlens' has no attribute {name!r}")
