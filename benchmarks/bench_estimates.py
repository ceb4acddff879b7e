"""Does the 95 % interval of "wrong labels left" contain the true count?

Simulated finding campaigns on the bundled HAM10000 features (cached plain view): every round
the default campaign strategy's queue (:func:`labelrefine.active.finding.plan_round`: finding
picks plus a stratified random audit share) is answered with the true labels, and the
audit estimator (:func:`labelrefine.active.audit.remaining_wrong`) is compared with the true
number of wrong labels left among the unanswered training items -- for the whole training
set and for phase-1-like parts (here: the half of the items the first round's finder trusts
most, and the rest). Campaigns vary the noise model (symmetric / clinical), the rate
(5 / 10 / 20 / 40 %), the data size (all 5,984 images or a 300-image subset) and the seed
(each its own split and noise draw). Prints the coverage per setting and overall, and the
mean interval width relative to the true count.

    python benchmarks/bench_estimates.py [--seeds 0 1 2] [--rounds 3] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from bench_finding import subset

from labelrefine.active.audit import AUDIT_SHARE, AuditRound, remaining_wrong
from labelrefine.active.finding import plan_round
from labelrefine.config import NoiseConfig, SplitConfig, load_config
from labelrefine.data.formats import load_dataset
from labelrefine.data.prepare import prepare_data
from labelrefine.models.cache import embed_dataset

ROOT = Path(__file__).resolve().parents[1]


def campaign(x: np.ndarray, given: np.ndarray, true: np.ndarray, train: np.ndarray, c: int, *,
             budget: int, rounds: int, seed: int, audit_share: float,
             calibrate: bool = True) -> list[dict]:
    """One simulated campaign; a row per (round, part) with the estimate and the truth."""
    labels = given.copy()
    answer = np.full(given.size, -1, dtype=np.int64)
    asked = np.zeros(0, dtype=np.int64)
    audits: list[AuditRound] = []
    parts: dict[str, np.ndarray] = {}
    rows = []
    for r in range(rounds):
        plan = plan_round(x, labels, train, asked, budget, c, seed=seed * 1000 + r,
                          audit_share=audit_share)
        m = plan.wrong_probability(given)
        if r == 0:  # parts: the half the first finder trusts most, and the rest
            trusted = np.zeros(given.size, dtype=bool)
            s = plan.finding.scores
            trusted[train[s <= np.median(s)]] = True
            parts = {"whole": np.ones(given.size, dtype=bool), "trusted half": trusted,
                     "suspect half": ~trusted & np.isin(np.arange(given.size), train)}
        q = plan.queue
        audits.append(plan.audit_round(given, answer) if calibrate else
                      AuditRound(population=q.population, strata=q.strata, audit=q.audit,
                                 m=m[q.population]))
        picked = q.order
        answer[picked] = true[picked]  # a perfect expert
        labels[picked] = true[picked]
        asked = np.union1d(asked, picked)
        m_now = m  # every queued item is answered here, so no targeted pick is left open
        for part, dom in parts.items():
            est = remaining_wrong(audits, given=given, answer=answer, m_now=m_now,
                                  items=train, domain=dom)
            left = train[(answer[train] < 0) & dom[train]]
            truth = int(np.sum(given[left] != true[left]))
            if est is None:
                continue
            rows.append({"round": r + 1, "part": part, "truth": truth,
                         "estimate": est.estimate, "low": est.low, "high": est.high,
                         "covered": est.low <= truth <= est.high,
                         "found": int(np.sum(given[picked] != true[picked]))})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "ham10000-demo.yaml"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rates", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.4])
    ap.add_argument("--kinds", nargs="+", default=["symmetric", "clinical"])
    ap.add_argument("--sizes", nargs="+", default=["full", "subset"])
    ap.add_argument("--subset", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--audit-share", type=float, default=AUDIT_SHARE)
    ap.add_argument("--raw-m", action="store_true",
                    help="use the finder's raw 1 - p(given), not recalibrated on answers")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    cfg = load_config(args.config)
    ds = load_dataset(cfg.dataset)
    plain = np.asarray(embed_dataset(ds, cfg.encoder, seed=0, device="cpu").plain, np.float64)
    rows: list[dict] = []
    t0 = time.perf_counter()
    n_campaigns = 0
    for size in args.sizes:
        for kind in args.kinds:
            for rate in args.rates:
                for seed in args.seeds:
                    sub, x = subset(ds, plain, None if size == "full" else args.subset, seed)
                    d = prepare_data(sub, SplitConfig(seed=0, vary_seed=True),
                                     NoiseConfig(kind=kind, rate=rate), None, seed)
                    budget = max(10, round(0.022 * d.train_idx.size)) if size == "full" else 30
                    for row in campaign(x, d.given_labels, d.true_labels, d.train_idx,
                                        d.num_classes, budget=budget, rounds=args.rounds,
                                        seed=seed, audit_share=args.audit_share,
                                        calibrate=not args.raw_m):
                        rows.append({"size": size, "kind": kind, "rate": rate, "seed": seed,
                                     "budget": budget, **row})
                    n_campaigns += 1
                print(f"{size} {kind} {rate:g} ({time.perf_counter() - t0:.0f} s)", flush=True)
    text = report(rows, n_campaigns)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


def report(rows: list[dict], n_campaigns: int) -> str:
    import pandas as pd

    df = pd.DataFrame(rows)
    whole = df[df["part"] == "whole"]
    lines = [f"{n_campaigns} simulated campaigns, {len(whole)} whole-set estimates "
             f"(after each round), {len(df) - len(whole)} part estimates.", "",
             "| data | noise | estimates | covered | mean truth | mean estimate | "
             "mean interval width |", "|---|---|---|---|---|---|---|"]
    for (size, kind, rate), g in whole.groupby(["size", "kind", "rate"]):
        lines.append(f"| {size} | {kind} {rate:g} | {len(g)} | {g['covered'].mean():.2f} | "
                     f"{g['truth'].mean():.1f} | {g['estimate'].mean():.1f} | "
                     f"{(g['high'] - g['low']).mean():.1f} |")
    lines += ["", "| part | estimates | covered |", "|---|---|---|"]
    for part, g in df.groupby("part"):
        lines.append(f"| {part} | {len(g)} | {g['covered'].mean():.3f} |")
    lines.append("")
    lines.append(f"Overall coverage of the whole-set interval: {whole['covered'].mean():.3f}; "
                 f"every estimate: {df['covered'].mean():.3f}.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
