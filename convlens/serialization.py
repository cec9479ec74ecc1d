"""``convlens.save(obj, f)`` / ``convlens.load(f, weights_only=True, map_location=None)``, as torch's,
without pickle.

The file is one safetensors file: every tensor / array / NumPy scalar in ``obj`` is a safetensors
entry, and the structure around them (dicts with any JSON-able keys — an optimizer's int keys —,
lists, tuples, numbers, strings, None) is JSON in the header's metadata under ``convlens.structure``.
Entries are named by their path (a state_dict's tensors keep their keys, nested ones are joined with
"."), so the file is also an ordinary safetensors file: ``safetensors.torch.load_file`` reads a saved
state_dict straight into torch, and ``convlens.load`` reads a plain safetensors file (one written by
``safetensors.torch.save_file(model.state_dict(), ...)``) as a dict name → tensor.

The JSON encoding: None, bool, int, str and finite floats are themselves; a list is a list; anything
else is an object with one tag key: ``{"__tensor__": name, "requires_grad": b}``,
``{"__parameter__": name, ...}``, ``{"__ndarray__": name}``, ``{"__scalar__": name}``,
``{"__tuple__": [...]}``, ``{"__float__": "nan"|"inf"|"-inf"}``, and for a dict whose keys are not all
plain strings (or an OrderedDict) ``{"__dict__" | "__odict__": [[key, value], ...]}``. A dict with
plain string keys is a JSON object. A tensor that appears twice is stored once and loaded as one
object.

PyTorch's own ``.pt`` files are pickles (a zip archive holding ``data.pkl``, or a bare pickle in the
legacy format): ``load`` recognises them from their first bytes and says how to convert them, without
unpickling anything.
"""

from __future__ import annotations

import io
import json
import math
import numbers
import os
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

__all__ = ["save", "load"]

_STRUCTURE = "convlens.structure"
_VERSION = "convlens.format"
_TAGS = ("__tensor__", "__parameter__", "__ndarray__", "__scalar__", "__tuple__", "__float__", "__dict__",
         "__odict__")


class _Writer:
    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        self.names: dict[int, str] = {}
        self.keep: list = []  # holds encoded objects so that their ids stay unique

    def name(self, obj, path: str, array: np.ndarray) -> str:
        if id(obj) in self.names:
            return self.names[id(obj)]
        name = path or "tensor"
        k = 2
        while name in self.arrays:
            name = f"{path or 'tensor'}#{k}"
            k += 1
        # not np.ascontiguousarray: it turns a 0-d array (a scalar, num_batches_tracked) into shape (1,)
        self.arrays[name] = array if array.flags.c_contiguous else np.array(array, order="C")
        self.names[id(obj)] = name
        self.keep.append(obj)
        return name

    def encode(self, obj, path: str):
        from convlens.tensor import Tensor

        if obj is None or isinstance(obj, bool | str):
            return obj
        if isinstance(obj, Tensor):
            kind = "__parameter__" if type(obj).__name__ == "Parameter" else "__tensor__"
            return {kind: self.name(obj, path, obj._data), "requires_grad": bool(obj.requires_grad)}
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind not in "biuf":
                raise TypeError(f"convlens.save: the array at {path or 'obj'} has dtype {obj.dtype}; only numeric and "
                                "bool arrays can be stored")
            return {"__ndarray__": self.name(obj, path, obj)}
        if isinstance(obj, np.generic):
            return {"__scalar__": self.name(obj, path, np.asarray(obj))}
        if isinstance(obj, numbers.Integral):
            return int(obj)
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {"__float__": repr(obj)}
        if isinstance(obj, list):
            return [self.encode(v, _join(path, i)) for i, v in enumerate(obj)]
        if isinstance(obj, tuple):
            return {"__tuple__": [self.encode(v, _join(path, i)) for i, v in enumerate(obj)]}
        if isinstance(obj, dict):
            plain = type(obj) is dict and all(isinstance(k, str) and not k.startswith("__") for k in obj)
            if plain:
                return {k: self.encode(v, _join(path, k)) for k, v in obj.items()}
            items = [[self.encode_key(k, path), self.encode(v, _join(path, k))] for k, v in obj.items()]
            return {"__odict__" if isinstance(obj, OrderedDict) else "__dict__": items}
        raise TypeError(
            f"convlens.save: cannot store a {type(obj).__name__} at {path or 'obj'}: convlens saves tensors, arrays, "
            "numbers, strings, None and lists / tuples / dicts of them, never pickled objects "
            "(save model.state_dict() rather than the model)")

    def encode_key(self, key, path: str):
        if key is None or isinstance(key, bool | str | numbers.Integral) or (isinstance(key, float)
                                                                               and math.isfinite(key)):
            return key if not isinstance(key, numbers.Integral) or isinstance(key, bool) else int(key)
        if isinstance(key, tuple):
            return self.encode(key, path)
        raise TypeError(f"convlens.save: dict key {key!r} at {path or 'obj'} is a {type(key).__name__}; keys must be "
                        "strings, numbers, None or tuples of them")


