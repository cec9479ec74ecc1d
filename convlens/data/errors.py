"""The one exception type of ``convlens.data``."""

from __future__ import annotations


class DataError(ValueError):
    """Bad or missing data: a corrupt file, a failed download, an empty folder, a shape mismatch.

    The message names the file (or URL), what was expected and what was found.
    """
