"""Class-aware budgets: split one round's labels across classes with exact quotas.

A ranking over the whole pool spends the budget where the sampler's score is highest, which on
imbalanced data is usually the majority classes; rare classes can go a whole campaign without a
label. These pure functions guarantee each class a share of every round instead:

1. :func:`class_weights` -- how much each class deserves, by

   * ``pool``: its share of the pool, ``w_c = n_c`` (the items of class ``c`` in the pool);
   * ``inverse``: inverse frequency, ``w_c = 1 / N_c`` for classes with pool items (``N_c``:
     items carrying label ``c`` in the reference counts, default the pool): a class ten
     times rarer gets ten times the labels;
   * ``noise``: the expected number of wrong labels of the class in the pool,
     ``w_c = sum_{i in pool, y_i = c} (1 - p_ic)`` (:func:`expected_wrong_per_class`).

2. :func:`allocate_budget` -- integer quotas ``q_c`` with ``sum q_c = min(k, sum a_c)`` and
   ``q_c <= a_c`` (``a_c``: pool items of class ``c``). The ideal shares ``k w_c / sum w`` are
   rounded by the largest-remainder (Hamilton) method, ties to the lower class index; a class
   whose quota exceeds its available items is capped and the excess is re-allocated over the
   others by the same rule, until the budget is spent or the pool is empty.

3. :func:`quota_select` -- the top ``q_c`` items of each class by score, returned in one
   query-first order.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from labelrefine.validation import check_labels

BudgetBy = Literal["pool", "inverse", "noise"]
BUDGET_BY: tuple[str, ...] = ("pool", "inverse", "noise")


def _classes(classes: np.ndarray, num_classes: int, name: str = "classes") -> np.ndarray:
    return check_labels(classes, num_classes, name=name)


def expected_wrong_per_class(probs: np.ndarray, given_labels: np.ndarray) -> np.ndarray:
    """``e_c = sum_{i: y_i = c} (1 - p_ic)``: the model's expected count of wrong labels per
    class among the rows passed (shape ``(C,)``)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be a 2-D (n, C) array, got shape {p.shape}")
    y = _classes(given_labels, p.shape[1], "given_labels")
    if y.shape[0] != p.shape[0]:
        raise ValueError(f"given_labels has {y.shape[0]} rows but probs has {p.shape[0]}")
    wrong = 1.0 - p[np.arange(p.shape[0]), y]
    return np.bincount(y, weights=wrong, minlength=p.shape[1])


def class_weights(by: BudgetBy, pool_classes: np.ndarray, num_classes: int, *,
                  reference_counts: np.ndarray | None = None,
                  expected_wrong: np.ndarray | None = None) -> np.ndarray:
    """Per-class weights ``(C,)`` for :func:`allocate_budget` (see the module docstring).

    ``reference_counts`` (``inverse``): class counts the inverse frequency is taken from
    (default: the pool's). ``expected_wrong`` (``noise``): e.g.
    :func:`expected_wrong_per_class` on the pool. Classes without pool items get weight 0.
    """
    y = _classes(pool_classes, num_classes, "pool_classes")
    avail = np.bincount(y, minlength=num_classes).astype(np.float64)
    present = avail > 0
    if by == "pool":
        w = avail
    elif by == "inverse":
        ref = avail if reference_counts is None else np.asarray(reference_counts, np.float64)
        if ref.shape != (num_classes,):
            raise ValueError(f"reference_counts must have shape ({num_classes},), got {ref.shape}")
        w = np.where(present, 1.0 / np.maximum(ref, 1.0), 0.0)
    elif by == "noise":
        if expected_wrong is None:
            raise ValueError("by='noise' needs expected_wrong (e.g. expected_wrong_per_class)")
        e = np.asarray(expected_wrong, dtype=np.float64)
        if e.shape != (num_classes,):
            raise ValueError(f"expected_wrong must have shape ({num_classes},), got {e.shape}")
        if not np.isfinite(e).all() or e.min() < 0:
            raise ValueError("expected_wrong must be finite and >= 0")
        w = np.where(present, e, 0.0)
    else:
        raise ValueError(f"unknown budget rule {by!r}; use one of {', '.join(BUDGET_BY)}")
    return w


def _largest_remainder(k: int, w: np.ndarray) -> np.ndarray:
    """Integer shares of ``k`` proportional to ``w`` (sum exactly ``k``; ties: lower index)."""
    ideal = k * w / w.sum()
    q = np.floor(ideal).astype(np.int64)
    left = k - int(q.sum())
    if left:
        frac = ideal - q
        order = np.lexsort((np.arange(w.size), -frac))  # largest remainder, then lower index
        order = order[w[order] > 0]
        q[order[:left]] += 1
    return q


def allocate_budget(k: int, weights: np.ndarray, available: np.ndarray) -> np.ndarray:
    """Exact per-class quotas ``(C,)`` for a round of ``k`` labels.

    ``weights``: non-negative ``(C,)``; ``available``: ``(C,)`` pool items per class. Returns
    ``q`` with ``0 <= q_c <= available_c`` and ``sum q = min(k, sum available)``: largest
    remainder over ``weights``, then capped classes' excess re-allocated over the classes that
    still have items (by their weights; by their available counts once no class with items has
    a positive weight).
    """
    if int(k) != k or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k}")
    w = np.asarray(weights, dtype=np.float64)
    a = np.asarray(available)
    if w.ndim != 1 or a.shape != w.shape:
        raise ValueError(f"weights {w.shape} and available {a.shape} must be the same 1-D shape")
    if not np.isfinite(w).all() or (w.size and w.min() < 0):
        raise ValueError("weights must be finite and >= 0")
    if a.size and (not np.issubdtype(a.dtype, np.integer) or a.min() < 0):
        raise ValueError("available must hold non-negative integer counts")
    a = a.astype(np.int64)
    q = np.zeros(w.size, dtype=np.int64)
    left = min(int(k), int(a.sum()))
    while left > 0:
        room = a - q
        open_ = room > 0
        ww = np.where(open_, w, 0.0)
        if ww.sum() <= 0:  # no weight left on classes with items: fall back to what is there
            ww = room.astype(np.float64)
        share = np.minimum(_largest_remainder(left, ww), room)
        q += share
        left -= int(share.sum())
    return q


def quota_select(scores: np.ndarray, classes: np.ndarray, quotas: np.ndarray) -> np.ndarray:
    """Positions of the top ``quotas[c]`` scores of each class ``c``, highest score first.

    Ties are broken by ascending position, within a class and in the merged order. Raises when
    a quota exceeds the items of its class.
    """
    s = np.asarray(scores, dtype=np.float64)
    q = np.asarray(quotas)
    if s.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {s.shape}")
    y = _classes(classes, q.size, "classes")
    if y.shape != s.shape:
        raise ValueError(f"classes has shape {y.shape} but scores has {s.shape}")
    counts = np.bincount(y, minlength=q.size)
    over = np.flatnonzero(q > counts)
    if over.size:
        c = int(over[0])
        raise ValueError(f"quota {int(q[c])} for class {c} exceeds its {int(counts[c])} items")
    order = np.argsort(-s, kind="stable")
    rank_in_class = np.empty_like(order)
    for c in range(q.size):
        members = order[y[order] == c]
        rank_in_class[members] = np.arange(members.size)
    keep = order[rank_in_class[order] < q[y[order]]]
    return keep.astype(np.int64)
