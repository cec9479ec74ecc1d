"""Shape and indexing methods of a `Tensor` with PyTorch's names: reshape/view, flatten/unflatten,
permute/transpose/t, squeeze/unsqueeze, expand, repeat, chunk/split/unbind, gather/scatter, flip, roll,
index_select, masked_select, tril/triu. All differentiable (views' gradients flow back to the source)."""

from __future__ import annotations

import numbers

import numpy as np

from convlens import ops
from convlens.errors import ShapeError
from convlens.ops_indexing import Flip, Roll, Scatter, Tile
from convlens.tensor_reduce import one_axis


def _wrap(array):
    from convlens.tensor import Tensor

    return Tensor._wrap(np.asarray(array))


def _sizes(shape) -> tuple:
    """``f(2, 3)`` or ``f((2, 3))`` → (2, 3)."""
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _index_array(index, where: str) -> np.ndarray:
    array = np.asarray(getattr(index, "_data", index))
    if array.dtype.kind not in "iu":
        raise RuntimeError(f"{where}(): expected an integer (int64) index, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


class ShapeMixin:
    __slots__ = ()

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self):
        return self.transpose(-2, -1)

    def reshape(self, *shape):
        return ops.Reshape.apply(self, shape=_sizes(shape))

    def view(self, *shape):
        """As `reshape` (convlens's arrays need no contiguity for it); ``view(dtype)`` is not supported."""
        if len(shape) == 1 and not isinstance(shape[0], numbers.Integral | tuple | list):
            raise TypeError(f"view: reinterpreting memory as another dtype is not supported, got {shape[0]!r}")
        return ops.Reshape.apply(self, shape=_sizes(shape))

    def view_as(self, other):
        return self.reshape(other.shape)

    reshape_as = view_as

    def contiguous(self, memory_format=None):
        """A C-contiguous tensor with the same values (``self`` if it already is one)."""
        return self if self._data.flags.c_contiguous else ops.Clone.apply(self)  # copies are C-ordered

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        if self.ndim == 0:
            return self.reshape(1)
        start, end = one_axis(start_dim, self.ndim), one_axis(end_dim, self.ndim)
        if start > end:
            raise RuntimeError(f"flatten() has invalid args: start_dim ({start_dim}) cannot come after "
                               f"end_dim ({end_dim}) for a tensor of shape {self.shape}")
        return self.reshape(self.shape[:start] + (-1,) + self.shape[end + 1:])

    ravel = flatten

    def unflatten(self, dim: int, sizes):
        d = one_axis(dim, self.ndim)
        sizes = tuple(int(s) for s in sizes)
        known = int(np.prod([s for s in sizes if s != -1]))
        if (-1 not in sizes and known != self.shape[d]) or (-1 in sizes and self.shape[d] % max(known, 1)):
            raise ShapeError(f"unflatten: sizes {sizes} don't multiply up to the size of dim {dim} "
                             f"({self.shape[d]}) of a tensor of shape {self.shape}")
        return self.reshape(self.shape[:d] + sizes + self.shape[d + 1:])

    def permute(self, *dims):
        if len(dims) == 1 and isinstance(dims[0], tuple | list):
            dims = tuple(dims[0])
        return ops.Permute.apply(self, dims=tuple(one_axis(d, self.ndim) for d in dims))

    def transpose(self, dim0: int, dim1: int):
        dims = list(range(self.ndim))
        a, b = one_axis(dim0, self.ndim), one_axis(dim1, self.ndim)
        dims[a], dims[b] = dims[b], dims[a]
        return self.permute(*dims) if self.ndim > 1 else self

    swapaxes = swapdims = transpose

    def t(self):
        """The transpose of a matrix (a ≤ 1-d tensor is returned as it is)."""
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but got shape {self.shape}; "
                               "use transpose(dim0, dim1) or permute")
        return self.transpose(0, 1) if self.ndim == 2 else self

    def movedim(self, source, destination):
        source = (source,) if isinstance(source, numbers.Integral) else tuple(source)
        destination = (destination,) if isinstance(destination, numbers.Integral) else tuple(destination)
        src = [one_axis(s, self.ndim) for s in source]
        dst = [one_axis(d, self.ndim) for d in destination]
        order = [n for n in range(self.ndim) if n not in src]
        for d, s in sorted(zip(dst, src)):  # NumPy's moveaxis rule
            order.insert(d, s)
        return self.permute(*order)

    moveaxis = movedim

    def unsqueeze(self, dim: int):
        dim = one_axis(dim, self.ndim + 1)
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim=None):
        """Remove axes of size 1: all of them, or those among `dim` (an int or a tuple)."""
        if dim is None:
            return self.reshape(tuple(s for s in self.shape if s != 1))
        if self.ndim == 0:
            return self
        dims = {one_axis(d, self.ndim) for d in ((dim,) if isinstance(dim, numbers.Integral) else dim)}
        return self.reshape(tuple(s for i, s in enumerate(self.shape) if not (i in dims and s == 1)))

    def expand(self, *shape):
        shape = _sizes(shape)
        lead = len(shape) - self.ndim
        if lead < 0:
            raise ShapeError(f"expand: the number of sizes provided ({len(shape)}) must be at least the "
                             f"number of dimensions of the tensor ({self.ndim}), shape {self.shape}")
        shape = tuple(self.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
        try:
            return ops.Expand.apply(self, shape=shape)
        except ValueError:
            raise ShapeError(f"expand: the tensor of shape {self.shape} cannot be expanded to {shape} "
                             "(only axes of size 1 can grow)") from None

    def expand_as(self, other):
        return self.expand(other.shape)

    def broadcast_to(self, shape):
        return self.expand(shape)

    def repeat(self, *sizes):
        """Tile the tensor: ``x.repeat(2, 1)`` stacks two copies along dim 0 (``np.tile``)."""
        sizes = _sizes(sizes)
        if len(sizes) < self.ndim:
            raise RuntimeError(f"repeat: the number of repeat dims ({len(sizes)}) can not be smaller than "
                               f"the number of dimensions of the tensor ({self.ndim})")
        return Tile.apply(self, reps=sizes)

    def tile(self, *dims):
        dims = _sizes(dims)
        return self.repeat((1,) * (self.ndim - len(dims)) + dims)

    def repeat_interleave(self, repeats: int, dim=None):
        """Each element repeated `repeats` times (along `dim`, or of the flattened tensor)."""
        if not isinstance(repeats, numbers.Integral):
            raise TypeError("repeat_interleave: only an integer count of repeats is supported")
        x, d = (self.reshape(-1), 0) if dim is None else (self, one_axis(dim, self.ndim))
        return x.unsqueeze(d + 1).expand(*x.shape[:d + 1], int(repeats), *x.shape[d + 1:]).flatten(d, d + 1)

    # ---- pieces -----------------------------------------------------------------------------------------
    def _slice(self, d: int, start: int, stop: int):
        return self[(slice(None),) * d + (slice(start, stop),)]

    def narrow(self, dim: int, start: int, length: int):
        d = one_axis(dim, self.ndim)
        start = int(start) % self.shape[d] if start < 0 else int(start)
        if start + length > self.shape[d]:
            raise RuntimeError(f"narrow: start ({start}) + length ({length}) exceeds the size "
                               f"{self.shape[d]} of dimension {dim}")
        return self._slice(d, start, start + length)

    def split(self, split_size_or_sections, dim: int = 0):
        """Pieces of `split_size` along `dim` (the last may be smaller), or of the listed sizes."""
        d = one_axis(dim, self.ndim)
        n = self.shape[d]
        if isinstance(split_size_or_sections, numbers.Integral):
            step = int(split_size_or_sections)
            if step <= 0:
                raise RuntimeError(f"split: split_size must be positive, got {step}")
            bounds = list(range(0, n, step)) + [n]
        else:
            sizes = [int(s) for s in split_size_or_sections]
            if sum(sizes) != n:
                raise RuntimeError(f"split: split_sizes {sizes} must sum to the size {n} of dimension {dim}")
            bounds = list(np.cumsum([0] + sizes))
        return tuple(self._slice(d, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]))

    def chunk(self, chunks: int, dim: int = 0):
        """`chunks` pieces of ⌈n/chunks⌉ along `dim` (fewer if they run out, as PyTorch)."""
        if chunks <= 0:
            raise RuntimeError(f"chunk: chunks must be positive, got {chunks}")
        n = self.shape[one_axis(dim, self.ndim)]
        return self.split(max(-(-n // chunks), 1), dim)

    def tensor_split(self, sections: int, dim: int = 0):
        n = self.shape[one_axis(dim, self.ndim)]
        base, extra = divmod(n, sections)
        return self.split([base + (i < extra) for i in range(sections)], dim)

    def unbind(self, dim: int = 0):
        d = one_axis(dim, self.ndim)
        return tuple(self[(slice(None),) * d + (i,)] for i in range(self.shape[d]))

    def select(self, dim: int, index: int):
        return self[(slice(None),) * one_axis(dim, self.ndim) + (int(index),)]

    def index_select(self, dim: int, index):
        return self[(slice(None),) * one_axis(dim, self.ndim) + (_index_array(index, "index_select"),)]

    def masked_select(self, mask):
        mask = np.broadcast_to(np.asarray(getattr(mask, "_data", mask)), self.shape)
        return self[mask]

    def take(self, index):
        return self.reshape(-1)[_index_array(index, "take")]

    # ---- gather and scatter ---------------------------------------------------------------------------
    def _check_index(self, where: str, dim: int, index: np.ndarray, other_shape=None) -> int:
        d = one_axis(dim, self.ndim)
        if index.ndim != self.ndim:
            raise RuntimeError(f"{where}(): index tensor must have the same number of dimensions as the "
                               f"input tensor ({self.ndim}), got index of shape {index.shape}")
        for i, n in enumerate(index.shape):
            if i != d and n > self.shape[i]:
                raise RuntimeError(f"{where}(): size of index {index.shape} exceeds the input's "
                                   f"{self.shape} at dimension {i}")
            if other_shape is not None and n > other_shape[i]:
                raise RuntimeError(f"{where}(): size of index {index.shape} exceeds the source's "
                                   f"{tuple(other_shape)} at dimension {i}")
        if index.size and (index.min() < -self.shape[d] or index.max() >= self.shape[d]):
            raise IndexError(f"{where}(): index {int(index.max())} is out of bounds for dimension {d} "
                             f"with size {self.shape[d]}")
        return d

    def gather(self, dim: int, index):
        """out[i][j] = self[index[i][j]][j] for dim 0, likewise for other dims (``torch.gather``)."""
        index = _index_array(index, "gather")
        d = self._check_index("gather", dim, index)
        return ops.TakeAlong.apply(self, indices=index % self.shape[d], axis=d)

    def scatter(self, dim: int, index, src=None, *, value=None, reduce=None):
        """A copy with ``out[index[i][j]][j] = src[i][j]`` (dim 0), `src` a tensor or a number."""
        if reduce == "add":
            return self.scatter_add(dim, index, src)
        if reduce is not None:
            raise ValueError(f"scatter: reduce must be None or 'add' in convlens, got {reduce!r}")
        index = _index_array(index, "scatter")
        if src is None and value is None:
            raise TypeError("scatter(): give src (a tensor) or value (a number)")
        if hasattr(src, "_data"):
            d = self._check_index("scatter", dim, index, src.shape)
            return Scatter.apply(self, src.to(self.dtype), index=index % self.shape[d], axis=d)
        d = self._check_index("scatter", dim, index)
        number = src if src is not None else value
        return Scatter.apply(self, None, index=index % self.shape[d], axis=d, value=self.dtype.type(number))

    def scatter_add(self, dim: int, index, src):
        """A copy with ``out[index[i][j]][j] += src[i][j]`` (dim 0); repeated indices accumulate."""
        index = _index_array(index, "scatter_add")
        d = self._check_index("scatter_add", dim, index, src.shape)
        return Scatter.apply(self, src.to(self.dtype), index=index % self.shape[d], axis=d, add=True)

    def index_fill(self, dim: int, index, value):
        d = one_axis(dim, self.ndim)
        mask = np.zeros(self.shape[d], dtype=bool)
        mask[_index_array(index, "index_fill")] = True
        return self.masked_fill(_wrap(mask.reshape([-1 if i == d else 1 for i in range(self.ndim)])), value)

    # ---- rearranging -------------------------------------------------------------------------------------
    def flip(self, *dims):
        dims = _sizes(dims)
        return Flip.apply(self, dims=tuple(one_axis(d, self.ndim) for d in dims))

    def fliplr(self):
        return self.flip(1)

    def flipud(self):
        return self.flip(0)

    def roll(self, shifts, dims=None):
        if dims is None:
            return Roll.apply(self.reshape(-1), shifts=shifts, dims=0).reshape(self.shape)
        shifts = tuple(shifts) if isinstance(shifts, tuple | list) else (shifts,)
        dims = tuple(dims) if isinstance(dims, tuple | list) else (dims,)
        return Roll.apply(self, shifts=shifts, dims=tuple(one_axis(d, self.ndim) for d in dims))

    def _triangle(self, keep: np.ndarray):
        return self.where(_wrap(keep), 0.0 if self.dtype.kind == "f" else 0)

    def tril(self, diagonal: int = 0):
        """The lower triangle (on and below the `diagonal`-th diagonal); the rest zero."""
        n, m = self.shape[-2:]
        return self._triangle(np.tri(n, m, diagonal, dtype=bool))

    def triu(self, diagonal: int = 0):
        n, m = self.shape[-2:]
        return self._triangle(~np.tri(n, m, diagonal - 1, dtype=bool))

    def diagonal(self, offset: int = 0, dim1: int = 0, dim2: int = 1):
        moved = self.movedim((dim1, dim2), (-2, -1))
        n, m = moved.shape[-2:]
        rows = np.arange(max(0, -offset), min(n, m - offset))
        return moved[..., rows, rows + offset]