def _join(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


def save(obj, f, pickle_module=None, pickle_protocol=None, _use_new_zipfile_serialization: bool = True,
         _disable_byteorder_record: bool = False) -> None:
    """Write ``obj`` (state_dicts, optimizer state_dicts, nested dicts / lists / tuples of tensors,
    arrays, numbers, strings, None) to ``f``, a path (written atomically) or a binary file object.
    torch's pickle arguments are accepted for signature compatibility; a ``pickle_module`` is refused."""
    from safetensors.numpy import save as st_save

    if pickle_module is not None:
        raise ValueError("convlens.save: pickle_module is not supported: convlens never pickles")
    writer = _Writer()
    tree = writer.encode(obj, "")
    blob = st_save(writer.arrays, metadata={_VERSION: "1", _STRUCTURE: json.dumps(tree, allow_nan=False)})
    if isinstance(f, str | os.PathLike):
        from convlens.data.cache import atomic_write

        with atomic_write(Path(f)) as out:
            out.write(blob)
    elif hasattr(f, "write"):
        f.write(blob)
    else:
        raise TypeError(f"convlens.save: f must be a path or a binary file object, got {type(f).__name__}")


# ---- loading ------------------------------------------------------------------------------------------
def _convert_hint(name: str) -> str:
    return (f"Convert it once on the torch side, e.g. `from safetensors.torch import save_file; "
            f"save_file(torch.load({name!r}, weights_only=True), 'model.safetensors')` for a state_dict "
            "(safetensors.torch.save_model when weights are tied), then convlens.load('model.safetensors') "
            "or model.load_state_dict(convlens.load('model.safetensors'))")


def _refuse_pickles(data: bytes, name: str) -> None:
    """Raise a clear error for PyTorch's pickle-based formats, recognised without unpickling."""
    if data[:4] == b"PK\x03\x04":
        try:
            members = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except zipfile.BadZipFile:
            members = []
        pickled = [m for m in members if m.endswith(".pkl")]
        what = f"a zip archive holding {pickled[0]}, a pickle" if pickled else "a zip archive"
        raise ValueError(f"{name}: a PyTorch file written by torch.save ({what}); convlens never unpickles "
                         f"(unpickling can run arbitrary code). {_convert_hint(name)}")
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        raise ValueError(f"{name}: a pickle (PyTorch's legacy torch.save format, protocol {data[1]}); convlens "
                         f"never unpickles (unpickling can run arbitrary code). {_convert_hint(name)}")


def _header(data: bytes, name: str) -> dict:
    if len(data) < 8:
        raise ValueError(f"{name}: {len(data)} bytes; not a convlens.save / safetensors file (expected an 8-byte "
                         "header length at byte offset 0)")
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8 or n == 0:
        raise ValueError(f"{name}: not a convlens.save / safetensors file, or truncated: the header length at byte "
                         f"offset 0 says {n} bytes, the file has {len(data) - 8} after it")
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{name}: not a convlens.save / safetensors file: the header (bytes 8..{8 + n}) is not "
                         f"JSON ({e})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{name}: not a safetensors file: the header is not a JSON object")
    return header


