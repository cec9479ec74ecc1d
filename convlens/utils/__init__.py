"""``convlens.utils``, shaped like ``torch.utils``: ``convlens.utils.data`` holds the data-loading API."""

from convlens.utils import data

__all__ = ["data"]
