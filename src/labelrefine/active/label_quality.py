"""Scores that look for *wrong* labels: confident learning and a precision / F1-gain trade-off.

Two jobs compete for an expert's time. Finding wrong labels (query precision: the share of
queried labels that were wrong) and improving the model (F1 gained per label) are different
goals: entropy picks items the model is unsure about, most of which carry a correct but hard
label; a label-quality score picks items whose label the model contradicts.

Every score function returns one score per row, **higher = query first**; ``probs`` is an
``(n, C)`` array of predicted class probabilities (rows sum to 1) and ``given_labels`` the
``(n,)`` labels the items carry now.

* :func:`cl_scores` -- cleanlab's label-quality score turned into a query score:
  ``1 - cleanlab.rank.get_label_quality_scores(given_labels, probs, method, adjust_pred_probs)``.
  The probabilities must be *out of sample* for the scored items (the model did not train on
  their labels) for the score to mean anything; in ``ours`` the suspect pool is never trained
  on, so the phase-2 model's pool probabilities qualify.
* :func:`combined_scores` -- ``(1 - w) * rank(cl) + w * rank(entropy)`` on rank percentiles:
  ``w = 0`` is pure confident learning (highest query precision), ``w = 1`` pure entropy
  (uncertainty sampling). One parameter, :data:`COMBINED_WEIGHT` by default.

Both are pure functions of their inputs (no state, no randomness).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from cleanlab.rank import get_label_quality_scores
from scipy.special import entr
from scipy.stats import rankdata

from labelrefine.validation import check_labels

ClMethod = Literal["self_confidence", "normalized_margin", "confidence_weighted_entropy"]
CL_METHODS: tuple[str, ...] = ("self_confidence", "normalized_margin",
                               "confidence_weighted_entropy")

#: cleanlab scoring method used by the ``cl`` sampler.
CL_METHOD: ClMethod = "normalized_margin"
#: Subtract cleanlab's per-class thresholds (mean self-confidence of the items carrying each
#: label, estimated from the rows scored) before scoring. Off: on a suspect pool most labels are
#: wrong, so the thresholds estimated there are meaningless (measured on HAM10000, symmetric
#: p = 0.4, phase-1 suspect pool: share of wrong labels among the first 92 picks 0.51 with,
#: 0.98 without).
CL_ADJUST = False
#: Weight of the entropy rank in :func:`combined_scores` (0 = confident learning only, 1 =
#: entropy only).
COMBINED_WEIGHT = 0.25


def check_pred_probs_and_labels(probs: np.ndarray,
                                given_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``(n, C)`` probabilities and ``(n,)`` labels; name the bad input."""
    p = np.asarray(probs)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probs must be a 2-D (n, C) array with C >= 2, got shape {p.shape}")
    if not np.issubdtype(p.dtype, np.floating):
        raise ValueError(f"probs must be floating point, got dtype {p.dtype}")
    p = p.astype(np.float64, copy=False)
    if p.size:
        if not np.isfinite(p).all():
            raise ValueError("probs contains NaN or infinite values")
        if p.min() < 0:
            raise ValueError("probs contains negative values (pass probabilities, not logits)")
        sums = p.sum(axis=1)
        bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-2)
        if bad.size:
            raise ValueError(f"probs row {int(bad[0])} sums to {sums[bad[0]]:.4f}, expected 1")
    y = check_labels(given_labels, p.shape[1], name="given_labels", n=p.shape[0])
    return p, y


def cl_scores(probs: np.ndarray, given_labels: np.ndarray, *, method: ClMethod = CL_METHOD,
              adjust: bool = CL_ADJUST) -> np.ndarray:
    """Confident-learning query score ``1 - q_i``, ``q`` = cleanlab's label quality.

    ``q = cleanlab.rank.get_label_quality_scores(given_labels, probs, method=method,
    adjust_pred_probs=adjust)`` (in ``[0, 1]``, low = label likely wrong). With
    ``method='self_confidence'`` and ``adjust=False`` this is ``1 - p_iy``. ``adjust`` uses
    thresholds estimated from the rows passed in, so score the items you rank (e.g. the pool).
    """
    if method not in CL_METHODS:
        raise ValueError(f"unknown cleanlab method {method!r}; use one of {', '.join(CL_METHODS)}")
    p, y = check_pred_probs_and_labels(probs, given_labels)
    if p.shape[0] == 0:
        return np.zeros(0, dtype=np.float64)
    if adjust and method == "confidence_weighted_entropy":
        raise ValueError("adjust=True is not supported with method 'confidence_weighted_entropy'")
    q = get_label_quality_scores(y, p, method=method, adjust_pred_probs=adjust)
    return 1.0 - np.asarray(q, dtype=np.float64)


def rank_percentiles(scores: np.ndarray) -> np.ndarray:
    """Scores to average-rank percentiles in ``(0, 1]`` (highest score -> 1; ties share)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {s.shape}")
    if s.size == 0:
        return s.copy()
    return rankdata(s, method="average") / s.size


def combined_scores(probs: np.ndarray, given_labels: np.ndarray, *,
                    weight: float = COMBINED_WEIGHT, method: ClMethod = CL_METHOD,
                    adjust: bool = CL_ADJUST) -> np.ndarray:
    """``(1 - weight) * r_cl + weight * r_H``: a trade-off between query precision and F1 gain.

    ``r_cl`` and ``r_H`` are the rank percentiles (:func:`rank_percentiles`) of
    :func:`cl_scores` and of the predictive entropy ``H(p) = -sum_c p_c log p_c``. Ranks make
    the two scales comparable whatever the model's calibration. ``weight = 0`` ranks by
    confident learning alone (most queried labels wrong), ``weight = 1`` by entropy alone
    (uncertainty sampling: items near the decision boundary, which move the model most per label
    but are mostly correctly labelled).
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    p, y = check_pred_probs_and_labels(probs, given_labels)
    cl = rank_percentiles(cl_scores(p, y, method=method, adjust=adjust))
    h = rank_percentiles(entr(p).sum(axis=1))
    return (1.0 - weight) * cl + weight * h
