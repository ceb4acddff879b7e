"""Finding wrong labels over a whole training set: out-of-sample probabilities, cleanlab's label
quality, and a model-free neighbour signal.

A network trained on the given labels memorises them: its *in-sample* probabilities agree with
the labels it was fitted on, wrong ones included, so they cannot say which labels are wrong.
The functions here only ever score an item with a model that did not see its label:

* :func:`crossfit_probs` -- ``K``-fold cross-fitted probabilities of an exact, full-batch L2
  logistic regression on fixed features (the cached encoder embeddings): the data are split
  into ``K`` stratified folds; each fold's rows get the probabilities of a model fitted on the
  other ``K - 1`` folds. Full-batch L-BFGS on a convex objective has one answer, so the result
  is deterministic given the fold seed, and cheap enough to redo every round.
* :func:`neighbour_agreement` -- the SimiFeat idea (Zhu et al., ICML 2022): in a good feature
  space an item's ``k`` nearest neighbours mostly share its true class, so the share of them
  that carry the item's *given* label is a label-quality signal that needs no trained model.
  ``neighbour_label_distribution`` gives the neighbours' label histogram (a suggestion).
* :func:`finding_scores` -- query-first scores (higher = more likely wrong):
  ``(1 - w) * r(1 - q) + w * r(1 - a)`` where ``q`` is cleanlab's label quality
  (``cleanlab.rank.get_label_quality_scores`` on the out-of-sample probabilities), ``a`` the
  neighbour agreement and ``r`` the rank percentile (:func:`~labelrefine.active.label_quality.
  rank_percentiles`); ``w = 0`` is cleanlab alone.

Pure functions over numpy arrays (scikit-learn for the fits and the neighbour search); no state.
The defaults were chosen on the bundled HAM10000 data with injected noise, seeds and splits
unlike any published result (``benchmarks/bench_finding.py``, README "Finding wrong labels").
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from labelrefine.active.audit import (
    AUDIT_SHARE,
    INFO_SHARE,
    AuditRound,
    QueuePlan,
    calibrate_wrong,
    compose_queue,
)
from labelrefine.active.label_quality import CL_METHOD, ClMethod, rank_percentiles
from labelrefine.validation import check_labels

#: Folds of :func:`crossfit_probs`.
FOLDS = 5
#: Inverse L2 strength of the logistic heads (scikit-learn's ``C``) on standardised features.
C_REG = 0.003
#: Principal components the logistic heads are fitted on (label-free PCA of the standardised
#: features; None: every feature). A rotation keeps the L2 geometry; dropping the smallest
#: directions regularises further and makes every fold's fit cheaper.
DIMS: int | None = 128
#: Neighbours of :func:`neighbour_agreement`.
NEIGHBOURS = 10
#: Weight of the neighbour signal in :func:`finding_scores`.
NEIGHBOUR_WEIGHT = 0.25
#: Smallest probability a fold model gives a class (also a class it never saw in training).
EPS = 1e-6


def _one_thread() -> Any:
    """BLAS limited to one thread: the fits here are many small products, which several
    threads only slow down (measured on 2 busy cores: 16 s against 0.6 s per cross-fit)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _features(features: np.ndarray, n: int | None = None) -> np.ndarray:
    x = np.asarray(features)
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-D (n, D) array, got shape {x.shape}")
    if n is not None and x.shape[0] != n:
        raise ValueError(f"features has {x.shape[0]} rows for {n} labels")
    x = x.astype(np.float64, copy=False)
    if not np.isfinite(x).all():
        row = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise ValueError(f"features row {row} contains NaN or infinite values")
    return x


def standardise(features: np.ndarray) -> np.ndarray:
    """Each column centred and scaled to unit variance over the rows given (label-free; a
    column with scale below 1e-6 is only centred)."""
    x = _features(features)
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd < 1e-6, 1.0, sd)


