"""Look-alikes: the confirmed items of a class nearest to one item by cosine distance.

A reader deciding whether an image is ``bcc`` compares it with images already known to be
``bcc``. :func:`nearest_of_class` picks those: among the items whose confirmed label is the
wanted class (``labels[i] == cls``; ``-1`` marks items with no confirmed label), the ``k``
nearest to the query item by cosine distance (``1 - cos``) on the given features, the query
itself never included. Which items count as confirmed is the caller's decision (a campaign's:
:func:`labelrefine.campaign.lookalikes.confirmed_labels`).
"""

from __future__ import annotations

import numpy as np

UNCONFIRMED = -1
"""Label value of an item with no confirmed label."""


def unit_rows(features: np.ndarray) -> np.ndarray:
    """``features`` as float32 rows of length one; an all-zero row stays zero (it is at cosine
    distance 1 from every row)."""
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"features must be 2-D (items, dims), got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def nearest_of_class(features: np.ndarray, labels: np.ndarray, query: int, cls: int,
                     k: int = 3) -> list[tuple[int, float]]:
    """The up to ``k`` items labelled ``cls`` nearest to item ``query``.

    ``features``: ``(N, D)``, one row per item (rows need not be normalised); ``labels``:
    ``(N,)`` confirmed class per item, :data:`UNCONFIRMED` (or any other class) for the rest.
    Returns ``(item, cosine distance)`` pairs, nearest first; equal distances are ordered by
    item index, so the answer is deterministic. Fewer than ``k`` pairs when fewer items of
    ``cls`` exist; the query item is never among them, whatever its label.
    """
    x = np.asarray(features)
    lab = np.asarray(labels)
    if x.ndim != 2 or lab.shape != (x.shape[0],):
        raise ValueError(f"features {x.shape} and labels {lab.shape} must describe the same "
                         "items: (N, D) and (N,)")
    if not 0 <= query < x.shape[0]:
        raise ValueError(f"query {query} is not an item index (0..{x.shape[0] - 1})")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    pool = np.flatnonzero(lab == cls)
    pool = pool[pool != query]
    if pool.size == 0 or k == 0:
        return []
    q = unit_rows(x[query : query + 1])[0]
    # float64 distances, rounded so that float noise cannot reorder equal distances
    cos = unit_rows(x[pool]).astype(np.float64) @ q.astype(np.float64)
    dist = np.round(np.clip(1.0 - cos, 0.0, 2.0), 6) + 0.0  # + 0.0: no negative zero
    order = np.lexsort((pool, dist))[:k]
    return [(int(pool[i]), float(dist[i])) for i in order]
