"""How well each ranking finds wrong labels over the whole training set.

On the bundled HAM10000 data (cached plain-view features of the demo's encoder) and on
``--subset``-image stratified subsets of it, for every noise setting (symmetric and clinical at
5 / 10 / 20 / 40 %) and seed (each seed its own split and noise draw), rank every training item
and print the share of wrong labels among the first ``k`` (precision@k) and the recall of
wrong labels at ``k = #wrong``. Rankings (all scored out of sample, :mod:`labelrefine.active.
finding`):

* ``cl``: cleanlab label quality on 5-fold cross-fitted L2 logistic probabilities;
* ``nbr``: neighbour label agreement (cosine, k = 10) on the same features, no model;
* ``find``: the library's default combination of the two (``finding_scores``);
* ``cl_fli``: cleanlab's ``find_label_issues`` on the same probabilities (its flagged items,
  ranked by self-confidence, then the rest by label quality);
* ``in_sample``: label quality of one logistic regression fitted on all items (the flaw the
  cross-fitting avoids), for reference.

    python benchmarks/bench_finding.py [--seeds 0 1 2 3 4] [--subset 300] [--out FILE.md]
    python benchmarks/bench_finding.py --grid --seeds 10 11 12 13 14   # choose the defaults

``--grid`` prints precision@k for a grid of C and neighbour weights (use development seeds,
never the reported ones).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from labelrefine.active import finding
from labelrefine.config import NoiseConfig, SplitConfig, load_config
from labelrefine.data.dataset import ImageDataset
from labelrefine.data.formats import load_dataset
from labelrefine.data.prepare import prepare_data
from labelrefine.data.splits import stratified_split
from labelrefine.models.cache import embed_dataset

ROOT = Path(__file__).resolve().parents[1]
RATES = (0.05, 0.1, 0.2, 0.4)
KINDS = ("symmetric", "clinical")


def subset(ds: ImageDataset, plain: np.ndarray, n: int | None,
           seed: int) -> tuple[ImageDataset, np.ndarray]:
    """A stratified ``n``-item subset of ``ds`` (the draw's ``seed``) and its rows of
    ``plain``; the whole data when ``n`` is None."""
    if n is None:
        return ds, plain
    y = np.asarray(ds.labels)
    keep = np.sort(stratified_split(y, (n / y.size, 1 - n / y.size), seed)[0])
    sub = ImageDataset(ids=tuple(ds.ids[i] for i in keep), labels=y[keep],
                       class_names=ds.class_names,
                       images=np.zeros((keep.size, 1, 1, 3), np.uint8), name="subset")
    return sub, plain[keep]


def cl_fli_order(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """cleanlab's ``find_label_issues`` flagged items first (ranked by self-confidence),
    then the rest by label quality."""
    from cleanlab.filter import find_label_issues

    flagged = np.asarray(find_label_issues(y, probs, return_indices_ranked_by="self_confidence"),
                         dtype=np.int64)
    rest = np.setdiff1d(np.arange(y.size), flagged)
    q = finding.label_quality(probs, y)
    return np.concatenate([flagged, rest[np.argsort(q[rest], kind="stable")]])


def rankings(x: np.ndarray, y: np.ndarray, c: int, seed: int,
             grid: bool) -> dict[str, np.ndarray]:
    """Item orders (most suspect first) of every ranking."""
    xs = finding.standardise(x)
    out: dict[str, np.ndarray] = {}
    agree = finding.neighbour_agreement(xs, y, c)
    out["nbr"] = np.argsort(agree, kind="stable")
    grid_cells = ([(creg, dims) for creg in (0.01, 0.003) for dims in (128, 256)] if grid
                  else [(finding.C_REG, finding.DIMS)])
    for creg, dims in grid_cells:
        p = finding.crossfit_probs(finding.project(xs, dims, seed), y, c, c=creg, seed=seed,
                                   standardize=False)
        tag = f"_C{creg:g}_d{dims}" if grid else ""
        for w in ((0.0, 0.25, 0.5, 0.75) if grid else (0.0, finding.NEIGHBOUR_WEIGHT)):
            s = finding.finding_scores(p, y, agreement=agree, weight=w)
            name = ("cl" if w == 0 else "find") + tag if not grid else f"w{w:g}{tag}"
            out[name] = np.argsort(-s, kind="stable")
        if not grid:
            out["cl_fli"] = cl_fli_order(p, y)
    if not grid:
        z = finding.project(xs, finding.DIMS, seed)
        clf = finding.fit_logistic(z, y, c, c=finding.C_REG)
        q = finding.label_quality(finding.predict_full(clf, z, c), y)
        out["in_sample"] = np.argsort(q, kind="stable")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "ham10000-demo.yaml"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--subset", type=int, default=300)
    ap.add_argument("--rates", type=float, nargs="+", default=list(RATES))
    ap.add_argument("--kinds", nargs="+", default=list(KINDS))
    ap.add_argument("--sizes", nargs="+", default=["full", "subset"])
    ap.add_argument("--grid", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    cfg = load_config(args.config)
    ds = load_dataset(cfg.dataset)
    fs = embed_dataset(ds, cfg.encoder, seed=0, device="cpu")
    plain = np.asarray(fs.plain, dtype=np.float64)
    rows: list[dict] = []
    t0 = time.perf_counter()
    for size in args.sizes:
        for kind in args.kinds:
            for rate in args.rates:
                for seed in args.seeds:
                    sub_ds, x = subset(ds, plain, None if size == "full" else args.subset,
                                       seed)
                    d = prepare_data(sub_ds, SplitConfig(seed=0, vary_seed=True),
                                     NoiseConfig(kind=kind, rate=rate), None, seed)
                    tr = d.train_idx
                    y, wrong = d.given_labels[tr], d.given_labels[tr] != d.true_labels[tr]
                    nw = int(wrong.sum())
                    ks = {"p@2%": max(1, round(0.022 * tr.size)),
                          "p@9%": max(1, round(0.088 * tr.size)), "recall": max(nw, 1)}
                    for name, order in rankings(x[tr], y, d.num_classes, seed,
                                                args.grid).items():
                        rows.append({"size": size, "kind": kind, "rate": rate, "seed": seed,
                                     "ranking": name, "n": int(tr.size), "wrong": nw,
                                     **{m: float(wrong[order[:k]].mean())
                                        for m, k in ks.items()}})
                print(f"{size} {kind} {rate:g}: done ({time.perf_counter() - t0:.0f} s)",
                      flush=True)
    text = table(rows) + "\n" + paired(rows, "find", ("cl", "nbr", "cl_fli"))
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


def paired(rows: list[dict], reference: str, others: tuple[str, ...]) -> str:
    """Per (data, noise): the paired per-seed difference other - ``reference`` of each
    metric, mean and 95 % t-interval; ``*`` when the interval excludes 0."""
    import pandas as pd
    from scipy import stats

    df = pd.DataFrame(rows)
    lines = [f"Paired per seed, other - {reference} (* = 95 % interval excludes 0):", "",
             "| data | noise | ranking | precision@2.2 % | precision@8.8 % | recall@#wrong |",
             "|---|---|---|---|---|---|"]
    for (size, kind, rate), g in df.groupby(["size", "kind", "rate"], sort=True):
        ref = g[g["ranking"] == reference].set_index("seed")
        for name in others:
            h = g[g["ranking"] == name].set_index("seed")
            if h.empty or ref.empty:
                continue
            seeds = h.index.intersection(ref.index)
            cells = []
            for m in ("p@2%", "p@9%", "recall"):
                d = (h.loc[seeds, m] - ref.loc[seeds, m]).to_numpy()
                hw = (stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
                      if d.size > 1 else float("nan"))
                cells.append(f"{d.mean():+.3f} ± {hw:.3f}" + ("*" if abs(d.mean()) > hw else ""))
            lines.append(f"| {size} | {kind} {rate:g} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def table(rows: list[dict]) -> str:
    """Mean and 95 % t-interval half-width over seeds per (size, noise, ranking)."""
    import pandas as pd
    from scipy import stats

    df = pd.DataFrame(rows)
    lines = ["| data | noise | ranking | n train | wrong | precision@2.2 % | precision@8.8 % |"
             " recall@#wrong |", "|---|---|---|---|---|---|---|---|"]
    for (size, kind, rate, name), g in df.groupby(["size", "kind", "rate", "ranking"],
                                                  sort=True):
        cells = []
        for m in ("p@2%", "p@9%", "recall"):
            v = g[m].to_numpy()
            h = (stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
                 if v.size > 1 else float("nan"))
            cells.append(f"{v.mean():.3f} ± {h:.3f}")
        lines.append(f"| {size} | {kind} {rate:g} | {name} | {g['n'].mean():.0f} | "
                     f"{g['wrong'].mean():.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
