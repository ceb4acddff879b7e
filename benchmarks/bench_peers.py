"""Label efficiency against the peers, and what each sampler buys, from finished sweep runs.

Reads the run files of one or more sweep folders (``runs/<name>/runs/*.json``, written by
``labelrefine run``, e.g. ``configs/ham10000-peers.yaml``) and prints, per noise setting
(and expert error rate):

* test macro-F1 per round, mean and 95 % t-interval over seeds, for every pipeline;
* paired per-seed differences ``reference - other`` per round (mean, 95 % t-interval, seeds;
  ``*`` where the interval excludes 0), against each ``--reference``;
* labels needed to reach the clean-label F1 - 0.01 (mean curve; "-" = never);
* for every sampler: query precision per round (share of queried labels that were wrong) and
  F1 gained per 100 labels (test F1 at the last round minus round 0, per 100 labels bought);
* test recall per class at the last round (rare classes: is any pipeline starving them?).

Usage: ``python benchmarks/bench_peers.py runs/ham10000-peers [runs/ham10000-peers-expert10]
[--reference ours_plus --reference ours+entropy] [--out results/peers/summary.md]``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from labelrefine.experiments.report import t_interval as report_interval

SAMPLER_LABELS = ("ours+random", "ours+entropy", "ours+margin", "ours+coreset", "ours+joint",
                  "ours+cl", "ours+combined", "ours_plus", "cleanlab_relabel",
                  "alc_coteaching", "ce_al+entropy")
REFERENCES = ("clean", "noisy_ce")


def t_interval(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95 % t-interval (nan half-width for one value)."""
    v = [x for x in values if x is not None and math.isfinite(x)]
    mean, _, half, _ = report_interval(np.asarray(v, dtype=float))
    return mean, half


def load(dirs: list[Path]) -> list[dict[str, Any]]:
    runs = []
    for d in dirs:
        files = sorted((d / "runs").glob("*.json"))
        if not files:
            raise SystemExit(f"error: no run files in {d / 'runs'}")
        for f in files:
            r = json.loads(f.read_text())
            r["_setting"] = f"{r['noise']} expert-error {_oracle_error(d):g}"
            runs.append(r)
    return runs


def _oracle_error(run_dir: Path) -> float:
    import yaml

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) if (
        run_dir / "config.yaml").is_file() else {}
    return float((cfg.get("active") or {}).get("oracle_error", 0.0))


def _fmt(mean: float, half: float, digits: int = 3) -> str:
    if not math.isfinite(mean):
        return "-"
    if not math.isfinite(half):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _at(run: dict[str, Any], rnd: int) -> dict[str, Any] | None:
    """The record of round ``rnd`` (by its number: al_only has no round 0)."""
    return run["_by_round"].get(rnd)


