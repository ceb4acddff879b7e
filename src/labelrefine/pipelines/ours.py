"""``ours``: CT_VOG phase 1, then active label cleaning of the suspects (the paper's method;
docs/design.md, "Pipelines")."""

from __future__ import annotations

import time

from labelrefine.active.loop import active_loop
from labelrefine.active.strategies import PAPER
from labelrefine.config import PipelineSpec
from labelrefine.pipelines.common import (
    PipelineContext,
    RunResult,
    loop_extra,
    make_result,
    phase1,
    phase1_record,
)
from labelrefine.settings import pipeline_sampler


def run_ours(spec: PipelineSpec, ctx: PipelineContext) -> RunResult:
    """CT_VOG (Co-teaching when m = 0) on the noisy labels; its clean set keeps its given
    labels; rounds query the suspect pool with ``spec.sampler`` and fine-tune with CE on the
    growing clean set."""
    settings = ctx.settings(spec)
    mix, method = settings.mix, settings.phase1_method
    lnl, p1_seconds, shared = phase1(ctx, method, mix)
    t0 = time.perf_counter()
    start = PAPER.start(ctx.data.given_labels, train=ctx.data.train_idx, clean=lnl.clean_idx)
    loop = active_loop(
        lnl.model, ctx.source, ctx.data,
        trusted=start.trusted, pool_idx=start.pool,
        sampler=pipeline_sampler(spec), oracle=ctx.oracle(),
        settings=ctx.loop_settings(),
        round0=lnl.fit, oracle_leak=ctx.active.oracle_leak, progress=ctx.progress,
    )
    return make_result(
        ctx, spec, loop.records,
        phase1=phase1_record(ctx, lnl, method, mix, p1_seconds, shared),
        seconds={"phase1_s": p1_seconds, "phase2_s": time.perf_counter() - t0},
        extra=loop_extra(loop, ctx.data),
    )
