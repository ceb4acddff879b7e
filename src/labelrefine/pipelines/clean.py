"""``clean``: CE on the true labels, the upper bound every cleaning pipeline aims at."""

from __future__ import annotations

import time

from labelrefine.active.loop import eval_sets, round_zero
from labelrefine.config import PipelineSpec
from labelrefine.lnl.trainer import fit_ce
from labelrefine.pipelines.common import PipelineContext, RunResult, make_result


def run_clean(spec: PipelineSpec, ctx: PipelineContext) -> RunResult:
    """CE on the true labels of the whole training split for ``lnl.epochs`` epochs: one
    record (round 0) whose ``labels_bought`` is the training-set size."""
    d = ctx.data
    val, test = eval_sets(d)
    lnl = ctx.cfg.lnl
    t0 = time.perf_counter()
    fit = fit_ce(
        ctx.new_model(offset=2), ctx.source, d.train_idx, d.true_labels, epochs=lnl.epochs,
        lr=lnl.lr, batch_size=lnl.batch_size, val=val, test=test, seed=ctx.seed,
        momentum=lnl.momentum, weight_decay=lnl.weight_decay, device=ctx.device,
    )
    seconds = time.perf_counter() - t0
    record = round_zero(fit, n_clean=int(d.train_idx.size),
                        labels_bought=int(d.train_idx.size), seconds=seconds)
    return make_result(ctx, spec, [record], seconds={"phase1_s": seconds, "phase2_s": 0.0},
                       extra={"reference": "upper_bound"})
