"""A round's queue for the expert's time, and an unbiased count of the wrong labels left.

**The queue** (:func:`compose_queue`). A round's budget ``b`` is split three ways:

* ``n_a = round(audit_share * b)`` (at least 1 when ``audit_share > 0``) **audit** items: a
  stratified simple random sample of the pool left after the targeted picks, the strata being
  ``H = min(strata, n_a // 2)`` (at least 1) equal-count bands of the finding score
  (proportional allocation; every band is drawn from, so no band borrows another's answers).
  Audit items are what makes the count of wrong labels left estimable without a model
  assumption; they are mixed into the queue at seeded random positions and carry the same kind
  of reason as every other item, so a reader cannot tell them apart.
* ``n_i = round(info_share * (b - n_a))`` **informative** items: the highest predictive
  entropy among the rest (what improves a model most per label).
* the remaining ``n_f`` **finding** items: the highest finding scores
  (:mod:`labelrefine.active.finding`).

**The estimate** (:func:`remaining_wrong`). Let ``P_r`` be round ``r``'s pool after its
targeted (finding and informative) picks, cut into strata ``h`` of ``N_h`` items of which
``n_h`` were audited and answered (``A_h``), and ``m_i`` the model's probability that item
``i``'s label is wrong (any model: the estimate is unbiased whatever ``m`` is; a good ``m``
makes it tighter). With ``y_i = 1`` when the expert's answer differs from the given label, the
difference (model-assisted Horvitz-Thompson) estimator of the wrong labels among the
unaudited rest ``U_r = P_r - A`` is

    W_r = sum_h [ sum_{i in U_h} m_i + (N_h - n_h) / n_h * sum_{i in A_h} (y_i - m_i) ],
    Var(W_r) = sum_h N_h (N_h - n_h) / n_h * S_h^2

(``S^2``: the residuals' ``y - m`` sample variance, pooled over the round's strata, floored
at :data:`MIN_RESIDUAL_VAR`; simple random sampling without replacement within strata). The
wrong labels left *now* are ``W_r`` minus the wrong labels found since among ``U_r`` (known
exactly) plus ``sum m`` over items left unanswered that were not in ``U_r`` (targeted picks
still open). Each audited round gives such an unbiased estimate; they are averaged with the
design weights ``n_r / |U_r|^2`` (fixed before any answer, so the average stays unbiased), and
the 95 % interval is ``estimate +- 1.96 sd`` clipped to ``[0, #unanswered]``. A domain (a part
of the training set: phase 1's clean set, its suspects) is estimated by the same formula with
``y``, ``m`` and the counts restricted to it.

Pure functions over numpy arrays; randomness only from the seed passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import entr

#: Two-sided 95 % normal quantile.
Z95 = 1.959964
#: Default share of each round's budget drawn as a random audit.
AUDIT_SHARE = 0.1
#: Default share of the targeted budget spent on informative (high-entropy) items.
INFO_SHARE = 0.0
#: Score bands the audit is stratified over.
STRATA = 4
#: Floor of the residual variance ``S^2`` (a small audit can show no spread at all).
MIN_RESIDUAL_VAR = 0.02


@dataclass(frozen=True)
class QueuePlan:
    """Items of one round's queue (indices into the pool's item ids), by purpose."""

    find: np.ndarray
    info: np.ndarray
    audit: np.ndarray
    order: np.ndarray  # every picked item in queue order (audit items mixed in)
    population: np.ndarray  # the pool after the targeted picks (what the audit samples)
    strata: np.ndarray  # stratum of each population item

    def purpose(self) -> dict[int, str]:
        """``item -> "find" / "info" / "audit"`` (never shown to readers)."""
        out = {int(i): "find" for i in self.find}
        out |= {int(i): "info" for i in self.info}
        out |= {int(i): "audit" for i in self.audit}
        return out

    def design(self) -> dict[str, list[int]]:
        """What the estimator needs later, JSON-ready."""
        return {"audit": [int(i) for i in self.audit],
                "population": [int(i) for i in self.population],
                "strata": [int(s) for s in self.strata]}


def split_budget(budget: int, audit_share: float, info_share: float,
                 pool_size: int) -> tuple[int, int, int]:
    """``(n_find, n_info, n_audit)`` for a ``budget`` over a pool of ``pool_size`` items."""
    if not 0 <= audit_share <= 1 or not 0 <= info_share <= 1:
        raise ValueError(f"shares must be in [0, 1], got audit {audit_share}, info {info_share}")
    b = min(int(budget), int(pool_size))
    n_a = 0 if audit_share == 0 or b == 0 else max(1, int(round(audit_share * b)))
    n_a = min(n_a, b)
    n_i = int(round(info_share * (b - n_a)))
    return b - n_a - n_i, n_i, n_a


def score_strata(scores: np.ndarray, strata: int) -> np.ndarray:
    """Stratum ``0 .. H-1`` per row: ``H`` equal-count bands of ``scores`` (0 = lowest)."""
    s = np.asarray(scores, dtype=np.float64)
    h = max(1, min(int(strata), s.size))
    ranks = np.argsort(np.argsort(s, kind="stable"), kind="stable")
    return (ranks * h // max(1, s.size)).astype(np.int64)


def stratified_draw(strata: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of a stratified simple random sample of ``n`` rows, allocated to strata in
    proportion to their sizes (largest remainders; every stratum at least one while ``n``
    allows, highest strata first)."""
    st = np.asarray(strata, dtype=np.int64)
    n = min(int(n), st.size)
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    labels, sizes = np.unique(st, return_counts=True)
    alloc = np.zeros(labels.size, dtype=np.int64)
    base = min(n, labels.size)
    alloc[np.argsort(-labels, kind="stable")[:base]] = 1
    rest = n - base
    if rest:
        share = (sizes - alloc).clip(min=0) * rest / max(1, (sizes - alloc).clip(min=0).sum())
        extra = np.floor(share).astype(np.int64)
        left = rest - int(extra.sum())
        extra[np.argsort(-(share - extra), kind="stable")[:left]] += 1
        alloc += extra
    alloc = np.minimum(alloc, sizes)
    picks = [rng.choice(np.flatnonzero(st == lab), size=int(a), replace=False)
             for lab, a in zip(labels, alloc, strict=True) if a]
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, dtype=np.int64)


