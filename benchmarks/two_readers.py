"""A scripted two-reader campaign on the bundled HAM10000 subset, end to end over HTTP.

Takes the first ``--items`` bundled images, flips ``--flip`` of their labels (seeded; the bundled
labels serve as the truth), runs ``campaign init`` and one real ``campaign step`` (embedding +
phase 1), turns on double reading, and lets two scripted readers answer the whole queue through
the web API with their own tokens: ``ann`` is right with probability 0.9 and ``bob`` with 0.8
(a wrong answer is a random other class); their reading times are drawn from log-normal
distributions (median 20 s and 30 s) and sent as the answers' seconds. An adjudicator then decides
every conflict with the true label. Prints what ``campaign status`` reports: agreement (Cohen's
kappa), conflicts, expert minutes per round and per answer class, the share of queried labels
that were wrong (95 % Wilson interval) and the stopping advice.

The readers are simulated, so the agreement and time figures describe this script's readers;
what the run measures is that the campaign records, counts and reports them correctly.

    .venv/bin/python benchmarks/two_readers.py [--items 300] [--budget 40]

The screenshots in docs/ come from ``benchmarks/screenshots.py``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from screenshots import free_port, wait  # benchmarks/ is on the path of a script run here

REPO = Path(__file__).resolve().parents[1]
HAM = REPO / "data" / "ham10000"
ADMIN = "bench-admin-token"
SERVE = (
    "import sys, uvicorn; from labelrefine.web.app import create_app; "
    "uvicorn.run(create_app(sys.argv[1], token=sys.argv[2]), host='127.0.0.1', "
    "port=int(sys.argv[3]), log_level='warning')"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=300)
    ap.add_argument("--flip", type=float, default=0.15)
    ap.add_argument("--budget", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from labelrefine.campaign.create import init_campaign
    from labelrefine.campaign.ledger import Ledger
    from labelrefine.campaign.status import campaign_status
    from labelrefine.campaign.step import StepOptions, run_step

    rng = np.random.default_rng(args.seed)
    labels = pd.read_csv(HAM / "labels.csv").head(args.items)
    classes = sorted(labels["dx"].unique())
    truth = dict(zip(labels["image_id"], labels["dx"], strict=True))
    given = labels["dx"].to_numpy().copy()
    flip = rng.choice(len(given), size=int(args.flip * len(given)), replace=False)
    for i in flip:
        given[i] = rng.choice([c for c in classes if c != given[i]])
    work = Path(tempfile.mkdtemp(prefix="two-readers-"))
    csv = work / "labels.csv"
    pd.DataFrame({"image_id": labels["image_id"], "dx": given}).to_csv(csv, index=False)
    db = work / "derm.db"
    t0 = time.perf_counter()
    init_campaign(HAM / "images", csv, db, classes=classes, seed=args.seed)
    res = run_step(
        db,
        StepOptions(budget=args.budget, seed=args.seed, views=1, epochs=15, device="cpu"),
    )
    step_s = time.perf_counter() - t0
    ledger = Ledger(db)
    ledger.configure(double_read_share=1.0)
    tokens = {name: ledger.add_reader(name) for name in ("ann", "bob")}
    tokens["chief"] = ledger.add_reader("chief", role="adjudicator")
    accuracy = {"ann": 0.9, "bob": 0.8}
    median_s = {"ann": 20.0, "bob": 30.0}

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(db), ADMIN, str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait(url)
        for name in ("ann", "bob"):
            with httpx.Client(base_url=url, timeout=30,
                              headers={"Authorization": f"Bearer {tokens[name]}"}) as http:
                while True:
                    item = http.get("/api/next").json()["item"]
                    if item is None:
                        break
                    right = truth[item["item"]]
                    answer = right if rng.random() < accuracy[name] else str(
                        rng.choice([c for c in classes if c != right]))
                    secs = float(rng.lognormal(np.log(median_s[name]), 0.5))
                    r = http.post("/api/answer", json={"idx": item["idx"], "label": answer,
                                                       "submission_id": uuid.uuid4().hex,
                                                       "seconds": round(secs, 1)})
                    r.raise_for_status()
        with httpx.Client(base_url=url, timeout=30,
                          headers={"Authorization": f"Bearer {tokens['chief']}"}) as http:
            for c in http.get("/api/conflicts").json()["conflicts"]:
                http.post("/api/adjudicate", json={
                    "idx": c["idx"], "label": truth[c["item"]], "submission_id": uuid.uuid4().hex,
                    "seconds": round(float(rng.lognormal(np.log(45.0), 0.3)), 1),
                }).raise_for_status()
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    st = campaign_status(ledger)
    ag = st.agreement
    row = st.per_round.iloc[0]
    final = ledger.items().set_index("key")
    queued = ledger.queue(0)
    correct = sum(ledger.class_names[int(final.loc[k, "current_label"])] == truth[k]
                  for k in queued["key"])
    print(f"campaign: {args.items} bundled images, {len(flip)} labels flipped; init + first step "
          f"{step_s:.0f} s on CPU; queue {res.queued} items, every one read by both readers")
    print("readers: " + ", ".join(f"{k} {v['answers']} answers {v['minutes']:.1f} min"
                                   for k, v in st.readers.items() if v["answers"]))
    print(f"agreement: {ag['items']} double-read items, {100 * ag['observed']:.0f}% identical, "
          f"Cohen's kappa {ag['kappa']:.2f}")
    print(f"conflicts: {st.adjudicated} adjudicated, {st.open_conflicts} open")
    print(f"expert time: {st.expert_minutes:.1f} min in round 0 "
          f"({st.seconds_per_answer:.1f} s per answer)")
    print(f"queried labels that were wrong: {row['given_wrong']}/{row['labeled']} = "
          f"{100 * row['query_precision']:.0f}% (95% interval {100 * row['wrong_low']:.0f}-"
          f"{100 * row['wrong_high']:.0f}%)")
    print(f"final labels of the queue correct: {correct}/{len(queued)}")
    print(f"advice: {st.advice}")


if __name__ == "__main__":
    main()
