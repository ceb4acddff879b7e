"""The model's estimate of how many given labels are wrong, from calibrated probabilities.

If ``p_hat`` is calibrated, item ``i``'s given label is wrong with probability
``w_i = 1 - p_hat_i(given_i)``. The number of wrong labels in a set of items is then a sum of
independent Bernoulli variables -- Poisson-binomial -- with mean ``sum w_i`` and variance
``sum w_i (1 - w_i)``; its 95 % interval is taken as ``mean +- 1.96 sd`` (normal
approximation), clipped to ``[0, n]``.

Pure functions over numpy arrays. The estimate is only as good as the calibration: temperature
scaling on the validation split (:mod:`labelrefine.models.calibration`) fixes over-confidence
on average, not per class or on the suspect pool, which is why ``campaign status`` shows it
next to the share of wrong labels the experts actually found.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from labelrefine.validation import check_labels

Z95 = 1.959964
"""Two-sided 95 % normal quantile."""


def wrong_probabilities(probs: np.ndarray, given: np.ndarray) -> np.ndarray:
    """``1 - probs[i, given[i]]`` per item: the chance that item ``i``'s given label is wrong.

    ``probs`` is ``(n, C)`` (rows of probabilities, finite, in ``[0, 1]``); ``given`` ``(n,)``
    class indices. The error names the first bad row.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be (n, C), got shape {p.shape}")
    y = check_labels(given, p.shape[1], name="given", n=p.shape[0])
    bad = ~(np.isfinite(p) & (p >= 0) & (p <= 1)).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"probs[{i}] is not a row of probabilities in [0, 1]: {p[i].tolist()}")
    return 1.0 - p[np.arange(y.size), y]


def expected_wrong(probs: np.ndarray, given: np.ndarray) -> float:
    """Expected number of wrong given labels: ``sum_i (1 - probs[i, given[i]])``."""
    return float(wrong_probabilities(probs, given).sum())


def poisson_binomial_interval(
    p: np.ndarray, z: float = Z95
) -> tuple[float, float, float]:
    """``(mean, low, high)`` of the number of successes among independent Bernoulli(``p_i``):
    ``mean = sum p``, ``mean +- z * sqrt(sum p (1 - p))`` clipped to ``[0, len(p)]``."""
    p = np.asarray(p, dtype=np.float64).ravel()
    if p.size and not ((p >= 0) & (p <= 1)).all():
        i = int(np.flatnonzero(~((p >= 0) & (p <= 1)))[0])
        raise ValueError(f"p[{i}] = {p[i]} is not a probability")
    mean = float(p.sum())
    sd = float(np.sqrt(np.sum(p * (1 - p))))
    return mean, max(0.0, mean - z * sd), min(float(p.size), mean + z * sd)


def summary(w: np.ndarray) -> dict[str, float]:
    """``{"n", "expected", "variance"}`` of the wrong count of items with wrong-probabilities
    ``w`` (what a round stores; :func:`interval` turns it into an interval)."""
    w = np.asarray(w, dtype=np.float64).ravel()
    return {"n": int(w.size), "expected": float(w.sum()), "variance": float(np.sum(w * (1 - w)))}


def interval(s: dict[str, Any], z: float = Z95, scale: float = 1.0) -> dict[str, float]:
    """``{"estimate", "low", "high"}`` from a :func:`summary`, optionally for ``scale`` times
    as many items alike (mean and variance both scale)."""
    mean, sd = scale * float(s["expected"]), float(np.sqrt(scale * float(s["variance"])))
    top = scale * float(s["n"])
    return {"estimate": mean, "low": max(0.0, mean - z * sd), "high": min(top, mean + z * sd)}


def model_estimate(
    probs: np.ndarray,
    given: np.ndarray,
    *,
    pool: np.ndarray,
    queue: np.ndarray,
    class_names: Sequence[str],
) -> dict[str, Any]:
    """What a round records: :func:`summary` of the ``pool`` items and of the ``queue`` items
    (indices into the rows of ``probs`` / ``given``), and the pool's expected wrong count per
    given class."""
    w = wrong_probabilities(probs, given)
    pool = np.asarray(pool, dtype=np.int64)
    queue = np.asarray(queue, dtype=np.int64)
    y = np.asarray(given, dtype=np.int64)
    per_class = np.bincount(y[pool], weights=w[pool], minlength=len(class_names))
    return {
        "pool": summary(w[pool]),
        "queue": summary(w[queue]),
        "per_class": {str(n): float(v) for n, v in zip(class_names, per_class, strict=True)},
    }


def finder_estimate(probs: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """The finder's model-based count of wrong labels among the rows given (the unanswered
    training items): cleanlab's confident-learning estimate on the out-of-sample
    probabilities (:func:`labelrefine.finder.estimate_wrong_labels`, the count ``labelrefine
    find`` reports), next to ``sum (1 - p(label))``. Model-based: it assumes the probabilities
    are right, which the audit estimate does not."""
    from labelrefine.finder import estimate_wrong_labels

    y = np.asarray(labels, dtype=np.int64)
    if y.size == 0:
        return {"n": 0, "estimate": 0.0, "expected": 0.0, "method": "cleanlab"}
    est = estimate_wrong_labels(y, np.asarray(probs, dtype=np.float64))
    return {"n": int(y.size), "estimate": float(est["estimate"]),
            "expected": float(est["expected"]), "method": "cleanlab"}
