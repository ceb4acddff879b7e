"""Label and index arrays: checks whose errors name the offending item, and the "unsure" answer.

Every function returns an ``int64`` array (copied only when the dtype changes) or raises:
:class:`ValueError` for wrong shape, dtype or values, :class:`IndexOutOfRange` (both an
:class:`IndexError` and a :class:`ValueError`) for item indices outside the data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ArrayLike = np.ndarray | Sequence[int]

UNSURE = "unsure"
"""An expert's "unsure" answer by name: in campaign files, exports, imports and the web form
(so no class may be called ``unsure``)."""

UNSURE_LABEL = -1
"""The same answer inside an integer label array (simulated oracle answers); never a class."""


class IndexOutOfRange(IndexError, ValueError):
    """An item index outside ``[0, n)``."""


def check_labels(labels: ArrayLike, num_classes: int | None = None, *,
                 name: str = "labels", n: int | None = None) -> np.ndarray:
    """``labels`` as a 1-D int64 array of class indices.

    Labels must be integers (an empty array of any dtype is accepted), non-negative and, when
    ``num_classes`` is given, below it; with ``n`` there must be exactly ``n`` of them. The error
    names the first bad item: ``labels[17] = 9: label 9 outside 0..3``.
    """
    arr = np.asarray(labels)
    if n is not None and arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D integer array, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be integers (class indices), got dtype {arr.dtype}")
    if num_classes is not None and (int(num_classes) != num_classes or num_classes < 1):
        raise ValueError(f"num_classes must be a positive integer, got {num_classes}")
    if arr.size:
        if num_classes is None:
            bad = np.flatnonzero(arr < 0)
            if bad.size:
                i = int(bad[0])
                raise ValueError(f"{name}[{i}] = {int(arr[i])}: labels must be non-negative")
        else:
            bad = np.flatnonzero((arr < 0) | (arr >= num_classes))
            if bad.size:
                i, v = int(bad[0]), int(arr[bad[0]])
                raise ValueError(f"{name}[{i}] = {v}: label {v} outside 0..{int(num_classes) - 1}")
    return arr.astype(np.int64, copy=False)


def check_indices(indices: ArrayLike, n: int, *, name: str = "indices",
                  allow_empty: bool = True, unique: bool = False) -> np.ndarray:
    """``indices`` as a flat int64 array of item indices in ``[0, n)``.

    ``allow_empty=False`` rejects an empty array; ``unique=True`` rejects repeated items.
    """
    arr = np.asarray(indices).reshape(-1)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be integers (item indices), got dtype {arr.dtype}")
    idx = arr.astype(np.int64, copy=False)
    if idx.size == 0:
        if not allow_empty:
            raise ValueError(f"{name} is empty")
        return idx
    out = (idx < 0) | (idx >= n)
    if out.any():
        bad = int(idx[np.flatnonzero(out)[0]])
        raise IndexOutOfRange(f"{name}: item index {bad} out of range for {n} items")
    if unique:
        _, first = np.unique(idx, return_index=True)
        if first.size != idx.size:
            repeat = np.ones(idx.size, dtype=bool)
            repeat[first] = False
            dup = int(idx[np.flatnonzero(repeat)[0]])  # the first index seen a second time
            raise ValueError(f"{name} holds duplicate indices (item {dup} more than once)")
    return idx


class NonFiniteError(ValueError):
    """A loss, logit or probability became NaN or infinite during training; the message names
    the stage and the likely cause (raised by :mod:`labelrefine.lnl.trainer`)."""
