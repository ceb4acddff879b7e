"""Report: tables, labels-to-reach, diagnostics, plot and HTML from stored run files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from labelrefine.cli import app
from labelrefine.config import ConfigError, parse_config
from labelrefine.experiments.report import (
    curve_stats,
    labels_needed,
    markdown_table,
    rounds_frame,
    write_report,
)
from labelrefine.experiments.sweep import (
    expand_runs,
    run_fingerprint,
    run_path,
    save_config,
    sweep_dir,
    write_json,
)

CLASSES = ["a", "b", "c"]
BUDGET = 10


def _config(tmp_path: Path):
    return parse_config({
        "name": "toy",
        "dataset": {"format": "csv", "images": "imgs", "labels": "labels.csv"},
        "noise": [{"kind": "symmetric", "rate": 0.4}],
        "active": {"rounds": 3, "budget_per_round": BUDGET},
        "pipelines": [
            {"name": "ours", "sampler": "entropy"},
            {"name": "al_only", "sampler": "random"},
            {"name": "clean"},
            {"name": "noisy_ce"},
        ],
        "seeds": [0, 1],
        "output_dir": str(tmp_path / "out"),
    })


def _curve(name: str, seed: int) -> list[float]:
    """Hand-made F1 curves: ours reaches 0.79 (= clean 0.80 - 0.01) at round 2 on average."""
    jitter = 0.01 * seed
    return {
        "ours": [0.60 + jitter, 0.70 + jitter, 0.785 + jitter, 0.81],
        "al_only": [0.30, 0.40 + jitter, 0.50],  # rounds 1..3 (no round 0)
        "clean": [0.80],
        "noisy_ce": [0.55],
    }[name]


def _run(cfg, key) -> dict:
    name = key.spec.name
    f1s = _curve(name, key.seed)
    first = 1 if name == "al_only" else 0
    rounds = []
    for i, f1 in enumerate(f1s):
        r = first + i
        rounds.append({
            "round": r,
            "labels_bought": 100 if name == "clean" else r * BUDGET,
            "test_f1": f1, "val_f1": f1 + 0.01, "test_recall": [0.5, 0.5, 0.5],
            "query_precision": None if r == 0 else 0.5 + 0.1 * key.seed,
        })
    phase1 = None
    if name in ("ours", "noisy_ce"):
        method, mix = ("ct_vog", 0.2) if name == "ours" else ("ce", 0.0)
        phase1 = {
            "method": method, "mix": mix, "n_clean": 60 + key.seed, "test_f1": f1s[0],
            "selection_precision": 0.9, "selection_recall": 0.8,
            "diagnostics": [
                {"class": c, "n_given": 30, "n_correct": 20, "n_selected": 15,
                 "recall": 0.5 + 0.1 * key.seed, "guess_pct": 80.0} for c in CLASSES
            ],
        }
    return {
        "key": key.name, "fingerprint": run_fingerprint(cfg, key), "pipeline": name,
        "sampler": key.spec.sampler, "label": key.spec.display, "noise": key.noise.tag,
        "seed": key.seed, "budget_per_round": BUDGET, "n_train": 100,
        "class_names": CLASSES, "rounds": rounds, "phase1": phase1,
        "timings": {"total_s": 1.0},
    }


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    cfg = _config(tmp_path)
    out = sweep_dir(cfg)
    save_config(cfg, out)
    for key in expand_runs(cfg):
        write_json(run_path(out, key), _run(cfg, key))
    return out


def test_labels_needed_and_stats(run_dir: Path) -> None:
    runs = [json.loads(p.read_text()) for p in sorted((run_dir / "runs").glob("*.json"))]
    stats = curve_stats(rounds_frame(runs))
    ours = stats[stats["label"] == "ours+entropy"].sort_values("round")
    assert ours["f1_mean"].round(4).tolist() == [0.605, 0.705, 0.79, 0.81]
    assert ours["f1_std"].round(4).tolist() == [0.005, 0.005, 0.005, 0.0]
    needed = labels_needed(stats, "symmetric0.4", 0.79)
    assert needed["ours+entropy"] == 2 * BUDGET
    assert needed["al_only+random"] is None


def test_report_files_and_rows(run_dir: Path) -> None:
    paths = write_report(run_dir)
    for name in ("report.html", "f1_vs_labels.png", "results.md", "results.csv",
                 "diagnostics.md", "diagnostics.csv"):
        assert paths[name].is_file() and paths[name].stat().st_size > 0
    md = paths["results.md"].read_text()
    row = next(line for line in md.splitlines() if line.startswith("| ours+entropy"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "0.605 ± 0.005"  # round 0
    assert cells[-2] == str(2 * BUDGET)  # labels to reach clean - 0.01
    assert cells[-1] == "2"  # seeds
    al_row = next(line for line in md.splitlines() if line.startswith("| al_only+random"))
    assert "not reached (best 0.500 at 30)" in al_row
    assert "| pipeline | r1 | r2 | r3 |\n" in md  # query precision header (no round 0)
    assert "| ours+entropy | 0.55 | 0.55 | 0.55 |" in md
    assert "| clean |" in md and "reference" in md
    diag = paths["diagnostics.md"].read_text()
    assert "CT_VOG m=0.2 Recall" in diag and "CE (small loss) Guess %" in diag
    assert "0.55 ± 0.05" in diag  # per-class recall over the two seeds
    table = pd.read_csv(paths["diagnostics.csv"])
    assert set(table["class"]) == set(CLASSES)
    assert len(table) == 2 * 2 * len(CLASSES)  # methods x seeds x classes
    page = paths["report.html"].read_text()
    assert "data:image/png;base64," in page and "ours+entropy" in page
    assert paths["f1_vs_labels.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_stale_run_is_left_out(run_dir: Path) -> None:
    stale = next((run_dir / "runs").glob("*al_only*seed1.json"))
    data = json.loads(stale.read_text())
    data["fingerprint"] = "0" * 16
    stale.write_text(json.dumps(data))
    md = write_report(run_dir)["results.md"].read_text()
    assert "1 planned runs missing" in md and stale.stem in md
    al_row = next(line for line in md.splitlines() if line.startswith("| al_only+random"))
    assert al_row.strip().endswith("| 1 |")


def test_report_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        write_report(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="no config.yaml"):
        write_report(tmp_path)
    cfg = _config(tmp_path)
    save_config(cfg, sweep_dir(cfg))
    with pytest.raises(ConfigError, match="no finished runs"):
        write_report(sweep_dir(cfg))
    assert not (sweep_dir(cfg) / "report.html").exists()


def test_report_cli(run_dir: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert (run_dir / "report.html").is_file()
    bad = CliRunner().invoke(app, ["report", str(run_dir / "missing")])
    assert bad.exit_code == 2 and "not found" in bad.output


def test_markdown_table_escapes_pipes() -> None:
    text = markdown_table(pd.DataFrame({"a": ["x|y"], "b": [1]}))
    assert text.splitlines()[2] == "| x\\|y | 1 |"


def test_guess_undefined_for_some_seeds_is_marked(run_dir: Path) -> None:
    for path in (run_dir / "runs").glob("*ours*seed1.json"):
        data = json.loads(path.read_text())
        data["phase1"]["diagnostics"][0]["guess_pct"] = None  # class a: nothing selected
        path.write_text(json.dumps(data))
    diag = (write_report(run_dir)["diagnostics.md"]).read_text()
    row = next(line for line in diag.splitlines() if line.startswith("| a |"))
    assert "80.0 (1/2 seeds)" in row
