"""Report: tables, labels-to-reach, diagnostics, plot and HTML from stored run files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from labelrefine.cli import app
from labelrefine.config import ConfigError, parse_config
from labelrefine.experiments.report import (
    budget_shortfalls,
    curve_stats,
    labels_needed,
    markdown_table,
    paired_differences,
    rounds_frame,
    t_interval,
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
    # sample std (ddof = 1) and the 95 % t half-width, t(0.975, 1) = 12.706
    assert ours["f1_std"].round(4).tolist() == [0.0071, 0.0071, 0.0071, 0.0]
    assert ours["f1_ci"].round(4).tolist() == [0.0635, 0.0635, 0.0635, 0.0]
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
    assert cells[1] == "0.605 ± 0.064"  # round 0: mean ± 95 % half-width
    assert cells[-2] == str(2 * BUDGET)  # labels to reach clean - 0.01
    assert cells[-1] == "2"  # seeds
    al_row = next(line for line in md.splitlines() if line.startswith("| al_only+random"))
    assert "not reached (best 0.500 at 30)" in al_row
    assert "| pipeline | r1 | r2 | r3 |\n" in md  # query precision header (no round 0)
    assert "| ours+entropy | 0.55 | 0.55 | 0.55 |" in md
    assert "| clean |" in md and "reference" in md
    assert "Paired differences against `ours+entropy`" in md
    paired = next(line for line in md.splitlines() if line.startswith("| al_only+random")
                  and "/" in line and "not reached" not in line)
    assert "(0/2)" in paired  # al_only is below ours for both seeds at every round
    diag = paths["diagnostics.md"].read_text()
    assert "CT_VOG m=0.2 Recall" in diag and "CE (small loss) Guess %" in diag
    assert "0.55 ± 0.64" in diag  # per-class recall over the two seeds (95 % half-width)
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


def test_t_interval_matches_scipy_and_edge_cases() -> None:
    from scipy import stats

    v = [0.31, 0.35, 0.29, 0.40, 0.33]
    mean, std, half, n = t_interval(v)
    lo, hi = stats.t.interval(0.95, 4, loc=np.mean(v), scale=stats.sem(v))
    assert n == 5 and std == pytest.approx(np.std(v, ddof=1))
    assert (mean - half, mean + half) == pytest.approx((lo, hi))
    assert np.isnan(t_interval([0.3])[2]) and t_interval([0.3])[0] == 0.3
    assert t_interval([])[3] == 0 and t_interval([np.nan, 0.2])[3] == 1


def _frame(diffs: list[float], base: list[float]) -> pd.DataFrame:
    rows = []
    for seed, (b, d) in enumerate(zip(base, diffs, strict=True)):
        rows.append({"noise": "n", "pipeline": "ours", "label": "ours", "seed": seed,
                     "round": 1, "labels_bought": 10, "test_f1": b, "val_f1": b,
                     "query_precision": 0.5})
        rows.append({"noise": "n", "pipeline": "al_only", "label": "al", "seed": seed,
                     "round": 1, "labels_bought": 10 if seed else 7, "test_f1": b + d,
                     "val_f1": b, "query_precision": 0.5})
        rows.append({"noise": "n", "pipeline": "clean", "label": "clean", "seed": seed,
                     "round": 0, "labels_bought": 0, "test_f1": 0.9, "val_f1": 0.9,
                     "query_precision": None})
    return pd.DataFrame(rows)


def test_paired_differences_use_seed_pairs() -> None:
    # large seed-to-seed spread, small but consistent paired difference
    base = [0.30, 0.45, 0.38, 0.52, 0.41]
    frame = _frame([-0.02, -0.025, -0.018, -0.022, -0.021], base)
    d = paired_differences(frame, "n", "ours").set_index("label")
    assert d.loc["al", "diff_mean"] == pytest.approx(-0.0212)
    assert d.loc["al", "losses"] == 5 and d.loc["al", "wins"] == 0
    assert d.loc["al", "significant"] and d.loc["al", "hi"] < 0
    # unpaired, the two means' intervals overlap widely: the pairing is what decides
    assert t_interval(np.array(base))[2] > 0.05
    # the clean reference (one record per seed) is compared at ours' rounds
    assert d.loc["clean", "round"] == 1 and d.loc["clean", "n_pairs"] == 5
    mixed = paired_differences(_frame([0.03, -0.02, 0.01, -0.03, 0.0], base), "n", "ours")
    row = mixed.set_index("label").loc["al"]
    assert not row["significant"] and (row["wins"], row["losses"]) == (2, 2)


def test_budget_shortfalls_marked() -> None:
    short = budget_shortfalls(_frame([0.0] * 5, [0.3] * 5), "n")
    assert short[["label", "round", "seed", "labels_bought", "most_bought"]].values.tolist() \
        == [["al", 1, 0, 7, 10]]


def test_no_shortfall_when_every_run_bought_the_same_labels() -> None:
    rows = [{"noise": "n", "pipeline": "ours", "label": "ours+entropy", "seed": seed,
             "round": r, "labels_bought": 10 * r, "test_f1": 0.3}
            for seed in range(2) for r in range(3)]
    short = budget_shortfalls(pd.DataFrame(rows), "n")
    assert short.empty, short  # not one row of NaN per run round


def test_a_pipeline_that_buys_no_label_is_paired_at_every_round() -> None:
    rows = []
    for seed in range(3):
        for r in range(3):
            rows.append({"noise": "n", "pipeline": "ours", "label": "ours+entropy",
                         "seed": seed, "round": r, "labels_bought": 10 * r,
                         "test_f1": 0.3 + 0.01 * r + 0.001 * seed})
        rows.append({"noise": "n", "pipeline": "cleanlab_prune", "label": "cleanlab_prune",
                     "seed": seed, "round": 0, "labels_bought": 0, "test_f1": 0.28})
    frame = pd.DataFrame(rows)
    d = paired_differences(frame, "n", "ours+entropy")
    got = d[d["label"] == "cleanlab_prune"].set_index("round")["diff_mean"]
    assert list(got.index) == [0, 1, 2]
    np.testing.assert_allclose(got.to_numpy(), [-0.021, -0.031, -0.041], atol=1e-12)
