"""How good each run's audit estimate of the wrong labels left was: per pipeline of a finished
sweep of ``ours_find`` runs, over seeds (mean ± 95 % t-interval), the mean absolute error of
the estimate over the rounds, its error after the last round, the share of rounds whose 95 %
interval held the true count, and the interval's width after the last round; then the paired
per-seed differences against ``--reference``.

    python benchmarks/estimate_error.py runs/ham10000-trusted --reference trusted [--out F]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats

COLUMNS = {"abs_err": "mean absolute error over rounds",
           "err_last": "estimate − truth after the last round",
           "covered": "rounds whose interval held the truth",
           "width_last": "interval width after the last round",
           "truth_last": "true wrong labels left after the last round"}


def per_run(path: Path) -> tuple[str, int, dict[str, float]]:
    r = json.loads(path.read_text())
    rounds = [x for x in r["rounds"][1:] if x.get("estimate_left")]
    if not rounds:
        raise SystemExit(f"{path.name}: no audit estimates (not an ours_find run?)")
    err = [x["estimate_left"]["estimate"] - x["wrong_left"] for x in rounds]
    last = rounds[-1]
    e = last["estimate_left"]
    return r["label"], int(r["seed"]), {
        "abs_err": float(np.mean(np.abs(err))), "err_last": float(err[-1]),
        "covered": float(np.mean([x["estimate_left"]["low"] <= x["wrong_left"]
                                  <= x["estimate_left"]["high"] for x in rounds])),
        "width_last": float(e["high"] - e["low"]), "truth_last": float(last["wrong_left"])}


def ci(v: list[float]) -> str:
    a = np.asarray(v, dtype=np.float64)
    h = stats.t.ppf(0.975, a.size - 1) * a.std(ddof=1) / np.sqrt(a.size) if a.size > 1 else 0
    return f"{a.mean():.1f} ± {h:.1f}", abs(a.mean()) > h  # type: ignore[return-value]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--reference", default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    runs: dict[str, dict[int, dict[str, float]]] = {}
    for path in sorted((args.run_dir / "runs").glob("*.json")):
        label, seed, row = per_run(path)
        runs.setdefault(label, {})[seed] = row
    lines = ["| pipeline | seeds | " + " | ".join(COLUMNS.values()) + " |",
             "|---|---|" + "---|" * len(COLUMNS)]
    for label, by_seed in runs.items():
        cells = [ci([r[k] for r in by_seed.values()])[0] for k in COLUMNS]
        lines.append(f"| {label} | {len(by_seed)} | " + " | ".join(cells) + " |")
    ref = runs.get(args.reference) if args.reference else None
    if ref:
        lines += ["", f"Paired (other − {args.reference}, per seed; * = 95 % interval excludes "
                  "0):", "", "| pipeline | " + " | ".join(COLUMNS.values()) + " |",
                  "|---|" + "---|" * len(COLUMNS)]
        for label, by_seed in runs.items():
            if label == args.reference:
                continue
            seeds = sorted(set(by_seed) & set(ref))
            cells = []
            for k in COLUMNS:
                text, sig = ci([by_seed[s][k] - ref[s][k] for s in seeds])
                cells.append(text + ("*" if sig else ""))
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
