"""Deterministic stratified splits."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from labelrefine.validation import check_labels


def _validate_fractions(fractions: Sequence[float]) -> np.ndarray:
    fr = np.asarray(fractions, dtype=np.float64)
    if fr.ndim != 1 or len(fr) < 1:
        raise ValueError(f"fractions must be a non-empty list, got {fractions!r}")
    if not np.all(np.isfinite(fr)) or np.any(fr <= 0):
        raise ValueError(f"fractions must all be positive, got {list(map(float, fr))}")
    if abs(fr.sum() - 1.0) > 1e-6:
        raise ValueError(f"fractions must sum to 1, got {fr.sum():.6f}")
    return fr


def split_counts(n: int, fractions: Sequence[float]) -> np.ndarray:
    """Sizes of each part when ``n`` items are split by ``fractions``.

    Largest-remainder rounding (ties go to the earlier part); when ``n >= len(fractions)`` every
    part gets at least one item, taken from the largest part.
    """
    fr = _validate_fractions(fractions)
    exact = fr * n
    counts = np.floor(exact).astype(np.int64)
    rest = n - int(counts.sum())
    order = np.lexsort((np.arange(len(fr)), -(exact - counts)))  # largest remainder first
    counts[order[:rest]] += 1
    if n >= len(fr):
        for k in np.flatnonzero(counts == 0):
            donor = int(np.argmax(counts))
            counts[donor] -= 1
            counts[k] += 1
    return counts


def stratified_split(
    labels: np.ndarray | Sequence[int], fractions: Sequence[float], seed: int
) -> tuple[np.ndarray, ...]:
    """Split indices ``0..N-1`` into ``len(fractions)`` disjoint parts, per-class proportionally.

    Each class is shuffled with ``np.random.default_rng(seed)`` and cut by :func:`split_counts`, so
    every class with at least ``len(fractions)`` samples appears in every part. The parts cover all
    indices; each is returned sorted as int64. Same seed, same split.

    Raises:
        ValueError: fractions not positive or not summing to 1; labels not 1-D non-negative ints.
    """
    y = check_labels(labels)
    fr = _validate_fractions(fractions)
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fr]
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        bounds = np.cumsum(split_counts(len(members), fr))[:-1]
        for k, chunk in enumerate(np.split(members, bounds)):
            parts[k].append(chunk)
    return tuple(
        np.sort(np.concatenate(p)).astype(np.int64) if p else np.empty(0, dtype=np.int64)
        for p in parts
    )


#: Item id prefixes that name a dataset's own split (MedMNIST ids are ``<split>_<index>``).
SPLIT_PREFIXES = ("train", "val", "test")


def dataset_split(ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The dataset's own train/val/test indices, read from id prefixes ``train_`` / ``val_`` /
    ``test_`` (as :func:`labelrefine.data.loaders.load_medmnist` names its items).

    Raises:
        ValueError: an id without such a prefix (named), or no training item.
    """
    parts: dict[str, list[int]] = {p: [] for p in SPLIT_PREFIXES}
    for i, item in enumerate(ids):
        prefix = str(item).split("_", 1)[0]
        if prefix not in parts or "_" not in str(item):
            raise ValueError(
                f"item {item!r} names no split; keeping the dataset's own split needs ids "
                f"prefixed train_, val_ or test_ (MedMNIST files)"
            )
        parts[prefix].append(i)
    if not parts["train"]:
        raise ValueError("the dataset's own split has no training item")
    train, val, test = (np.asarray(parts[p], dtype=np.int64) for p in SPLIT_PREFIXES)
    return train, val, test
