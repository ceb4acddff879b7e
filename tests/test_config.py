"""Experiment config: defaults, YAML loading, and errors that name the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from labelrefine.config import ConfigError, ExperimentConfig, load_config, parse_config

DATASET = {"images": "data/ham10000/images", "labels": "data/ham10000/labels.csv"}


def test_defaults_fill_everything() -> None:
    cfg = parse_config({"dataset": DATASET})
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.dataset.format == "csv" and cfg.dataset.id_column == "image_id"
    assert (cfg.split.train, cfg.split.val, cfg.split.test) == (0.7, 0.1, 0.2)
    assert [n.tag for n in cfg.noise] == ["symmetric0.4"]
    assert cfg.longtail is None
    assert cfg.lnl.vog.window == 5 and cfg.lnl.vog.pass_ == "inline"
    assert cfg.seeds == [0]


@pytest.mark.parametrize(
    ("section", "key_in_message"),
    [
        ({"lnl": {"foo": 1}}, "lnl.foo"),
        ({"lnl": {"vog": {"window": 1}}}, "lnl.vog.window"),
        ({"lnl": {"vog": {"gradient": "all"}}}, "lnl.vog.gradient"),
        ({"lnl": {"method": "mixup"}}, "lnl.method"),
        ({"encoder": {"views": -1}}, "encoder.views"),
        ({"active": {"budget_per_round": 0}}, "active.budget_per_round"),
        ({"noise": [{"kind": "symmetric", "rate": 0.2}, {"rate": 2}]}, "noise.1.rate"),
        ({"noise": [{"kind": "matrix"}]}, "noise.0"),
        ({"split": {"train": 0.5}}, "split"),
        ({"longtail": {"ratio": 0.5}}, "longtail.ratio"),
        ({"pipelines": [{"name": "ours", "sampler": "best"}]}, "pipelines.0.sampler"),
        ({"seedz": [1]}, "seedz"),
    ],
)
def test_errors_name_the_key(section: dict, key_in_message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"dataset": DATASET, **section})
    assert str(err.value).startswith(key_in_message + ":") or f"; {key_in_message}:" in str(
        err.value
    ), str(err.value)


def test_dataset_source_rules() -> None:
    with pytest.raises(ConfigError, match="dataset: Field required"):
        parse_config({})
    with pytest.raises(ConfigError, match=r"dataset:.*'medmnist' needs 'npz'"):
        parse_config({"dataset": {"format": "medmnist"}})
    with pytest.raises(ConfigError, match=r"dataset:.*'csv' needs 'images' and 'labels'"):
        parse_config({"dataset": {"images": "x"}})
    with pytest.raises(ConfigError, match=r"dataset\.format"):
        parse_config({"dataset": {**DATASET, "format": "dicom"}})
    with pytest.raises(ConfigError, match="mapping"):
        parse_config([1, 2])  # type: ignore[arg-type]


def test_relative_paths_resolve_against_base_dir(tmp_path: Path) -> None:
    cfg = parse_config({"dataset": DATASET}, base_dir=tmp_path)
    assert cfg.dataset.images == tmp_path / "data/ham10000/images"
    cfg = parse_config({"dataset": {"format": "medmnist", "npz": "/abs/x.npz"}}, base_dir=tmp_path)
    assert cfg.dataset.npz == Path("/abs/x.npz")


def test_load_yaml(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(
        "name: tiny\n"
        "dataset:\n  images: data/ham10000/images\n  labels: data/ham10000/labels.csv\n"
        "noise:\n  - {kind: symmetric, rate: 0.5}\n  - {kind: none}\n"
        "longtail: {ratio: 100}\n"
        "lnl:\n  vog: {window: 3, pass: extra}\n"
        "seeds: [0, 1, 2]\n"
    )
    cfg = load_config(path)
    assert cfg.name == "tiny"
    assert [n.tag for n in cfg.noise] == ["symmetric0.5", "clean"]
    assert cfg.longtail is not None and cfg.longtail.ratio == 100
    assert cfg.lnl.vog.window == 3 and cfg.lnl.vog.pass_ == "extra"
    assert cfg.seeds == [0, 1, 2]
    assert cfg.active.budget(1000) == 22 and cfg.active.budget(10) == 1


def test_load_yaml_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("dataset:\n  images: a\n  labels: b\nlnl:\n  vog:\n    windw: 4\n")
    with pytest.raises(ConfigError, match=r"lnl\.vog\.windw: Extra inputs are not permitted"):
        load_config(wrong)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="dataset"):
        load_config(empty)


def test_ours_plus_samplers_come_from_the_registry() -> None:
    """PlusConfig takes every registered score sampler (no second list to keep in step) and
    refuses a set-picking one with the choices named."""
    from labelrefine.active.registry import REGISTRY, SCORE_SAMPLER_NAMES, ScoreSampler
    from labelrefine.config import PlusConfig

    assert set(SCORE_SAMPLER_NAMES) == {n for n, s in REGISTRY.items()
                                        if isinstance(s, ScoreSampler)}
    for name in SCORE_SAMPLER_NAMES:
        if "pool_features" in REGISTRY[name].needs:
            continue  # ours_plus scores its pool from probabilities only
        assert PlusConfig(sampler=name).sampler == name
    with pytest.raises(ValueError, match="'coreset' is not one of random, entropy"):
        PlusConfig(sampler="coreset")
    with pytest.raises(ValueError, match="'neighbours' is not one of random, entropy"):
        PlusConfig(sampler="neighbours")


def test_pipelines_that_fix_their_phase1_method_refuse_another() -> None:
    """ours / ours_plus / ours_find and campaigns train CT_VOG (Co-teaching with mix 0); a
    config naming another lnl.method is refused instead of silently ignored."""
    from labelrefine.config import ActiveConfig, LNLConfig, resolve_settings
    from labelrefine.experiments.sweep import expand_runs, phase1_group

    def method(**lnl: object) -> str:
        return resolve_settings(LNLConfig(**lnl), ActiveConfig(), noise_rate=0.2).phase1_method

    assert method() == "ct_vog" and method(mix=0.0) == "coteaching"
    assert method(method="coteaching", mix=0.0) == "coteaching"
    with pytest.raises(ConfigError, match="lnl.method: 'ce' is not what the pipelines ours, "):
        method(method="ce")
    with pytest.raises(ConfigError, match="lnl.method: 'coteaching'"):
        method(method="coteaching", mix=0.2)
    cfg = parse_config({"dataset": {"format": "medmnist", "npz": "x.npz"},
                        "lnl": {"method": "ce"},
                        "pipelines": [{"name": "alc_coteaching"}, {"name": "ours"}]})
    keys = expand_runs(cfg)
    assert phase1_group(cfg, keys[0])[:2] == ("coteaching", 0.0)  # ignores lnl.method
    with pytest.raises(ConfigError, match="lnl.method: 'ce'"):
        phase1_group(cfg, keys[1])
