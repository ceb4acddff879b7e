"""The shared round, named seeds, the sampler registry, settings resolution and package layering."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from labelrefine import seeding
from labelrefine.active.oracle import UNSURE
from labelrefine.active.registry import (
    INPUTS,
    REGISTRY,
    SAMPLER_NAMES,
    PoolView,
    ScoreSampler,
    get_sampler,
)
from labelrefine.active.round import propose
from labelrefine.active.samplers import SAMPLERS, ranked
from labelrefine.active.state import CleaningState
from labelrefine.config import (
    ConfigError,
    NoiseConfig,
    PipelineSpec,
    parse_config,
    resolve_settings,
)

SRC = Path(__file__).resolve().parents[1] / "src" / "labelrefine"


# ----------------------------------------------------------------------------- seeds


def test_named_seeds_are_the_documented_formulas() -> None:
    assert seeding.model_seed(3, 2) == 101 * 3 + 2
    assert seeding.round_seed(3, 4) == 1009 * 3 + 4
    assert seeding.sampler_seed(3, 4) == 7919 * 3 + 4
    assert seeding.oracle_seed(7) == 7
    # campaign step t draws the queue bought in simulated round t + 1
    assert seeding.sampler_seed(5, seeding.queue_round(0)) == seeding.sampler_seed(5, 1)
    with pytest.raises(ValueError, match="round"):
        seeding.round_seed(1, 1.5)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- registry


def test_registry_is_the_one_list_of_samplers() -> None:
    from labelrefine.campaign.step import SAMPLERS as CAMPAIGN_SAMPLERS
    from labelrefine.cli.campaign import Sampler

    assert SAMPLERS == SAMPLER_NAMES == CAMPAIGN_SAMPLERS
    assert {s.value for s in Sampler} == set(SAMPLER_NAMES)
    assert "confidence" in SAMPLER_NAMES
    for name, spec in REGISTRY.items():
        assert spec.name == name and set(spec.needs) <= set(INPUTS)
        assert spec.summary and (isinstance(spec, ScoreSampler) or name == "coreset")
    with pytest.raises(ValueError, match="choose one of random, entropy"):
        get_sampler("best")


def test_config_accepts_every_registered_sampler_and_names_a_bad_one() -> None:
    base = {"dataset": {"format": "medmnist", "npz": "x.npz"}}
    for name in SAMPLER_NAMES:
        cfg = parse_config({**base, "pipelines": [{"name": "ours", "sampler": name}]})
        assert cfg.pipelines[0].sampler == name
    with pytest.raises(ConfigError, match=r"pipelines\.0\.sampler: unknown sampler 'best'"):
        parse_config({**base, "pipelines": [{"name": "ours", "sampler": "best"}]})


def _probs(n: int, c: int, seed: int) -> np.ndarray:
    z = np.random.default_rng(seed).normal(size=(n, c))
    return np.exp(z) / np.exp(z).sum(1, keepdims=True)


@pytest.mark.parametrize(
    "name", [n for n in SAMPLER_NAMES if isinstance(REGISTRY[n], ScoreSampler)])
def test_score_samplers_rank_by_their_registered_score(name: str) -> None:
    pool = np.array([9, 2, 7, 4, 11, 5])
    probs, given = _probs(6, 3, 0), np.array([0, 1, 2, 0, 1, 2])
    order = np.argsort(pool, kind="stable")
    feats = np.random.default_rng(1).normal(size=(6, 4))
    r = ranked(name, 4, pool=pool, probs=probs, given_labels=given, pool_features=feats, seed=3,
               class_names="abc")
    sampler = REGISTRY[name]
    assert isinstance(sampler, ScoreSampler)
    scores = sampler.score(PoolView(pool[order], probs[order], given[order], feats[order], seed=3))
    top = pool[order][np.argsort(-scores, kind="stable")[:4]]
    np.testing.assert_array_equal(r.items, top)
    assert len(r.reasons) == 4 and all(r.reasons)


# ----------------------------------------------------------------------------- round


class _Model:
    """Stands in for a network: ``predict`` is monkeypatched to read fixed outputs."""


def test_propose_and_apply_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    import labelrefine.active.round as round_mod

    n, c = 20, 3
    probs, emb = _probs(n, c, 1), np.random.default_rng(2).normal(size=(n, 4))
    calls: list[np.ndarray] = []

    def predict(model, source, idx, device="cpu"):  # noqa: ANN001, ANN202
        calls.append(np.asarray(idx))
        return probs[idx], emb[idx]

    monkeypatch.setattr(round_mod, "predict", predict)
    labels = np.arange(n) % c
    pool, trusted = np.arange(10, 20), np.arange(0, 10)
    for name in ("confidence", "coreset", "random", "neighbours"):
        calls.clear()
        got = propose(_Model(), None, pool=pool, trusted=trusted, labels=labels, sampler=name,
                      k=4, seed=5, rnd=2)
        needs = REGISTRY[name].needs
        inputs = {}
        if needs:
            inputs = {"probs": probs[pool], "given_labels": labels[pool]}
        if "pool_features" in needs:
            inputs |= {"pool_features": emb[pool], "center_features": emb[trusted]}
        want = ranked(name, 4, pool=pool, seed=seeding.sampler_seed(5, 2), **inputs)
        np.testing.assert_array_equal(got.items, want.items)
        assert len(calls) == (0 if not needs else 2 if "pool_features" in needs else 1)
    assert propose(None, None, pool=pool, trusted=trusted, labels=labels, sampler="entropy",
                   k=3, seed=5, rnd=1).items.size == 3  # no model yet: random

    picked = np.array([12, 15, 17])
    before = CleaningState.start(labels, pool=pool, trusted=trusted)
    state, step = before.apply(picked, np.array([2, UNSURE, labels[17]]))
    assert state.labels[12] == 2 and state.labels[15] == labels[15] and labels[12] == 0
    assert before.labels[12] == 0  # the old state is unchanged
    assert step.n_changed == 1 and step.sure.tolist() == [True, False, True]
    assert not set(picked) & set(state.pool) and {12, 17} <= set(state.trusted)
    assert 15 not in state.trusted and state.answered.tolist() == [12, 17]
    with pytest.raises(ValueError, match="2 answers for 3"):
        before.apply(picked, np.array([1, 2]))


# ----------------------------------------------------------------------------- settings


def test_resolve_applies_the_precedence_rules() -> None:
    cfg = parse_config({"dataset": {"format": "medmnist", "npz": "x.npz"},
                        "lnl": {"mix": 0.2}, "active": {"budget_per_round": 8},
                        "noise": [{"rate": 0.3, "mix": 0.5, "budget_per_round": 10},
                                  {"rate": 0.2}]})
    a = cfg.resolve(cfg.noise[0])
    assert (a.mix, a.active.budget_per_round, a.tau, a.phase1_method) == (0.5, 10, 0.3, "ct_vog")
    b = cfg.resolve(cfg.noise[1], PipelineSpec(name="ours", mix=0.0))
    assert (b.mix, b.active.budget_per_round, b.tau, b.phase1_method) == (0.0, 8, 0.2,
                                                                           "coteaching")
    fixed = resolve_settings(cfg.lnl.model_copy(update={"tau": 0.1}), cfg.active,
                             NoiseConfig(rate=0.4))
    assert fixed.tau == 0.1
    assert resolve_settings(cfg.lnl, cfg.active, None, noise_rate=0.25).tau == 0.25


def test_unsupported_lnl_combination_fails_when_the_config_loads(tmp_path: Path) -> None:
    bad = {"name": "bad", "dataset": {"format": "medmnist", "npz": str(tmp_path / "x.npz")},
           "lnl": {"head": "linear", "vog": {"gradient": "input_features"}},
           "output_dir": str(tmp_path / "runs")}
    with pytest.raises(ConfigError, match=r"lnl\.vog\.gradient: 'input_features' needs"):
        parse_config(bad)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    from labelrefine.cli import app

    res = CliRunner().invoke(app, ["run", str(path)])
    assert res.exit_code == 2 and "lnl.vog.gradient" in res.output
    assert not (tmp_path / "runs").exists()


# ----------------------------------------------------------------------------- campaign + CLI


def test_confidence_sampler_from_the_campaign_cli(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """``campaign step --sampler confidence`` queues suspects with confidence reasons."""
    import labelrefine.models.cache as cache
    from labelrefine.cli import app
    from labelrefine.models.cache import FeatureSet

    rng = np.random.default_rng(0)
    n, classes = 30, ("a", "b", "c")
    true = np.arange(n) % 3
    given = true.copy()
    given[:5] = (true[:5] + 1) % 3
    images = tmp_path / "images"
    images.mkdir()
    for i in range(n):
        Image.new("RGB", (8, 8), (40 * (i % 6), 0, 0)).save(images / f"im{i:02d}.jpg")
    csv = tmp_path / "labels.csv"
    pd.DataFrame({"image_id": [f"im{i:02d}" for i in range(n)],
                  "dx": [classes[g] for g in given]}).to_csv(csv, index=False)
    centers = rng.normal(0, 2, size=(3, 6))
    plain = (centers[true] + rng.normal(0, 0.5, size=(n, 6))).astype(np.float16)

    def embed_dataset(dataset, cfg, *args, **kwargs):  # noqa: ANN001, ANN202
        return FeatureSet(views=plain[None], plain=plain, ids=tuple(dataset.ids), key="fake")

    monkeypatch.setattr(cache, "embed_dataset", embed_dataset)
    cfg = tmp_path / "train.yaml"
    cfg.write_text(f"dataset: {{format: csv, images: {images}, labels: {csv}}}\n"
                   "lnl: {epochs: 3, warmup: 1, batch_size: 8, hidden: 8, vog: {window: 2}}\n"
                   "active: {epochs_per_round: 1, budget_per_round: 3,"
                   " guard_fallback: false}\n")  # the sampler's own queue
    db = tmp_path / "c.db"
    runner = CliRunner()
    res = runner.invoke(app, ["campaign", "init", "--images", str(images), "--labels", str(csv),
                              "--out", str(db), "--val-fraction", "0.2"])
    assert res.exit_code == 0, res.output
    bad = tmp_path / "ce.yaml"  # a campaign trains CT_VOG: it refuses another lnl.method
    bad.write_text(cfg.read_text().replace("lnl: {", "lnl: {method: ce, "))
    res = runner.invoke(app, ["campaign", "step", str(db), "--config", str(bad), "--sampler",
                              "confidence", "--device", "cpu", "--strategy", "paper"])
    assert res.exit_code == 2 and "lnl.method: 'ce'" in " ".join(res.output.split()), res.output
    res = runner.invoke(app, ["campaign", "step", str(db), "--config", str(cfg), "--sampler",
                              "confidence", "--device", "cpu", "--strategy", "paper"])
    assert res.exit_code == 0, res.output
    from labelrefine.campaign.ledger import Ledger

    ledger = Ledger(db)
    q = ledger.queue()
    assert len(q) == 3 and ledger.rounds()["sampler"].iloc[0] == "confidence"
    assert all(("the given" in r) for r in q["reason"])
    res = runner.invoke(app, ["campaign", "step", str(db), "--sampler", "best"])
    assert res.exit_code == 2


# ----------------------------------------------------------------------------- layering

#: cli -> experiments / campaign / web -> pipelines -> active / settings -> lnl -> models -> data
#: -> config (config, extensions, seeding, runtime, io, validation and metrics are the base
#: layer). The config finds the registries through ``labelrefine.extensions``, which the
#: registries offer their lookups to; ``labelrefine/__init__.py`` (no layer) wires them.
LAYER = {"config": 0, "extensions": 0, "seeding": 0, "runtime": 0, "io": 0, "validation": 0,
         "metrics": 0, "data": 1, "models": 2, "lnl": 3, "active": 4, "settings": 4, "pipelines": 5,
         "experiments": 6, "campaign": 6, "web": 6, "cli": 7}


def test_no_package_imports_a_package_above_it() -> None:
    upward = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        layer = LAYER.get(rel.parts[0].removesuffix(".py"))
        if layer is None:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                     [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                parts = name.split(".")
                if (parts[0] == "labelrefine" and len(parts) > 1
                        and LAYER.get(parts[1].removesuffix(".py"), -1) > layer):
                    upward.append(f"{rel}:{node.lineno} imports {name}")
    assert not upward, "\n".join(upward)


def test_propose_passes_the_device_to_the_sampler(monkeypatch) -> None:
    """Coreset runs where the round runs: ``propose`` hands its device to ``ranked``."""
    import labelrefine.active.round as round_mod

    seen = {}

    def spy(name, k, **kwargs):  # noqa: ANN001, ANN202
        seen["device"] = kwargs.get("device")
        return real(name, k, **kwargs)

    real = round_mod.ranked
    monkeypatch.setattr(round_mod, "ranked", spy)
    round_mod.propose(None, None, pool=np.arange(5), trusted=np.zeros(0, np.int64),
                      labels=np.zeros(5, np.int64), sampler="random", k=2, seed=0, rnd=1,
                      device="meta")
    assert seen["device"] == "meta"


def test_cross_validation_seeds_come_from_seeding() -> None:
    """The cleanlab peers' fold split, fold networks and training seeds are named in
    ``seeding`` (same numbers as before they were) and used from there."""
    from labelrefine import seeding

    assert seeding.cv_split_seed(3, 2) == (3 * 7919 + 2) % 2**32
    assert seeding.cv_model_offset(2, 4) == 10_000 + 100 * 2 + 4
    assert seeding.cv_train_seed(3, 2, 4) == 3 * 1013 + 100 * 2 + 4
    with pytest.raises(ValueError, match="fold must be an integer"):
        seeding.cv_model_offset(1, 0.5)


def _imported_modules(path: Path, name: str) -> set[str]:
    """The ``labelrefine`` modules ``path`` (module ``name``) imports anywhere in its text,
    type-only and function-level imports included (a submodule named in ``from pkg import
    mod`` counts as that module)."""
    def module_of(dotted: str) -> str | None:
        rel = Path(*dotted.split(".")[1:])
        if (SRC / rel).with_suffix(".py").exists() or (SRC / rel / "__init__.py").exists():
            return dotted
        return None

    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("labelrefine.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == "labelrefine":
            for alias in node.names:
                sub = module_of(f"{node.module}.{alias.name}")
                out.add(sub or node.module)
    return {m for m in out if module_of(m) and m != name}


def test_no_two_modules_import_each_other_even_through_others() -> None:
    """No import cycle among the package's modules (the package root, which wires the
    registries to ``labelrefine.extensions``, is left out)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        if not parts:
            continue
        name = ".".join(("labelrefine", *parts))
        graph[name] = _imported_modules(path, name) - {"labelrefine"}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)
