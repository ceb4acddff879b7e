"""Sweep execution: the clean reference computed once per seed, local and Ray executors give
the same results, a killed sweep resumes without redoing finished runs, sharded embedding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import labelrefine.experiments.runner as runner
from labelrefine.config import parse_config
from labelrefine.experiments.runner import run_sweep
from labelrefine.experiments.sweep import read_run, sweep_dir
from labelrefine.lnl.sources import FeatureSource

N, C = 200, 3


def _npz(root: Path) -> Path:
    rng = np.random.default_rng(1)
    labels = rng.choice(C, size=N, p=[0.6, 0.25, 0.15]).astype(np.uint8)
    images = rng.integers(0, 40, size=(N, 8, 8, 3)) + 70 * labels[:, None, None, None]
    path = root / "tiny.npz"
    np.savez(path, train_images=images.astype(np.uint8), train_labels=labels.reshape(N, 1))
    return path


def _cfg_dict(root: Path, **over: object) -> dict:
    cfg = {
        "name": "sweep",
        "dataset": {"format": "medmnist", "npz": str(_npz(root)), "npz_split": "train"},
        "noise": [{"kind": "symmetric", "rate": 0.3}, {"kind": "symmetric", "rate": 0.5}],
        "encoder": {"image_size": 16, "views": 1, "batch_size": 64, "cache_dir": str(root / "c")},
        "lnl": {"epochs": 3, "warmup": 1, "batch_size": 64, "hidden": 16, "lr": 0.05,
                "vog": {"window": 2}},
        "active": {"rounds": 1, "budget_per_round": 8, "epochs_per_round": 2},
        "pipelines": [{"name": "ours", "sampler": "entropy"}, {"name": "clean"},
                      {"name": "noisy_ce"}],
        "seeds": [0],
        "output_dir": str(root / "runs"),
        "device": "cpu",
    }
    cfg.update(over)
    return cfg


def fake_source(cfg, dataset, device, *, progress=False):  # noqa: ANN001, ANN201
    """Class-clustered features from the labels: no encoder (the runner's load_source)."""
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 1.5, size=(dataset.num_classes, 8))
    plain = centers[dataset.labels] + rng.normal(0, 1.0, size=(len(dataset), 8))
    views = plain[None] + rng.normal(0, 0.3, size=(2, len(dataset), 8))
    return FeatureSource(views.astype(np.float16), plain.astype(np.float16))


@pytest.fixture
def fake_features(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "load_source", fake_source)


def _results(cfg) -> dict[str, dict]:  # noqa: ANN001
    out = {}
    for path in sorted((sweep_dir(cfg) / "runs").glob("*.json")):
        data = read_run(path)
        assert data is not None
        out[path.stem] = data
    return out


def test_clean_reference_is_trained_once_per_seed(
    tmp_path: Path, fake_features: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import labelrefine.pipelines as pipelines

    cfg = parse_config(_cfg_dict(tmp_path, pipelines=[{"name": "clean"}], seeds=[0, 1]))
    calls: list[tuple[str, int]] = []
    real = pipelines.run_pipeline

    def counting(spec, ctx):  # noqa: ANN001, ANN202
        calls.append((ctx.noise.tag, ctx.seed))
        return real(spec, ctx)

    monkeypatch.setattr(pipelines, "run_pipeline", counting)
    summary = run_sweep(cfg, workers=1)
    assert len(summary.finished) == 4 and not summary.failed
    assert sorted(s for _, s in calls) == [0, 1]  # one training per seed, not per noise rate
    res = _results(cfg)
    for seed in (0, 1):
        a = res[f"symmetric0.3__clean__seed{seed}"]
        b = res[f"symmetric0.5__clean__seed{seed}"]
        assert a["rounds"] == b["rounds"]
        assert (a["noise"], b["noise"]) == ("symmetric0.3", "symmetric0.5")
        assert "reused_from" in a or "reused_from" in b
        assert a["n_noisy"] != b["n_noisy"]  # the noise-specific fields are the run's own
