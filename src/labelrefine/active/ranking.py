"""Rank a pool with a registered sampler and explain the picks.

:func:`ranked` and :func:`select` are the front used by a round
(:mod:`labelrefine.active.round`): they take *item indices* (``pool``) plus arrays aligned with
the pool, drop excluded items, hand the sampler one
:class:`~labelrefine.active.registry.PoolView` (rows in ascending item order, so ties in score
are broken by ascending item index whatever order the pool was given in) and never return an
item twice. The sampler is a name looked up in :mod:`labelrefine.active.registry`, or a sampler
object with its own options (e.g. ``Coreset(metric="cosine")``). :func:`explain` turns a
ranking into short plain-word reasons for a human ("the model finds bcc more likely (93%) than
the given nv (2%)").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from labelrefine.active.registry import Picks, PoolView, Sampler, get_sampler
from labelrefine.active.scores import _as_features, _as_labels, _as_probs

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


def _view(sampler: Sampler, pool_arr: np.ndarray, keep: np.ndarray, *,
          probs: np.ndarray | None, given_labels: np.ndarray | None,
          pool_features: np.ndarray | None, center_features: np.ndarray | None,
          seed: int, device: Any) -> PoolView:
    """Check the pool-aligned arrays against the pool (``n`` rows) and keep the ranked rows."""
    n = pool_arr.size
    p = None if probs is None else _as_probs(probs, n)
    y = None
    if given_labels is not None:
        y = _as_labels(given_labels, n, p.shape[1] if p is not None else np.iinfo(np.int64).max)
    f = None if pool_features is None else _as_features(pool_features, "pool_features", n=n)
    whole = np.array_equal(keep, np.arange(n))

    def kept(a: np.ndarray | None) -> np.ndarray | None:
        return a if a is None or whole else a[keep]

    view = PoolView(items=pool_arr[keep], probs=kept(p), given_labels=kept(y),
                    features=kept(f), centres=center_features, seed=seed, device=device)
    view.require(sampler.name, sampler.needs)
    return view


def ranked(
    sampler: str | Sampler,
    k: int | None = None,
    *,
    pool: np.ndarray,
    exclude: np.ndarray | None = None,
    probs: np.ndarray | None = None,
    given_labels: np.ndarray | None = None,
    pool_features: np.ndarray | None = None,
    center_features: np.ndarray | None = None,
    seed: int = 0,
    device: Any = "cpu",
    class_names: Sequence[str] | None = None,
    with_reasons: bool = True,
) -> Ranking:
    """Rank the pool with ``sampler`` and return the top ``k`` (all when ``k`` is None).

    Args:
        sampler: a name registered in :data:`labelrefine.active.registry.REGISTRY`, or a
            sampler object (its options set, e.g. ``Coreset(max_pool=100_000)``).
        k: how many to return; at most the pool size minus the excluded items.
        pool: ``(n,)`` distinct non-negative item indices that may be queried.
        exclude: item indices never to return (e.g. already relabeled); may include items not
            in the pool.
        probs: ``(n, C)`` predicted probabilities aligned with ``pool`` (entropy, margin,
            joint, confidence, cl, combined; also used for reasons).
        given_labels: ``(n,)`` current labels aligned with ``pool``.
        pool_features: ``(n, D)`` features aligned with ``pool`` (coreset, neighbours).
        center_features: ``(m, D)`` features of the clean set, the initial centres (coreset;
            ``m`` may be 0).
        seed: seeds ``random`` and coreset's subsample / projection / first pick.
        device: torch device a sampler may compute on (coreset distances: ``cpu``, ``cuda``).
        class_names: names for the reasons (default: class indices).
        with_reasons: compute :attr:`Ranking.reasons`.

    The result depends only on the *set* of pool items (with their aligned rows), not on the
    order they were given in: rows are first put in ascending item order, and ties in score are
    broken by ascending item index. ``coreset`` without ``k`` runs the greedy over the whole
    pool (quadratic; pass ``k`` for large pools).
    """
    spec = get_sampler(sampler)
    pool_arr, keep = _pool_view(pool, exclude)
    if k is not None and k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    m = keep.size if k is None else min(k, keep.size)
    view = _view(spec, pool_arr, keep, probs=probs, given_labels=given_labels,
                 pool_features=pool_features, center_features=center_features, seed=seed,
                 device=device)
    picks = spec.rank(view, m)
    local = np.asarray(picks.positions, dtype=np.int64)
    positions = keep[local].astype(np.int64)
    reasons: tuple[str, ...] = ()
    if with_reasons:
        reasons = tuple(spec.explain(view, picks, class_names))
    return Ranking(items=pool_arr[positions], positions=positions,
                   scores=np.asarray(picks.scores, dtype=np.float64), reasons=reasons)


def select(
    sampler: str | Sampler,
    k: int,
    *,
    pool: np.ndarray,
    exclude: np.ndarray | None = None,
    probs: np.ndarray | None = None,
    given_labels: np.ndarray | None = None,
    pool_features: np.ndarray | None = None,
    center_features: np.ndarray | None = None,
    seed: int = 0,
    device: Any = "cpu",
) -> np.ndarray:
    """Item indices (from ``pool``) to query next, query-first: the top ``k`` of :func:`ranked`.

    Returns ``min(k, |pool minus exclude|)`` distinct items, none of them in ``exclude``;
    deterministic for a given seed and independent of the pool's order. Raises ``ValueError``
    naming the argument when an input the sampler needs is missing or has the wrong shape.
    """
    return ranked(
        sampler, k, pool=pool, exclude=exclude, probs=probs, given_labels=given_labels,
        pool_features=pool_features, center_features=center_features, seed=seed,
        device=device, with_reasons=False,
    ).items


# ----------------------------------------------------------------------------- reasons


def explain(
    sampler: str | Sampler,
    idx: np.ndarray,
    probs: np.ndarray | None = None,
    given_labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    *,
    pool_features: np.ndarray | None = None,
    distances: np.ndarray | None = None,
    scores: np.ndarray | None = None,
) -> list[str]:
    """One short plain-word reason per position in ``idx`` for why ``sampler`` ranks it.

    Args:
        sampler: a registered sampler name or a sampler object.
        idx: positions into ``probs`` / ``given_labels`` / ``pool_features`` / ``distances``.
        probs: ``(n, C)`` predicted probabilities (optional for random and coreset).
        given_labels: ``(n,)`` current labels.
        class_names: class names (default: indices).
        pool_features: ``(n, D)`` features (neighbours).
        distances: coreset only: ``(n,)`` distance of each pool item to its nearest clean item
            (NaN where unknown, ``inf`` with no clean items); the pool median is their median.
        scores: coreset only: the pick-time distances aligned with ``idx`` (used when there
            are no clean items).

    Examples: ``"the model finds bcc more likely (93%) than the given nv (2%)"``, ``"the model
    is unsure: nv 25%, mel 22%, bkl 18%; no class stands out"``, ``"unlike every clean sample
    (distance 4.1, pool median 2.0)"``.
    """
    spec = get_sampler(sampler)
    ix = np.asarray(idx, dtype=np.int64).reshape(-1)
    p = None if probs is None else _as_probs(probs)
    y = None if given_labels is None else np.asarray(given_labels, dtype=np.int64)
    n = p.shape[0] if p is not None else y.shape[0] if y is not None else 0
    view = PoolView(items=np.arange(n), probs=p, given_labels=y, features=pool_features)
    for need in spec.explain_needs:
        try:
            view.require(spec.name, (need,))
        except ValueError:
            raise ValueError(f"explain({spec.name!r}) needs {need}") from None
    picks = Picks(positions=ix, scores=np.full(ix.size, np.nan) if scores is None else scores,
                  distances=distances)
    return spec.explain(view, picks, class_names)
