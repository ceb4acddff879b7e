"""A new team's first campaign with the defaults: does it find wrong labels, and is its count
of what is left true?

For each draw: a stratified 300-image subset of the bundled HAM10000 data (the draw's seed),
15 % of its labels flipped to another class, then the commands a team runs with their defaults
(``campaign init``; ``campaign step`` with ``--noise-rate 0.15 --budget 30``; every queued item
answered with its true label by one expert; status; a second step and its answers; status). It
prints, per draw and round, the queue's precision (share of queued labels that were wrong,
against a 15 % base rate) and the status headline's estimate of the wrong training labels left
with its 95 % interval next to the true number.

    python benchmarks/bench_small_campaign.py [--draws 0 1 2] [--strategy find]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
HAM = ROOT / "data" / "ham10000"


def draw(seed: int, n: int, flip: float, work: Path) -> tuple[Path, dict[str, str]]:
    """A labels CSV of ``n`` bundled images with ``flip`` of them relabelled; the truth."""
    from labelrefine.data.splits import stratified_split

    labels = pd.read_csv(HAM / "labels.csv")
    y = pd.factorize(labels["dx"], sort=True)[0]
    keep = np.sort(stratified_split(y, (n / y.size, 1 - n / y.size), seed)[0])
    sub = labels.iloc[keep].reset_index(drop=True)
    classes = sorted(labels["dx"].unique())
    rng = np.random.default_rng(seed)
    given = sub["dx"].to_numpy().copy()
    for i in rng.choice(len(given), size=int(round(flip * len(given))), replace=False):
        given[i] = rng.choice([c for c in classes if c != given[i]])
    csv = work / "labels.csv"
    pd.DataFrame({"image_id": sub["image_id"], "dx": given}).to_csv(csv, index=False)
    return csv, dict(zip(sub["image_id"], sub["dx"], strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--flip", type=float, default=0.15)
    ap.add_argument("--budget", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--strategy", default=None, help="default: the campaign default")
    args = ap.parse_args()

    from labelrefine.campaign.create import init_campaign
    from labelrefine.campaign.ledger import Ledger
    from labelrefine.campaign.status import campaign_status, headline
    from labelrefine.campaign.step import StepOptions, run_step

    rows = []
    for seed in args.draws:
        work = Path(tempfile.mkdtemp(prefix="small-campaign-"))
        csv, truth = draw(seed, args.n, args.flip, work)
        db = work / "c.db"
        init_campaign(HAM / "images", csv, db, seed=seed)
        for rnd in range(args.rounds):
            t0 = time.perf_counter()
            run_step(db, StepOptions(budget=args.budget, noise_rate=args.flip, device="cpu",
                                     strategy=args.strategy))
            ledger = Ledger(db)
            items = ledger.items()
            names = ledger.class_names
            q = ledger.queue(rnd)
            keys = items["key"].to_numpy()
            given = items["given_label"].to_numpy()
            true = np.array([names.index(truth[k]) for k in keys])
            q_items = q["item"].to_numpy(dtype=np.int64)
            precision = float(np.mean(given[q_items] != true[q_items]))
            for i, key in enumerate(q_items):
                ledger.submit(int(key), int(true[key]), annotator="expert",
                              submission_id=f"r{rnd}-{i}", seconds=20)
            st = campaign_status(ledger)
            train = items["role"].to_numpy() == "train"
            answered = np.zeros(len(items), dtype=bool)
            answered[ledger.final_answers()["item"].to_numpy(dtype=np.int64)] = True
            left = train & ~answered
            truth_left = int(np.sum(given[left] != true[left]))
            w = st.wrong_left
            rows.append({"draw": seed, "round": rnd, "queued": len(q_items),
                         "queue_precision": precision,
                         "base_rate": float(np.mean(given[train] != true[train])),
                         "truth_left": truth_left,
                         "estimate": None if w is None else w["estimate"],
                         "low": None if w is None else w["low"],
                         "high": None if w is None else w["high"],
                         "covered": None if w is None else w["low"] <= truth_left <= w["high"],
                         "seconds": time.perf_counter() - t0})
            print(f"draw {seed} round {rnd}: queue precision {precision:.2f}; {headline(st)}; "
                  f"true {truth_left}", flush=True)
    df = pd.DataFrame(rows)
    print()
    cols = list(df.columns)
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in df.itertuples(index=False):
        print("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in r)
              + " |")
    r0 = df[df["round"] == 0]
    print(f"\nround-1 queue precision, mean over {len(r0)} draws: "
          f"{r0['queue_precision'].mean():.2f} (base rate {r0['base_rate'].mean():.2f}); "
          f"intervals holding the true count: {int(df['covered'].sum())} / "
          f"{int(df['covered'].notna().sum())}")


if __name__ == "__main__":
    main()
