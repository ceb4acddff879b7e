"""The pipelines (docs/design.md, "Pipelines"), each a small function composing the engine, and
their registry.

``run_pipeline(spec, context)`` runs one of them for one noise setting and seed and returns a
JSON-serialisable :data:`RunResult`. :data:`PIPELINES` maps a name to its entry (the module
and function that run it); the config's ``pipelines[].name`` values are
:func:`pipeline_names`. This package is light at import (a pipeline's module, with torch, is
imported when it runs), so the config can check names without loading them. Adding a pipeline
is its module plus one entry below.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labelrefine import extensions

if TYPE_CHECKING:
    from labelrefine.config import PipelineSpec
    from labelrefine.pipelines.common import PipelineContext, RunResult

Pipeline = Callable[["PipelineSpec", "PipelineContext"], "RunResult"]


@dataclass(frozen=True)
class PipelineEntry:
    """One registered pipeline: ``run_<name>`` of module ``labelrefine.pipelines.<name>``."""

    name: str
    summary: str
    #: rough relative run time, used only to start a sweep's longest groups first
    cost: float = 1.0

    def load(self) -> Pipeline:
        """The pipeline's function (its module imported now)."""
        module = importlib.import_module(f"{__name__}.{self.name}")
        return getattr(module, f"run_{self.name}")  # type: ignore[no-any-return]

    def __call__(self, spec: PipelineSpec, context: PipelineContext) -> RunResult:
        return self.load()(spec, context)


PIPELINES: dict[str, PipelineEntry] = {
    e.name: e for e in (
        PipelineEntry("ours", "CT_VOG phase 1, then active label cleaning of the suspects", 3.0),
        PipelineEntry("al_only", "active learning from scratch, no learning with noisy labels",
                      1.5),
        PipelineEntry("ce_al", "CE on all noisy labels, then active relabeling", 2.0),
        PipelineEntry("alc_coteaching", "active label cleaning with Co-teaching", 4.0),
        PipelineEntry("clean", "CE on the true labels (upper bound)", 1.0),
        PipelineEntry("noisy_ce", "CE on the noisy labels, nothing cleaned (lower reference)",
                      1.0),
        PipelineEntry("cleanlab_prune", "confident learning drops what it flags (no expert)", 2.0),
        PipelineEntry("cleanlab_relabel", "confident learning with an expert", 10.0),
        PipelineEntry("ours_plus", "the paper's method plus switchable steps", 3.0),
        PipelineEntry("ours_find", "the simulated twin of the default campaign strategy", 4.0),
    )
}


def pipeline_names() -> tuple[str, ...]:
    """The registered pipeline names (read now, so later entries count)."""
    return tuple(PIPELINES)


def run_pipeline(spec: PipelineSpec, context: PipelineContext) -> RunResult:
    """Run one pipeline for the context's noise setting and seed."""
    from labelrefine.runtime import seed_everything
    from labelrefine.settings import pipeline_sampler

    if spec.name not in PIPELINES:
        raise ValueError(f"unknown pipeline {spec.name!r} (have: {', '.join(PIPELINES)})")
    pipeline_sampler(spec)  # a sampler the pipeline would ignore is an error, before any work
    seed_everything(context.seed)
    t0 = time.perf_counter()
    result = PIPELINES[spec.name](spec, context)
    result["timings"]["total_s"] = time.perf_counter() - t0
    return result


_LAZY = {"PipelineContext": "common", "RunResult": "common"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'labelrefine.pipelines' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = ["PIPELINES", "Pipeline", "PipelineContext", "PipelineEntry", "RunResult",
           "pipeline_names", "run_pipeline"]


extensions.offer(pipeline_names=pipeline_names)
