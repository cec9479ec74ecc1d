"""The exception types of ``convlens.data`` (and ``convlens.vision``'s data sets)."""

from __future__ import annotations


class DataError(ValueError):
    """Bad or missing data: a corrupt file, a failed download, an empty folder, a shape mismatch.

    The message names the file (or URL), what was expected and what was found.
    """


class DataNotFoundError(DataError, FileNotFoundError):
    """Data files that are not there (also a ``FileNotFoundError``, which torchvision raises for a
    folder without images)."""