def fold_ids(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold number per row: stratified by label (scikit-learn's ``StratifiedKFold`` with
    shuffling); a class with fewer members than folds spreads over as many folds as it has."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(labels, dtype=np.int64)
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    if y.size < folds:
        raise ValueError(f"{y.size} rows cannot be split into {folds} folds")
    out = np.empty(y.size, dtype=np.int64)
    with warnings.catch_warnings():  # "the least populated class has only m members"
        warnings.simplefilter("ignore", UserWarning)
        skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=int(seed))
        for f, (_, test) in enumerate(skf.split(np.zeros(y.size), y)):
            out[test] = f
    return out


def fit_logistic(x: np.ndarray, y: np.ndarray, num_classes: int, *, c: float = C_REG,
                 sample_weight: np.ndarray | None = None, balanced: bool = False) -> object:
    """An exact multinomial L2 logistic regression (L-BFGS, scikit-learn) on ``x``, ``y``."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, max_iter=500, tol=1e-4,
                             class_weight="balanced" if balanced else None)
    with warnings.catch_warnings():  # a convergence warning changes nothing we use
        warnings.simplefilter("ignore")
        clf.fit(x, y, sample_weight=sample_weight)
    return clf


def predict_full(clf: object, x: np.ndarray, num_classes: int) -> np.ndarray:
    """``(n, C)`` probabilities of a fitted scikit-learn classifier with every class as a column
    (a class it never saw gets :data:`EPS`; rows renormalised)."""
    p = np.full((x.shape[0], num_classes), EPS, dtype=np.float64)
    classes = np.asarray(clf.classes_, dtype=np.int64)  # type: ignore[attr-defined]
    p[:, classes] = np.maximum(clf.predict_proba(x), EPS)  # type: ignore[attr-defined]
    return p / p.sum(axis=1, keepdims=True)


def project(features: np.ndarray, dims: int | None = DIMS, seed: int = 0) -> np.ndarray:
    """The first ``dims`` principal-component coordinates of ``features`` (scikit-learn's
    PCA, label-free, not whitened); the features unchanged when ``dims`` is None or not
    smaller than the feature count or the row count."""
    x = _features(features)
    if dims is None or dims >= min(x.shape):
        return x
    from sklearn.decomposition import PCA

    with _one_thread():
        return PCA(n_components=int(dims), random_state=int(seed)).fit_transform(x)


def crossfit_probs(features: np.ndarray, labels: np.ndarray, num_classes: int, *,
                   folds: int = FOLDS, c: float = C_REG, seed: int = 0,
                   sample_weight: np.ndarray | None = None, balanced: bool = False,
                   standardize: bool = True) -> np.ndarray:
    """Out-of-sample ``(n, C)`` probabilities of every row, cross-fitted over ``folds`` folds.

    Row ``i`` in fold ``f`` gets ``softmax(W_{-f} x_i + b_{-f})`` of the L2 logistic regression
    ``W_{-f}`` fitted on the rows of the other folds (``C = c``, classes weighted ``n / (C
    n_c)`` when ``balanced``, optional per-row ``sample_weight``) -- never a model that saw
    its label. Features are standardised over all rows first (label-free).
    """
    y = check_labels(labels, num_classes, name="labels")
    x = _features(features, y.size)
    if standardize:
        x = standardise(x)
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if w is not None and w.shape != y.shape:
        raise ValueError(f"sample_weight has shape {w.shape}, expected {y.shape}")
    fid = fold_ids(y, folds, seed)
    out = np.empty((y.size, num_classes), dtype=np.float64)
    with _one_thread():
        for f in range(folds):
            _fit_fold(x, y, fid == f, out, num_classes, c=c, balanced=balanced,
                      sample_weight=w)
    return out


def _fit_fold(x: np.ndarray, y: np.ndarray, test: np.ndarray, out: np.ndarray,
              num_classes: int, *, c: float, balanced: bool,
              sample_weight: np.ndarray | None) -> None:
    """Fill ``out[test]`` with the probabilities of a model fitted on the other rows."""
    train = ~test
    if np.unique(y[train]).size < 2:  # nothing to discriminate: the training frequencies
        freq = np.bincount(y[train], minlength=num_classes) + EPS
        out[test] = freq / freq.sum()
        return
    clf = fit_logistic(x[train], y[train], num_classes, c=c, balanced=balanced,
                       sample_weight=None if sample_weight is None else sample_weight[train])
    out[test] = predict_full(clf, x[test], num_classes)


def neighbours(features: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """``(n, k)`` indices of each row's ``k`` nearest other rows by cosine distance."""
    from sklearn.neighbors import NearestNeighbors

    x = _features(features)
    if x.shape[0] < 2:
        raise ValueError("neighbours need at least 2 rows")
    k = min(int(k), x.shape[0] - 1)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    xn = x / np.where(norm == 0, 1.0, norm)
    with _one_thread():
        nn = NearestNeighbors(n_neighbors=k + 1).fit(xn)
        _, idx = nn.kneighbors(xn)
    # drop each row itself (exact duplicates may come first in either order)
    rows = np.arange(x.shape[0])[:, None]
    keep = idx != rows
    out = np.empty((x.shape[0], k), dtype=np.int64)
    for i in range(x.shape[0]):
        out[i] = idx[i][keep[i]][:k]
    return out


