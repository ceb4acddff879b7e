"""``labelrefine find --pred-probs`` against cleanlab's ``find_label_issues`` on the same
probabilities.

On the bundled HAM10000 data (cached plain-view features of the demo's encoder), for each seed
(its own split and noise draw): 20 % symmetric noise injected into the training split, 5-fold
cross-fitted logistic probabilities of the training items (``finding.crossfit_probs`` on the
first 128 principal components of the standardised features, ``C`` as ``find --features``),
then

* ``find --pred-probs``: the command run on those probabilities (written as a CSV keyed by
  image id), ranked by its default, cleanlab's self-confidence label quality ``p_i[y_i]``;
* ``cleanlab``: ``cleanlab.filter.find_label_issues(labels, pred_probs,
  return_indices_ranked_by="self_confidence")`` on the same probabilities -- its flagged
  items in its order, then (where ``k`` exceeds what it flags) the rest by self-confidence;
* ``find --pred-probs --quality normalized_margin``: the same, ranked by the normalised
  margin (the campaigns' score on their own probabilities);
* ``find --features``: the command on the features themselves (its own cross-fitting, with
  the neighbour signal), for reference.

Prints precision@k (the share of wrong labels among the first ``k``) for ``k`` = 2.2 % and
8.8 % of the training items and ``k`` = #wrong, the mean over seeds and the paired difference
against cleanlab with its 95 % t-interval, and the estimate of wrong labels against the truth.

    python benchmarks/bench_find_cli.py [--seeds 0 1 2 3 4] [--out results/find/precision.md]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from labelrefine import finder
from labelrefine.active import finding
from labelrefine.cli import app
from labelrefine.cli.find import estimate_path
from labelrefine.config import NoiseConfig, SplitConfig, load_config
from labelrefine.data.formats import load_dataset
from labelrefine.data.prepare import prepare_data
from labelrefine.models.cache import embed_dataset

ROOT = Path(__file__).resolve().parents[1]
KS = {"p@2.2%": 0.022, "p@8.8%": 0.088}


def cleanlab_order(probs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int]:
    """cleanlab's flagged items ranked by self-confidence, then the rest by self-confidence;
    and how many it flagged."""
    from cleanlab.filter import find_label_issues

    flagged = np.asarray(find_label_issues(y, probs, return_indices_ranked_by="self_confidence"),
                         dtype=np.int64)
    rest = np.setdiff1d(np.arange(y.size), flagged)
    sc = probs[np.arange(y.size), y]
    return np.concatenate([flagged, rest[np.argsort(sc[rest], kind="stable")]]), flagged.size


def cli_order(args: list[str], out: Path, ids: list[str]) -> tuple[np.ndarray, dict]:
    """Positions (in ``ids``) of ``labelrefine find``'s ranking, and its estimate."""
    res = CliRunner().invoke(app, ["find", *args, "--out", str(out)], catch_exceptions=False)
    if res.exit_code != 0:
        raise SystemExit(res.output)
    pos = {item: i for i, item in enumerate(ids)}
    ranked = pd.read_csv(out, dtype={"id": str})
    estimate = json.loads(estimate_path(out).read_text())
    return np.array([pos[i] for i in ranked["id"]], dtype=np.int64), estimate


