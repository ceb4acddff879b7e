"""``noisy_ce``: CE on the noisy labels with nothing cleaned, the lower reference."""

from __future__ import annotations

from labelrefine.active.loop import fit_summary
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
    record = {"round": 0, "labels_bought": 0, **fit_summary(lnl.fit), "query_precision": None,
              "n_clean": int(ctx.data.train_idx.size), "n_queried": 0, "n_changed": 0,
              "oracle_wrong": 0, "seconds": 0.0}
    return make_result(ctx, spec, [record],
                       phase1=phase1_record(ctx, lnl, "ce", 0.0, seconds, shared),
                       seconds={"phase1_s": seconds, "phase2_s": 0.0},
                       extra={"reference": "no_cleaning"})
