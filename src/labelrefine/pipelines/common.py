"""What every pipeline gets (:class:`PipelineContext`) and the pieces they share."""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from labelrefine import seeding
from labelrefine.active.loop import LoopResult, LoopSettings, eval_sets, fit_summary
from labelrefine.active.oracle import SimulatedOracle
from labelrefine.config import (
    ActiveConfig,
    ExperimentConfig,
    NoiseConfig,
    PipelineSpec,
    RunSettings,
)
from labelrefine.data.prepare import PreparedData
from labelrefine.io import to_jsonable
from labelrefine.lnl.trainer import LNLResult, continue_from_best, run_lnl
from labelrefine.metrics import selection_precision_recall
from labelrefine.models.heads import Classifier, build_model
from labelrefine.settings import phase1_identity, pipeline_sampler

#: A finished run: JSON-serialisable (see :func:`make_result` for the keys).
RunResult = dict[str, Any]


@dataclass
class PipelineContext:
    """Everything a pipeline needs except its spec: one noise setting and one seed.

    ``source`` is a ``FeatureSource`` (embedding mode) or an ``ImageSource`` (fine-tune mode);
    ``in_dim`` its feature size (None in fine-tune mode). ``phase1_cache`` lets pipelines that
    start from the same phase-1 computation (same method, mix, tau, epochs) share it.
    """

    cfg: ExperimentConfig
    data: PreparedData
    source: Any
    noise: NoiseConfig
    seed: int
    device: str = "cpu"
    phase1_cache: dict[tuple, tuple[LNLResult, float]] = field(default_factory=dict)
    progress: Callable[[str], None] | None = None

    def settings(self, spec: PipelineSpec | None = None) -> RunSettings:
        """This run's settings with every override applied (``cfg.resolve``)."""
        return self.cfg.resolve(self.noise, spec)

    @property
    def active(self) -> ActiveConfig:
        return self.settings().active

    @property
    def budget(self) -> int:
        """Labels bought per round (a_l) for this noise setting."""
        return self.active.budget(int(self.data.train_idx.size))

    @property
    def tau(self) -> float:
        return self.settings().tau

    @property
    def in_dim(self) -> int | None:
        return getattr(self.source, "in_dim", None)

    def loop_settings(self) -> LoopSettings:
        """What the simulated loop's rounds use: this run's phase-2 and training settings,
        budget, seed and device."""
        return LoopSettings(active=self.active, lnl=self.cfg.lnl, budget=self.budget,
                            seed=self.seed, device=self.device)

    def new_model(self, offset: int = 0) -> Classifier:
        """A freshly initialised network (seeded by the run seed and ``offset``)."""
        return build_model(self.cfg.lnl, self.data.num_classes, self.in_dim,
                           seed=seeding.model_seed(self.seed, offset))

    def oracle(self) -> SimulatedOracle:
        return SimulatedOracle(self.data.true_labels, self.data.num_classes,
                               error_rate=self.active.oracle_error,
                               seed=seeding.oracle_seed(self.seed))

    def say(self, msg: str) -> None:
        if self.progress is not None:
            self.progress(msg)


def phase1(ctx: PipelineContext, method: str, mix: float) -> tuple[LNLResult, float, bool]:
    """Run (or reuse) phase 1 on the noisy training labels.

    Returns a private copy of the result, the seconds the computation took and whether it was
    reused from the context's cache. Callers get deep copies of the networks, so fine-tuning
    one pipeline cannot change another's starting point.
    """
    lnl = ctx.cfg.lnl.model_copy(update={"method": method, "mix": mix})
    key = phase1_identity(method, mix, ctx.tau, lnl.epochs)
    shared = key in ctx.phase1_cache
    if not shared:
        t0 = time.perf_counter()
        val, test = eval_sets(ctx.data)
        ctx.say(f"phase 1 ({method}, m={mix:g})")
        res = run_lnl(
            lnl, ctx.source, ctx.data.train_idx, ctx.data.given_labels,
            num_classes=ctx.data.num_classes, val=val, test=test, seed=ctx.seed, tau=ctx.tau,
            true_labels=ctx.data.true_labels, device=ctx.device,
            class_names=ctx.data.class_names,
        )
        ctx.phase1_cache[key] = (res, time.perf_counter() - t0)
    res, seconds = ctx.phase1_cache[key]
    private = dataclasses.replace(
        res,
        model=copy.deepcopy(res.model),
        peer=copy.deepcopy(res.peer) if res.peer is not None else None,
    )
    if ctx.active.protocol == "equal":  # continue from the weights round 0 reports
        val, _ = eval_sets(ctx.data)
        fit = continue_from_best(private.model, res.fit, ctx.source, ctx.data.train_idx,
                                 ctx.data.given_labels, val, device=ctx.device)
        private = dataclasses.replace(private, fit=fit)
    return private, seconds, shared


def phase1_record(ctx: PipelineContext, res: LNLResult, method: str, mix: float,
                  seconds: float, shared: bool = False) -> dict[str, Any]:
    """JSON-ready phase-1 diagnostics: clean-set size, precision/recall, per-class table."""
    d = ctx.data
    prec, rec = selection_precision_recall(res.clean_idx, d.train_idx, d.given_labels,
                                           d.true_labels)
    diag = res.diagnostics
    return {
        "method": method,
        "mix": float(mix),
        "tau": float(ctx.tau),
        "epochs": int(ctx.cfg.lnl.epochs),
        **fit_summary(res.fit),
        "n_clean": int(np.asarray(res.clean_idx).size),
        "n_suspect": int(np.asarray(res.suspect_idx).size),
        "selection_precision": prec,
        "selection_recall": rec,
        "diagnostics": _records(diag) if isinstance(diag, pd.DataFrame) else None,
        "seconds": seconds,
        "shared": shared,
        "history": [to_jsonable(h, nan="keep") for h in res.fit.history],
    }


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [to_jsonable(r, nan="keep") for r in df.to_dict(orient="records")]


def make_result(ctx: PipelineContext, spec: PipelineSpec, rounds: list[dict[str, Any]], *,
                phase1: dict[str, Any] | None = None, seconds: dict[str, float] | None = None,
                extra: dict[str, Any] | None = None) -> RunResult:
    """Assemble a run's JSON-serialisable result."""
    d = ctx.data
    leak = bool(ctx.active.oracle_leak) and spec.name == "ours"
    return {
        "pipeline": spec.name,
        "sampler": pipeline_sampler(spec),  # the ranking used, defaults included
        "label": spec.display + (" (oracle leak)" if leak else ""),
        "oracle_leak": leak,
        "noise": ctx.noise.tag,
        "noise_kind": ctx.noise.kind,
        "noise_rate": ctx.noise.rate,
        "seed": ctx.seed,
        "budget_per_round": ctx.budget,
        "rounds_planned": ctx.active.rounds,
        "n_train": int(d.train_idx.size),
        "n_val": int(d.val_idx.size),
        "n_test": int(d.test_idx.size),
        "n_noisy": int(np.sum(d.is_noisy[d.train_idx])),
        "class_names": list(d.class_names),
        "rounds": [to_jsonable(r, nan="keep") for r in rounds],
        "phase1": phase1,
        "timings": {k: float(v) for k, v in (seconds or {}).items()},
        **(extra or {}),
    }


def loop_extra(loop: LoopResult, data: PreparedData) -> dict[str, Any]:
    """Summary of phase 2's final state: labels still wrong in the training split."""
    tr = data.train_idx
    return {"final_wrong_labels": int(np.sum(loop.labels[tr] != data.true_labels[tr]))}
