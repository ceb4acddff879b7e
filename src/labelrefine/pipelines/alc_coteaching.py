"""``alc_coteaching``: Bernhardt et al.'s active label cleaning with Co-teaching, adapted to
one annotator (paper baseline 3)."""

from __future__ import annotations

import time

import numpy as np

from labelrefine import seeding
from labelrefine.active.loop import active_loop, eval_sets
from labelrefine.config import PipelineSpec
from labelrefine.lnl.trainer import FitResult, run_lnl
from labelrefine.models.heads import Classifier
from labelrefine.pipelines.common import (
    PipelineContext,
    RunResult,
    loop_extra,
    make_result,
    phase1,
    phase1_record,
)
from labelrefine.settings import pipeline_sampler


def remaining_noise_rate(tau: float, labels: np.ndarray, given: np.ndarray,
                         train_idx: np.ndarray) -> float:
    """Forget rate for a continuing Co-teaching round, from observable facts only.

    Phase 1 assumes ``tau * n`` wrong labels; every relabel that changed a label removed one.
    """
    n = int(train_idx.size)
    fixed = int(np.sum(labels[train_idx] != given[train_idx]))
    return max(0.0, tau * n - fixed) / n if n else 0.0


def run_alc_coteaching(spec: PipelineSpec, ctx: PipelineContext) -> RunResult:
    """Co-teaching on all noisy labels; then each round ranks not-yet-relabeled items with the
    joint ranker (``spec.sampler`` overrides it), relabels the top ``a_l`` and continues
    Co-teaching of both networks on *all* training data (relabeled + still-noisy labels) for
    ``epochs_per_round`` epochs, with the forget rate lowered by the labels fixed so far."""
    lnl, p1_seconds, shared = phase1(ctx, "coteaching", 0.0)
    d = ctx.data
    val, test = eval_sets(d)
    peer: list[Classifier | None] = [lnl.peer]
    equal = ctx.active.protocol == "equal"
    # 'original': warm-up 1, i.e. forget rate 0 in each round's first epoch; 'equal': none
    cont = ctx.cfg.lnl.model_copy(
        update={"method": "coteaching", "mix": 0.0, "warmup": 0 if equal else 1,
                "lr": ctx.active.lr}
    )

    def train(model: Classifier, clean_idx: np.ndarray, labels: np.ndarray,
              rnd: int) -> FitResult:
        tau = remaining_noise_rate(ctx.tau, labels, d.given_labels, d.train_idx)
        assert peer[0] is not None
        res = run_lnl(
            cont, ctx.source, d.train_idx, labels, num_classes=d.num_classes, val=val,
            test=test, seed=seeding.round_seed(ctx.seed, rnd), tau=tau, true_labels=d.true_labels,
            device=ctx.device, init=(model, peer[0]), epochs=ctx.active.epochs_per_round,
        )
        if equal and res.fit.best_state is not None:  # like every other pipeline
            model.load_state_dict(res.fit.best_state)
        elif res.model is not model:
            model.load_state_dict(res.model.state_dict())
        peer[0] = res.peer
        return res.fit

    t0 = time.perf_counter()
    loop = active_loop(
        lnl.model, ctx.source, d,
        trusted=np.zeros(0, dtype=np.int64), pool_idx=d.train_idx,
        sampler=pipeline_sampler(spec), oracle=ctx.oracle(),
        settings=ctx.loop_settings(),
        round0=lnl.fit, train_fn=train, progress=ctx.progress,
    )
    return make_result(
        ctx, spec, loop.records,
        phase1=phase1_record(ctx, lnl, "coteaching", 0.0, p1_seconds, shared),
        seconds={"phase1_s": p1_seconds, "phase2_s": time.perf_counter() - t0},
        extra=loop_extra(loop, d),
    )
