"""Rank a pool with a registered sampler, explain the picks, per-class quotas.

:func:`ranked` and :func:`select` are the front used by a round
(:mod:`labelrefine.active.round`): they take *item indices* (``pool``) plus arrays aligned with
the pool, drop excluded items, rank deterministically (ties broken by ascending item index,
whatever order the pool was given in) and never return an item twice. The sampler is looked up
in :mod:`labelrefine.active.registry`. :func:`explain` turns a ranking into short reasons for a
human ("model predicts bcc at 0.93 against the given label nv").
:func:`class_quota_select` gives minority classes their share of a budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from labelrefine.active.coreset import CORESET_EXACT_WORK, CORESET_PROJECT_DIM
from labelrefine.active.registry import ScoreInputs, get_sampler
from labelrefine.active.scores import Metric, _as_labels, _as_probs, _rank_desc

QuotaBy = Literal["given", "predicted"]


# ----------------------------------------------------------------------------- quotas


def class_quota_select(scores: np.ndarray, classes: np.ndarray, k: int) -> np.ndarray:
    """Top-``k`` positions under equal per-class quotas (minority classes get their share).

    Items are ranked within their class by descending score (ties: lower position first).
    Selection then proceeds in rounds: round ``r`` takes the ``r``-th best item of every class
    that still has one, in descending score order, until ``k`` items are taken. Each class thus
    gets ``~k / (number of classes)`` items; a class with fewer items gives its unused share to
    the others, and the remainder goes to the highest scores.

    Args:
        scores: ``(n,)`` scores, higher = query first.
        classes: ``(n,)`` integer class of each item (given or predicted label).
        k: number of positions to return (at most ``n``).

    Returns:
        ``(min(k, n),)`` int64 positions into ``scores``, in selection order.
    """
    s = np.asarray(scores, dtype=np.float64)
    cls = np.asarray(classes)
    if s.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {s.shape}")
    if cls.shape != s.shape:
        raise ValueError(f"classes must have shape {s.shape} like scores, got {cls.shape}")
    if cls.size and not np.issubdtype(cls.dtype, np.integer):
        raise ValueError(f"classes must hold integer class indices, got dtype {cls.dtype}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    n = s.size
    pos = np.arange(n)
    by_class = np.lexsort((pos, -s, cls))  # class, then score desc, then position
    sorted_cls = cls[by_class]
    starts = np.r_[0, np.flatnonzero(sorted_cls[1:] != sorted_cls[:-1]) + 1] if n else pos
    rank = np.empty(n, dtype=np.int64)
    first_of_run = np.zeros(n, dtype=np.int64)
    first_of_run[starts] = starts
    rank[by_class] = pos - np.maximum.accumulate(first_of_run)
    order = np.lexsort((pos, -s, rank))
    return order[: min(k, n)].astype(np.int64)


# ----------------------------------------------------------------------------- front


@dataclass(frozen=True)
class Ranking:
    """A ranked pool: the query-first order with scores and human-readable reasons.

    Attributes:
        items: item indices (from ``pool``), query first.
        positions: the same items as positions into the arrays passed with the pool
            (``probs``, ``given_labels``, ``pool_features``).
        scores: the sampler's score of each item (higher = query first); for ``coreset`` the
            distance to the nearest centre (clean item or earlier pick) when it was picked.
        reasons: one short reason per item (empty when not requested).
    """

    items: np.ndarray
    positions: np.ndarray
    scores: np.ndarray
    reasons: tuple[str, ...] = ()


def _pool_view(pool: np.ndarray, exclude: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Validated pool; positions of the kept items sorted by ascending item index."""
    p = np.asarray(pool)
    if p.ndim != 1:
        raise ValueError(f"pool must be a 1-D array of item indices, got shape {p.shape}")
    if p.size and not np.issubdtype(p.dtype, np.integer):
        raise ValueError(f"pool must hold integer item indices, got dtype {p.dtype}")
    p = p.astype(np.int64, copy=False)
    if p.size and p.min() < 0:
        raise ValueError(f"pool contains a negative item index ({int(p.min())})")
    order = np.argsort(p, kind="stable")
    sorted_items = p[order]
    dup = np.flatnonzero(sorted_items[1:] == sorted_items[:-1])
    if dup.size:
        raise ValueError(f"pool contains item {int(sorted_items[dup[0]])} more than once")
    if exclude is not None:
        ex = np.asarray(exclude)
        if ex.ndim != 1:
            raise ValueError(f"exclude must be a 1-D array of item indices, got shape {ex.shape}")
        if ex.size:
            if not np.issubdtype(ex.dtype, np.integer):
                raise ValueError(f"exclude must hold integer item indices, got dtype {ex.dtype}")
            order = order[~np.isin(sorted_items, ex)]
    return p, order