def summarize(runs: list[dict[str, Any]], references: list[str]) -> str:
    by_setting: dict[str, dict[str, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    for r in runs:
        r["_by_round"] = {int(rec["round"]): rec for rec in r["rounds"]}
        by_setting[r["_setting"]][r["label"]][int(r["seed"])] = r
    parts: list[str] = []
    for setting in sorted(by_setting):
        labels = by_setting[setting]
        parts.append(f"## {setting}\n")
        any_run = next(iter(next(iter(labels.values())).values()))
        names = any_run["class_names"]
        n_rounds = 1 + max(max(s["_by_round"]) for runs_ in labels.values()
                           for s in runs_.values())
        seeds = sorted({s for runs_ in labels.values() for s in runs_})
        parts.append(f"seeds: {', '.join(map(str, seeds))}; labels per round: "
                     f"{any_run['budget_per_round']}\n")
        # F1 per round
        rows = []
        for lab in sorted(labels):
            cells = [lab]
            for rnd in range(n_rounds):
                vals = [rec["test_f1"] for s in labels[lab].values()
                        if (rec := _at(s, rnd)) is not None]
                cells.append(_fmt(*t_interval(vals)) if vals else "")
            rows.append(cells)
        parts.append("### Test macro-F1 per round (mean ± 95 % CI)\n")
        parts.append(_table(["pipeline"] + [f"r{i}" for i in range(n_rounds)], rows) + "\n")
        # labels to reach clean - 0.01
        clean = labels.get("clean")
        if clean:
            target = float(np.mean([s["rounds"][0]["test_f1"] for s in clean.values()])) - 0.01
            rows = []
            for lab in sorted(labels):
                if lab in REFERENCES:
                    continue
                curve = defaultdict(list)
                for s in labels[lab].values():
                    for rec in s["rounds"]:
                        curve[rec["labels_bought"]].append(rec["test_f1"])
                reach = next((n for n in sorted(curve) if np.mean(curve[n]) >= target), None)
                rows.append([lab, "-" if reach is None else str(reach)])
            parts.append(f"### Labels to reach clean-label F1 - 0.01 = {target:.3f}\n")
            parts.append(_table(["pipeline", "labels"], rows) + "\n")
        # paired differences against each reference
        for reference in references:
            if reference not in labels:
                continue
            ref = labels[reference]
            rows = []
            for lab in sorted(labels):
                if lab == reference or lab in REFERENCES:
                    continue
                cells = [f"{reference} - {lab}"]
                for rnd in range(n_rounds):
                    pairs = [(_at(ref[s], rnd), _at(o, rnd)) for s, o in labels[lab].items()
                             if s in ref]
                    diffs = [a["test_f1"] - b["test_f1"] for a, b in pairs
                             if a is not None and b is not None]
                    if len(diffs) < 2:
                        cells.append("")
                        continue
                    m, h = t_interval(diffs)
                    star = "*" if abs(m) > h else ""
                    cells.append(f"{m:+.3f} ± {h:.3f}{star} (n={len(diffs)})")
                rows.append(cells)
            parts.append(f"### Paired differences of test F1 per round ({reference} minus "
                         "other; * = 95 % interval excludes 0)\n")
            parts.append(_table(["pair"] + [f"r{i}" for i in range(n_rounds)], rows) + "\n")
        # samplers: query precision per round and F1 gain per label
        rows = []
        for lab in SAMPLER_LABELS:
            if lab not in labels:
                continue
            cells = [lab]
            for rnd in range(1, n_rounds):
                vals = [rec["query_precision"] for s in labels[lab].values()
                        if (rec := _at(s, rnd)) is not None]
                cells.append(_fmt(*t_interval(vals), digits=2) if vals else "")
            gains = []
            for s in labels[lab].values():
                last, first = s["rounds"][-1], _at(s, 0)
                if last["labels_bought"] and first is not None:
                    gains.append(100 * (last["test_f1"] - first["test_f1"])
                                 / last["labels_bought"])
            cells.append(_fmt(*t_interval(gains), digits=4))
            rows.append(cells)
        if rows:
            parts.append("### Samplers: query precision per round, F1 gained per 100 labels\n")
            parts.append(_table(["sampler"] + [f"qp r{i}" for i in range(1, n_rounds)]
                                + ["ΔF1 / 100 labels"], rows) + "\n")
        # rare-class recall at the last round
        rows = []
        for lab in sorted(labels):
            recalls = []
            for s in labels[lab].values():
                rec = np.asarray(s["rounds"][-1].get("test_recall") or [], dtype=float)
                if rec.size:
                    recalls.append(rec)
            if not recalls:
                continue
            mean = np.mean(recalls, axis=0)
            rows.append([lab] + [f"{x:.2f}" for x in mean])
        parts.append("### Test recall per class at the last round (mean over seeds)\n")
        parts.append(_table(["pipeline"] + list(names), rows) + "\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dirs", nargs="+", type=Path, help="sweep folders (runs/<name>)")
    ap.add_argument("--reference", action="append", default=None,
                    help="label paired differences are taken against (repeatable; default "
                         "ours_plus and ours+entropy)")
    ap.add_argument("--out", type=Path, default=None, help="also write the tables here")
    args = ap.parse_args(argv)
    text = summarize(load(args.run_dirs), args.reference or ["ours_plus", "ours+entropy"])
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
