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


#: The split names a dataset may carry, in order.
SPLIT_NAMES = ("train", "val", "test")

#: Accepted spellings of each split name (compared lower-case, surrounding spaces stripped).
SPLIT_ALIASES: dict[str, str] = {
    "train": "train",
    "val": "val",
    "validation": "val",
    "valid": "val",
    "test": "test",
}

#: Item id prefixes that name a dataset's own split (MedMNIST ids are ``<split>_<index>``).
SPLIT_PREFIXES = SPLIT_NAMES


def allowed_split_values() -> str:
    """The accepted split values, for error messages."""
    return "train, val (or validation, valid), test (any case)"


def parse_split_name(value: str) -> str | None:
    """``train`` / ``val`` / ``test`` for an accepted spelling of ``value``, else ``None``."""
    return SPLIT_ALIASES.get(str(value).strip().lower())


def splits_from_ids(ids: Sequence[str]) -> tuple[str, ...]:
    """Split names read from id prefixes ``train_`` / ``val_`` / ``test_`` (the ids of
    :func:`labelrefine.data.loaders.load_medmnist`; kept for datasets built without a carried
    split).

    Raises:
        ValueError: an id without such a prefix (named).
    """
    names = []
    for item in ids:
        prefix, sep, _ = str(item).partition("_")
        if not sep or prefix not in SPLIT_PREFIXES:
            raise ValueError(f"item {item!r} names no split")
        names.append(prefix)
    return tuple(names)


def dataset_split(
    splits: Sequence[str], source: str = "the dataset's own split"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train/val/test indices of a dataset's own split: ``splits[i]`` is item i's split name
    (``train``, ``val`` or ``test``; see :attr:`labelrefine.data.ImageDataset.splits`).

    Each part must be non-empty: training needs train items, model selection val items and the
    reported scores test items. ``source`` names where the split came from in error messages.

    Raises:
        ValueError: an unknown split name (item index named), or an empty part (named).
    """
    parts: dict[str, list[int]] = {p: [] for p in SPLIT_NAMES}
    for i, name in enumerate(splits):
        if name not in parts:
            raise ValueError(
                f"item {i} has split {name!r}; expected one of {', '.join(SPLIT_NAMES)}"
            )
        parts[name].append(i)
    why = {"train": "training needs it", "val": "model selection and calibration need it",
           "test": "the reported scores need it"}
    missing = [p for p in SPLIT_NAMES if not parts[p]]
    if missing:
        counts = ", ".join(f"{p} {len(parts[p])}" for p in SPLIT_NAMES)
        raise ValueError(
            f"{source} has no {' and no '.join(missing)} item ({counts}); "
            + "; ".join(f"{p}: {why[p]}" for p in missing)
        )
    train, val, test = (np.asarray(parts[p], dtype=np.int64) for p in SPLIT_NAMES)
    return train, val, test
