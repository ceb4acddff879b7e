"""Long-tail (exponential profile) subsampling, as used for NCT-CRC-HE-100K-LT (ratio 100)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from labelrefine.validation import check_labels


def longtail_counts(counts: np.ndarray | Sequence[int], ratio: float) -> np.ndarray:
    """Target class sizes for an imbalance ``ratio`` (largest / smallest).

    Classes are ranked by size (largest first, ties by class id); the class of rank ``k`` keeps
    ``floor(n_max * ratio ** (-k / (C - 1)))`` samples, capped by what it has and at least 1 (a
    class with no samples stays at 0). ``C`` is ``len(counts)``. Returned in class-id order.
    """
    n = np.asarray(counts)
    if n.ndim != 1 or (n.size and not np.issubdtype(n.dtype, np.integer)):
        raise ValueError(f"counts must be a 1-D integer array, got {n.dtype} {n.shape}")
    if n.size and n.min() < 0:
        raise ValueError(f"counts must be non-negative, got {int(n.min())}")
    if not np.isfinite(ratio) or ratio < 1:
        raise ValueError(f"long-tail ratio must be >= 1, got {ratio}")
    n = n.astype(np.int64)
    c = len(n)
    if c < 2:
        return n.copy()
    rank = np.empty(c, dtype=np.int64)
    rank[np.lexsort((np.arange(c), -n))] = np.arange(c)
    n_max = int(n.max())
    # 1e-9 guards against float error turning e.g. 43.0 into 42.999...
    target = np.floor(n_max * float(ratio) ** (-rank / (c - 1)) + 1e-9).astype(np.int64)
    target = np.minimum(np.maximum(target, 1), n)
    return target


def longtail_indices(
    labels: np.ndarray | Sequence[int],
    ratio: float,
    seed: int | np.random.SeedSequence,
    *,
    num_classes: int | None = None,
) -> np.ndarray:
    """Sorted int64 indices of a seeded long-tail subsample of ``labels``.

    Class sizes follow :func:`longtail_counts` over ``num_classes`` classes (default: largest
    label + 1); each class keeps a uniformly drawn subset, using ``np.random.default_rng(seed)``.
    """
    y = check_labels(labels)
    c = num_classes if num_classes is not None else (int(y.max()) + 1 if y.size else 0)
    if y.size:
        check_labels(y, c)
    target = longtail_counts(np.bincount(y, minlength=c), ratio)
    rng = np.random.default_rng(seed)
    keep = [rng.choice(np.flatnonzero(y == k), size=int(target[k]), replace=False)
            for k in range(c) if target[k] > 0]
    if not keep:
        return np.empty(0, dtype=np.int64)
    return np.sort(np.concatenate(keep)).astype(np.int64)
