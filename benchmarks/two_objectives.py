"""Both jobs of a campaign, per pipeline: wrong labels found per 100 answers, and test
macro-F1 per label bought -- the two-objective (Pareto) table of a finished sweep.

Reads every run of ``RUN_DIR/runs/*.json`` (a ``labelrefine run`` output) and prints, per noise
setting and pipeline, over seeds (mean and 95 % t-interval): wrong labels fixed per 100
answers after the last round, wrong labels fixed, test macro-F1 after phase 1 and after the last
round, F1 gained per 100 labels bought, round-1 query precision, and whether the pipeline is on
the Pareto front of (found per 100, final F1) means. Then the paired per-seed differences of
every pipeline against each ``--reference`` (95 % t-interval; ``*`` = excludes 0).

    python benchmarks/two_objectives.py runs/ham10000-find [--reference ours_find ours_plus]
                                        [--out F]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats


def load(run_dir: Path) -> pd.DataFrame:
    rows = []
    for path in sorted((run_dir / "runs").glob("*.json")):
        r = json.loads(path.read_text())
        rounds = r["rounds"]
        last = rounds[-1]
        bought = int(last["labels_bought"])
        fixed = sum(int(x.get("n_changed") or 0) for x in rounds)
        first = next((x for x in rounds if x["round"] == 1), None)
        f0 = next((x["test_f1"] for x in rounds if x["round"] == 0), None)
        rows.append({
            "noise": r["noise"], "label": r["label"], "seed": r["seed"], "bought": bought,
            "fixed": fixed, "found_per_100": 100 * fixed / bought if bought else np.nan,
            "f1_0": f0, "f1": last["test_f1"],
            "f1_per_100": (100 * (last["test_f1"] - f0) / bought
                           if bought and f0 is not None else np.nan),
            "qp1": None if first is None else first.get("query_precision"),
        })
    if not rows:
        raise SystemExit(f"no runs in {run_dir / 'runs'}")
    return pd.DataFrame(rows)


def ci(v: np.ndarray) -> tuple[float, float]:
    v = np.asarray(v, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return (float(v.mean()) if v.size else float("nan")), float("nan")
    return float(v.mean()), float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1)
                                  / np.sqrt(v.size))


def pareto(points: dict[str, tuple[float, float]]) -> set[str]:
    """Labels whose (a, b) no other label beats in both (>= both, > one)."""
    front = set()
    for k, (a, b) in points.items():
        if not any((a2 >= a and b2 >= b) and (a2 > a or b2 > b)
                   for k2, (a2, b2) in points.items() if k2 != k):
            front.add(k)
    return front


def fmt(m: float, h: float, digits: int = 3) -> str:
    return f"{m:.{digits}f} ± {h:.{digits}f}" if np.isfinite(h) else f"{m:.{digits}f}"


def table(df: pd.DataFrame, references: list[str]) -> str:
    out = []
    for noise, g in df.groupby("noise", sort=True):
        means = {lab: (h["found_per_100"].mean(), h["f1"].mean())
                 for lab, h in g.groupby("label")}
        front = pareto(means)
        out += [f"#### {noise} ({g['seed'].nunique()} seeds, "
                f"{int(g['bought'].median())} labels bought)", "",
                "| pipeline | wrong labels found per 100 answers | wrong labels fixed | "
                "round-1 query precision | test F1 after phase 1 | test F1 after the last "
                "round | F1 gained per 100 labels | Pareto front |",
                "|---|---|---|---|---|---|---|---|"]
        for lab, h in sorted(g.groupby("label"), key=lambda kv: -means[kv[0]][0]):
            out.append(
                f"| {lab} | {fmt(*ci(h['found_per_100']), 1)} | {fmt(*ci(h['fixed']), 0)} | "
                f"{fmt(*ci(h['qp1'].astype(float)), 2)} | {fmt(*ci(h['f1_0']))} | "
                f"{fmt(*ci(h['f1']))} | {fmt(*ci(h['f1_per_100']), 4)} | "
                f"{'yes' if lab in front else ''} |")
        for reference in references:
            out += paired(g, reference)
        out.append("")
    return "\n".join(out) + "\n"


def paired(g: pd.DataFrame, reference: str) -> list[str]:
    """Rows of the paired per-seed differences of every pipeline against ``reference``."""
    ref = g[g["label"] == reference].set_index("seed")
    if not len(ref):
        return []
    out = ["", f"Paired against {reference} (other - {reference}, per seed; * = 95 % interval "
           "excludes 0):", "", "| pipeline | wrong labels fixed | final test F1 |",
           "|---|---|---|"]
    for lab, h in g.groupby("label"):
        if lab == reference:
            continue
        h = h.set_index("seed")
        seeds = h.index.intersection(ref.index)
        cells = []
        for col, digits in (("fixed", 0), ("f1", 3)):
            m, hw = ci(h.loc[seeds, col].to_numpy() - ref.loc[seeds, col].to_numpy())
            star = "*" if np.isfinite(hw) and abs(m) > hw else ""
            cells.append(fmt(m, hw, digits) + star)
        out.append(f"| {lab} | " + " | ".join(cells) + " |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--reference", nargs="+", default=["ours_find", "ours_plus"])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    text = table(load(args.run_dir), args.reference)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