def precision(order: np.ndarray, wrong: np.ndarray, ks: dict[str, int]) -> dict[str, float]:
    return {m: float(wrong[order[:k]].mean()) for m, k in ks.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "ham10000-demo.yaml"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--rate", type=float, default=0.2)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    cfg = load_config(args.config)
    ds = load_dataset(cfg.dataset)
    plain = np.asarray(embed_dataset(ds, cfg.encoder, seed=0, device="cpu").plain, np.float32)
    names = list(ds.class_names)
    rows: list[dict] = []
    t0 = time.perf_counter()
    for seed in args.seeds:
        d = prepare_data(ds, SplitConfig(seed=0, vary_seed=True),
                         NoiseConfig(kind="symmetric", rate=args.rate), None, seed)
        tr = d.train_idx
        y, wrong = d.given_labels[tr], d.given_labels[tr] != d.true_labels[tr]
        ids = [ds.ids[i] for i in tr]
        x = plain[tr]
        xs = finding.standardise(x)
        probs = finding.crossfit_probs(finding.project(xs, finding.DIMS, seed), y, len(names),
                                       c=finder.C_REG, seed=seed, standardize=False)
        nw = int(wrong.sum())
        ks = {m: max(1, round(f * tr.size)) for m, f in KS.items()} | {"p@#wrong": max(1, nw)}
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            pd.DataFrame({"image_id": ids, "dx": [names[v] for v in y]}).to_csv(
                root / "labels.csv", index=False)
            frame = pd.DataFrame(probs, columns=names)
            frame.insert(0, "image_id", ids)
            frame.to_csv(root / "probs.csv", index=False, float_format="%.17g")
            np.savez(root / "features.npz", ids=np.asarray(ids), features=x)
            base = ["--labels", str(root / "labels.csv"), "--seed", str(seed)]
            ours, est = cli_order(base + ["--pred-probs", str(root / "probs.csv")],
                                  root / "p.csv", ids)
            margin, _ = cli_order(base + ["--pred-probs", str(root / "probs.csv"), "--quality",
                                          "normalized_margin"], root / "s.csv", ids)
            feat, est_f = cli_order(base + ["--features", str(root / "features.npz")],
                                    root / "f.csv", ids)
        cl, flagged = cleanlab_order(probs, y)
        for name, order, e in (("find --pred-probs", ours, est["estimate"]),
                               ("find --pred-probs --quality normalized_margin", margin,
                                est["estimate"]),
                               ("cleanlab find_label_issues", cl, float("nan")),
                               ("find --features", feat, est_f["estimate"])):
            rows.append({"seed": seed, "ranking": name, "n": int(tr.size), "wrong": nw,
                         "flagged": flagged, "estimate": e, **precision(order, wrong, ks)})
        print(f"seed {seed}: done ({time.perf_counter() - t0:.0f} s)", flush=True)
    text = table(rows)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


def _t(v: np.ndarray) -> tuple[float, float]:
    from scipy import stats

    h = (stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
         if v.size > 1 else float("nan"))
    return float(v.mean()), float(h)


def table(rows: list[dict]) -> str:
    """Precision@k means, paired differences against cleanlab with 95 % t-intervals, and the
    estimates against the truth."""
    df = pd.DataFrame(rows)
    metrics = ["p@2.2%", "p@8.8%", "p@#wrong"]
    base = df[df["ranking"] == "cleanlab find_label_issues"].set_index("seed")
    seeds = sorted(df["seed"].unique())
    n, nw = df["n"].mean(), df["wrong"].mean()
    lines = [f"{len(seeds)} seeds ({', '.join(map(str, seeds))}); {n:.0f} training items, "
             f"{nw:.0f} wrong labels on average; cleanlab flags "
             f"{base['flagged'].mean():.0f} on average.", "",
             "| ranking | " + " | ".join(f"precision@{m[2:]}" for m in metrics)
             + " | " + " | ".join(f"Δ {m[2:]} vs cleanlab (95 % CI)" for m in metrics) + " |",
             "|---" * (1 + 2 * len(metrics)) + "|"]
    for name, g in df.groupby("ranking", sort=False):
        g = g.set_index("seed").loc[seeds]
        cells = [f"{g[m].mean():.3f}" for m in metrics]
        for m in metrics:
            if name == "cleanlab find_label_issues":
                cells.append("—")
                continue
            mean, h = _t((g[m] - base.loc[seeds, m]).to_numpy())
            cells.append(f"{mean:+.3f} [{mean - h:+.3f}, {mean + h:+.3f}]")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "| ranking | estimated wrong (mean) | true wrong (mean) | estimate − truth "
              "(95 % CI) |", "|---|---|---|---|"]
    for name, g in df.groupby("ranking", sort=False):
        if name == "cleanlab find_label_issues" or "--quality" in name:
            continue
        mean, h = _t((g["estimate"] - g["wrong"]).to_numpy(dtype=float))
        lines.append(f"| {name} | {g['estimate'].mean():.0f} | {g['wrong'].mean():.0f} | "
                     f"{mean:+.0f} [{mean - h:+.0f}, {mean + h:+.0f}] |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
