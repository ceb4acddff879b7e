"""Does a shorter training schedule keep the comparison? Two finished sweeps, same seeds.

Reads two sweep folders (``labelrefine run`` output) that ran the same pipelines on the same
seeds (hence the same splits and noise draws) with different schedules, e.g. the demo
(``configs/ham10000-demo.yaml`` run with ``--seeds 0,1,2,3,4``) and the paper analog
(``configs/ham10000-paper-analog.yaml``), and prints for one noise setting:

* per pipeline: test macro-F1 at the first and last round under each schedule (mean ± 95 %
  t half-width over seeds), and the paired per-seed difference (short − full);
* per pipeline and round: the paired difference against the reference pipeline under each
  schedule, and whether the two schedules agree on its sign; a significant difference (95 %
  interval excludes 0) under one schedule with the opposite sign under the other is a reversal;
* Kendall's tau between the two schedules' orderings of the pipelines at the last round;
* CPU seconds of all runs under each schedule and their ratio.

    python benchmarks/compare_schedules.py runs/ham10000-demo runs/ham10000-paper-analog \\
        [--noise symmetric0.4] [--reference ours+entropy] [--out FILE.md]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from labelrefine.experiments.report import paired_differences, rounds_frame, t_interval
from labelrefine.experiments.sweep import load_runs, load_saved_config


def _load(run_dir: Path, noise: str) -> list[dict]:
    runs, _ = load_runs(load_saved_config(run_dir), run_dir)
    return [r for r in runs if r["noise"] == noise]


def _seconds(runs: list[dict], keep: set[tuple[str, int]]) -> float:
    return float(sum(r.get("timings", {}).get("total_s", 0.0) for r in runs
                     if (r["label"], r["seed"]) in keep))


def _cell(values: np.ndarray) -> str:
    mean, _, half, n = t_interval(values)
    return f"{mean:.3f} ± {half:.3f}" if n > 1 else f"{mean:.3f}"


def compare(short: pd.DataFrame, full: pd.DataFrame, noise: str, reference: str) -> list[str]:
    """Markdown lines comparing the two schedules (see the module docstring)."""
    seeds = sorted(set(short["seed"]) & set(full["seed"]))
    short, full = short[short["seed"].isin(seeds)], full[full["seed"].isin(seeds)]
    labels = [lab for lab in dict.fromkeys(full["label"]) if lab in set(short["label"])]
    out = [f"## {noise}: short schedule against full schedule ({len(seeds)} paired seeds)\n",
           "| pipeline | full: first round | full: last round | short: first round | "
           "short: last round | short − full, last round (paired) |",
           "|---|---|---|---|---|---|"]
    last_means = {}
    for lab in labels:
        cells, finals = [], {}
        for name, frame in (("full", full), ("short", short)):
            g = frame[frame["label"] == lab]
            first, last = g["round"].min(), g["round"].max()
            cells += [_cell(g[g["round"] == first]["test_f1"].to_numpy()),
                      _cell(g[g["round"] == last]["test_f1"].to_numpy())]
            finals[name] = g[g["round"] == last].set_index("seed")["test_f1"]
        both = finals["short"].index.intersection(finals["full"].index)
        d = (finals["short"][both] - finals["full"][both]).to_numpy()
        out.append(f"| {lab} | " + " | ".join(cells) + f" | {_cell(d)} |")
        last_means[lab] = (float(finals["full"].mean()), float(finals["short"].mean()))

    diffs = {}
    for name, frame in (("full", full), ("short", short)):
        frame = frame.assign(noise=noise)
        diffs[name] = paired_differences(frame, noise, reference).set_index(["label", "round"])
    common = diffs["full"].index.intersection(diffs["short"].index)
    agree = reversals = sig_full = sig_both = 0
    rows = []
    for key in common:
        f, s = diffs["full"].loc[key], diffs["short"].loc[key]
        same = np.sign(f["diff_mean"]) == np.sign(s["diff_mean"])
        agree += int(same)
        sig_full += int(f["significant"])
        sig_both += int(f["significant"] and s["significant"] and same)
        rev = (f["significant"] or s["significant"]) and not same
        reversals += int(rev)
        if rev:
            rows.append(f"- reversal: {key[0]} round {key[1]}: full {f['diff_mean']:+.3f} ± "
                        f"{f['diff_half']:.3f}, short {s['diff_mean']:+.3f} ± "
                        f"{s['diff_half']:.3f}")
    tau = stats.kendalltau([v[0] for v in last_means.values()],
                           [v[1] for v in last_means.values()])
    out += ["", f"Paired differences against `{reference}` (pipeline − reference, per seed), "
            f"over {len(common)} (pipeline, round) cells: same sign under both schedules in "
            f"{agree}; significant under the full schedule in {sig_full}, of which the short "
            f"schedule finds {sig_both} with the same sign and significant; reversals (one "
            f"schedule significant, the other of the opposite sign): {reversals}.",
            *rows, "", f"Kendall's tau between the schedules' orderings of the {len(last_means)} "
            f"pipelines by mean test F1 at the last round: {tau.statistic:.2f} "
            f"(p = {tau.pvalue:.3f})."]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("short", type=Path, help="sweep folder run on the short schedule")
    ap.add_argument("full", type=Path, help="sweep folder run on the full schedule")
    ap.add_argument("--noise", default="symmetric0.4")
    ap.add_argument("--reference", default="ours+entropy")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    runs_short, runs_full = _load(args.short, args.noise), _load(args.full, args.noise)
    keep = ({(r["label"], r["seed"]) for r in runs_short}
            & {(r["label"], r["seed"]) for r in runs_full})
    cpu_short, cpu_full = _seconds(runs_short, keep), _seconds(runs_full, keep)
    lines = compare(rounds_frame(runs_short), rounds_frame(runs_full), args.noise,
                    args.reference)
    ratio = cpu_full / cpu_short if cpu_short else float("nan")
    lines += ["", f"Run time of the {len(keep)} runs present in both (sum of the runs' own "
              f"wall-clock seconds, one core each): full {cpu_full:.0f} s, short "
              f"{cpu_short:.0f} s, ratio {ratio:.1f}."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