def _check_map_location(map_location) -> None:
    from convlens.devices import check_device, device

    if map_location is None or callable(map_location) and not isinstance(map_location, str | device):
        return  # a callable remaps storages in torch; every tensor here is on the CPU already
    targets = map_location.values() if isinstance(map_location, dict) else [map_location]
    for target in targets:
        check_device(target, "convlens.load(map_location=...)")


class _Reader:
    def __init__(self, arrays: dict[str, np.ndarray], name: str):
        self.arrays, self.name, self.objects = arrays, name, {}

    def array(self, key: str) -> np.ndarray:
        if key not in self.arrays:
            raise ValueError(f"{self.name}: the structure refers to tensor {key!r}, which the file does not hold")
        a = self.arrays[key]
        return a if a.flags.writeable else a.copy()

    def tensor(self, key: str, parameter: bool, requires_grad: bool):
        if key not in self.objects:
            from convlens.tensor import Tensor

            a = self.array(key)
            if parameter:
                from convlens.nn import Parameter

                self.objects[key] = Parameter(a, requires_grad=requires_grad)
            else:
                self.objects[key] = Tensor._wrap(a, requires_grad=requires_grad and a.dtype.kind == "f")
        return self.objects[key]

    def decode(self, node):
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict):
            return node
        if "__tensor__" in node or "__parameter__" in node:
            parameter = "__parameter__" in node
            return self.tensor(node["__parameter__" if parameter else "__tensor__"], parameter,
                               bool(node.get("requires_grad", False)))
        if "__ndarray__" in node:
            return self.array(node["__ndarray__"])
        if "__scalar__" in node:
            return self.array(node["__scalar__"])[()]
        if "__tuple__" in node:
            return tuple(self.decode(v) for v in node["__tuple__"])
        if "__float__" in node:
            return float(node["__float__"])
        if "__dict__" in node or "__odict__" in node:
            items = [(_hashable(self.decode(k)), self.decode(v)) for k, v in node.get("__dict__", node.get("__odict__"))]
            return OrderedDict(items) if "__odict__" in node else dict(items)
        return {k: self.decode(v) for k, v in node.items()}


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, list | tuple) else key


def load(f, map_location=None, pickle_module=None, *, weights_only: bool = True, mmap=None, **pickle_load_args):
    """Read what ``convlens.save`` wrote (or a plain safetensors file, as a dict name → tensor) from a
    path or a binary file object. Nothing is unpickled, so ``weights_only`` changes nothing (both
    values are safe); ``map_location`` may name the CPU (another device is an error, as for ``.to``),
    ``mmap`` and torch's pickle arguments are accepted and ignored. A PyTorch ``.pt`` file (a pickle)
    is refused with instructions to convert it."""
    from safetensors.numpy import load as st_load

    if pickle_module is not None:
        raise ValueError("convlens.load: pickle_module is not supported: convlens never unpickles")
    _check_map_location(map_location)
    if isinstance(f, str | os.PathLike):
        name = str(f)
        try:
            data = Path(f).read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(f"convlens.load: {name}: no such file") from None
    elif hasattr(f, "read"):
        name = getattr(f, "name", None) or type(f).__name__
        data = f.read()
        if isinstance(data, str):
            raise TypeError(f"convlens.load: {name} is open in text mode; open it with 'rb'")
    else:
        raise TypeError(f"convlens.load: f must be a path or a binary file object, got {type(f).__name__}")
    _refuse_pickles(data, name)
    header = _header(data, name)
    try:
        arrays = st_load(data)
    except Exception as e:  # safetensors raises its own SafetensorError on a bad body
        raise ValueError(f"{name}: not a readable safetensors file ({type(e).__name__}: {e})") from None
    reader = _Reader(arrays, name)
    meta = header.get("__metadata__") or {}
    if _STRUCTURE not in meta:  # a plain safetensors file: name → tensor, in the file's order
        order = sorted(arrays, key=lambda k: header[k]["data_offsets"][0] if isinstance(header.get(k), dict) else 0)
        return OrderedDict((k, reader.tensor(k, False, False)) for k in order)
    try:
        tree = json.loads(meta[_STRUCTURE])
    except json.JSONDecodeError as e:
        raise ValueError(f"{name}: the {_STRUCTURE} metadata is not JSON ({e})") from None
    return reader.decode(tree)
