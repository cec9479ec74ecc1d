"""Named tuples that reductions return, as ``torch.return_types`` (``values, indices = x.max(1)``)."""

from collections import namedtuple

max = namedtuple("max", ["values", "indices"])  # noqa: A001 - torch's names
min = namedtuple("min", ["values", "indices"])  # noqa: A001
sort = namedtuple("sort", ["values", "indices"])
topk = namedtuple("topk", ["values", "indices"])
median = namedtuple("median", ["values", "indices"])
kthvalue = namedtuple("kthvalue", ["values", "indices"])
