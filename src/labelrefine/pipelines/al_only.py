"""``al_only``: active learning from scratch, no learning with noisy labels."""

from __future__ import annotations

import time

import numpy as np

from labelrefine.active.loop import active_loop
from labelrefine.config import PipelineSpec
from labelrefine.pipelines.common import PipelineContext, RunResult, loop_extra, make_result
from labelrefine.settings import pipeline_sampler


def run_al_only(spec: PipelineSpec, ctx: PipelineContext) -> RunResult:
    """Round 1 buys ``a_l`` random labels and trains a fresh network on them for
    ``lnl.epochs`` epochs; later rounds query the unlabeled pool with ``spec.sampler`` and
    fine-tune on the labeled items only. There is no round 0 (no model exists yet)."""
    t0 = time.perf_counter()
    loop = active_loop(
        None, ctx.source, ctx.data,
        trusted=np.zeros(0, dtype=np.int64), pool_idx=ctx.data.train_idx,
        sampler=pipeline_sampler(spec), oracle=ctx.oracle(),
        settings=ctx.loop_settings(),
        model_factory=lambda: ctx.new_model(offset=1), first_fit_epochs=ctx.cfg.lnl.epochs,
        progress=ctx.progress,
    )
    return make_result(ctx, spec, loop.records,
                       seconds={"phase1_s": 0.0, "phase2_s": time.perf_counter() - t0},
                       extra=loop_extra(loop, ctx.data))
