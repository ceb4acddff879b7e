"""Label noise models: symmetric, asymmetric (class -> next class) and transition-matrix noise.

All functions are pure: the input labels are never modified, and the random draws come from
``np.random.default_rng(seed)`` only, so the same seed gives the same noise and different seeds
give different noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

NoiseKind = Literal["none", "symmetric", "asymmetric", "matrix"]
NOISE_KINDS: tuple[str, ...] = ("none", "symmetric", "asymmetric", "matrix")


def _validate(labels: np.ndarray | Sequence[int], num_classes: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {y.dtype}")
    if int(num_classes) != num_classes or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes}")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        bad = int(y[(y < 0) | (y >= num_classes)][0])
        raise ValueError(f"label {bad} outside 0..{num_classes - 1}")
    return y.astype(np.int64, copy=True)


def validate_transition(transition: np.ndarray | Sequence[Sequence[float]], num_classes: int
                        ) -> np.ndarray:
    """Return ``transition`` as a float64 ``(C, C)`` row-stochastic matrix or raise ValueError.

    Rows must be non-negative and sum to 1 (within 1e-6); they are renormalised exactly.
    """
    t = np.asarray(transition, dtype=np.float64)
    if t.shape != (num_classes, num_classes):
        raise ValueError(
            f"transition matrix has shape {t.shape}, expected ({num_classes}, {num_classes})"
        )
    if not np.all(np.isfinite(t)):
        raise ValueError("transition matrix has non-finite entries")
    neg = np.argwhere(t < 0)
    if len(neg):
        r, c = map(int, neg[0])
        raise ValueError(f"transition matrix entry [{r}][{c}] = {t[r, c]} is negative")
    sums = t.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
    if len(bad):
        r = int(bad[0])
        raise ValueError(f"transition matrix row {r} sums to {sums[r]:.6f}, expected 1")
    return t / sums[:, None]


def inject_noise(
    labels: np.ndarray | Sequence[int],
    num_classes: int,
    kind: str,
    rate: float,
    seed: int | np.random.SeedSequence,
    transition: np.ndarray | Sequence[Sequence[float]] | None = None,
) -> np.ndarray:
    """Return a noisy copy of ``labels`` (int64); the input is never modified.

    Kinds:

    - ``none``: an unchanged copy.
    - ``symmetric``: exactly ``round(rate * N)`` samples, chosen uniformly without replacement, each
      get a label drawn uniformly from the other ``C - 1`` classes.
    - ``asymmetric``: the fixed map ``c -> (c + 1) mod C``; for each class ``c`` exactly
      ``round(rate * n_c)`` of its samples (chosen uniformly) are flipped to ``c + 1``.
    - ``matrix``: each label ``y`` is replaced by a draw from row ``y`` of the row-stochastic
      ``transition`` matrix (``C x C``); ``rate`` is not used.

    ``round`` is Python's (halves to even). Draws come from ``np.random.default_rng(seed)``.
    """
    y = _validate(labels, num_classes)
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; use one of {', '.join(NOISE_KINDS)}")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"noise rate must be in [0, 1], got {rate}")
    if kind == "matrix":
        if transition is None:
            raise ValueError("noise kind 'matrix' needs a transition matrix")
        t = validate_transition(transition, num_classes)
    rng = np.random.default_rng(seed)
    out = y.copy()
    n = len(y)
    if kind == "none" or n == 0:
        return out
    if kind == "symmetric":
        k = int(round(rate * n))
        chosen = rng.choice(n, size=k, replace=False)
        offsets = rng.integers(1, num_classes, size=k)
        out[chosen] = (y[chosen] + offsets) % num_classes
    elif kind == "asymmetric":
        for c in range(num_classes):
            members = np.flatnonzero(y == c)
            k = int(round(rate * len(members)))
            if k:
                chosen = rng.choice(members, size=k, replace=False)
                out[chosen] = (c + 1) % num_classes
    else:  # matrix
        for c in range(num_classes):
            members = np.flatnonzero(y == c)
            if len(members):
                out[members] = rng.choice(num_classes, size=len(members), p=t[c])
    return out


def noise_transition_matrix(
    true: np.ndarray | Sequence[int], given: np.ndarray | Sequence[int], num_classes: int
) -> np.ndarray:
    """Empirical transition matrix ``T[i, j] = P(given = j | true = i)``, shape ``(C, C)``.

    Rows of classes absent from ``true`` are all zero.
    """
    t = _validate(true, num_classes)
    g = _validate(given, num_classes)
    if t.shape != g.shape:
        raise ValueError(f"true has shape {t.shape} but given has {g.shape}")
    counts = np.zeros((num_classes, num_classes), dtype=np.float64)
    np.add.at(counts, (t, g), 1.0)
    rows = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)


def noise_rate(true: np.ndarray | Sequence[int], given: np.ndarray | Sequence[int]) -> float:
    """Fraction of samples whose given label differs from the true one (0 for no samples)."""
    t, g = np.asarray(true), np.asarray(given)
    if t.shape != g.shape:
        raise ValueError(f"true has shape {t.shape} but given has {g.shape}")
    return float(np.mean(t != g)) if t.size else 0.0
