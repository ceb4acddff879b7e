"""``ce_al``: CE on all noisy labels, then active relabeling (paper baseline 2)."""

from __future__ import annotations

import time

import numpy as np

from labelrefine.active.loop import active_loop
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


def run_ce_al(spec: PipelineSpec, ctx: PipelineContext) -> RunResult:
    """CE on every noisy training label for ``lnl.epochs``; each round queries items not yet
    relabeled with ``spec.sampler`` and fine-tunes on the relabeled items only (the paper's
    text) or, with ``ce_al_train_on: all``, on the whole training split with the corrected
    labels (what the official code did)."""
    lnl, p1_seconds, shared = phase1(ctx, "ce", 0.0)
    if spec.ce_al_train_on == "all":
        train_set = ctx.data.train_idx
    else:
        train_set = np.zeros(0, dtype=np.int64)
    t0 = time.perf_counter()
    loop = active_loop(
        lnl.model, ctx.source, ctx.data,
        trusted=train_set, pool_idx=ctx.data.train_idx,
        sampler=pipeline_sampler(spec), oracle=ctx.oracle(),
        settings=ctx.loop_settings(),
        round0=lnl.fit, progress=ctx.progress,
    )
    return make_result(
        ctx, spec, loop.records,
        phase1=phase1_record(ctx, lnl, "ce", 0.0, p1_seconds, shared),
        seconds={"phase1_s": p1_seconds, "phase2_s": time.perf_counter() - t0},
        extra={**loop_extra(loop, ctx.data), "train_on": spec.ce_al_train_on},
    )
