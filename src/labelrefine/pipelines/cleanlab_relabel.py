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

from labelrefine.active.label_quality import cl_scores
from labelrefine.active.loop import Fitted, cleaning_rounds, eval_sets, round_zero
from labelrefine.active.round import refit
from labelrefine.active.state import AnswerStep, CleaningState
from labelrefine.active.strategies import Strategy
from labelrefine.config import PipelineSpec
from labelrefine.pipelines.cleanlab_common import label_issues, out_of_sample_probs
from labelrefine.pipelines.cleanlab_prune import prune_and_fit
from labelrefine.pipelines.common import PipelineContext, RunResult, make_result

#: Queries every training item not asked yet; trains on the answers plus the unasked items
#: cleanlab does not flag (the ``pruned`` set, supplied each round).
STRATEGY = Strategy("cleanlab_relabel", "all", "pruned")


def run_cleanlab_relabel(spec: PipelineSpec, ctx: PipelineContext) -> RunResult:
    """cleanlab's ranking decides what the expert relabels; training drops what it flags."""
    d, act, lnl = ctx.data, ctx.active, ctx.cfg.lnl
    train = d.train_idx
    val, test = eval_sets(d)
    t0 = time.perf_counter()
    model, fit, probs, summary = prune_and_fit(ctx)
    p1_seconds = time.perf_counter() - t0
    records = [round_zero(fit, n_clean=summary["n_kept"], seconds=p1_seconds)]
    state = STRATEGY.start(d.given_labels, train=train, clean=np.zeros(0, dtype=np.int64))
    oracle = ctx.oracle()
    def queue(state: CleaningState, rnd: int) -> np.ndarray:
        # quality over the whole training split (cleanlab's intended use), restricted to pool
        score = cl_scores(probs, state.labels[train], method="self_confidence", adjust=False)
        in_pool = np.isin(train, state.pool)
        cand, cand_score = train[in_pool], score[in_pool]
        return cand[np.argsort(-cand_score, kind="stable")[:ctx.budget]]

    def fit_round(state: CleaningState, step: AnswerStep, rnd: int) -> Fitted:
        nonlocal probs
        probs = out_of_sample_probs(ctx, train, state.labels, offset=rnd,
                                    epochs=act.epochs_per_round, lr=act.lr)
        rest = np.isin(train, state.pool)
        flagged = np.zeros(train.size, dtype=bool)
        flagged[rest] = label_issues(state.labels[train[rest]], probs[rest])
        (keep,) = STRATEGY.candidates(
            state, {"pruned": np.union1d(state.answered, train[rest & ~flagged])}).values()
        fit = refit(model, ctx.source, keep, state.labels, active=act, lnl=lnl, val=val,
                    test=test, seed=ctx.seed, rnd=rnd, device=ctx.device)
        return Fitted(state, fit, n_trained=int(keep.size))

    t1 = time.perf_counter()
    done = cleaning_rounds(state, rounds=act.rounds, oracle=oracle, queue=queue, fit=fit_round,
                           data=d, say=ctx.say)
    records += done.records
    state = done.state
    labels = state.labels
    wrong = int(np.sum(labels[train] != d.true_labels[train]))
    return make_result(
        ctx, spec, records,
        seconds={"phase1_s": p1_seconds, "phase2_s": time.perf_counter() - t1},
        extra={"cleanlab": summary, "final_wrong_labels": wrong},
    )
