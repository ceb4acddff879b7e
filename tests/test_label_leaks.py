"""Leak spies: which labels does every training step of a pipeline actually train on?

Every training step draws a batch of items from the source and computes a cross-entropy
against their labels. The spies record, for each step, the items and the targets, plus every
oracle purchase. Rules: an item trains on its *given* label until it is bought, and on the
oracle's answer after that; never on ``true_labels`` (the simulated oracle errs here, so its
answers and the truth differ). The checks are made non-vacuous by requiring steps on noisy,
never-bought items and on bought items whose answer changed the label.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn.functional as F

from labelrefine.active.oracle import UNSURE, SimulatedOracle
from labelrefine.config import NoiseConfig, PipelineSpec, parse_config
from labelrefine.data.dataset import ImageDataset
from labelrefine.data.prepare import prepare_data
from labelrefine.lnl.sources import FeatureSource
from labelrefine.pipelines import PipelineContext, run_pipeline

N, D, C = 300, 10, 3
BUDGET, ROUNDS = 15, 2


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def world() -> tuple[ImageDataset, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    labels = rng.choice(C, size=N, p=[0.55, 0.3, 0.15]).astype(np.int64)
    plain = rng.normal(0.0, 1.6, size=(C, D))[labels] + rng.normal(size=(N, D))
    views = plain[None] + rng.normal(0.0, 0.3, size=(2, N, D))
    ds = ImageDataset(ids=tuple(f"i{i}" for i in range(N)), labels=labels,
                      class_names=("a", "b", "c"), images=np.zeros((N, 2, 2, 3), np.uint8))
    return ds, views.astype(np.float16), plain.astype(np.float16)


class Spy:
    """Records training steps ``(step, items, targets)`` and purchases
    ``(step, items, answers)``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, source: FeatureSource) -> None:
        self.steps: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.buys: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.last: np.ndarray | None = None
        self.clock = 0
        orig_batches = source.train_batches

        def train_batches(indices, batch_size, rng):
            for idx, x in orig_batches(indices, batch_size, rng):
                self.last = np.asarray(idx).copy()
                yield idx, x
            self.last = None

        ce = F.cross_entropy

        def cross_entropy(logits, target, *args, **kw):
            if self.last is not None and target.dim() == 1 and target.numel() == self.last.size:
                self.clock += 1
                self.steps.append((self.clock, self.last, target.detach().cpu().numpy().copy()))
            return ce(logits, target, *args, **kw)

        orig_query = SimulatedOracle.query

        def query(oracle, indices):
            answers = orig_query(oracle, indices)
            self.clock += 1
            self.buys.append((self.clock, np.asarray(indices).copy(), np.asarray(answers).copy()))
            return answers

        monkeypatch.setattr(source, "train_batches", train_batches)
        monkeypatch.setattr(F, "cross_entropy", cross_entropy)
        monkeypatch.setattr(SimulatedOracle, "query", query)

    def check(self, given: np.ndarray, true: np.ndarray) -> dict[str, int]:
        """Assert the rules; return counts of the non-vacuity witnesses."""
        bought_at: dict[int, tuple[int, int]] = {}
        for t, items, answers in self.buys:
            for i, a in zip(items.tolist(), answers.tolist(), strict=True):
                if a != UNSURE:
                    bought_at[i] = (t, a)
        noisy_unbought = relabel_used = 0
        for t, items, targets in self.steps:
            for i, y in zip(items.tolist(), targets.tolist(), strict=True):
                if i in bought_at and t > bought_at[i][0]:
                    answer = bought_at[i][1]
                    assert y == answer, f"item {i} trained on {y}, oracle answered {answer}"
                    relabel_used += int(answer != given[i])
                else:
                    assert y == given[i], f"item {i} trained on {y}, given label {given[i]}"
                    noisy_unbought += int(given[i] != true[i])
        return {"noisy_unbought": noisy_unbought, "relabel_used": relabel_used,
                "steps": len(self.steps),
                "answers_wrong": sum(int(np.sum(a != true[i])) for _, i, a in self.buys)}


def _context(world) -> PipelineContext:
    ds, views, plain = world
    cfg = parse_config({
        "name": "leak",
        "dataset": {"format": "medmnist", "npz": "unused.npz"},
        "noise": [{"kind": "symmetric", "rate": 0.4}],
        "lnl": {"epochs": 4, "warmup": 2, "batch_size": 64, "hidden": 16, "lr": 0.05,
                "mix": 0.5, "vog": {"window": 2}},
        "active": {"rounds": ROUNDS, "budget_per_round": BUDGET, "epochs_per_round": 2,
                   "lr": 0.05, "oracle_error": 0.3},
        "seeds": [0],
    })
    noise: NoiseConfig = cfg.noise[0]
    data = prepare_data(ds, cfg.split, noise, None, 0)
    return PipelineContext(cfg=cfg, data=data, source=FeatureSource(views, plain), noise=noise,
                           seed=0)


@pytest.mark.parametrize("spec", [
    PipelineSpec(name="ours", sampler="entropy"),
    PipelineSpec(name="alc_coteaching"),
    PipelineSpec(name="ce_al", sampler="random"),
    PipelineSpec(name="al_only", sampler="random"),
    PipelineSpec(name="ours_plus"),
    PipelineSpec(name="ours_plus", plus={"pool": "all", "train_on": "select"}, label="plus-sel"),
], ids=lambda s: s.display)
def test_pipeline_trains_on_given_labels_and_oracle_answers_only(world, monkeypatch, spec):
    ctx = _context(world)
    spy = Spy(monkeypatch, ctx.source)
    run_pipeline(spec, ctx)
    seen = spy.check(ctx.data.given_labels, ctx.data.true_labels)
    assert seen["steps"] > 0 and spy.buys
    assert seen["answers_wrong"] > 0  # the oracle errs: its answers are not the truth
    assert seen["relabel_used"] > 0, "no step trained on a label the oracle changed"
    if spec.name in ("ours", "alc_coteaching", "ours_plus"):
        assert seen["noisy_unbought"] > 0, "no step on a noisy, never-bought item"


def test_spy_catches_training_on_true_labels(world, monkeypatch):
    """A fit on ``true_labels`` (what a leak does) fails the spy's check; given labels pass."""
    from labelrefine.active.loop import eval_sets
    from labelrefine.lnl.trainer import fit_ce

    ctx = _context(world)
    spy = Spy(monkeypatch, ctx.source)
    d = ctx.data
    val, test = eval_sets(d)
    kw = dict(epochs=1, lr=0.05, batch_size=64, val=val, test=test, seed=0)
    fit_ce(ctx.new_model(), ctx.source, d.train_idx, d.given_labels, **kw)
    assert spy.check(d.given_labels, d.true_labels)["noisy_unbought"] > 0
    fit_ce(ctx.new_model(), ctx.source, d.train_idx, d.true_labels, **kw)
    with pytest.raises(AssertionError, match="trained on"):
        spy.check(d.given_labels, d.true_labels)