def neighbour_label_distribution(features: np.ndarray, labels: np.ndarray, num_classes: int,
                                 *, k: int = NEIGHBOURS) -> np.ndarray:
    """``(n, C)``: the share of each row's ``k`` nearest neighbours carrying each label."""
    y = check_labels(labels, num_classes, name="labels")
    nb = neighbours(_features(features, y.size), k)
    dist = np.zeros((y.size, num_classes), dtype=np.float64)
    np.add.at(dist, (np.repeat(np.arange(y.size), nb.shape[1]), y[nb].ravel()), 1.0)
    return dist / nb.shape[1]


def neighbour_agreement(features: np.ndarray, labels: np.ndarray, num_classes: int, *,
                        k: int = NEIGHBOURS) -> np.ndarray:
    """``a_i``: the share of row ``i``'s ``k`` nearest neighbours (cosine) whose label equals
    ``labels[i]``; low = the item's label disagrees with its neighbourhood."""
    y = check_labels(labels, num_classes, name="labels")
    dist = neighbour_label_distribution(features, y, num_classes, k=k)
    return dist[np.arange(y.size), y]


def label_quality(probs: np.ndarray, labels: np.ndarray, *,
                  method: ClMethod = CL_METHOD) -> np.ndarray:
    """cleanlab's label quality ``q_i`` in ``[0, 1]`` (low = likely wrong) of out-of-sample
    ``probs`` (``cleanlab.rank.get_label_quality_scores``, no threshold adjustment)."""
    from cleanlab.rank import get_label_quality_scores

    from labelrefine.active.label_quality import check_pred_probs_and_labels

    p, y = check_pred_probs_and_labels(probs, labels)
    if y.size == 0:
        return np.zeros(0, dtype=np.float64)
    return np.asarray(get_label_quality_scores(y, p, method=method, adjust_pred_probs=False),
                      dtype=np.float64)


