"""``noisy_ce``: CE on the noisy labels with nothing cleaned, the lower reference."""

from __future__ import annotations

from labelrefine.active.loop import round_zero
from labelrefine.config import PipelineSpec
from labelrefine.pipelines.common import (
    PipelineContext,
    RunResult,
    make_result,
    phase1,
    phase1_record,
)


def run_noisy_ce(spec: PipelineSpec, ctx: PipelineContext) -> RunResult:
    """CE on the noisy labels, nothing cleaned: one record (round 0, no labels bought)."""
    lnl, seconds, shared = phase1(ctx, "ce", 0.0)
    record = round_zero(lnl.fit, n_clean=int(ctx.data.train_idx.size))
    return make_result(ctx, spec, [record],
                       phase1=phase1_record(ctx, lnl, "ce", 0.0, seconds, shared),
                       seconds={"phase1_s": seconds, "phase2_s": 0.0},
                       extra={"reference": "no_cleaning"})
