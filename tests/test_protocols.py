"""Equal protocols (``active.protocol: equal``): every pipeline continues from the weights it
reports; alc_coteaching keeps its forget rate from a round's first epoch."""

from __future__ import annotations

import numpy as np
import pytest

from labelrefine.active.loop import evaluate
from labelrefine.config import PipelineSpec, parse_config
from labelrefine.data.dataset import ImageDataset
from labelrefine.data.prepare import prepare_data
from labelrefine.lnl import trainer as trainer_mod
from labelrefine.lnl.sources import FeatureSource
from labelrefine.pipelines import PipelineContext, run_pipeline
from labelrefine.pipelines.common import phase1

N, D, C = 300, 10, 3


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _context(protocol: str) -> PipelineContext:
    rng = np.random.default_rng(7)
    labels = rng.choice(C, size=N, p=[0.55, 0.3, 0.15]).astype(np.int64)
    plain = rng.normal(0.0, 1.2, size=(C, D))[labels] + rng.normal(size=(N, D))
    views = plain[None] + rng.normal(0.0, 0.3, size=(2, N, D))
    ds = ImageDataset(ids=tuple(f"i{i}" for i in range(N)), labels=labels,
                      class_names=("a", "b", "c"), images=np.zeros((N, 2, 2, 3), np.uint8))
    cfg = parse_config({
        "name": "p", "dataset": {"format": "medmnist", "npz": "unused.npz"},
        "noise": [{"kind": "symmetric", "rate": 0.4}],
        "lnl": {"epochs": 6, "warmup": 2, "batch_size": 64, "hidden": 16, "lr": 0.05},
        "active": {"rounds": 2, "budget_per_round": 15, "epochs_per_round": 3, "lr": 0.05,
                   "protocol": protocol},
    })
    data = prepare_data(ds, cfg.split, cfg.noise[0], None, 0)
    return PipelineContext(cfg=cfg, data=data, source=FeatureSource(views.astype(np.float16),
                           plain.astype(np.float16)), noise=cfg.noise[0], seed=0)


def test_phase2_starts_from_the_model_round0_reports():
    ctx = _context("equal")
    res, _, _ = phase1(ctx, "coteaching", 0.0)
    assert evaluate(res.model, ctx.source, ctx.data)["val_f1"] == pytest.approx(
        res.fit.best_val_f1)
    assert evaluate(res.model, ctx.source, ctx.data)["test_f1"] == pytest.approx(
        res.fit.test_f1)


def test_alc_rounds_keep_forget_rate_and_best_weights(monkeypatch):
    calls = []
    orig = trainer_mod.forget_rates

    def spy(tau, epochs, warmup=10, c=1.0):
        rates = orig(tau, epochs, warmup, c)
        calls.append(rates)
        return rates

    monkeypatch.setattr(trainer_mod, "forget_rates", spy)
    for protocol, first_rate_positive in (("original", False), ("equal", True)):
        calls.clear()
        run_pipeline(PipelineSpec(name="alc_coteaching"), _context(protocol))
        rounds = calls[1:]  # after phase 1
        assert len(rounds) == 2
        assert all((r[0] > 0) == first_rate_positive for r in rounds), (protocol, rounds)
