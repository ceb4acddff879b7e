"""benchmarks/bench_peers.py pairs runs by round number, not by position in the record list."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_peers.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_peers", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(label: str, seed: int, f1: dict[int, float]) -> dict:
    return {"_setting": "symmetric0.4 expert-error 0", "label": label, "seed": seed,
            "class_names": ["a", "b"], "budget_per_round": 10,
            "rounds": [{"round": r, "labels_bought": 10 * r, "test_f1": v,
                        "query_precision": 0.5 if r else None, "test_recall": [v, v]}
                       for r, v in sorted(f1.items())]}


def test_pipeline_without_round_zero_is_paired_round_by_round() -> None:
    runs = []
    for seed, shift in ((0, 0.0), (1, 0.01), (2, 0.02)):
        runs.append(_run("ours+entropy", seed, {0: 0.30 + shift, 1: 0.40 + shift,
                                                2: 0.50 + shift}))
        # al_only starts at round 1; its round r is 0.1 below ours' round r
        runs.append(_run("al_only+entropy", seed, {1: 0.30 + shift, 2: 0.40 + shift}))
    text = _bench().summarize(runs, ["ours+entropy"])
    row = next(line for line in text.splitlines()
               if line.startswith("| ours+entropy - al_only+entropy"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == ""  # round 0: al_only has none
    assert cells[2].startswith("+0.100 ± 0.000") and cells[3].startswith("+0.100 ± 0.000")
    f1_row = next(line for line in text.splitlines() if line.startswith("| al_only+entropy |"))
    assert [c.strip() for c in f1_row.strip("|").split("|")][1:] == [
        "", "0.310 ± 0.025", "0.410 ± 0.025"]
