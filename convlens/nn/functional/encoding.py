"""Class indices as vectors: `one_hot` and `embedding` (a learned vector per index)."""

from __future__ import annotations

import numpy as np

from convlens.errors import ShapeError
from convlens.tensor import Tensor


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 (*, C) with a 1 at each index of `tensor` (*), C = num_classes or max + 1.

    Shape:
        (*) → (*, num_classes)
    """
    index = np.asarray(getattr(tensor, "_data", tensor))
    if index.dtype.kind not in "iu":
        raise RuntimeError(f"one_hot is only applicable to index tensors (int64), got dtype {index.dtype}")
    if num_classes == -1:
        num_classes = int(index.max()) + 1 if index.size else 0
    if index.size and (index.min() < 0 or index.max() >= num_classes):
        raise RuntimeError(f"one_hot: class values must be in [0, {num_classes}), got values from "
                           f"{int(index.min())} to {int(index.max())}")
    return Tensor._wrap((index[..., None] == np.arange(num_classes)).astype(np.int64))


def embedding(input, weight: Tensor, padding_idx=None, max_norm=None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """The rows of `weight` picked by the indices `input` (a lookup table); the row `padding_idx`
    receives no gradient.

    Shape:
        input (*) int64, weight (num_embeddings, embedding_dim) → (*, embedding_dim)
    """
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: max_norm, scale_grad_by_freq and sparse are not supported")
    index = np.asarray(getattr(input, "_data", input))
    if index.dtype.kind not in "iu":
        raise RuntimeError(f"embedding: expected int64 indices, got dtype {index.dtype}")
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be 2-d (num_embeddings, embedding_dim), got {weight.shape}")
    if index.size and (index.min() < -weight.shape[0] or index.max() >= weight.shape[0]):
        raise IndexError(f"embedding: index {int(index.max())} out of range for {weight.shape[0]} embeddings")
    out = weight[index]
    if padding_idx is not None and out.requires_grad:
        keep = Tensor._wrap((index != padding_idx % weight.shape[0])[..., None].astype(weight.dtype))
        out = out * keep + (out * (1 - keep)).detach()
    return out