def compose_queue(pool: np.ndarray, scores: np.ndarray, probs: np.ndarray, budget: int, *,
                  seed: int, audit_share: float = AUDIT_SHARE, info_share: float = INFO_SHARE,
                  strata: int = STRATA) -> QueuePlan:
    """A round's queue over ``pool`` (item ids) with finding ``scores`` and predictive
    ``probs`` aligned with it (module docstring). Deterministic given ``seed``."""
    pool = np.asarray(pool, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != pool.shape:
        raise ValueError(f"scores has shape {s.shape}, expected {pool.shape}")
    n_f, n_i, n_a = split_budget(budget, audit_share, info_share, pool.size)
    rng = np.random.default_rng(seed)
    order = np.argsort(-s, kind="stable")
    find = order[:n_f]
    rest = np.setdiff1d(np.arange(pool.size), find)
    info = np.zeros(0, dtype=np.int64)
    if n_i:
        h = entr(np.asarray(probs, dtype=np.float64)[rest]).sum(axis=1)
        info = rest[np.argsort(-h, kind="stable")[:n_i]]
        rest = np.setdiff1d(rest, info)
    # never more bands than draws: a band without a draw would borrow another band's answers
    # (biased); two draws per band where the budget allows, so each band's spread is seen
    st = score_strata(s[rest], max(1, min(int(strata), n_a // 2)))
    audit = rest[stratified_draw(st, n_a, rng)]
    targeted = np.concatenate([find, info])
    queue = list(targeted)
    for a in audit:  # each audit item at a random position of the queue so far
        queue.insert(int(rng.integers(0, len(queue) + 1)), int(a))
    return QueuePlan(find=pool[find], info=pool[info], audit=pool[audit],
                     order=pool[np.asarray(queue, dtype=np.int64)], population=pool[rest],
                     strata=st)


def calibrate_wrong(m: np.ndarray, m_seen: np.ndarray, wrong_seen: np.ndarray, *,
                    min_items: int = 20) -> np.ndarray:
    """Model wrong-probabilities ``m`` recalibrated on earlier answers (Platt scaling): a 1-D
    logistic regression of "the given label was wrong" on ``logit(m)`` over the items the
    experts have already answered (``m_seen`` their probabilities, ``wrong_seen`` what the
    answers showed), applied to ``m``. ``m`` unchanged with fewer than ``min_items`` answers
    or only one outcome among them. Fitted before the round's audit is drawn, so the audit
    estimate stays unbiased; a better-calibrated ``m`` only makes it tighter."""
    m = np.asarray(m, dtype=np.float64)
    ms = np.asarray(m_seen, dtype=np.float64)
    ys = np.asarray(wrong_seen, dtype=bool)
    if ms.size < min_items or ys.all() or not ys.any():
        return m
    from sklearn.linear_model import LogisticRegression

    def logit(p: np.ndarray) -> np.ndarray:
        q = np.clip(p, 1e-4, 1 - 1e-4)
        return np.log(q / (1 - q))[:, None]

    clf = LogisticRegression(C=1.0).fit(logit(ms), ys)
    return clf.predict_proba(logit(m))[:, 1]


@dataclass(frozen=True)
class AuditRound:
    """One round's audit design and the model's wrong-probabilities of its population."""

    population: np.ndarray  # item ids the audit sampled from
    strata: np.ndarray  # their strata
    audit: np.ndarray  # audited item ids
    m: np.ndarray  # model probability that each population item's label is wrong


@dataclass(frozen=True)
class Estimate:
    """Wrong labels left: the estimate, its 95 % interval and what it rests on."""

    estimate: float
    low: float
    high: float
    n_left: int  # items without a sure answer (the most wrong labels there can be)
    audited: int  # audited answers the estimate rests on
    rounds: int  # audited rounds combined

    def as_dict(self) -> dict[str, float | int]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high,
                "n_left": self.n_left, "audited": self.audited, "rounds": self.rounds}


def _merge_empty(strata: np.ndarray, sampled: np.ndarray) -> np.ndarray:
    """Strata relabelled so that every one holds at least one sampled row (an empty stratum
    joins the nearest lower one, the lowest joins the next)."""
    st = np.asarray(strata, dtype=np.int64).copy()
    labels = np.unique(st)
    has = {int(h) for h in np.unique(st[sampled])}
    if not has:
        return st
    for h in labels:
        if int(h) in has:
            continue
        lower = [g for g in has if g < h]
        st[st == h] = max(lower) if lower else min(has)
    return st


def round_estimate(rnd: AuditRound, wrong: np.ndarray, sure: np.ndarray,
                   domain: np.ndarray) -> tuple[float, float, int, int] | None:
    """``(W_r, Var W_r, n_audited, |U_r|)`` of one round (module docstring) restricted to the
    boolean item mask ``domain``; None when no audit item has a sure answer. ``wrong`` /
    ``sure``: boolean per item (sure answer given; it differs from the given label)."""
    pop = np.asarray(rnd.population, dtype=np.int64)
    sampled = np.isin(pop, rnd.audit) & sure[pop]
    if not sampled.any():
        return None
    st = _merge_empty(rnd.strata, np.flatnonzero(sampled))
    dom = domain[pop].astype(np.float64)
    y = wrong[pop].astype(np.float64) * dom
    m = np.asarray(rnd.m, dtype=np.float64) * dom
    e = y - m
    s2 = float(np.var(e[sampled], ddof=1)) if sampled.sum() > 1 else 0.25
    s2 = max(s2, MIN_RESIDUAL_VAR * float(dom[sampled].mean() if sampled.any() else 1.0))
    total, var = 0.0, 0.0
    for h in np.unique(st):
        inh = st == h
        n_h, big_n = int((inh & sampled).sum()), int(inh.sum())
        total += float(m[inh & ~sampled].sum()) + (big_n - n_h) / n_h * float(
            e[inh & sampled].sum())
        var += big_n * (big_n - n_h) / n_h * s2
    return total, var, int(sampled.sum()), int((~sampled).sum())


def remaining_wrong(rounds: Sequence[AuditRound], *, given: np.ndarray, answer: np.ndarray,
                    m_now: np.ndarray, items: np.ndarray,
                    domain: np.ndarray | None = None, z: float = Z95) -> Estimate | None:
    """Wrong given labels left among ``items`` (training items) without a sure answer.

    ``given``: ``(N,)`` given labels; ``answer``: ``(N,)`` the current sure answer per item, -1
    where there is none; ``m_now``: ``(N,)`` the current model's wrong-probabilities (for
    targeted picks still unanswered); ``domain``: an optional ``(N,)`` boolean part. None when
    no round has an answered audit item.
    """
    g = np.asarray(given, dtype=np.int64)
    a = np.asarray(answer, dtype=np.int64)
    sure = a >= 0
    wrong = sure & (a != g)
    dom = np.ones(g.size, dtype=bool) if domain is None else np.asarray(domain, dtype=bool)
    items = np.asarray(items, dtype=np.int64)
    left = items[~sure[items]]
    left_dom = left[dom[left]]
    ests, weights, audited = [], [], 0
    for rnd in rounds:
        got = round_estimate(rnd, wrong, sure, dom)
        if got is None:
            continue
        w_r, v_r, n_r, u_r = got
        pop = np.asarray(rnd.population, dtype=np.int64)
        unaudited = pop[~(np.isin(pop, rnd.audit) & sure[pop])]
        found = int(np.sum(wrong[unaudited] & dom[unaudited]))
        outside = np.setdiff1d(left_dom, unaudited)
        filler = float(np.asarray(m_now, dtype=np.float64)[outside].sum())
        ests.append((w_r - found + filler, v_r))
        weights.append(n_r / max(1, u_r) ** 2)
        audited += n_r
    if not ests:
        return None
    w = np.asarray(weights) / np.sum(weights)
    est = float(sum(wi * e for wi, (e, _) in zip(w, ests, strict=True)))
    var = float(sum(wi ** 2 * v for wi, (_, v) in zip(w, ests, strict=True)))
    sd = float(np.sqrt(max(var, 0.0)))
    top = float(left_dom.size)
    est = min(max(est, 0.0), top)
    return Estimate(estimate=est, low=max(0.0, est - z * sd), high=min(top, est + z * sd),
                    n_left=int(left_dom.size), audited=audited, rounds=len(ests))