def _quota_classes(quota_by: str, probs: np.ndarray | None,
                   given: np.ndarray | None) -> np.ndarray:
    if quota_by == "given":
        if given is None:
            raise ValueError("quota_by='given' needs given_labels")
        return given
    if quota_by == "predicted":
        if probs is None:
            raise ValueError("quota_by='predicted' needs probs")
        return probs.argmax(axis=1)
    raise ValueError(f"quota_by must be 'given', 'predicted' or None, got {quota_by!r}")


def ranked(
    sampler: str,
    k: int | None = None,
    *,
    pool: np.ndarray,
    exclude: np.ndarray | None = None,
    probs: np.ndarray | None = None,
    given_labels: np.ndarray | None = None,
    pool_features: np.ndarray | None = None,
    center_features: np.ndarray | None = None,
    seed: int = 0,
    quota_by: QuotaBy | None = None,
    metric: Metric = "euclidean",
    coreset_exact_work: float | None = CORESET_EXACT_WORK,
    coreset_project_dim: int | None = CORESET_PROJECT_DIM,
    coreset_max_pool: int | None = None,
    device: str | torch.device = "cpu",
    class_names: Sequence[str] | None = None,
    with_reasons: bool = True,
) -> Ranking:
    """Rank the pool with ``sampler`` and return the top ``k`` (all when ``k`` is None).

    Args:
        sampler: a name registered in :data:`labelrefine.active.registry.REGISTRY`.
        k: how many to return; at most the pool size minus the excluded items.
        pool: ``(n,)`` distinct non-negative item indices that may be queried.
        exclude: item indices never to return (e.g. already relabeled); may include items not
            in the pool.
        probs: ``(n, C)`` predicted probabilities aligned with ``pool`` (entropy, margin,
            joint, confidence; also used for reasons).
        given_labels: ``(n,)`` current labels aligned with ``pool`` (joint, confidence).
        pool_features: ``(n, D)`` features aligned with ``pool`` (coreset).
        center_features: ``(m, D)`` features of the clean set, the initial centres (coreset;
            ``m`` may be 0).
        seed: seeds ``random`` and coreset's subsample / projection / first pick.
        quota_by: apply :func:`class_quota_select` over the ``given`` or ``predicted`` class
            (score samplers only).
        metric: coreset distance, ``euclidean`` or ``cosine``.
        coreset_exact_work, coreset_project_dim, coreset_max_pool: the large-pool
            approximation of coreset. With ``n`` pool items (after ``exclude``), ``D``
            feature dimensions and ``m`` centres, greedy k-center is exact while
            ``n * D * (m + k) <= coreset_exact_work`` (default 1e11, times 100 on a non-CPU
            device; None = always exact). Above it, features are randomly projected to
            ``coreset_project_dim`` dimensions (default 64; None keeps them all) and, when
            ``coreset_max_pool`` is given, the greedy runs on a seeded subsample of that many
            items; see :func:`coreset_select`.
        device: torch device for coreset distances (``cpu``, ``cuda``).
        class_names: names for the reasons (default: class indices).
        with_reasons: compute :attr:`Ranking.reasons`.

    The result depends only on the *set* of pool items (with their aligned rows), not on the
    order they were given in: rows are first put in ascending item order, and ties in score are
    broken by ascending item index. ``coreset`` without ``k`` runs the greedy over the whole
    pool (quadratic; pass ``k`` for large pools).
    """
    spec = get_sampler(sampler)
    pool_arr, keep = _pool_view(pool, exclude)
    n = pool_arr.size
    if k is not None and k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    m = keep.size if k is None else min(k, keep.size)

    p = None if probs is None else _as_probs(probs, n)
    y = None
    if given_labels is not None:
        y = _as_labels(given_labels, n, p.shape[1] if p is not None else np.iinfo(np.int64).max)
    if "probs" in spec.needs and p is None:
        raise ValueError(f"sampler {sampler!r} needs probs")
    if "given_labels" in spec.needs and y is None:
        raise ValueError(f"sampler {sampler!r} needs given_labels")
    kp = None if p is None else p[keep]
    ky = None if y is None else y[keep]

    distances = None
    if spec.pick is not None:
        if quota_by is not None:
            raise ValueError(f"quota_by applies to score samplers, not {sampler}")
        if pool_features is None or center_features is None:
            raise ValueError(f"sampler {sampler!r} needs pool_features and center_features")
        local, scores, distances = spec.pick(
            pool_features, center_features, keep, n, m, seed, metric=metric,
            exact_work=coreset_exact_work, project_dim=coreset_project_dim,
            max_pool=coreset_max_pool, device=device)
    else:
        assert spec.score is not None
        all_scores = spec.score(ScoreInputs(n=int(keep.size), probs=kp, given_labels=ky,
                                            seed=seed))
        if quota_by is not None:
            local = class_quota_select(all_scores, _quota_classes(quota_by, kp, ky), m)
        else:
            local = _rank_desc(all_scores)[:m]
        scores = all_scores[local]

    positions = keep[local].astype(np.int64)
    reasons: tuple[str, ...] = ()
    if with_reasons:
        reasons = tuple(explain(sampler, local, kp, ky, class_names, distances=distances,
                                scores=scores))
    return Ranking(items=pool_arr[positions], positions=positions,
                   scores=np.asarray(scores, dtype=np.float64), reasons=reasons)