def finding_scores(probs: np.ndarray, labels: np.ndarray, *,
                   agreement: np.ndarray | None = None, weight: float = NEIGHBOUR_WEIGHT,
                   method: ClMethod = CL_METHOD) -> np.ndarray:
    """Query-first scores ``(1 - w) r(1 - q) + w r(1 - a)`` (module docstring): higher = more
    likely a wrong label. ``agreement`` (:func:`neighbour_agreement`) is needed when
    ``weight > 0``; ``weight = 0`` ranks by cleanlab's label quality alone."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    q = label_quality(probs, labels, method=method)
    cl = rank_percentiles(1.0 - q)
    if weight == 0.0:
        return cl
    if agreement is None:
        raise ValueError("finding_scores with weight > 0 needs the neighbour agreement")
    a = np.asarray(agreement, dtype=np.float64)
    if a.shape != q.shape:
        raise ValueError(f"agreement has shape {a.shape}, expected {q.shape}")
    return (1.0 - weight) * cl + weight * rank_percentiles(1.0 - a)


@dataclass(frozen=True)
class Finding:
    """The finder's view of a set of items: out-of-sample probabilities, the neighbour
    agreement and the query-first score of each (rows aligned with the input)."""

    probs: np.ndarray
    agreement: np.ndarray
    scores: np.ndarray

    @property
    def suggested(self) -> np.ndarray:
        """The most probable class of each row (out of sample)."""
        return self.probs.argmax(axis=1)


def find(features: np.ndarray, labels: np.ndarray, num_classes: int, *, folds: int = FOLDS,
         c: float = C_REG, k: int = NEIGHBOURS, weight: float = NEIGHBOUR_WEIGHT,
         dims: int | None = DIMS, seed: int = 0,
         sample_weight: np.ndarray | None = None) -> Finding:
    """Cross-fitted probabilities (on the first ``dims`` principal components of the
    standardised features), neighbour agreement (on the standardised features) and finding
    scores of every row."""
    y = check_labels(labels, num_classes, name="labels")
    x = standardise(_features(features, y.size))
    probs = crossfit_probs(project(x, dims, seed), y, num_classes, folds=folds, c=c,
                           seed=seed, sample_weight=sample_weight, standardize=False)
    agree = neighbour_agreement(x, y, num_classes, k=k)
    return Finding(probs=probs, agreement=agree,
                   scores=finding_scores(probs, y, agreement=agree, weight=weight))


@dataclass(frozen=True)
class RoundPlan:
    """One finding round over a training set: the finder's view of every training item and
    the queue drawn from the items not asked yet."""

    train_idx: np.ndarray  # item ids the finder scored (rows of ``finding``)
    finding: Finding
    queue: QueuePlan
    labels: np.ndarray  # the training items' labels the finder scored (rows of ``finding``)

    def flagged(self) -> np.ndarray:
        """Training item ids whose labels the finder counts as wrong (:func:`flag_issues` on
        its out-of-sample probabilities and the labels it scored)."""
        return self.train_idx[flag_issues(self.finding.probs, self.labels)]

    def wrong_probability(self, labels: np.ndarray) -> np.ndarray:
        """``(N,)``: ``1 - p(label)`` of each training item under the out-of-sample
        probabilities (0 outside the training set); ``labels`` the ``(N,)`` current labels."""
        y = np.asarray(labels, dtype=np.int64)
        out = np.zeros(y.size, dtype=np.float64)
        rows = np.arange(self.train_idx.size)
        out[self.train_idx] = 1.0 - self.finding.probs[rows, y[self.train_idx]]
        return out


    def pruned(self, settled: np.ndarray) -> np.ndarray:
        """Training items to fit on (with their current labels): all but those the finder
        flagged (:meth:`flagged`) that are not ``settled`` (answered or trusted)."""
        return pruned_set(self.train_idx, self.flagged(), settled)

    def audit_round(self, given: np.ndarray, answer: np.ndarray) -> AuditRound:
        """This round's audit design with the model's wrong-probability of every population
        item: ``1 - p(given)`` recalibrated on the answers so far
        (:func:`labelrefine.active.audit.calibrate_wrong`; ``answer``: ``(N,)`` sure answer
        per item, -1 where none)."""
        g = np.asarray(given, dtype=np.int64)
        a = np.asarray(answer, dtype=np.int64)
        raw = self.wrong_probability(g)
        seen = self.train_idx[a[self.train_idx] >= 0]
        q = self.queue
        m = calibrate_wrong(raw[q.population], raw[seen], a[seen] != g[seen])
        return AuditRound(population=q.population, strata=q.strata, audit=q.audit, m=m)


def plan_round(features: np.ndarray, labels: np.ndarray, train_idx: np.ndarray,
               asked: np.ndarray, budget: int, num_classes: int, *, seed: int,
               audit_share: float = AUDIT_SHARE, info_share: float = INFO_SHARE,
               weight: float = NEIGHBOUR_WEIGHT, c: float = C_REG,
               k: int = NEIGHBOURS, folds: int = FOLDS, dims: int | None = DIMS) -> RoundPlan:
    """Score every training item with :func:`find` (``features``: ``(N, D)`` of all items,
    ``labels``: ``(N,)`` current labels, answers applied) and compose the round's queue over
    ``train_idx`` minus ``asked`` (:func:`labelrefine.active.audit.compose_queue`). The fold
    split and the audit draw are seeded with ``seed``."""
    train = np.asarray(train_idx, dtype=np.int64)
    y = np.asarray(labels, dtype=np.int64)
    fnd = find(np.asarray(features)[train], y[train], num_classes, folds=folds, c=c, k=k,
               weight=weight, dims=dims, seed=seed)
    return _plan(train, fnd, y[train], asked, budget, seed=seed, audit_share=audit_share,
                 info_share=info_share)


def plan_round_from_probs(probs: np.ndarray, labels: np.ndarray, train_idx: np.ndarray,
                          asked: np.ndarray, budget: int, *, seed: int,
                          audit_share: float = AUDIT_SHARE, info_share: float = INFO_SHARE,
                          method: ClMethod = "self_confidence") -> RoundPlan:
    """:func:`plan_round` on a team's own out-of-sample ``probs`` (``(N, C)``): scored by
    cleanlab's label quality (``method``) alone -- no features, no fitting, no neighbour
    signal (``agreement`` is NaN)."""
    train = np.asarray(train_idx, dtype=np.int64)
    y = np.asarray(labels, dtype=np.int64)[train]
    p = np.asarray(probs, dtype=np.float64)[train]
    fnd = Finding(probs=p, agreement=np.full(train.size, np.nan),
                  scores=finding_scores(p, y, weight=0.0, method=method))
    return _plan(train, fnd, y, asked, budget, seed=seed, audit_share=audit_share,
                 info_share=info_share)


def _plan(train: np.ndarray, fnd: Finding, y: np.ndarray, asked: np.ndarray, budget: int, *,
          seed: int, audit_share: float, info_share: float) -> RoundPlan:
    """The queue over ``train`` minus ``asked`` from the finder's view ``fnd``."""
    pool_pos = np.flatnonzero(~np.isin(train, np.asarray(asked, dtype=np.int64)))
    plan = compose_queue(train[pool_pos], fnd.scores[pool_pos], fnd.probs[pool_pos], budget,
                         seed=seed, audit_share=audit_share, info_share=info_share)
    return RoundPlan(train_idx=train, finding=fnd, queue=plan, labels=y.copy())


