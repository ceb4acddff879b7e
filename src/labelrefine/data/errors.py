"""The error every data reader raises: one line naming the offending item."""

from __future__ import annotations


class DataError(ValueError):
    """Bad input data; the message names the offending item."""