def select(
    sampler: str,
    k: int,
    *,
    pool: np.ndarray,
    exclude: np.ndarray | None = None,
    probs: np.ndarray | None = None,
    given_labels: np.ndarray | None = None,
    pool_features: np.ndarray | None = None,
    center_features: np.ndarray | None = None,
    seed: int = 0,
    quota_by: QuotaBy | None = None,
    metric: Metric = "euclidean",
    coreset_exact_work: float | None = CORESET_EXACT_WORK,
    coreset_project_dim: int | None = CORESET_PROJECT_DIM,
    coreset_max_pool: int | None = None,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Item indices (from ``pool``) to query next, query-first: the top ``k`` of :func:`ranked`.

    Returns ``min(k, |pool minus exclude|)`` distinct items, none of them in ``exclude``;
    deterministic for a given seed and independent of the pool's order. Raises ``ValueError``
    naming the argument when an input the sampler needs is missing or has the wrong shape.
    """
    return ranked(
        sampler, k, pool=pool, exclude=exclude, probs=probs, given_labels=given_labels,
        pool_features=pool_features, center_features=center_features, seed=seed,
        quota_by=quota_by, metric=metric, coreset_exact_work=coreset_exact_work,
        coreset_project_dim=coreset_project_dim, coreset_max_pool=coreset_max_pool,
        device=device, with_reasons=False,
    ).items


# ----------------------------------------------------------------------------- reasons


def explain(
    sampler: str,
    idx: np.ndarray,
    probs: np.ndarray | None = None,
    given_labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    *,
    distances: np.ndarray | None = None,
    scores: np.ndarray | None = None,
) -> list[str]:
    """One short human-readable reason per position in ``idx`` for why ``sampler`` ranks it.

    Args:
        sampler: a registered sampler name.
        idx: positions into ``probs`` / ``given_labels`` / ``distances``.
        probs: ``(n, C)`` predicted probabilities (optional for random and coreset).
        given_labels: ``(n,)`` current labels.
        class_names: class names (default: indices).
        distances: coreset only: ``(n,)`` distance of each pool item to its nearest clean item
            (NaN where unknown, ``inf`` with no clean items); the pool median is their median.
        scores: coreset only: the pick-time distances aligned with ``idx`` (used when there
            are no clean items).

    Examples: ``"model predicts bcc at 0.93 against the given label nv"``, ``"high uncertainty
    (entropy 1.62 of max 1.95)"``, ``"unlike every clean sample (distance 4.1, pool median
    2.0)"``.
    """
    spec = get_sampler(sampler)
    ix = np.asarray(idx, dtype=np.int64).reshape(-1)
    p = None if probs is None else _as_probs(probs)
    y = None if given_labels is None else np.asarray(given_labels, dtype=np.int64)
    if "probs" in spec.needs and p is None:
        raise ValueError(f"explain({sampler!r}) needs probs")
    if "given_labels" in spec.needs and y is None:
        raise ValueError(f"explain({sampler!r}) needs given_labels")
    return spec.explain(ix, p, y, class_names, distances=distances, scores=scores)
