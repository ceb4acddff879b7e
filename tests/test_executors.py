"""Sweep execution: the clean reference computed once per seed, local and Ray executors give
the same results, a killed sweep resumes without redoing finished runs, sharded embedding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import labelrefine.experiments.runner as runner
from conftest import write_image
from labelrefine.config import ConfigError, parse_config
from labelrefine.experiments.executors import check_executor, ray_available
from labelrefine.experiments.runner import run_sweep
from labelrefine.experiments.sweep import read_run, sweep_dir
from labelrefine.lnl.sources import FeatureSource

N, C = 200, 3


def _npz(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
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


# ----------------------------------------------------------------------------- executors

needs_ray = pytest.mark.skipif(not ray_available(), reason="Ray not installed "
                               "(pip install 'labelrefine[ray]'; .ci/run installs it)")


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance with 2 CPUs, shared by this module's Ray tests."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


_VARIES = {"finished_at", "timings", "torch_threads", "reused_from", "fingerprint", "seconds",
           "time_s", "cpu_s"}


def _strip(obj: object) -> object:
    """A stored run without what legitimately differs between two executions (wall and CPU
    times, the finishing time, the fingerprint that covers the differing tmp paths)."""
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in _VARIES}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def test_bad_executor_options_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="--executor 'dask'"):
        check_executor("dask")
    with pytest.raises(ConfigError, match="--address"):
        check_executor("local", "ray://head:10001")


def test_ray_executor_without_ray_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import labelrefine.experiments.executors as executors_mod

    monkeypatch.setattr(executors_mod, "ray_available", lambda: False)
    with pytest.raises(ConfigError, match="pip install ray"):
        check_executor("ray")
    assert isinstance(executors_mod.get_executor("local"), executors_mod.LocalExecutor)


@needs_ray
def test_local_and_ray_executors_give_identical_results(
    tmp_path: Path, fake_features: None, local_ray: object
) -> None:
    local_cfg = parse_config(_cfg_dict(tmp_path / "l"))
    ray_cfg = parse_config(_cfg_dict(tmp_path / "r"))
    local = run_sweep(local_cfg, workers=1)
    remote = run_sweep(ray_cfg, executor="ray")
    assert sorted(local.finished) == sorted(remote.finished) and len(local.finished) == 6
    assert not local.failed and not remote.failed
    a, b = _results(local_cfg), _results(ray_cfg)
    assert a.keys() == b.keys()
    for name in a:
        assert _strip(a[name]) == _strip(b[name]), name
    # the driver wrote every result where the local executor does; clean trained once per seed
    assert sum("reused_from" in r for r in b.values()) == 1


@needs_ray
def test_killed_ray_sweep_resumes_without_redoing_finished_runs(
    tmp_path: Path, fake_features: None, local_ray: object
) -> None:
    cfg = parse_config(_cfg_dict(tmp_path))

    class Killed(BaseException):
        pass

    finished: list[str] = []

    def die_after_two(event: dict) -> None:
        if event["kind"] == "done":
            finished.append(event["run"])
            if len(finished) == 2:
                raise Killed  # the driver dies here: two results are on disk

    with pytest.raises(Killed):
        run_sweep(cfg, executor="ray", on_event=die_after_two)
    runs = sweep_dir(cfg) / "runs"
    stored = {p.stem: p.stat().st_mtime_ns for p in runs.glob("*.json")}
    assert sorted(stored) == sorted(finished)
    assert not list(runs.glob(".*.tmp"))  # nothing half-written

    again = run_sweep(cfg, executor="ray")
    assert sorted(again.skipped) == sorted(finished)
    assert sorted(again.finished) == sorted(set(again.planned) - set(finished))
    assert {p.stem: p.stat().st_mtime_ns for p in runs.glob("*.json")
            if p.stem in stored} == stored  # finished runs were not redone


@needs_ray
def test_sharded_ray_embedding_equals_single_process(tmp_path: Path, local_ray: object) -> None:
    from labelrefine.config import EncoderConfig
    from labelrefine.data.dataset import ImageDataset
    from labelrefine.experiments.ray_embed import embed_with_ray
    from labelrefine.models.cache import embed_dataset

    rng = np.random.default_rng(0)
    paths = []
    for i in range(10):
        path = tmp_path / "img" / f"im{i}.png"
        write_image(path, seed=i, size=24)
        paths.append(path)
    ds = ImageDataset(ids=tuple(f"im{i}" for i in range(10)),
                      labels=rng.integers(0, 2, size=10), class_names=("a", "b"),
                      paths=tuple(paths), name="ten")
    cfg = EncoderConfig(image_size=32, views=2, batch_size=12)
    single = embed_dataset(ds, cfg.model_copy(update={"cache_dir": tmp_path / "one"}),
                           progress=False, num_workers=0)
    sharded = embed_with_ray(ds, cfg.model_copy(update={"cache_dir": tmp_path / "ray"}),
                             shards=3, progress=False)
    assert sharded.key == single.key and not sharded.hit
    assert sharded.meta["shards"] == 3 and sharded.meta["runtime"] == single.meta["runtime"]
    assert sharded.ids == single.ids
    # same inputs and views; only the batch composition differs: within float16 rounding
    np.testing.assert_allclose(sharded.plain.astype(np.float32),
                               single.plain.astype(np.float32), atol=2e-3, rtol=1e-3)
    np.testing.assert_allclose(sharded.views.astype(np.float32),
                               single.views.astype(np.float32), atol=2e-3, rtol=1e-3)
    assert sharded.path is not None and sharded.path.is_file()
    assert embed_with_ray(ds, cfg.model_copy(update={"cache_dir": tmp_path / "ray"})).hit


def test_cli_rejects_bad_executor_options(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from labelrefine.cli import app

    config = tmp_path / "exp.yaml"
    import yaml

    config.write_text(yaml.safe_dump(_cfg_dict(tmp_path)))
    runner_ = CliRunner()
    bad = runner_.invoke(app, ["run", str(config), "--executor", "dask"])
    assert bad.exit_code == 2 and "--executor" in bad.output
    bad = runner_.invoke(app, ["run", str(config), "--address", "auto"])
    assert bad.exit_code == 2 and "--address" in bad.output
    bad = runner_.invoke(app, ["embed", str(config), "--shards", "2"])
    assert bad.exit_code == 2 and "--shards" in bad.output
    assert not (tmp_path / "runs").exists()  # nothing started


def test_runner_and_executors_do_not_import_each_other() -> None:
    """runner -> executors -> runs: one direction only (no cycle, not even a lazy one)."""
    import ast

    import labelrefine.experiments as pkg

    root = Path(pkg.__file__).parent

    def imports(name: str) -> set[str]:
        tree = ast.parse((root / f"{name}.py").read_text())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        return {m.removeprefix("labelrefine.experiments.") for m in found
                if m.startswith("labelrefine.experiments.")}

    assert "runner" not in imports("executors") and "runner" not in imports("runs")
    assert "executors" not in imports("runs") and "ray_embed" not in imports("executors")
    assert "executors" in imports("runner")


def test_run_sweep_goes_through_the_executor_registry(
    tmp_path: Path, fake_features: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import labelrefine.experiments.executors as executors_mod

    seen: list[tuple[int, bool]] = []

    class Recording(executors_mod.LocalExecutor):
        def run_sweep(self, cfg, run_dir, device, groups, *, dataset, source, record):  # noqa: ANN001, ANN202
            seen.append((sum(len(g) for g in groups), source is not None))
            super().run_sweep(cfg, run_dir, device, groups, dataset=dataset, source=source,
                              record=record)

    monkeypatch.setitem(executors_mod.EXECUTORS, "recording",
                        lambda address, workers, threads: Recording(workers, threads))
    cfg = parse_config(_cfg_dict(tmp_path, pipelines=[{"name": "noisy_ce"}]))
    summary = run_sweep(cfg, executor="recording")
    assert seen == [(2, True)] and len(summary.finished) == 2 and not summary.failed
    assert not executors_mod.LocalExecutor(workers=2).shares_source  # workers load their own
