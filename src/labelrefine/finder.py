"""Which given labels look wrong: a ranking and an estimate from your own model's outputs.

The contract is cleanlab's (``find_label_issues(labels, pred_probs)``), extended to features
and to labels already known to be right:

* **out-of-sample probabilities** ``P`` (``(n, C)``, row ``i`` from a model that never saw
  item ``i``'s label, e.g. cross-validated): each item's label quality is cleanlab's
  normalised margin ``q_i = (1 + p_i[y_i] - max_{j != y_i} p_i[j]) / 2``
  (``cleanlab.rank.get_label_quality_scores``, no threshold adjustment) and its score the rank
  percentile ``s_i = r(1 - q_i)`` in ``[0, 1]`` (higher = more likely wrong);
* **features** ``X`` (``(n, D)``, e.g. a foundation model's embeddings): ``P`` is cross-fitted
  first -- ``K``-fold L2 logistic regression on the first 128 principal components of the
  standardised features, each fold scored by a model fitted on the other folds
  (:func:`labelrefine.active.finding.crossfit_probs`) -- and the score mixes in the share
  ``a_i`` of the item's ``k`` nearest neighbours (cosine) that carry its label:
  ``s_i = (1 - w) r(1 - q_i) + w r(1 - a_i)`` (:func:`labelrefine.active.finding.
  finding_scores`; ``w`` = ``FindConfig.weight``, the campaign default);
* **both**: the given ``P`` for ``q`` and the features for ``a``.

``trusted`` marks labels known to be right (e.g. histopathology-confirmed diagnoses): they are
used to fit the cross-fitted heads like every other item, never listed as suspects, and counted
as correct in :func:`estimate_wrong_labels`, which then covers the untrusted items only.

The probabilities must be out of sample: a model's probabilities on the items it was trained
on agree with the labels it memorised, wrong ones included, and rank nothing.

Pure functions over arrays (numpy, pandas, cleanlab, scikit-learn); reading files is in
:mod:`labelrefine.data.external` and :mod:`labelrefine.models.encoder_file`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from labelrefine.active import finding
from labelrefine.active.label_quality import CL_METHOD, CL_METHODS, ClMethod
from labelrefine.config import FindConfig
from labelrefine.data.external import ROW_SUM_TOL, check_pred_probs, trusted_mask
from labelrefine.validation import check_labels

__all__ = ["ROW_SUM_TOL", "FindResult", "Scored", "check_pred_probs", "estimate_wrong_labels",
           "find_wrong_labels", "rank_label_issues", "ranking_frame", "score_labels",
           "trusted_mask"]

_FIND = FindConfig()
#: Neighbour weight of feature rankings (the campaign default, ``FindConfig.weight``).
WEIGHT = _FIND.weight
#: Inverse L2 strength of the cross-fitted heads (``FindConfig.c``).
C_REG = _FIND.c
#: Folds of the cross-fitting (``FindConfig.folds``).
FOLDS = _FIND.folds
#: Neighbours of the agreement signal (``FindConfig.neighbours``).
NEIGHBOURS = _FIND.neighbours
#: What :func:`estimate_wrong_labels` computes.
ESTIMATE_METHOD = "cleanlab confident learning (off-diagonal calibrated)"

#: Columns of :func:`rank_label_issues`'s frame, in order.
RANK_COLUMNS: tuple[str, ...] = ("rank", "index", "id", "given_label", "suggested_label",
                                 "suggested_probability", "given_probability", "score", "reason")


def _trusted(trusted: np.ndarray | None, n: int) -> np.ndarray:
    if trusted is None:
        return np.zeros(n, dtype=bool)
    t = np.asarray(trusted)
    if t.shape != (n,):
        raise ValueError(f"trusted has shape {t.shape}, expected ({n},)")
    if t.dtype != bool:
        if not np.isin(t, (0, 1)).all():
            raise ValueError("trusted must be a boolean mask")
        t = t.astype(bool)
    return t


@dataclass(frozen=True)
class Scored:
    """Every item's out-of-sample probabilities, neighbour agreement (None without
    features) and score (higher = more likely a wrong label), rows aligned with the input."""

    probs: np.ndarray
    agreement: np.ndarray | None
    scores: np.ndarray
    source: str  # "pred_probs", "features" or "pred_probs+features"


#: Label-quality score with given probabilities: on development seeds 10-14 (20 % symmetric
#: noise, bundled data) self-confidence was level with or ahead of cleanlab's
#: ``find_label_issues`` order at every k; normalized margin was 0.034 behind at k = #wrong.
PRED_PROBS_METHOD: ClMethod = "self_confidence"


def score_labels(labels: np.ndarray, *, pred_probs: np.ndarray | None = None,
                 features: np.ndarray | None = None, num_classes: int | None = None,
                 weight: float = WEIGHT, c: float = C_REG, folds: int = FOLDS,
                 neighbours: int = NEIGHBOURS, dims: int | None = finding.DIMS,
                 seed: int = 0, method: ClMethod | None = None) -> Scored:
    """Score every label (module docstring): from ``pred_probs`` (``(n, C)``, out of sample,
    checked by :func:`check_pred_probs`), from ``features`` (``(n, D)``; probabilities
    cross-fitted over ``folds`` stratified folds seeded with ``seed``, L2 strength ``1 / c``,
    ``dims`` principal components, neighbour weight ``weight`` over ``neighbours``
    neighbours) or from both (given probabilities, agreement from the features). ``method``:
    cleanlab's label-quality score (``self_confidence`` ``q_i = p_i[y_i]``, the default with
    ``pred_probs``; ``normalized_margin``, the campaigns' and the default with features alone;
    or ``confidence_weighted_entropy``)."""
    if pred_probs is None and features is None:
        raise ValueError("give pred_probs, features or both")
    if method is None:  # cleanlab's own order for given probabilities, the campaigns' else
        method = PRED_PROBS_METHOD if pred_probs is not None else CL_METHOD
    if method not in CL_METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(CL_METHODS)}")
    if pred_probs is not None:
        p = check_pred_probs(pred_probs, num_classes=num_classes)
        c_ = p.shape[1]
    else:
        if num_classes is None:
            raise ValueError("num_classes is needed with features alone")
        c_ = int(num_classes)
    y = check_labels(labels, c_, name="labels")
    if pred_probs is not None and p.shape[0] != y.size:
        raise ValueError(f"pred_probs has {p.shape[0]} rows for {y.size} labels")
    if features is None:
        return Scored(probs=p, agreement=None,
                      scores=finding.finding_scores(p, y, weight=0.0, method=method),
                      source="pred_probs")
    if pred_probs is None:
        f = finding.find(features, y, c_, folds=folds, c=c, k=neighbours, weight=weight,
                         dims=dims, seed=seed)
        scores = (f.scores if method == CL_METHOD else finding.finding_scores(
            f.probs, y, agreement=f.agreement, weight=weight, method=method))
        return Scored(probs=f.probs, agreement=f.agreement, scores=scores, source="features")
    x = finding.standardise(finding._features(features, y.size))
    agree = finding.neighbour_agreement(x, y, c_, k=neighbours)
    return Scored(probs=p, agreement=agree,
                  scores=finding.finding_scores(p, y, agreement=agree, weight=weight,
                                                method=method),
                  source="pred_probs+features")


def ranking_frame(scored: Scored, labels: np.ndarray, *, trusted: np.ndarray | None = None,
                  ids: Sequence[str] | None = None, class_names: Sequence[str] | None = None,
                  neighbours: int = NEIGHBOURS) -> pd.DataFrame:
    """The untrusted items, most likely wrong first (ties: input order), as a frame with
    :data:`RANK_COLUMNS`: ``rank`` (1-based), ``index`` (row of the input), ``id``, the given
    and the suggested label (the most probable class out of sample) with their probabilities,
    the ``score`` and a plain-words ``reason``
    (:func:`labelrefine.active.finding.finding_reason`)."""
    p = scored.probs
    y = check_labels(labels, p.shape[1], name="labels", n=p.shape[0])
    t = _trusted(trusted, y.size)
    names = (list(class_names) if class_names is not None
             else [str(j) for j in range(p.shape[1])])
    if len(names) != p.shape[1]:
        raise ValueError(f"{len(names)} class names for {p.shape[1]} classes")
    item_ids = [str(i) for i in range(y.size)] if ids is None else [str(i) for i in ids]
    if len(item_ids) != y.size:
        raise ValueError(f"{len(item_ids)} ids for {y.size} labels")
    order = np.argsort(-scored.scores, kind="stable")
    order = order[~t[order]]
    sugg = p.argmax(axis=1)
    rows = np.arange(y.size)
    agree = scored.agreement
    return pd.DataFrame({
        "rank": np.arange(1, order.size + 1),
        "index": order,
        "id": [item_ids[i] for i in order],
        "given_label": [names[y[i]] for i in order],
        "suggested_label": [names[sugg[i]] for i in order],
        "suggested_probability": p[order, sugg[order]],
        "given_probability": p[rows[order], y[order]],
        "score": scored.scores[order],
        "reason": [finding.finding_reason(p[i], int(y[i]),
                                          None if agree is None else float(agree[i]),
                                          neighbours, names) for i in order],
    }, columns=list(RANK_COLUMNS))


def rank_label_issues(labels: np.ndarray, *, pred_probs: np.ndarray | None = None,
                      features: np.ndarray | None = None, trusted: np.ndarray | None = None,
                      ids: Sequence[str] | None = None,
                      class_names: Sequence[str] | None = None,
                      num_classes: int | None = None, weight: float = WEIGHT,
                      c: float = C_REG, folds: int = FOLDS, neighbours: int = NEIGHBOURS,
                      dims: int | None = finding.DIMS, seed: int = 0,
                      method: ClMethod | None = None) -> pd.DataFrame:
    """Rank the given labels, most likely wrong first, leaving out the trusted ones.

    Parameters
    ----------
    labels : np.ndarray
        ``(n,)`` given labels, integers in ``0 .. C-1``.
    pred_probs : np.ndarray, optional
        ``(n, C)`` **out-of-sample** predicted probabilities (each row from a model that did
        not train on that item, e.g. cross-validated); rows must sum to 1. Scores are
        ``s_i = r(1 - q_i)``, ``q_i`` cleanlab's normalised-margin label quality
        ``(1 + p_i[y_i] - max_{j != y_i} p_i[j]) / 2`` and ``r`` the rank percentile.
    features : np.ndarray, optional
        ``(n, D)`` embeddings. Without ``pred_probs``, probabilities are cross-fitted on them
        (``folds``-fold stratified L2 logistic regression, ``C = c``, on ``dims`` principal
        components of the standardised features; trusted items are fitted on too), and the
        score is ``(1 - w) r(1 - q_i) + w r(1 - a_i)``, ``a_i`` the share of the ``neighbours``
        nearest items (cosine) carrying item ``i``'s label and ``w = weight``. With
        ``pred_probs``, only ``a`` comes from the features.
    trusted : np.ndarray, optional
        ``(n,)`` bool, labels known to be right: never ranked (absent from the result).
    ids, class_names : sequence of str, optional
        Item ids and class names for the result (default: row numbers, class numbers).
    num_classes : int, optional
        ``C``; needed with ``features`` alone.
    seed : int
        Seed of the fold split and the projection: the same seed gives the same ranking.
    method : str
        cleanlab's label-quality score ``q``: ``normalized_margin`` (default, as campaigns),
        ``self_confidence`` (``q_i = p_i[y_i]``) or ``confidence_weighted_entropy``.

    Returns
    -------
    pandas.DataFrame
        One row per untrusted item with columns :data:`RANK_COLUMNS` (``index`` is the row
        in the input), sorted by ``score`` descending, ties in input order.

    Examples
    --------
    >>> from labelrefine.finder import rank_label_issues
    >>> ranked = rank_label_issues(labels, pred_probs=pred_probs)   # doctest: +SKIP
    >>> ranked.head(20)[["id", "given_label", "suggested_label", "reason"]]  # doctest: +SKIP
    """
    scored = score_labels(labels, pred_probs=pred_probs, features=features,
                          num_classes=num_classes if num_classes is not None
                          else (len(class_names) if class_names is not None else None),
                          weight=weight, c=c, folds=folds, neighbours=neighbours, dims=dims,
                          seed=seed, method=method)
    return ranking_frame(scored, labels, trusted=trusted, ids=ids, class_names=class_names,
                         neighbours=neighbours)


def _joint(labels: np.ndarray, probs: np.ndarray) -> np.ndarray | None:
    """cleanlab's calibrated joint ``Q`` (``[given, true]``, sums to 1), None when cleanlab
    cannot compute it (too few items of some class)."""
    from cleanlab.count import compute_confident_joint, estimate_joint

    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            cj = compute_confident_joint(labels, probs, calibrate=True)
            q = np.asarray(estimate_joint(labels, probs, confident_joint=cj), dtype=np.float64)
    except (ValueError, IndexError, ZeroDivisionError):
        return None
    return q if np.isfinite(q).all() else None


def estimate_wrong_labels(labels: np.ndarray, pred_probs: np.ndarray, *,
                          trusted: np.ndarray | None = None,
                          class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """How many given labels are wrong, overall and per given class, from out-of-sample
    probabilities; trusted labels count as correct.

    Parameters
    ----------
    labels : np.ndarray
        ``(n,)`` given labels in ``0 .. C-1``.
    pred_probs : np.ndarray
        ``(n, C)`` out-of-sample probabilities (checked by :func:`check_pred_probs`).
    trusted : np.ndarray, optional
        ``(n,)`` bool, labels known to be right: left out of the estimate, counted apart.
    class_names : sequence of str, optional
        Keys of ``per_class`` (default: class numbers).

    Returns
    -------
    dict
        ``n``, ``trusted``, ``untrusted`` (item counts); ``estimate``: cleanlab's confident-
        learning count over the ``m`` untrusted items, ``m (1 - tr Q)`` rounded, where ``Q``
        is the calibrated confident joint ``Q[i, j]`` -- the share of items given label ``i``
        whose true label is ``j``, from the items with ``p_j >= t_j`` (``t_j`` = the mean
        ``p_j`` of the items given ``j``), rows rescaled to the given-label counts
        (``cleanlab.count.num_label_issues(..., "off_diagonal_calibrated")``); ``share``:
        ``estimate / m``; ``expected``: ``sum_i (1 - p_i[y_i])``, the count if ``P`` were
        calibrated; ``per_class``: for each given class ``i``, its ``n``, ``trusted`` and
        ``estimate = m (sum_j Q[i, j] - Q[i, i])`` and ``expected``. NaN estimates where
        cleanlab cannot compute ``Q`` (e.g. a class without untrusted items). Model-based:
        it is as good as the probabilities.
    """
    p = check_pred_probs(pred_probs)
    y = check_labels(labels, p.shape[1], name="labels", n=p.shape[0])
    t = _trusted(trusted, y.size)
    names = (list(class_names) if class_names is not None
             else [str(j) for j in range(p.shape[1])])
    if len(names) != p.shape[1]:
        raise ValueError(f"{len(names)} class names for {p.shape[1]} classes")
    u = ~t
    yu, pu = y[u], p[u]
    m = int(yu.size)
    w = 1.0 - pu[np.arange(m), yu]
    q = _joint(yu, pu) if m and np.unique(yu).size >= 2 else None
    per_row = (np.full(p.shape[1], np.nan) if q is None
               else m * (q.sum(axis=1) - np.diag(q)))
    total = float("nan") if q is None else float(np.rint(m * (1.0 - np.trace(q))))
    expected = np.bincount(yu, weights=w, minlength=p.shape[1])
    n_u = np.bincount(yu, minlength=p.shape[1])
    n_t = np.bincount(y[t], minlength=p.shape[1])
    return {
        "method": ESTIMATE_METHOD,
        "n": int(y.size),
        "trusted": int(t.sum()),
        "untrusted": m,
        "estimate": total,
        "share": total / m if m else float("nan"),
        "expected": float(w.sum()),
        "per_class": {
            names[j]: {"n": int(n_u[j]), "trusted": int(n_t[j]),
                       "estimate": float(per_row[j]), "expected": float(expected[j])}
            for j in range(p.shape[1])
        },
    }


@dataclass(frozen=True)
class FindResult:
    """What :func:`find_wrong_labels` returns: the ranking, the estimate and the scores."""

    ranking: pd.DataFrame
    estimate: dict[str, Any]
    scored: Scored


def find_wrong_labels(labels: np.ndarray, *, pred_probs: np.ndarray | None = None,
                      features: np.ndarray | None = None, trusted: np.ndarray | None = None,
                      ids: Sequence[str] | None = None,
                      class_names: Sequence[str] | None = None,
                      num_classes: int | None = None, weight: float = WEIGHT,
                      c: float = C_REG, folds: int = FOLDS, neighbours: int = NEIGHBOURS,
                      dims: int | None = finding.DIMS, seed: int = 0,
                      method: ClMethod | None = None) -> FindResult:
    """:func:`rank_label_issues` and :func:`estimate_wrong_labels` on the same probabilities
    (with features, the heads are cross-fitted once); parameters as there."""
    k = num_classes if num_classes is not None else (
        len(class_names) if class_names is not None else None)
    scored = score_labels(labels, pred_probs=pred_probs, features=features, num_classes=k,
                          weight=weight, c=c, folds=folds, neighbours=neighbours, dims=dims,
                          seed=seed, method=method)
    ranking = ranking_frame(scored, labels, trusted=trusted, ids=ids, class_names=class_names,
                            neighbours=neighbours)
    estimate = estimate_wrong_labels(labels, scored.probs, trusted=trusted,
                                     class_names=class_names)
    return FindResult(ranking=ranking, estimate={**estimate, "input": scored.source},
                      scored=scored)
