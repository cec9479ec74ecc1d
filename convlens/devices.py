"""Devices: convlens computes on the CPU only, with PyTorch's device vocabulary so that device-agnostic
code (``device = torch.device("cuda" if torch.cuda.is_available() else "cpu")``) runs unchanged.

``convlens.device``, ``convlens.cuda``, ``convlens.accelerator`` and ``convlens.backends`` answer as
PyTorch does on a machine without a GPU; moving a tensor or module to a device other than the CPU is a
clear error rather than a silent no-op.
"""

from __future__ import annotations

import types


class device:
    """``device("cpu")``, ``device("cuda:0")``, ``device("cuda", 0)``, as ``torch.device``. Only the CPU
    can hold tensors; other devices can be named (e.g. compared against) but not moved to."""

    __slots__ = ("type", "index")

    def __init__(self, type: str | device, index: int | None = None):  # noqa: A002 - torch's name
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        if not isinstance(type, str):
            raise TypeError(f"device(): expected a string such as 'cpu' or 'cuda:0', got {type!r}")
        kind, _, number = type.partition(":")
        if number:
            if index is not None or not number.isdigit():
                raise ValueError(f"device(): invalid device string {type!r}; expected e.g. 'cpu' or 'cuda:0'")
            index = int(number)
        if kind not in ("cpu", "cuda", "mps", "xpu", "meta", "hip", "xla"):
            raise ValueError(f"device(): unknown device type {kind!r}; convlens runs on 'cpu'")
        self.type, self.index = kind, index

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        return f"device(type={self.type!r})" if self.index is None else \
            f"device(type={self.type!r}, index={self.index})"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))


CPU = device("cpu")


def check_device(dev, where: str) -> None:
    """Raise a one-line error unless `dev` (a device, a string or None) is the CPU."""
    if dev is None:
        return
    if not isinstance(dev, device):
        dev = device(dev if isinstance(dev, str) else str(dev))
    if dev.type != "cpu":
        raise RuntimeError(
            f"{where}: convlens runs on the CPU only, cannot move to {str(dev)!r} "
            "(use device = convlens.device('cpu'); convlens.cuda.is_available() is False)"
        )


def is_device_like(value) -> bool:
    """True for what PyTorch's ``.to()`` reads as a device: a device, or a string naming one."""
    if isinstance(value, device):
        return True
    return isinstance(value, str) and value.partition(":")[0] in (
        "cpu", "cuda", "mps", "xpu", "meta", "hip", "xla")


def _false(*args, **kwargs) -> bool:
    return False


def _zero(*args, **kwargs) -> int:
    return 0


def _nothing(*args, **kwargs) -> None:
    return None


def _no_gpu(*args, **kwargs):
    raise RuntimeError("convlens runs on the CPU only: there is no CUDA device")


cuda = types.ModuleType("convlens.cuda", "No GPUs: answers as torch.cuda does on a machine without CUDA.")
cuda.is_available = _false
cuda.device_count = _zero
cuda.is_initialized = _false
cuda.manual_seed = cuda.manual_seed_all = cuda.synchronize = cuda.empty_cache = _nothing
cuda.current_device = cuda.get_device_name = _no_gpu

accelerator = types.ModuleType("convlens.accelerator", "No accelerators: as torch.accelerator on a CPU.")
accelerator.is_available = _false
accelerator.device_count = _zero
accelerator.current_accelerator = _nothing
accelerator.synchronize = _nothing

backends = types.ModuleType("convlens.backends", "torch.backends' flags that CPU-only code reads or sets.")
backends.mps = types.SimpleNamespace(is_available=_false, is_built=_false)
backends.cuda = types.SimpleNamespace(is_built=_false)
# cuDNN flags are accepted and ignored (there is no cuDNN); convlens is deterministic on the CPU
backends.cudnn = types.SimpleNamespace(benchmark=False, deterministic=False, enabled=False, is_available=_false)
