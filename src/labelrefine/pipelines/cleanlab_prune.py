"""``cleanlab_prune``: the confident-learning peer that drops what it flags (no expert).

K-fold out-of-sample probabilities from the same head on the same features
(:func:`~labelrefine.pipelines.cleanlab_common.out_of_sample_probs`), then
``cleanlab.filter.find_label_issues``; a fresh head is trained with CE on the items not flagged,
for ``lnl.epochs`` epochs with the same model selection as every pipeline. One record (round 0,
no labels bought), like the ``noisy_ce`` reference.
"""

from __future__ import annotations

import time

import numpy as np

from labelrefine.active.loop import eval_sets, round_zero
from labelrefine.config import PipelineSpec
from labelrefine.lnl.trainer import FitResult, fit_ce
from labelrefine.models.heads import Classifier
from labelrefine.pipelines.cleanlab_common import (
    label_issues,
    out_of_sample_probs,
    precision_recall,
)
from labelrefine.pipelines.common import PipelineContext, RunResult, make_result


def prune_and_fit(ctx: PipelineContext) -> tuple[Classifier, FitResult, np.ndarray,
                                                 dict[str, float | int | None]]:
    """Cross-validate, flag with cleanlab, train a fresh head on the rest.

    Returns the model, its fit, the out-of-sample probabilities of the training items (rows in
    ``train_idx`` order) and a summary (flagged count, precision and recall of the flags).
    """
    d = ctx.data
    lnl = ctx.cfg.lnl
    train = d.train_idx
    probs = out_of_sample_probs(ctx, train, d.given_labels)
    flagged = label_issues(d.given_labels[train], probs)
    keep = train[~flagged]
    val, test = eval_sets(d)
    model = ctx.new_model(offset=3)
    ctx.say(f"training on {keep.size} items cleanlab kept")
    fit = fit_ce(model, ctx.source, keep, d.given_labels, epochs=lnl.epochs, lr=lnl.lr,
                 batch_size=lnl.batch_size, val=val, test=test, seed=ctx.seed,
                 momentum=lnl.momentum, weight_decay=lnl.weight_decay, device=ctx.device)
    prec, rec = precision_recall(flagged, train, d.given_labels, d.true_labels)
    summary = {"n_flagged": int(flagged.sum()), "flag_precision": prec, "flag_recall": rec,
               "n_kept": int(keep.size)}
    return model, fit, probs, summary


def run_cleanlab_prune(spec: PipelineSpec, ctx: PipelineContext) -> RunResult:
    """cleanlab's ``find_label_issues`` on K-fold probabilities; CE on the items it keeps."""
    t0 = time.perf_counter()
    _, fit, _, summary = prune_and_fit(ctx)
    seconds = time.perf_counter() - t0
    record = round_zero(fit, n_clean=summary["n_kept"], seconds=seconds)
    return make_result(ctx, spec, [record], seconds={"phase1_s": seconds, "phase2_s": 0.0},
                       extra={"cleanlab": summary})
