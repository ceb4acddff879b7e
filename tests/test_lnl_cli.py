"""``labelrefine lnl`` end to end on a few hundred bundled HAM10000 images (embedding mode)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from labelrefine.cli import app

PER_CLASS = 30  # 7 classes -> 210 images; tiny encoder input and one augmented view


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def small_config(tmp_path_factory, ham10000_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("lnl_cli")
    labels = pd.read_csv(ham10000_dir / "labels.csv")
    subset = labels.groupby("dx", group_keys=False).head(PER_CLASS)
    subset.to_csv(root / "labels.csv", index=False)
    cfg = {
        "name": "tiny",
        "dataset": {"format": "csv", "images": str(ham10000_dir / "images"),
                    "labels": str(root / "labels.csv")},
        "split": {"train": 0.7, "val": 0.1, "test": 0.2, "seed": 0},
        "noise": [{"kind": "symmetric", "rate": 0.4}],
        "encoder": {"name": "efficientnet_lite0", "image_size": 64, "views": 1,
                    "cache_dir": str(root / "cache")},
        "lnl": {"method": "ct_vog", "epochs": 6, "warmup": 3, "mix": 0.5, "batch_size": 32,
                "lr": 0.05, "hidden": 32, "vog": {"window": 2}},
        "output_dir": str(root / "runs"),
        "device": "cpu",
        "seeds": [0],
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run(*args: str):
    return CliRunner().invoke(app, ["lnl", *args])


@pytest.fixture(scope="module")
def first_run(small_config: Path) -> Path:
    out = small_config.parent / "run_a"
    result = _run(str(small_config), "--out", str(out), "--seed", "1")
    assert result.exit_code == 0, result.output
    return out


def test_writes_partition_and_reports(first_run: Path):
    names = {"partition.csv", "diagnostics.csv", "history.json", "history.csv", "summary.json",
             "loss_vog.png"}
    assert names <= {p.name for p in first_run.iterdir()}
    assert not [p for p in first_run.iterdir() if p.name.startswith(".tmp")]
    part = pd.read_csv(first_run / "partition.csv")
    summary = json.loads((first_run / "summary.json").read_text())
    assert len(part) == summary["train_items"] == 7 * PER_CLASS * 7 // 10
    assert set(part["status"]) <= {"clean", "suspect"}
    assert (part["status"] == "clean").sum() == summary["clean"]
    assert part["noisy"].sum() == summary["noisy_train"] == round(0.4 * len(part))
    assert np.array_equal(part["noisy"], part["given_label"] != part["true_label"])
    clean = part[part["status"] == "clean"]
    assert summary["clean_precision"] == pytest.approx(1 - clean["noisy"].mean())
    assert np.isfinite(part["loss"]).all() and np.isfinite(part["vog"]).all()
    diag = pd.read_csv(first_run / "diagnostics.csv")
    assert sorted(diag["class"]) == ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
    assert diag["n_given"].sum() == len(part)
    history = json.loads((first_run / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(6))
    assert [h["vog_used"] for h in history] == [False] * 3 + [True] * 3
    assert summary["method"] == "ct_vog" and summary["mix"] == 0.5 and summary["tau"] == 0.4
    assert (first_run / "loss_vog.png").stat().st_size > 1000


def test_same_seed_same_partition(small_config: Path, first_run: Path):
    out = small_config.parent / "run_b"
    result = _run(str(small_config), "--out", str(out), "--seed", "1")
    assert result.exit_code == 0, result.output
    a = pd.read_csv(first_run / "partition.csv")
    b = pd.read_csv(out / "partition.csv")
    pd.testing.assert_frame_equal(a, b)


def test_overrides_and_default_run_dir(small_config: Path):
    result = _run(str(small_config), "--method", "coteaching", "--noise-rate", "0.2",
                  "--epochs", "2")
    assert result.exit_code == 0, result.output
    run_dir = small_config.parent / "runs" / "tiny" / "lnl" / "coteaching-symmetric0.2-seed0"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["tau"] == 0.2 and summary["epochs"] == 2 and summary["mix"] == 0.0
    assert summary["noisy_train"] == round(0.2 * summary["train_items"])


def test_bad_config_is_a_clean_error(small_config: Path, tmp_path: Path):
    cfg = yaml.safe_load(small_config.read_text())
    cfg["lnl"].update({"head": "linear", "vog": {"gradient": "input_features"}})
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "never"
    result = _run(str(bad), "--out", str(out))
    assert result.exit_code == 2
    assert "lnl.vog.gradient" in result.output
    assert not out.exists()
    result = _run(str(tmp_path / "missing.yaml"))
    assert result.exit_code == 2 and "config file not found" in result.output


def test_histogram_plot(tmp_path: Path):
    from labelrefine.lnl.plots import plot_loss_vog

    rng = np.random.default_rng(0)
    loss, noisy = rng.random(50), rng.random(50) < 0.3
    loss[0] = np.nan  # skipped
    path = plot_loss_vog(tmp_path / "a" / "h.png", loss, None, noisy, title="t")
    assert path.stat().st_size > 1000
    assert plot_loss_vog(tmp_path / "v.png", loss, rng.random(50), noisy).is_file()
    with pytest.raises(ValueError, match="same length"):
        plot_loss_vog(tmp_path / "bad.png", loss, None, noisy[:10])
    assert not (tmp_path / "bad.png").exists()
    assert not list(tmp_path.glob(".tmp-*"))


def test_real_labels_are_not_scored_as_truth(small_config: Path, tmp_path: Path):
    """With the labels as given (noise kind none) there is no truth: no clean precision is
    printed or stored, and the output says why."""
    cfg = yaml.safe_load(small_config.read_text())
    cfg["noise"] = [{"kind": "none", "rate": 0.0}]
    cfg["lnl"]["epochs"] = 4
    cfg["lnl"]["tau"] = 0.2
    path = tmp_path / "real.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    result = _run(str(path), "--out", str(out))
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "clean precision not measurable" in text and "precision 1.000" not in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["clean_precision"] is None and summary["clean_recall"] is None


def test_schedule_is_derived_from_the_training_set_size_as_in_a_sweep(
        small_config: Path, tmp_path: Path, monkeypatch):
    """``labelrefine lnl`` resolves the settings as ``labelrefine run`` and campaigns do: the
    schedule fields a config leaves open come from the training-set size."""
    import labelrefine.lnl.phase1 as phase1_mod
    from labelrefine.lnl.adaptive import adaptive_schedule

    cfg = yaml.safe_load(small_config.read_text())
    for key in ("epochs", "warmup", "batch_size", "lr"):
        del cfg["lnl"][key]
    path = tmp_path / "open.yaml"
    path.write_text(yaml.safe_dump(cfg))
    seen = {}

    def stop(lnl, inputs, **kwargs):  # noqa: ANN001, ANN202
        seen["lnl"], seen["n"] = lnl, int(inputs.data.train_idx.size)
        raise SystemExit(0)

    monkeypatch.setattr(phase1_mod, "run_phase1", stop)
    _run(str(path), "--out", str(tmp_path / "out"))
    want = adaptive_schedule(seen["n"])
    lnl = seen["lnl"]
    assert (lnl.epochs, lnl.warmup, lnl.batch_size, lnl.lr) == (
        want["epochs"], want["warmup"], want["batch_size"], want["lr"])
