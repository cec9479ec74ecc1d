"""``default_collate`` and ``default_convert``, with torch's rules.

default_collate(batch), batch = a list of samples, looks at the first sample's type:
    Tensor               → one tensor, the samples stacked on a new dimension 0
    NumPy array          → the same, via tensors (string/object arrays are an error)
    NumPy scalar         → a 1-d tensor of its dtype
    float / int / bool   → a float64 / int64 / bool tensor (torch's dtypes)
    str / bytes          → the list as it is
    Mapping              → the same type of mapping, each key collated over the samples
    namedtuple           → the same namedtuple, each field collated
    tuple / list         → a list (torch returns a list for tuples too), each position collated
"""

from __future__ import annotations

import collections.abc
import numbers

import numpy as np

__all__ = ["default_collate", "default_convert"]

_ERROR = "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"


def _stack(tensors):
    from convlens.tensor import Tensor

    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        first = tensors[0].shape
        k = next(i for i, t in enumerate(tensors) if t.shape != first)
        raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(first)} at entry 0 and "
                           f"{list(tensors[k].shape)} at entry {k} (pad or resize the samples, or pass a "
                           "collate_fn)")
    if any(t.requires_grad for t in tensors):
        from convlens.ops import stack

        return stack(tensors, 0)
    return Tensor._wrap(np.stack([t._data for t in tensors]))


def _is_string_array(a: np.ndarray) -> bool:
    return a.dtype.kind in "SUaO"


def default_collate(batch):
    """Merge a list of samples into a batch (see the module docstring for the rules)."""
    from convlens.tensor import Tensor

    if not isinstance(batch, collections.abc.Sequence) or isinstance(batch, str | bytes):
        batch = list(batch)
    if not batch:
        raise ValueError("default_collate: expected a non-empty list of samples, got an empty one")
    elem = batch[0]
    if isinstance(elem, Tensor):
        return _stack(batch)
    if isinstance(elem, np.ndarray):
        if _is_string_array(elem):
            raise TypeError(_ERROR.format(f"numpy array of dtype {elem.dtype}"))
        return _stack([Tensor._wrap(np.asarray(b)) for b in batch])
    if isinstance(elem, np.generic) and not isinstance(elem, np.str_ | np.bytes_):
        if isinstance(elem, np.object_):
            raise TypeError(_ERROR.format(type(elem)))
        return Tensor._wrap(np.asarray(batch))
    if isinstance(elem, bool):
        return Tensor._wrap(np.asarray(batch, dtype=np.bool_))
    if isinstance(elem, numbers.Integral):
        return Tensor._wrap(np.asarray(batch, dtype=np.int64))
    if isinstance(elem, float):
        return Tensor._wrap(np.asarray(batch, dtype=np.float64))
    if isinstance(elem, str | bytes):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        merged = {key: default_collate([d[key] for d in batch]) for key in elem}
        try:
            return type(elem)(merged)
        except TypeError:  # a mapping type whose constructor does not take a dict
            return merged
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        sizes = {len(e) for e in batch}
        if len(sizes) != 1:
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = [default_collate(list(s)) for s in zip(*batch)]
        if isinstance(elem, tuple):
            return transposed
        try:
            return type(elem)(transposed)
        except TypeError:
            return transposed
    hint = ""
    if type(elem).__module__.startswith("PIL."):
        hint = " (convert images to tensors first: transform=transforms.ToTensor())"
    raise TypeError(_ERROR.format(type(elem)) + hint)


def default_convert(data):
    """What the DataLoader applies to each sample when batching is off (``batch_size=None``): NumPy
    arrays and scalars become tensors, containers are converted element by element, the rest is kept."""
    from convlens.tensor import Tensor

    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        return data if _is_string_array(data) else Tensor._wrap(data)
    if isinstance(data, np.generic) and not isinstance(data, np.str_ | np.bytes_ | np.object_):
        return Tensor._wrap(np.asarray(data))
    if isinstance(data, str | bytes):
        return data
    if isinstance(data, collections.abc.Mapping):
        converted = {k: default_convert(v) for k, v in data.items()}
        try:
            return type(data)(converted)
        except TypeError:
            return converted
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence):
        try:
            return type(data)([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data
