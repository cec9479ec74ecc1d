"""``convlens.data.DataLoader`` is ``convlens.utils.data.DataLoader``: one loader, torch's arguments,
with the vectorised path for convlens's array data sets and resumable ``(seed, epoch, batch)`` state
(see ``convlens/utils/data/dataloader.py``)."""

from convlens.utils.data.dataloader import DataLoader

__all__ = ["DataLoader"]
