"""Sweep runner: expansion, stored results, resume without retraining, failures, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import labelrefine.experiments.runner as runner
import labelrefine.pipelines as pipelines
from labelrefine.cli import app
from labelrefine.config import ConfigError, load_config, parse_config
from labelrefine.experiments.runner import group_runs, run_sweep
from labelrefine.experiments.sweep import expand_runs, run_fingerprint, run_path, sweep_dir
from labelrefine.lnl.sources import FeatureSource

N, C = 240, 3


def _npz(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    labels = rng.choice(C, size=N, p=[0.6, 0.25, 0.15]).astype(np.uint8)
    images = (rng.integers(0, 40, size=(N, 8, 8, 3)) + 70 * labels[:, None, None, None])
    path = tmp_path / "tiny.npz"
    np.savez(path, train_images=images.astype(np.uint8), train_labels=labels.reshape(N, 1))
    return path


def _cfg_dict(tmp_path: Path) -> dict:
    return {
        "name": "sweep",
        "dataset": {"format": "medmnist", "npz": str(_npz(tmp_path)), "npz_split": "train"},
        "noise": [{"kind": "symmetric", "rate": 0.3}],
        "encoder": {"image_size": 16, "views": 1, "batch_size": 64,
                    "cache_dir": str(tmp_path / "cache")},
        "lnl": {"epochs": 4, "warmup": 2, "batch_size": 64, "hidden": 16, "lr": 0.05,
                "vog": {"window": 2}},
        "active": {"rounds": 2, "budget_per_round": 8, "epochs_per_round": 2},
        "pipelines": [{"name": "ours", "sampler": "entropy"}, {"name": "ours", "sampler": "random"},
                      {"name": "clean"}, {"name": "noisy_ce"}],
        "seeds": [0, 1],
        "output_dir": str(tmp_path / "runs"),
        "device": "cpu",
    }


@pytest.fixture
def fake_features(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip the encoder: class-clustered features derived from the dataset's labels."""

    def load_source(cfg, dataset, device, *, progress=False):
        rng = np.random.default_rng(0)
        centers = rng.normal(0, 1.5, size=(dataset.num_classes, 8))
        plain = centers[dataset.labels] + rng.normal(0, 1.0, size=(len(dataset), 8))
        views = plain[None] + rng.normal(0, 0.3, size=(2, len(dataset), 8))
        return FeatureSource(views.astype(np.float16), plain.astype(np.float16))

    monkeypatch.setattr(runner, "load_source", load_source)


def _files(cfg) -> dict[str, float]:
    return {p.name: p.stat().st_mtime_ns for p in (sweep_dir(cfg) / "runs").glob("*.json")}


def test_expand_and_group(tmp_path: Path) -> None:
    cfg = parse_config(_cfg_dict(tmp_path))
    keys = expand_runs(cfg)
    assert len(keys) == 8 and len({k.name for k in keys}) == 8
    assert keys[0].name == "symmetric0.3__ours+entropy__seed0"
    assert [k.seed for k in expand_runs(cfg, seeds=[5])] == [5] * 4
    assert {k.spec.name for k in expand_runs(cfg, only=["ours"])} == {"ours"}
    assert [k.spec.display for k in expand_runs(cfg, only=["ours+random"])] == ["ours+random"] * 2
    with pytest.raises(ConfigError, match="--only nope"):
        expand_runs(cfg, only=["nope"])
    dup = _cfg_dict(tmp_path)
    dup["pipelines"] = [{"name": "clean"}, {"name": "clean"}]
    with pytest.raises(ConfigError, match="distinct 'label'"):
        expand_runs(parse_config(dup))
    # ours+entropy and ours+random share phase 1: one group per seed; clean, noisy_ce alone.
    groups = group_runs(cfg, keys)
    assert sorted(len(g) for g in groups) == [1, 1, 1, 1, 2, 2]
    assert all(len({k.seed for k in g}) == 1 for g in groups)


