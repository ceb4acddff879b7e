"""Sanity guard: is a trained model better than trivial baselines on the same data?

After a fit, the model's validation macro-F1 and balanced accuracy are compared with two
baselines that need no training: always predicting the majority class of the training labels,
and a nearest-class-centroid classifier on the same input features and training labels. A model
that does not clearly beat them (a broken learning rate, features that collapsed, a diverged
fit) makes every model-driven decision arbitrary: its probabilities then rank the queue by
noise. :func:`model_free_ranking` is the fallback ranking for that case.

Pure functions over numpy arrays.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.neighbors import NearestCentroid, NearestNeighbors

from labelrefine.metrics import balanced_accuracy, macro_f1

#: A model must beat the majority baseline by this much (macro-F1 and balanced accuracy).
MARGIN = 0.02
#: A model more than this much below the nearest-centroid baseline on both scores is "weak"
#: (validation splits are small: smaller gaps are within their noise).
CENTROID_TOLERANCE = 0.05


@dataclass(frozen=True)
class GuardReport:
    """Validation scores of the model and of the baselines, and the verdict.

    ``status`` is ``ok``, ``weak`` (it beats always-majority but is clearly below the nearest
    centroid: more than ``CENTROID_TOLERANCE`` on both scores) or ``failed`` (no better than
    always predicting the majority class). ``message`` says so in plain words.
    """

    status: str
    message: str
    model_f1: float
    model_bacc: float
    majority_f1: float
    majority_bacc: float
    centroid_f1: float
    centroid_bacc: float
    n_val: int

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fit_centroids(train_x: np.ndarray, train_y: np.ndarray) -> NearestCentroid | None:
    if train_x.shape[0] == 0 or np.unique(train_y).size < 2:
        return None
    with warnings.catch_warnings():  # constant features within a class are fine here
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return NearestCentroid().fit(np.asarray(train_x, np.float64), train_y)


def nearest_centroid_predict(train_x: np.ndarray, train_y: np.ndarray,
                             x: np.ndarray) -> np.ndarray:
    """Label of the nearest class centroid (Euclidean, centroids of ``train_x`` by ``train_y``).

    With fewer than two classes in ``train_y`` every row gets the one class present.
    """
    train_y = np.asarray(train_y, dtype=np.int64)
    nc = _fit_centroids(np.asarray(train_x), train_y)
    if nc is None:
        fill = int(train_y[0]) if train_y.size else 0
        return np.full(np.asarray(x).shape[0], fill, dtype=np.int64)
    return np.asarray(nc.predict(np.asarray(x, np.float64)), dtype=np.int64)


def sanity_check(
    val_labels: np.ndarray,
    val_pred: np.ndarray,
    *,
    train_labels: np.ndarray,
    num_classes: int,
    train_x: np.ndarray | None = None,
    val_x: np.ndarray | None = None,
    margin: float = MARGIN,
) -> GuardReport:
    """Compare a model's validation predictions with trivial baselines.

    Args:
        val_labels, val_pred: the validation split's labels and the model's predictions.
        train_labels: the labels the model was trained on (the majority class and the
            centroids come from them).
        train_x, val_x: input features of the training and validation items; without them
            the nearest-centroid baseline is skipped (nan).
        margin: how much the model must beat always-majority by.
    """
    yv = np.asarray(val_labels, dtype=np.int64)
    pv = np.asarray(val_pred, dtype=np.int64)
    ty = np.asarray(train_labels, dtype=np.int64)
    if yv.shape != pv.shape:
        raise ValueError(f"val_labels has {yv.size} rows, val_pred {pv.size}")
    if ty.size == 0:
        raise ValueError("train_labels is empty")
    majority = int(np.bincount(ty, minlength=num_classes).argmax())
    m_pred = np.full(yv.size, majority, dtype=np.int64)
    scores = {
        "model": (macro_f1(yv, pv, num_classes), balanced_accuracy(yv, pv, num_classes)),
        "majority": (macro_f1(yv, m_pred, num_classes),
                     balanced_accuracy(yv, m_pred, num_classes)),
        "centroid": (float("nan"), float("nan")),
    }
    if train_x is not None and val_x is not None:
        if np.asarray(train_x).shape[0] != ty.size or np.asarray(val_x).shape[0] != yv.size:
            raise ValueError("train_x / val_x rows must match train_labels / val_labels")
        c_pred = nearest_centroid_predict(train_x, ty, val_x)
        scores["centroid"] = (macro_f1(yv, c_pred, num_classes),
                              balanced_accuracy(yv, c_pred, num_classes))
    (mf, mb), (jf, jb), (cf, cb) = scores["model"], scores["majority"], scores["centroid"]
    if yv.size == 0:
        status, msg = "ok", "no validation items: the model could not be checked"
    elif not (mf > jf + margin and mb > jb + margin):
        status = "failed"
        msg = (f"the model is no better than always predicting the majority class (validation "
               f"macro-F1 {mf:.3f} vs {jf:.3f}, balanced accuracy {mb:.3f} vs {jb:.3f}); its "
               f"probabilities cannot be trusted: check the learning rate and the features")
    elif not np.isnan(cf) and mf < cf - CENTROID_TOLERANCE and mb < cb - CENTROID_TOLERANCE:
        status = "weak"
        msg = (f"the model is worse than a nearest-centroid classifier on the same features "
               f"(validation macro-F1 {mf:.3f} vs {cf:.3f}, balanced accuracy {mb:.3f} vs "
               f"{cb:.3f}); its uncertainty is a poor guide")
    else:
        status = "ok"
        msg = (f"the model is better than always predicting the majority class and not clearly "
               f"worse than a nearest-centroid classifier (validation macro-F1 {mf:.3f}; "
               f"majority {jf:.3f}, nearest centroid {cf:.3f})")
    return GuardReport(status=status, message=msg, model_f1=mf, model_bacc=mb, majority_f1=jf,
                       majority_bacc=jb, centroid_f1=cf, centroid_bacc=cb, n_val=int(yv.size))


def model_free_ranking(
    features: np.ndarray,
    labels: np.ndarray,
    reference_idx: np.ndarray,
    pool_idx: np.ndarray,
    *,
    k: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Rank ``pool_idx`` by disagreement of each item's label with its neighbours' labels.

    Each pool item's score is the share of its ``k`` nearest neighbours (Euclidean, among
    ``reference_idx``, the item itself excluded) whose label differs from its own. Needs no
    trained model: the fallback when the model fails :func:`sanity_check`. Returns the pool
    items sorted by score (highest first; ties by item index) and their scores.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    ref = np.asarray(reference_idx, dtype=np.int64)
    pool = np.asarray(pool_idx, dtype=np.int64)
    if x.ndim != 2 or x.shape[0] != y.size:
        raise ValueError(f"features must be ({y.size}, D), got shape {x.shape}")
    if pool.size == 0:
        return pool.copy(), np.zeros(0)
    if ref.size < 2:
        raise ValueError("model_free_ranking needs at least 2 reference items")
    kk = min(k + 1, ref.size)
    nn = NearestNeighbors(n_neighbors=kk).fit(x[ref])
    _, nbr = nn.kneighbors(x[pool])
    nbr_items = ref[nbr]  # (P, kk)
    not_self = nbr_items != pool[:, None]
    # keep the k nearest that are not the item itself
    keep = np.cumsum(not_self, axis=1) <= k
    mask = not_self & keep
    differ = (y[nbr_items] != y[pool][:, None]) & mask
    scores = differ.sum(axis=1) / np.maximum(mask.sum(axis=1), 1)
    order = np.lexsort((pool, -scores))
    return pool[order], scores[order]


def fallback_queue(
    features: np.ndarray,
    labels: np.ndarray,
    reference_idx: np.ndarray,
    pool_idx: np.ndarray,
    k: int,
    *,
    class_names: list[str] | tuple[str, ...] | None = None,
    neighbours: int = 10,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The top ``k`` of :func:`model_free_ranking` with a plain-words reason per item.

    For the queue of a campaign whose model failed :func:`sanity_check`: items whose label
    most of their nearest neighbours (``reference_idx``, e.g. the training items) disagree with.
    Returns items, scores and reasons.
    """
    items, scores = model_free_ranking(features, labels, reference_idx, pool_idx, k=neighbours)
    items, scores = items[:k], scores[:k]
    y = np.asarray(labels, dtype=np.int64)
    reasons = []
    for i, s in zip(items.tolist(), scores.tolist(), strict=True):
        name = class_names[y[i]] if class_names is not None else str(int(y[i]))
        reasons.append(f"labelled {name}, but {round(s * neighbours)} of its {neighbours} "
                       f"nearest neighbours are labelled otherwise (model-free ranking: the "
                       f"model failed its sanity check)")
    return items, scores, reasons
