"""``ours_find``: the simulated twin of the default campaign strategy (``campaign step
--strategy find``).

Phase 1 is ``ours``' (CT_VOG on the noisy labels, the same shared computation); it provides the
network a round fine-tunes and phase 1's clean set. Each round then:

1. scores **every training item** with the finder -- cleanlab's label quality on 5-fold
   cross-fitted L2 logistic probabilities plus neighbour label agreement, both on the cached
   features and the current labels (:func:`labelrefine.active.finding.plan_round`) -- and
   queues, from the items not asked yet, the budget's finding picks, an optional informative
   share and a stratified random audit share (:mod:`labelrefine.active.audit`);
2. applies the (simulated) expert's answers;
3. fine-tunes from the last weights as ``ours_plus`` does (``spec.find.train_on``: phase 1's
   clean set with its corrected labels plus the answers, the answers only, or the better-
   validating of the two);
4. records, beside F1 and query precision, the audit estimate of the wrong labels left in the
   whole training set next to the true count (what ``campaign status`` would show).
"""

from __future__ import annotations

import copy
import functools
import time

import numpy as np

from labelrefine import seeding
from labelrefine.active.audit import AuditRound, remaining_wrong
from labelrefine.active.finding import RoundPlan, plan_round
from labelrefine.active.loop import Fitted, cleaning_rounds, eval_sets, round_zero
from labelrefine.active.round import refit_select
from labelrefine.active.state import AnswerStep, CleaningState
from labelrefine.active.strategies import TRAIN_ON, campaign_strategy
from labelrefine.config import FindConfig, PipelineSpec
from labelrefine.lnl.trainer import predict, source_features
from labelrefine.pipelines.common import (
    PipelineContext,
    RunResult,
    make_result,
    phase1,
    phase1_record,
)


def finder_features(model: object, source: object, n: int, device: str) -> np.ndarray:
    """The features the finder works on: the source's input features (embedding mode), else
    the network's penultimate-layer embeddings (fine-tune mode)."""
    idx = np.arange(n, dtype=np.int64)
    x = source_features(source, idx)
    if x is None:
        _, x = predict(model, source, idx, device=device)  # type: ignore[arg-type]
    return np.asarray(x)


def _answer_of(state: CleaningState, n: int) -> np.ndarray:
    """``(n,)`` the sure answer per item (-1: none), what the audit estimate reads."""
    answer = np.full(n, -1, dtype=np.int64)
    answer[state.answered] = state.labels[state.answered]
    return answer


def run_ours_find(spec: PipelineSpec, ctx: PipelineContext) -> RunResult:
    """Phase 1 as ``ours``; finding rounds with the options of ``spec.find``."""
    opts = spec.find or FindConfig()
    d, act, lnl_cfg = ctx.data, ctx.active, ctx.cfg.lnl
    c = d.num_classes
    settings = ctx.settings(spec)
    lnl, p1_seconds, shared = phase1(ctx, settings.phase1_method, settings.mix)
    model = lnl.model
    val, test = eval_sets(d)
    train = d.train_idx
    n_all = d.true_labels.size
    x = finder_features(model, ctx.source, n_all, ctx.device)
    strategy = campaign_strategy("find", opts.train_on)
    team = d.trusted_train if opts.use_trusted else np.zeros(0, dtype=np.int64)
    clean = np.union1d(np.unique(lnl.clean_idx).astype(np.int64), team)  # team's: clean
    # the team's trusted items are never queued: settled from the start
    state = strategy.start(d.given_labels, train=train, clean=clean, settled=team)
    unknown = np.setdiff1d(train, team)  # what the estimate covers
    audits: list[AuditRound] = []
    oracle = ctx.oracle()
    records = [round_zero(lnl.fit, n_clean=int(state.trusted.size))]
    fixed = 0
    planned: list[tuple[RoundPlan, np.ndarray]] = []  # this round's plan and wrong-probabilities

    def queue(state: CleaningState, rnd: int) -> np.ndarray:
        asked = np.setdiff1d(train, state.pool)
        plan = plan_round(x, state.labels, train, asked, ctx.budget, c,
                          seed=seeding.sampler_seed(ctx.seed, rnd),
                          audit_share=opts.audit_share, info_share=opts.info_share,
                          weight=opts.weight, c=opts.c, k=opts.neighbours, folds=opts.folds,
                          dims=opts.dims)
        planned[:] = [(plan, plan.wrong_probability(d.given_labels))]
        audits.append(plan.audit_round(d.given_labels, _answer_of(state, n_all)))
        return plan.queue.order

    def fit_round(state: CleaningState, step: AnswerStep, rnd: int) -> Fitted:
        nonlocal model, fixed
        (plan, m), q = planned[0], planned[0][0].queue
        fixed += step.n_changed
        extra = {}
        if "pruned" in TRAIN_ON[opts.train_on]:
            extra["pruned"] = plan.pruned(np.setdiff1d(train, state.pool))
        candidates = strategy.candidates(state, extra)
        trained_on, model, fit = refit_select(
            functools.partial(copy.deepcopy, model), ctx.source, candidates, state.labels,
            active=act, lnl=lnl_cfg, val=val, test=test, seed=ctx.seed, rnd=rnd,
            device=ctx.device)
        answer = _answer_of(state, n_all)
        est = remaining_wrong(audits, given=d.given_labels, answer=answer, m_now=m,
                              items=unknown)
        left = unknown[answer[unknown] < 0]
        return Fitted(state, fit, n_trained=int(candidates[trained_on].size), extra={
            "trained_on": trained_on, "n_audit": int(q.audit.size), "n_info": int(q.info.size),
            "audit_wrong": int(np.sum(d.given_labels[q.audit] != d.true_labels[q.audit])),
            "wrong_left": int(np.sum(d.given_labels[left] != d.true_labels[left])),
            "estimate_left": None if est is None else est.as_dict()})

    t0 = time.perf_counter()
    done = cleaning_rounds(state, rounds=act.rounds, oracle=oracle, queue=queue, fit=fit_round,
                           data=d, say=ctx.say)
    records += done.records
    state = done.state
    labels = state.labels
    wrong = int(np.sum(labels[train] != d.true_labels[train]))
    return make_result(
        ctx, spec, records,
        phase1=phase1_record(ctx, lnl, settings.phase1_method, settings.mix, p1_seconds, shared),
        seconds={"phase1_s": p1_seconds, "phase2_s": time.perf_counter() - t0},
        extra={"final_wrong_labels": wrong, "fixed": fixed, "n_trusted": int(team.size),
               "find": opts.model_dump(mode="json")},
    )
