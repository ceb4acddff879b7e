"""What the cleanlab peers share: K-fold out-of-sample probabilities from the project's own head
on the same features, and cleanlab's label-issue filter over them.

cleanlab needs, for every training item, class probabilities from a model that did not train
on that item's label. :func:`out_of_sample_probs` gets them the way cleanlab recommends
(K-fold cross-validation): the items are split into ``folds`` stratified folds by their current
label; for each fold a freshly initialised head (the pipelines' network, ``lnl`` settings) is
trained with CE on the other folds for ``epochs`` epochs, with the same best-validation model
selection as every pipeline, and predicts the held-out fold.
"""

from __future__ import annotations

import warnings

import numpy as np
from cleanlab.filter import find_label_issues
from sklearn.model_selection import StratifiedKFold

from labelrefine import seeding
from labelrefine.active.loop import eval_sets
from labelrefine.lnl.trainer import fit_ce, predict
from labelrefine.pipelines.common import PipelineContext

#: Folds of the cross-validation that gives out-of-sample probabilities (cleanlab's default).
FOLDS = 5
#: cleanlab's filter rule for ``find_label_issues`` (its default).
FILTER_BY = "prune_by_noise_rate"


def out_of_sample_probs(ctx: PipelineContext, items: np.ndarray, labels: np.ndarray, *,
                        folds: int = FOLDS, epochs: int | None = None, lr: float | None = None,
                        offset: int = 0) -> np.ndarray:
    """``(len(items), C)`` probabilities, each row from a head that never saw that item.

    ``labels`` is the ``(N,)`` label array to train on (indexed by item). Folds are stratified
    by ``labels[items]`` (a class with fewer items than folds is spread as far as it goes) and
    seeded by the run seed and ``offset``; ``epochs`` / ``lr`` default to ``lnl.epochs`` /
    ``lnl.lr``.
    """
    items = np.asarray(items, dtype=np.int64)
    if items.size < folds:
        raise ValueError(f"out_of_sample_probs: {items.size} items for {folds} folds")
    y = np.asarray(labels, dtype=np.int64)[items]
    lnl = ctx.cfg.lnl
    val, _ = eval_sets(ctx.data)
    probs = np.zeros((items.size, ctx.data.num_classes), dtype=np.float64)
    split = StratifiedKFold(n_splits=folds, shuffle=True,
                            random_state=seeding.cv_split_seed(ctx.seed, offset))
    with warnings.catch_warnings():
        # "The least populated class has only n members": rare classes in few folds is fine.
        warnings.simplefilter("ignore", UserWarning)
        parts = list(split.split(np.zeros(items.size), y))
    for f, (fit_pos, held_pos) in enumerate(parts):
        ctx.say(f"cross-validation fold {f + 1}/{folds}")
        model = ctx.new_model(offset=seeding.cv_model_offset(offset, f))
        fit_ce(model, ctx.source, items[fit_pos], labels,
               epochs=epochs if epochs is not None else lnl.epochs,
               lr=lr if lr is not None else lnl.lr, batch_size=lnl.batch_size, val=val,
               test=None, seed=seeding.cv_train_seed(ctx.seed, offset, f),
               momentum=lnl.momentum,
               weight_decay=lnl.weight_decay, device=ctx.device)
        p, _ = predict(model, ctx.source, items[held_pos], device=ctx.device)
        probs[held_pos] = p
    return probs


def label_issues(given: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Boolean mask of likely label errors: ``cleanlab.filter.find_label_issues``.

    ``given``: ``(n,)`` labels, ``probs``: ``(n, C)`` out-of-sample probabilities.
    """
    given = np.asarray(given, dtype=np.int64)
    if given.size == 0:
        return np.zeros(0, dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cleanlab warns about classes absent from `given`
        mask = find_label_issues(given, probs, filter_by=FILTER_BY, n_jobs=1)
    return np.asarray(mask, dtype=bool)


def precision_recall(flagged: np.ndarray, items: np.ndarray, given: np.ndarray,
                     true: np.ndarray) -> tuple[float | None, float | None]:
    """Share of flagged items whose label was wrong; share of wrong labels that were flagged."""
    items = np.asarray(items, dtype=np.int64)
    wrong = given[items] != true[items]
    flagged = np.asarray(flagged, dtype=bool)
    prec = float(wrong[flagged].mean()) if flagged.any() else None
    rec = float(flagged[wrong].mean()) if wrong.any() else None
    return prec, rec
