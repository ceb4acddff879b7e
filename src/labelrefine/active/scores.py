"""Per-item query scores of the score samplers, and the input checks every sampler shares.

Every score function returns one score per row, **higher = query first** (docs/design.md,
"Samplers"). ``probs`` is an ``(n, C)`` array of predicted class probabilities (rows sum to 1),
``given_labels`` an ``(n,)`` array of the labels the data currently carries. Logarithms are
natural logarithms.

* :func:`random_scores` -- seeded uniform scores (a random ranking).
* :func:`entropy_scores` -- predictive entropy ``H(p) = -sum_c p_c log p_c``.
* :func:`margin_scores` -- ``1 - (p_(1) - p_(2))`` (smallest top-2 margin first).
* :func:`joint_scores` -- Bernhardt-style ranker
  ``CE(p, y)/log C - max(H(p)/log C - 0.3, 0)`` with ``CE(p, y) = -log p_y``: high when the
  model confidently disagrees with the given label and the item is not ambiguous.
* :func:`confidence_scores` -- confident-learning self-confidence ``1 - p_y``.

Pure numpy / scipy; no torch.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from scipy.special import entr

from labelrefine.validation import check_labels

#: Distance of the coreset sampler.
Metric = Literal["euclidean", "cosine"]
#: Probabilities are clipped to ``[PROB_EPS, 1]`` before taking a logarithm.
PROB_EPS = 1e-12
#: Default ambiguity threshold of the joint ranker (on entropy normalised by ``log C``).
JOINT_THRESHOLD = 0.3


# ----------------------------------------------------------------------------- input checks


def _as_probs(probs: np.ndarray | None, n: int | None = None, name: str = "probs") -> np.ndarray:
    """Check an ``(n, C)`` probability array (finite, >= 0, rows sum to ~1); return float array."""
    if probs is None:
        raise ValueError(f"{name} is required for this sampler")
    arr = np.asarray(probs)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n, C) array, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} rows but the pool has {n} items")
    if arr.shape[1] < 2:
        raise ValueError(f"{name} needs at least 2 classes (columns), got {arr.shape[1]}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    elif arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    if arr.size:
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        if arr.min() < 0:
            raise ValueError(f"{name} contains negative values (pass probabilities, not logits)")
        sums = arr.sum(axis=1, dtype=np.float64)
        bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-2)
        if bad.size:
            raise ValueError(
                f"{name} rows must sum to 1 (row {int(bad[0])} sums to {sums[bad[0]]:.4f}); "
                "pass softmax probabilities"
            )
    return arr


def _as_labels(labels: np.ndarray | None, n: int, num_classes: int,
               name: str = "given_labels") -> np.ndarray:
    """Check an ``(n,)`` integer label array with values in ``[0, num_classes)``."""
    if labels is None:
        raise ValueError(f"{name} is required for this sampler")
    return check_labels(labels, num_classes, name=name, n=n)



def _as_features(x: np.ndarray | None, name: str, n: int | None = None,
                 dim: int | None = None) -> np.ndarray:
    """Check a 2-D float feature array; float16 and integers are promoted to float32."""
    if x is None:
        raise ValueError(f"{name} is required for the coreset sampler")
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n, D) array, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} rows but the pool has {n} items")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name} has {arr.shape[1]} columns, pool_features has {dim}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float32)
    return np.ascontiguousarray(arr)


def _rank_desc(scores: np.ndarray) -> np.ndarray:
    """Positions sorted by descending score; ties keep ascending position (stable)."""
    return np.argsort(-scores, kind="stable")


# ----------------------------------------------------------------------------- scores


def random_scores(n: int, seed: int = 0) -> np.ndarray:
    """Uniform scores ``u_i ~ U[0, 1)`` from ``numpy.random.default_rng(seed)``, shape ``(n,)``.

    Ranking by these scores is a seeded random permutation (the ``random`` sampler).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return np.random.default_rng(seed).random(n)


def entropy_scores(probs: np.ndarray) -> np.ndarray:
    """Predictive entropy ``H(p_i) = -sum_c p_ic log p_ic`` (natural log, ``0 log 0 = 0``).

    Ranges from 0 (one-hot) to ``log C`` (uniform); higher = more uncertain = query first.
    """
    p = _as_probs(probs)
    return entr(p).sum(axis=1)


def margin_scores(probs: np.ndarray) -> np.ndarray:
    """``1 - (p_(1) - p_(2))`` where ``p_(1) >= p_(2)`` are the two largest probabilities.

    In ``[0, 1]``; higher = smaller top-2 margin = query first.
    """
    p = _as_probs(probs)
    if p.shape[0] == 0:
        return np.zeros(0, dtype=p.dtype)
    top2 = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def joint_scores(probs: np.ndarray, given_labels: np.ndarray, *,
                 threshold: float = JOINT_THRESHOLD) -> np.ndarray:
    """Bernhardt-style joint ranker of likely-mislabeled, unambiguous items.

    ``score_i = CE(p_i, y_i) / log C - max(H(p_i) / log C - threshold, 0)`` with
    ``CE(p_i, y_i) = -log(clip(p_iy, 1e-12, 1))`` (the cross-entropy against the given label
    ``y_i``) and ``H`` the predictive entropy. High when the model confidently predicts a class
    other than the given one; the second term demotes items whose prediction is itself
    ambiguous (normalised entropy above ``threshold``, default 0.3).
    """
    p = _as_probs(probs)
    y = _as_labels(given_labels, p.shape[0], p.shape[1])
    log_c = math.log(p.shape[1])
    p_given = p[np.arange(p.shape[0]), y]
    ce = -np.log(np.clip(p_given, PROB_EPS, 1.0))
    h = entr(p).sum(axis=1)
    return ce / log_c - np.maximum(h / log_c - threshold, 0.0)


def confidence_scores(probs: np.ndarray, given_labels: np.ndarray) -> np.ndarray:
    """Confident-learning self-confidence ranking ``1 - p_iy`` (``y`` = given label).

    Higher = the model gives less probability to the given label = query first.
    """
    p = _as_probs(probs)
    y = _as_labels(given_labels, p.shape[0], p.shape[1])
    return 1.0 - p[np.arange(p.shape[0]), y]
