"""PyTorch weights both ways, as safetensors files (never pickle).

- `read_state_dict(path)`: a state_dict that PyTorch saved with ``safetensors.torch.save_file(
  model.state_dict(), path)``, as NumPy arrays (float16/bfloat16 become float32).
- `load_torch_weights(model, path)`: the same, loaded into a convlens model whose state_dict keys are
  the torch model's (zoo and spec models use torch.nn's names and layouts: conv weights
  (out, in/groups, *k), Linear (out, in), BatchNorm weight/bias/running_mean/running_var/
  num_batches_tracked). Missing, unexpected and mis-shaped keys are listed in one line.
- `save_torch_weights(model, path)`: the model's state_dict as a safetensors file that
  ``torch.nn.Module.load_state_dict(safetensors.torch.load_file(path))`` accepts as-is: float32
  weights and buffers, ``num_batches_tracked`` as a 0-d int64, as torch keeps it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["read_state_dict", "load_torch_weights", "save_torch_weights", "WeightsError"]


class WeightsError(ValueError):
    """A weights file that cannot be read or does not fit the model; the message names the file and keys."""


def read_state_dict(path) -> dict[str, np.ndarray]:
    """``{key: array}`` from a safetensors file (PyTorch's or convlens's)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    if path.suffix in (".pt", ".pth", ".bin", ".ckpt"):
        raise WeightsError(f"{path}: a PyTorch pickle; convlens never unpickles. In Python with torch: "
                           "safetensors.torch.save_file(model.state_dict(), 'model.safetensors')")
    out = {}
    try:
        with safe_open(str(path), framework="numpy") as f:
            for key in f.keys():
                out[key] = f.get_tensor(key)
    except Exception as e:  # SafetensorError, bf16 without NumPy support, OSError
        if "bf16" in str(e).lower() or "bfloat16" in str(e).lower():
            return _read_bf16(path)
        raise WeightsError(f"{path}: not a readable safetensors file ({type(e).__name__}: "
                           f"{str(e).splitlines()[0] if str(e) else ''})") from None
    return {k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in out.items()}


def _read_bf16(path: Path) -> dict[str, np.ndarray]:
    """bfloat16 tensors, which NumPy lacks: the header gives offsets; bf16 is float32's top 16 bits."""
    import json
    import struct

    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    kinds = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
             "U8": np.uint8, "BOOL": np.bool_}
    out = {}
    for key, meta in header.items():
        if key == "__metadata__":
            continue
        lo, hi = meta["data_offsets"]
        raw = body[lo:hi]
        if meta["dtype"] == "BF16":
            bits = np.frombuffer(raw, np.uint16).astype(np.uint32) << 16
            arr = bits.view(np.float32)
        elif meta["dtype"] in kinds:
            arr = np.frombuffer(raw, kinds[meta["dtype"]])
        else:
            raise WeightsError(f"{path}: tensor {key!r} has dtype {meta['dtype']}, which convlens cannot read")
        out[key] = arr.reshape(meta["shape"]).astype(np.float32) if arr.dtype.kind == "f" else arr.reshape(meta["shape"]).copy()
    return out


def load_torch_weights(model, source, strict: bool = True):
    """Load a PyTorch state_dict (a safetensors path or a dict of arrays) into `model`; returns `model`.
    Keys and shapes must match (`strict`); one WeightsError lists every difference."""
    where = str(source) if not isinstance(source, dict) else "state_dict"
    arrays = read_state_dict(source) if not isinstance(source, dict) else dict(source)
    own = model.state_dict()
    missing = [k for k in own if k not in arrays]
    unexpected = [k for k in arrays if k not in own]
    shapes = [f"{k} {tuple(arrays[k].shape)} in the file, {tuple(own[k].shape)} in the model" for k in own
              if k in arrays and tuple(np.shape(arrays[k])) != tuple(own[k].shape)
              and not (k.endswith("num_batches_tracked") and np.size(arrays[k]) == 1)]
    problems = []
    if missing and strict:
        problems.append(f"missing keys {_few(missing)}")
    if unexpected and strict:
        problems.append(f"unexpected keys {_few(unexpected)}")
    if shapes:
        problems.append(f"shape mismatch: {_few(shapes)}")
    if problems:
        raise WeightsError(f"{where}: does not fit {type(model).__name__} ({'; '.join(problems)}); "
                           f"the model's keys start {_few(list(own))}")
    fixed = {}
    for k, v in arrays.items():
        if k not in own:
            continue
        v = np.asarray(v)
        if k.endswith("num_batches_tracked"):
            v = np.asarray(v.reshape(()), np.int64)
        elif v.dtype.kind == "f":
            v = v.astype(own[k]._data.dtype if hasattr(own[k], "_data") else np.float32)
        fixed[k] = v
    model.load_state_dict(fixed, strict=strict)
    return model


def _few(items, n: int = 4) -> str:
    items = list(items)
    shown = ", ".join(map(str, items[:n]))
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def save_torch_weights(model, path) -> Path:
    """Write `model`'s state_dict as a safetensors file for ``torch.nn.Module.load_state_dict``."""
    from safetensors.numpy import save_file

    path = Path(path)
    tensors = {}
    for key, value in model.state_dict().items():
        a = np.asarray(getattr(value, "_data", value))
        if key.endswith("num_batches_tracked"):
            a = np.array(int(a.reshape(-1)[0]) if a.size else 0, np.int64)  # torch: a 0-d int64 tensor
        elif a.dtype.kind == "f":
            a = a.astype(np.float32)
        tensors[key] = np.ascontiguousarray(a) if a.ndim else np.array(a)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        save_file(tensors, str(tmp), metadata={"format": "pt", "producer": "convlens"})
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
