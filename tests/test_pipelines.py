"""Pipelines and the phase-2 loop end to end on small generated features (fast)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import (
    TINY_BUDGET,
    TINY_C,
    TINY_D,
    TINY_N,
    TINY_ROUNDS,
    tiny_pipeline_config,
    tiny_pipeline_context,
    tiny_pipeline_world,
)
from labelrefine.active.loop import LoopSettings, active_loop, eval_sets
from labelrefine.active.oracle import SimulatedOracle
from labelrefine.config import NoiseConfig, PipelineSpec
from labelrefine.data.dataset import ImageDataset
from labelrefine.data.prepare import PreparedData, prepare_data
from labelrefine.lnl.sources import FeatureSource
from labelrefine.lnl.trainer import fit_ce
from labelrefine.pipelines import PIPELINES, PipelineContext, run_pipeline
from labelrefine.pipelines.alc_coteaching import remaining_noise_rate

N, D, C = TINY_N, TINY_D, TINY_C
BUDGET, ROUNDS = TINY_BUDGET, TINY_ROUNDS
_config, _context = tiny_pipeline_config, tiny_pipeline_context


@pytest.fixture(scope="module")
def world() -> tuple[ImageDataset, FeatureSource]:
    return tiny_pipeline_world(spread=1.6)


SPECS = [
    PipelineSpec(name="ours", sampler="random"),
    PipelineSpec(name="ours", sampler="entropy"),
    PipelineSpec(name="ours", sampler="coreset"),
    PipelineSpec(name="ours", sampler="margin", mix=0.0),
    PipelineSpec(name="al_only", sampler="entropy"),
    PipelineSpec(name="ce_al", sampler="random"),
    PipelineSpec(name="ce_al", sampler="joint", ce_al_train_on="all"),
    PipelineSpec(name="alc_coteaching"),
    PipelineSpec(name="clean"),
    PipelineSpec(name="noisy_ce"),
    PipelineSpec(name="ours_find"),
]


def _numbers(result: dict) -> list[tuple]:
    """The reproducible part of a result (everything but timings)."""
    return [(r["round"], r["labels_bought"], r["test_f1"], r["val_f1"], r["query_precision"],
             r["n_clean"]) for r in result["rounds"]]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.display + f"-{s.ce_al_train_on}")
def test_each_pipeline_runs(world, spec: PipelineSpec) -> None:
    ctx = _context(world)
    result = run_pipeline(spec, ctx)
    json.dumps(result)  # JSON-serialisable as it is
    rounds = result["rounds"]
    assert result["pipeline"] == spec.name and result["label"] == spec.display
    for r in rounds:
        assert 0.0 <= r["test_f1"] <= 1.0 and 0.0 <= r["val_f1"] <= 1.0
        assert len(r["test_recall"]) == C
    n_train = ctx.data.train_idx.size
    if spec.name == "clean":
        assert [r["labels_bought"] for r in rounds] == [n_train]
        return
    if spec.name == "noisy_ce":
        assert [r["labels_bought"] for r in rounds] == [0]
        assert result["phase1"]["method"] == "ce"
        return
    first = 1 if spec.name == "al_only" else 0
    assert [r["round"] for r in rounds] == list(range(first, ROUNDS + 1))
    assert [r["labels_bought"] for r in rounds] == [BUDGET * r for r in range(first, ROUNDS + 1)]
    for r in rounds:
        if r["round"] > 0:
            assert r["n_queried"] == BUDGET and 0.0 <= r["query_precision"] <= 1.0
            assert r["oracle_wrong"] == 0
    if spec.name == "ours":
        p1 = result["phase1"]
        assert p1["method"] == ("coteaching" if spec.mix == 0 else "ct_vog")
        assert rounds[0]["n_clean"] == p1["n_clean"]
        assert rounds[-1]["n_clean"] == p1["n_clean"] + ROUNDS * BUDGET
        assert {d["class"] for d in p1["diagnostics"]} == {"a", "b", "c"}
    if spec.name in ("al_only", "alc_coteaching") or (
            spec.name == "ce_al" and spec.ce_al_train_on == "relabeled"):
        assert rounds[-1]["n_clean"] == ROUNDS * BUDGET  # trained-on clean set = bought labels
    if spec.name == "ce_al" and spec.ce_al_train_on == "all":
        assert rounds[-1]["n_clean"] == n_train


def test_same_seed_same_numbers_and_shared_phase1(world) -> None:
    spec = PipelineSpec(name="ours", sampler="entropy")
    a = run_pipeline(spec, _context(world, seed=3))
    b = run_pipeline(spec, _context(world, seed=3))
    assert _numbers(a) == _numbers(b)
    assert a["phase1"]["n_clean"] == b["phase1"]["n_clean"]
    # Reusing the cached phase 1 (after another pipeline fine-tuned its copy) changes nothing.
    shared = _context(world, seed=3)
    run_pipeline(PipelineSpec(name="ours", sampler="random"), shared)
    c = run_pipeline(spec, shared)
    assert c["phase1"]["shared"] is True and a["phase1"]["shared"] is False
    assert _numbers(c) == _numbers(a)
    other = run_pipeline(spec, _context(world, seed=4))
    assert _numbers(other) != _numbers(a)


def _loop_setup(world):
    ctx = _context(world)
    d: PreparedData = ctx.data
    model = ctx.new_model()
    val, test = eval_sets(d)
    fit_ce(model, ctx.source, d.train_idx, d.given_labels, epochs=2, lr=0.05, batch_size=64,
           val=val, test=test, seed=0)
    noisy = d.train_idx[d.is_noisy[d.train_idx]]
    clean = np.concatenate([d.train_idx[~d.is_noisy[d.train_idx]][:100], noisy[:20]])
    pool = np.setdiff1d(d.train_idx, clean)
    return ctx, model, clean, pool


def _settings(ctx, budget: int) -> LoopSettings:
    return LoopSettings(active=ctx.active, lnl=ctx.cfg.lnl, budget=budget, seed=0)


@pytest.mark.parametrize("leak", [False, True])
def test_clean_set_keeps_given_labels_unless_leak(world, leak: bool) -> None:
    ctx, model, clean, pool = _loop_setup(world)
    d = ctx.data
    loop = active_loop(model, ctx.source, d, trusted=clean, pool_idx=pool, sampler="entropy",
                       oracle=ctx.oracle(), settings=_settings(ctx, BUDGET), oracle_leak=leak)
    bought = np.concatenate(loop.queried)
    assert np.unique(bought).size == bought.size == ROUNDS * BUDGET
    assert np.isin(bought, pool).all()
    assert np.array_equal(loop.labels[bought], d.true_labels[bought])  # perfect oracle
    expected = d.true_labels[clean] if leak else d.given_labels[clean]
    assert np.array_equal(loop.labels[clean], expected)
    assert (loop.labels[clean] != d.true_labels[clean]).any() != leak  # 20 noisy kept w/o leak
    untouched = np.setdiff1d(pool, bought)
    assert np.array_equal(loop.labels[untouched], d.given_labels[untouched])
    assert np.array_equal(loop.trusted, np.union1d(clean, bought))
    assert np.array_equal(d.given_labels, prepare_data(world[0], ctx.cfg.split, ctx.noise, None,
                                                       0).given_labels)  # input not modified


def test_loop_handles_small_pool_unsure_answers_and_bad_input(world) -> None:
    ctx, model, clean, pool = _loop_setup(world)
    d = ctx.data
    small = pool[:BUDGET + 5]
    oracle = SimulatedOracle(d.true_labels, C, seed=0, unsure_rate=0.3)
    loop = active_loop(model, ctx.source, d, trusted=clean, pool_idx=small, sampler="random",
                       oracle=oracle, settings=_settings(ctx, BUDGET))
    assert [r["n_queried"] for r in loop.records[1:]] == [BUDGET, 5]
    unsure = sum(r["n_unsure"] for r in loop.records[1:])
    assert unsure > 0
    assert loop.trusted.size == clean.size + small.size - unsure
    with pytest.raises(ValueError, match="model_factory"):
        active_loop(None, ctx.source, d, trusted=clean, pool_idx=pool, sampler="random",
                    oracle=oracle, settings=_settings(ctx, BUDGET))
    with pytest.raises(ValueError, match="budget must be >= 1, got 0"):
        _settings(ctx, 0)


def test_budget_fraction_and_noise_overrides(world) -> None:
    ds, source = world
    cfg = _config(budget_per_round=0.05)
    noise = NoiseConfig(kind="symmetric", rate=0.4, budget_per_round=7)
    data = prepare_data(ds, cfg.split, noise, None, 0)
    assert PipelineContext(cfg=cfg, data=data, source=source, noise=noise, seed=0).budget == 7
    ctx = PipelineContext(cfg=cfg, data=data, source=source, noise=cfg.noise[0], seed=0)
    assert ctx.budget == round(0.05 * data.train_idx.size)


def test_registry_and_unknown_pipeline(world) -> None:
    assert set(PIPELINES) == {"ours", "al_only", "ce_al", "alc_coteaching", "clean", "noisy_ce",
                              "cleanlab_prune", "cleanlab_relabel", "ours_plus", "ours_find"}
    with pytest.raises(ValueError, match="unknown pipeline"):
        run_pipeline(PipelineSpec.model_construct(name="nope", sampler=None), _context(world))


def test_remaining_noise_rate() -> None:
    given = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    labels = given.copy()
    train = np.arange(10)
    assert remaining_noise_rate(0.4, labels, given, train) == pytest.approx(0.4)
    labels[[0, 1]] = [1, 2]  # two relabels changed the label
    assert remaining_noise_rate(0.4, labels, given, train) == pytest.approx(0.2)
    labels[2:6] = [1, 2, 1, 0]
    assert remaining_noise_rate(0.4, labels, given, train) == 0.0


def test_ours_find_queries_the_whole_training_set_and_audits(world) -> None:
    """The finding twin: every round queries from all unasked training items (phase 1's clean
    set included), one audit pick per round at the default 10 % share of a small budget, an
    estimate of the wrong labels left whose interval holds the truth here, and the same
    numbers for the same seed."""
    from labelrefine.config import FindConfig

    spec = PipelineSpec(name="ours_find")
    ctx = _context(world, seed=2)
    result = run_pipeline(spec, ctx)
    again = run_pipeline(spec, _context(world, seed=2))
    assert _numbers(result) == _numbers(again)
    rounds = result["rounds"][1:]
    assert all(r["n_audit"] == 1 and r["n_queried"] == BUDGET for r in rounds)
    for r in rounds:
        est = r["estimate_left"]
        assert est is not None and est["low"] <= est["estimate"] <= est["high"]
    assert result["find"] == FindConfig().model_dump(mode="json")
    fixed = sum(r["n_changed"] for r in rounds)
    assert result["fixed"] == fixed
    assert result["final_wrong_labels"] == result["n_noisy"] - fixed
    # finding beats the base rate of wrong labels on separable data
    base = result["n_noisy"] / ctx.data.train_idx.size
    assert fixed / sum(r["n_queried"] for r in rounds) > base
    with pytest.raises(ValueError, match="applies to pipeline ours_find"):
        PipelineSpec(name="ours", find=FindConfig())


def test_find_defaults_are_the_finders() -> None:
    """One set of finder defaults: the config's equal the library's."""
    from labelrefine.active import audit, finding
    from labelrefine.config import FindConfig

    f = FindConfig()
    assert (f.weight, f.c, f.dims, f.folds, f.neighbours, f.audit_share, f.info_share) == (
        finding.NEIGHBOUR_WEIGHT, finding.C_REG, finding.DIMS, finding.FOLDS,
        finding.NEIGHBOURS, audit.AUDIT_SHARE, audit.INFO_SHARE)


def test_trusted_labels_are_spared_by_the_noise_and_never_queried(world) -> None:
    """``noise.spare_trusted`` leaves trusted labels right; ``ours_find`` never queries them,
    trains on them and estimates only the others; ``use_trusted: false`` ignores the mask."""
    import dataclasses

    from labelrefine.config import FindConfig, NoiseConfig
    from labelrefine.data.dataset import DataError
    from labelrefine.data.prepare import prepare_data
    from labelrefine.pipelines import PipelineContext

    ds, source = world
    mask = np.zeros(len(ds), dtype=bool)
    mask[::3] = True
    ds_t = dataclasses.replace(ds, trusted=mask)
    ctx0 = _context(world)
    noise = NoiseConfig(kind="symmetric", rate=0.4, spare_trusted=True)
    data = prepare_data(ds_t, ctx0.cfg.split, noise, None, 0)
    tr = data.train_idx
    noisy = data.given_labels[tr] != data.true_labels[tr]
    assert not noisy[mask[tr]].any() and noisy[~mask[tr]].mean() == pytest.approx(0.4, abs=0.02)
    with pytest.raises(DataError, match="spare_trusted needs dataset.trusted"):
        prepare_data(ds, ctx0.cfg.split, noise, None, 0)
    assert noise.tag == "symmetric0.4-untrusted" and NoiseConfig().tag == "symmetric0.4"

    queried: dict[bool, set[int]] = {}
    for use in (True, False):
        asked: list[int] = []
        ctx = PipelineContext(cfg=ctx0.cfg, data=data, source=source, noise=noise, seed=0)
        real = ctx.oracle

        def oracle(real=real, asked=asked):  # noqa: ANN001, ANN202
            o = real()
            query = o.query

            def spy(items):  # noqa: ANN001, ANN202
                asked.extend(int(i) for i in np.asarray(items))
                return query(items)

            o.query = spy
            return o

        ctx.oracle = oracle  # type: ignore[method-assign]
        res = run_pipeline(PipelineSpec(name="ours_find", find=FindConfig(use_trusted=use)), ctx)
        queried[use] = set(asked)
        assert res["n_trusted"] == (int(mask[tr].sum()) if use else 0)
    assert not queried[True] & set(data.trusted_train)


def test_results_record_the_ranking_used_and_ignored_samplers_are_refused(world) -> None:
    """``ours_plus`` ranks with ``plus.sampler`` and records it; a ``sampler`` that a pipeline
    would ignore fails before any work, in a run and in a sweep's expansion."""
    from labelrefine.config import ConfigError, PlusConfig
    from labelrefine.experiments.sweep import expand_runs
    from labelrefine.settings import pipeline_sampler

    plus = PipelineSpec(name="ours_plus", plus=PlusConfig(sampler="margin"))
    res = run_pipeline(plus, _context(world))
    assert res["sampler"] == "margin"
    assert run_pipeline(PipelineSpec(name="alc_coteaching"), _context(world))["sampler"] == "joint"
    assert pipeline_sampler(PipelineSpec(name="ours")) == "entropy"
    assert pipeline_sampler(PipelineSpec(name="alc_coteaching")) == "joint"
    assert pipeline_sampler(PipelineSpec(name="clean")) is None
    for name, says in (("ours_plus", "set plus.sampler"), ("cleanlab_relabel", "ranks with"),
                       ("clean", "queries nothing")):
        bad = PipelineSpec(name=name, sampler="coreset")
        with pytest.raises(ValueError, match=f"pipeline {name}: 'sampler: coreset'.*{says}"):
            run_pipeline(bad, _context(world))
        cfg = _config().model_copy(update={"pipelines": [bad]})
        with pytest.raises(ConfigError, match=f"pipelines: pipeline {name}"):
            expand_runs(cfg)


def test_the_sweep_groups_runs_by_the_phase1_the_pipelines_cache(world) -> None:
    """One identity of a shared phase 1: the sweep's grouping key is the key the pipelines'
    phase-1 cache stores (method, mix, tau, epochs)."""
    from labelrefine.experiments.sweep import RunKey, phase1_group

    for spec in (PipelineSpec(name="ours", sampler="random"), PipelineSpec(name="ce_al"),
                 PipelineSpec(name="ours", mix=0.0), PipelineSpec(name="alc_coteaching")):
        ctx = _context(world)
        run_pipeline(spec, ctx)
        assert list(ctx.phase1_cache) == [
            phase1_group(ctx.cfg, RunKey(0, ctx.noise, spec, ctx.seed))], spec.display
