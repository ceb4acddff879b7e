"""``cleanlab_relabel``: the confident-learning peer with an expert.

Round 0 is ``cleanlab_prune`` (K-fold probabilities, ``find_label_issues``, a head trained on the
items not flagged). Each round ``1..M`` then

1. ranks the items not yet relabeled by ``cleanlab.rank.get_label_quality_scores`` (cleanlab's
   defaults: self-confidence) on the latest out-of-sample probabilities, lowest quality first;
2. sends the ``a_l`` lowest to the same oracle every pipeline uses and takes its answers;
3. recomputes the K-fold out-of-sample probabilities with the corrected labels (fresh heads,
   ``epochs_per_round`` epochs at ``active.lr``: a round's training length), flags the items
   not yet relabeled again with ``find_label_issues`` (relabeled items are trusted);
4. fine-tunes the head (fresh optimiser, ``epochs_per_round`` epochs at ``active.lr``, same
   model selection as every pipeline) on the relabeled items plus the items not flagged.

Records carry the same columns as :func:`labelrefine.active.loop.active_loop`'s.
"""

from __future__ import annotations

import time

import numpy as np

from labelrefine import seeding
from labelrefine.active.label_quality import cl_scores
from labelrefine.active.loop import eval_sets, fit_summary, round_zero
from labelrefine.active.oracle import UNSURE
from labelrefine.config import PipelineSpec
from labelrefine.lnl.trainer import fit_ce
from labelrefine.metrics import query_precision
from labelrefine.pipelines.cleanlab_common import label_issues, out_of_sample_probs
from labelrefine.pipelines.cleanlab_prune import prune_and_fit
from labelrefine.pipelines.common import PipelineContext, RunResult, make_result


def run_cleanlab_relabel(spec: PipelineSpec, ctx: PipelineContext) -> RunResult:
    """cleanlab's ranking decides what the expert relabels; training drops what it flags."""
    d, act, lnl = ctx.data, ctx.active, ctx.cfg.lnl
    train = d.train_idx
    val, test = eval_sets(d)
    t0 = time.perf_counter()
    model, fit, probs, summary = prune_and_fit(ctx)
    p1_seconds = time.perf_counter() - t0
    records = [round_zero(fit, n_clean=summary["n_kept"], seconds=p1_seconds)]
    labels = d.given_labels.astype(np.int64, copy=True)
    relabeled = np.zeros(0, dtype=np.int64)
    pool = train.copy()  # sorted: items not yet queried
    oracle = ctx.oracle()
    budget = ctx.budget
    bought = 0
    t1 = time.perf_counter()
    for rnd in range(1, act.rounds + 1):
        if pool.size == 0:
            break
        t_r = time.perf_counter()
        # quality over the whole training split (cleanlab's intended use), restricted to pool
        score = cl_scores(probs, labels[train], method="self_confidence", adjust=False)
        in_pool = np.isin(train, pool)
        cand, cand_score = train[in_pool], score[in_pool]
        k = min(budget, int(cand.size))
        picked = cand[np.argsort(-cand_score, kind="stable")[:k]]
        answers = np.asarray(oracle.query(picked), dtype=np.int64)
        sure = answers != UNSURE
        n_changed = int(np.sum(answers[sure] != labels[picked[sure]]))
        labels[picked[sure]] = answers[sure]
        pool = np.setdiff1d(pool, picked, assume_unique=True)
        relabeled = np.union1d(relabeled, picked[sure])
        bought += int(picked.size)

        probs = out_of_sample_probs(ctx, train, labels, offset=rnd,
                                    epochs=act.epochs_per_round, lr=act.lr)
        rest = np.isin(train, pool)
        flagged = np.zeros(train.size, dtype=bool)
        flagged[rest] = label_issues(labels[train[rest]], probs[rest])
        keep = np.union1d(relabeled, train[rest & ~flagged])
        fit = fit_ce(model, ctx.source, keep, labels, epochs=act.epochs_per_round, lr=act.lr,
                     batch_size=lnl.batch_size, val=val, test=test,
                     seed=seeding.round_seed(ctx.seed, rnd), momentum=lnl.momentum,
                     weight_decay=lnl.weight_decay, device=ctx.device)
        records.append({
            "round": rnd,
            "labels_bought": bought,
            **fit_summary(fit),
            "query_precision": query_precision(picked, d.given_labels, d.true_labels),
            "n_clean": int(keep.size),
            "n_queried": int(picked.size),
            "n_changed": n_changed,
            "oracle_wrong": int(np.sum(answers[sure] != d.true_labels[picked[sure]])),
            "n_unsure": int(np.sum(~sure)),
            "seconds": time.perf_counter() - t_r,
        })
        ctx.say(f"round {rnd}: {bought} labels, test F1 {records[-1]['test_f1']:.3f}")
    wrong = int(np.sum(labels[train] != d.true_labels[train]))
    return make_result(
        ctx, spec, records,
        seconds={"phase1_s": p1_seconds, "phase2_s": time.perf_counter() - t1},
        extra={"cleanlab": summary, "final_wrong_labels": wrong},
    )