def pruned_set(train_idx: np.ndarray, flagged: np.ndarray, settled: np.ndarray) -> np.ndarray:
    """``train_idx`` without the ``flagged`` items that are not ``settled``."""
    drop = np.setdiff1d(np.asarray(flagged, dtype=np.int64), np.asarray(settled, dtype=np.int64))
    return np.setdiff1d(np.asarray(train_idx, dtype=np.int64), drop)


def flag_issues(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Boolean per row: cleanlab's ``find_label_issues`` (prune by noise rate) on out-of-sample
    ``probs`` -- the rows confident learning counts as wrong."""
    from cleanlab.filter import find_label_issues

    from labelrefine.active.label_quality import check_pred_probs_and_labels

    p, y = check_pred_probs_and_labels(probs, labels)
    if y.size == 0 or np.unique(y).size < 2:
        return np.zeros(y.size, dtype=bool)
    with warnings.catch_warnings():  # "may not flag all label issues in class ..."
        warnings.simplefilter("ignore")
        # n_jobs=1: cleanlab's own worker pool fails inside a process-pool worker
        # (NameError 'pred_probs_by_class'), and these arrays are small
        return np.asarray(find_label_issues(y, p, n_jobs=1), dtype=bool)


def finding_reason(probs: np.ndarray, given: int, agreement: float | None, k: int,
                   class_names: Sequence[str] | None = None) -> str:
    """Why the finder ranks an item where it does, in plain words: what the out-of-sample
    model finds more likely than the given label, and how many of the ``k`` nearest images
    carry the given label (left out when ``agreement`` is None: probabilities without
    features). The same wording for every queued item, whatever its purpose."""
    from labelrefine.active.reasons import against_given, class_name

    near = ""
    if agreement is not None:
        same = int(round(float(agreement) * k))
        near = (f"; {same} of the {k} most similar images carry "
                f"{class_name(class_names, int(given))}")
    return against_given(np.asarray(probs, dtype=np.float64), int(given), class_names) + near