def test_sweep_stores_runs_and_resumes_without_training(tmp_path: Path, fake_features,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = parse_config(_cfg_dict(tmp_path))
    events: list[dict] = []
    summary = run_sweep(cfg, workers=1, on_event=events.append)
    assert not summary.failed and len(summary.finished) == 8 and not summary.skipped
    out = sweep_dir(cfg)
    assert load_config(out / "config.yaml").model_dump() == cfg.model_dump()
    for key in expand_runs(cfg):
        data = json.loads(run_path(out, key).read_text())
        assert data["fingerprint"] == run_fingerprint(cfg, key)
        assert data["key"] == key.name and data["seed"] == key.seed
    assert not list((out / "runs").glob(".*tmp"))  # no temporary files left behind
    before = _files(cfg)

    calls: list[str] = []
    real = pipelines.run_pipeline

    def counting(spec, ctx):
        calls.append(spec.display)
        return real(spec, ctx)

    monkeypatch.setattr(pipelines, "run_pipeline", counting)
    again = run_sweep(cfg, workers=1)
    assert calls == [] and len(again.skipped) == 8 and not again.finished
    assert _files(cfg) == before  # nothing rewritten

    # An interrupted sweep: one result missing -> only that run is redone.
    missing = run_path(out, expand_runs(cfg)[1])
    missing.unlink()
    third = run_sweep(cfg, workers=1)
    assert calls == ["ours+random"] and third.finished == [missing.stem]
    assert missing.is_file()


def test_changed_settings_rerun_and_seed_determinism(tmp_path: Path, fake_features) -> None:
    cfg = parse_config(_cfg_dict(tmp_path))
    run_sweep(cfg, workers=1, only=["ours+entropy"])
    key = expand_runs(cfg, only=["ours+entropy"])[0]
    first = json.loads(run_path(sweep_dir(cfg), key).read_text())
    changed = _cfg_dict(tmp_path)
    changed["active"]["epochs_per_round"] = 3
    cfg2 = parse_config(changed)
    summary = run_sweep(cfg2, workers=1, only=["ours+entropy"])
    assert len(summary.finished) == 2 and not summary.skipped  # stale results redone
    # Same seed and settings in a fresh folder: the same numbers.
    again = _cfg_dict(tmp_path)
    again["output_dir"] = str(tmp_path / "other")
    cfg3 = parse_config(again)
    run_sweep(cfg3, workers=1, only=["ours+entropy"])
    second = json.loads(run_path(sweep_dir(cfg3), key).read_text())
    strip = [(r["test_f1"], r["val_f1"], r["labels_bought"], r["query_precision"])
             for r in first["rounds"]]
    assert strip == [(r["test_f1"], r["val_f1"], r["labels_bought"], r["query_precision"])
                     for r in second["rounds"]]


def test_failed_run_is_reported_and_not_stored(tmp_path: Path, fake_features,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = parse_config(_cfg_dict(tmp_path))
    real = pipelines.run_pipeline

    def flaky(spec, ctx):
        if spec.name == "clean":
            raise RuntimeError("boom")
        return real(spec, ctx)

    monkeypatch.setattr(pipelines, "run_pipeline", flaky)
    summary = run_sweep(cfg, workers=1, seeds=[0])
    assert set(summary.failed) == {"symmetric0.3__clean__seed0"}
    assert "boom" in summary.failed["symmetric0.3__clean__seed0"]
    assert len(summary.finished) == 3
    assert not (sweep_dir(cfg) / "runs" / "symmetric0.3__clean__seed0.json").exists()


def test_cli_run_then_report(tmp_path: Path, fake_features) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(_cfg_dict(tmp_path)))
    cli = CliRunner()
    res = cli.invoke(app, ["run", str(path), "--seeds", "0", "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "4 runs finished" in res.output
    res = cli.invoke(app, ["run", str(path), "--seeds", "0"])
    assert res.exit_code == 0 and "0 runs finished, 4 skipped" in res.output
    res = cli.invoke(app, ["report", str(tmp_path / "runs" / "sweep")])
    assert res.exit_code == 0, res.output
    md = (tmp_path / "runs" / "sweep" / "results.md").read_text()
    assert "| ours+entropy |" in md and "| clean |" in md
    bad = cli.invoke(app, ["run", str(path), "--seeds", "x"])
    assert bad.exit_code == 2 and "--seeds" in bad.output
    bad = cli.invoke(app, ["run", str(path), "--only", "nope"])
    assert bad.exit_code == 2 and "nope" in bad.output
    missing = cli.invoke(app, ["run", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 2 and "not found" in missing.output


@pytest.mark.slow
def test_parallel_workers_match_serial(tmp_path: Path) -> None:
    """Two spawned workers (real encoder on tiny images) give exactly the serial numbers."""
    serial = parse_config(_cfg_dict(tmp_path) | {"output_dir": str(tmp_path / "serial")})
    parallel = parse_config(_cfg_dict(tmp_path) | {"output_dir": str(tmp_path / "parallel")})
    s = run_sweep(serial, workers=1, seeds=[0], only=["ours+entropy", "clean"])
    p = run_sweep(parallel, workers=2, seeds=[0], only=["ours+entropy", "clean"])
    assert not s.failed and not p.failed and p.workers == 2
    for key in expand_runs(serial, seeds=[0], only=["ours+entropy", "clean"]):
        a = json.loads(run_path(sweep_dir(serial), key).read_text())
        b = json.loads(run_path(sweep_dir(parallel), key).read_text())
        assert [r["test_f1"] for r in a["rounds"]] == [r["test_f1"] for r in b["rounds"]]
