"""The paper's pipelines (docs/design.md, "Pipelines"), each a small function composing the
engine.

``run_pipeline(spec, context)`` runs one of them for one noise setting and seed and returns a
JSON-serialisable :data:`RunResult`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from labelrefine.config import PipelineSpec
from labelrefine.pipelines.al_only import run_al_only
from labelrefine.pipelines.alc_coteaching import run_alc_coteaching
from labelrefine.pipelines.ce_al import run_ce_al
from labelrefine.pipelines.clean import run_clean
from labelrefine.pipelines.cleanlab_prune import run_cleanlab_prune
from labelrefine.pipelines.cleanlab_relabel import run_cleanlab_relabel
from labelrefine.pipelines.common import PipelineContext, RunResult
from labelrefine.pipelines.noisy_ce import run_noisy_ce
from labelrefine.pipelines.ours import run_ours
from labelrefine.pipelines.ours_find import run_ours_find
from labelrefine.pipelines.ours_plus import run_ours_plus
from labelrefine.runtime import seed_everything
from labelrefine.settings import pipeline_sampler

Pipeline = Callable[[PipelineSpec, PipelineContext], RunResult]

PIPELINES: dict[str, Pipeline] = {
    "ours": run_ours,
    "al_only": run_al_only,
    "ce_al": run_ce_al,
    "alc_coteaching": run_alc_coteaching,
    "clean": run_clean,
    "noisy_ce": run_noisy_ce,
    "cleanlab_prune": run_cleanlab_prune,
    "cleanlab_relabel": run_cleanlab_relabel,
    "ours_plus": run_ours_plus,
    "ours_find": run_ours_find,
}


def run_pipeline(spec: PipelineSpec, context: PipelineContext) -> RunResult:
    """Run one pipeline for the context's noise setting and seed."""
    if spec.name not in PIPELINES:
        raise ValueError(f"unknown pipeline {spec.name!r} (have: {', '.join(PIPELINES)})")
    pipeline_sampler(spec)  # a sampler the pipeline would ignore is an error, before any work
    seed_everything(context.seed)
    t0 = time.perf_counter()
    result = PIPELINES[spec.name](spec, context)
    result["timings"]["total_s"] = time.perf_counter() - t0
    return result


__all__ = ["PIPELINES", "Pipeline", "PipelineContext", "RunResult", "run_pipeline"]
