"""Turn a sweep folder into tables, a plot and one static HTML page.

``write_report(run_dir)`` reads ``config.yaml`` and ``runs/*.json`` (written by the runner) and
writes, next to them:

- ``f1_vs_labels.png``: test macro-F1 vs labels bought, mean and 95 % interval band per
  pipeline, one panel per noise setting; clean-label F1 dashed, noisy CE dotted;
- ``results.md`` / ``results.csv``: F1 per round (mean ± half-width of the 95 % t-interval
  over seeds), labels bought, labels needed to reach clean-label F1 − 0.01, query precision
  per round, and paired per-seed differences of every pipeline against ``ours`` (mean
  difference with its 95 % t-interval, wins / losses); rounds where a pipeline bought fewer
  labels than the others (its pool ran out) are marked;
- ``diagnostics.md`` / ``diagnostics.csv``: the paper's Table 1 for every phase-1 method that
  ran (per-class Recall and Guess % of the clean set), plus overall selection precision/recall;
- ``report.html``: the config, all tables and the embedded plot.

Std is the sample std over seeds (ddof = 1); intervals are Student-t 95 % intervals of the mean
(``mean ± t(0.975, n − 1) · std / sqrt(n)``), undefined for one seed.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy import stats as sps

from labelrefine.config import ConfigError, ExperimentConfig
from labelrefine.experiments.sweep import (
    atomic_write_bytes,
    atomic_write_text,
    load_runs,
    load_saved_config,
)
from labelrefine.metrics import labels_to_reach

#: Within this much of clean-label F1 counts as "reached" (docs/design.md, "Metrics").
REACH_TOLERANCE = 0.01
_REFERENCES = ("clean", "noisy_ce")


# ----------------------------------------------------------------------------- statistics


def t_interval(values: Sequence[float] | np.ndarray, level: float = 0.95
               ) -> tuple[float, float, float, int]:
    """``(mean, std (ddof 1), half-width of the t-interval, n)`` over the non-nan values.

    With one value the std and the half-width are nan; with none, everything is nan.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    n = int(v.size)
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0
    mean = float(v.mean())
    if n == 1:
        return mean, float("nan"), float("nan"), 1
    std = float(v.std(ddof=1))
    half = float(sps.t.ppf(0.5 + level / 2, n - 1) * std / math.sqrt(n))
    return mean, std, half, n


def paired_differences(frame: pd.DataFrame, noise: str, reference: str) -> pd.DataFrame:
    """Per (label, round): per-seed differences ``label − reference`` of test macro-F1.

    Seeds are paired (same seed: same split, noise and phase 1 where shared). A pipeline with
    a single record that buys no label (``clean``, ``noisy_ce``, ``cleanlab_prune``) is
    compared with that record at every round. Columns: ``label``, ``pipeline``, ``round``,
    ``diff_mean``, ``diff_half`` (95 % t half-width), ``lo``, ``hi``, ``wins`` / ``losses``
    (seeds where ``label`` is above / below the reference), ``n_pairs``, ``significant``
    (interval excludes 0).
    """
    cols = ["label", "pipeline", "round", "diff_mean", "diff_half", "lo", "hi", "wins",
            "losses", "n_pairs", "significant"]
    sub = frame[frame["noise"] == noise]
    ref = sub[sub["label"] == reference].set_index(["seed", "round"])["test_f1"]
    if ref.empty:
        return pd.DataFrame(columns=cols)
    ref_rounds = sorted(ref.index.get_level_values("round").unique())
    rows = []
    for label, g in sub[sub["label"] != reference].groupby("label", sort=False):
        # one record and no label bought (clean, noisy_ce, cleanlab_prune): compared with
        # the reference at every round
        single = g["round"].nunique() == 1 and bool((g["labels_bought"] == 0).all())
        rounds = ref_rounds if single else sorted(g["round"].unique())
        for r in rounds:
            hit = g if single else g[g["round"] == r]
            diffs = []
            for seed, val in zip(hit["seed"], hit["test_f1"], strict=True):
                if (seed, r) in ref.index:
                    diffs.append(float(val) - float(ref.loc[(seed, r)]))
            if not diffs:
                continue
            d = np.asarray(diffs)
            mean, _, half, n = t_interval(d)
            lo, hi = mean - half, mean + half
            rows.append({"label": label, "pipeline": g["pipeline"].iloc[0], "round": int(r),
                         "diff_mean": mean, "diff_half": half, "lo": lo, "hi": hi,
                         "wins": int(np.sum(d > 0)), "losses": int(np.sum(d < 0)),
                         "n_pairs": n, "significant": bool(n > 1 and (lo > 0 or hi < 0))})
    return pd.DataFrame(rows, columns=cols)


def reference_label(frame: pd.DataFrame, noise: str) -> str | None:
    """The ``ours`` run paired differences are taken against: the first ``ours`` label."""
    sub = frame[(frame["noise"] == noise) & (frame["pipeline"] == "ours")]
    return None if sub.empty else str(sub["label"].iloc[0])


def paired_table(diffs: pd.DataFrame) -> pd.DataFrame:
    """Rows: pipelines; columns: rounds; cells ``Δ ± half (wins/losses)``, ``*`` when the
    interval excludes 0."""
    if diffs.empty:
        return pd.DataFrame()
    rounds = sorted(diffs["round"].unique())
    rows = []
    for label, g in diffs.groupby("label", sort=False):
        row: dict[str, Any] = {"pipeline − ours": label}
        for r in rounds:
            hit = g[g["round"] == r]
            if hit.empty:
                row[f"r{r}"] = "—"
                continue
            h = hit.iloc[0]
            half = "" if math.isnan(h["diff_half"]) else f" ± {h['diff_half']:.3f}"
            star = "*" if h["significant"] else ""
            row[f"r{r}"] = (f"{h['diff_mean']:+.3f}{half}{star} "
                            f"({int(h['wins'])}/{int(h['losses'])})")
        rows.append(row)
    return pd.DataFrame(rows)


def budget_shortfalls(frame: pd.DataFrame, noise: str) -> pd.DataFrame:
    """(label, round, seed, labels_bought, most_bought) where a run bought fewer labels by a
    round than the most any run bought by that round (its pool ran out)."""
    sub = frame[(frame["noise"] == noise) & ~frame["pipeline"].isin(_REFERENCES)]
    if sub.empty:
        return pd.DataFrame(columns=["label", "round", "seed", "labels_bought", "most_bought"])
    # filter after assigning: assigning a Series to an empty frame would take the Series'
    # index and invent rows of NaN
    most = sub.groupby("round")["labels_bought"].transform("max")
    with_most = sub.assign(most_bought=most)
    short = with_most[with_most["labels_bought"] < with_most["most_bought"]]
    return short[["label", "round", "seed", "labels_bought", "most_bought"]].reset_index(
        drop=True)


# ----------------------------------------------------------------------------- frames


def rounds_frame(runs: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per (run, round): noise, pipeline, label, seed, round, labels, F1s, query prec."""
    rows = []
    for run in runs:
        for rec in run.get("rounds") or []:
            rows.append({
                "noise": run["noise"],
                "pipeline": run["pipeline"],
                "label": run["label"],
                "seed": run["seed"],
                "round": int(rec["round"]),
                "labels_bought": int(rec["labels_bought"]),
                "test_f1": _num(rec.get("test_f1")),
                "val_f1": _num(rec.get("val_f1")),
                "query_precision": _num(rec.get("query_precision")),
            })
    cols = ["noise", "pipeline", "label", "seed", "round", "labels_bought", "test_f1", "val_f1",
            "query_precision"]
    return pd.DataFrame(rows, columns=cols)


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


def curve_stats(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean / std / count over seeds per (noise, label, round)."""
    if frame.empty:
        return pd.DataFrame(columns=["noise", "label", "pipeline", "round", "labels_bought",
                                     "labels_bought_min", "f1_mean", "f1_std", "f1_ci",
                                     "n_seeds", "qp_mean"])
    g = frame.groupby(["noise", "label", "round"], sort=False)
    out = g.agg(
        pipeline=("pipeline", "first"),
        labels_bought=("labels_bought", "mean"),
        labels_bought_min=("labels_bought", "min"),
        f1_mean=("test_f1", "mean"),
        f1_std=("test_f1", lambda s: t_interval(s)[1]),
        f1_ci=("test_f1", lambda s: t_interval(s)[2]),
        n_seeds=("test_f1", "count"),
        qp_mean=("query_precision", "mean"),
    ).reset_index()
    return out


def reference_f1(stats: pd.DataFrame, noise: str, pipeline: str) -> float | None:
    """Mean test F1 of a reference pipeline (``clean`` / ``noisy_ce``) under one noise setting."""
    rows = stats[(stats["noise"] == noise) & (stats["pipeline"] == pipeline)]
    return None if rows.empty else float(rows["f1_mean"].iloc[0])


def labels_needed(stats: pd.DataFrame, noise: str, target: float) -> dict[str, int | None]:
    """Per pipeline: fewest labels at which the mean curve reaches ``target`` (None: never)."""
    out: dict[str, int | None] = {}
    sub = stats[(stats["noise"] == noise) & ~stats["pipeline"].isin(_REFERENCES)]
    for label, rows in sub.groupby("label", sort=False):
        rows = rows.sort_values("round")
        out[str(label)] = labels_to_reach(rows["labels_bought"].round().astype(int).tolist(),
                                          rows["f1_mean"].tolist(), target)
    return out


def _pm(mean: float, std: float, n: int, digits: int = 3) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    if n <= 1 or std is None or math.isnan(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def f1_table(stats: pd.DataFrame, noise: str, target: float | None) -> pd.DataFrame:
    """F1 per round (columns ``r (labels)``), mean ± std, plus labels needed and seed count."""
    sub = stats[stats["noise"] == noise]
    rounds = sorted(sub["round"].unique())
    cyc = sub[~sub["pipeline"].isin(_REFERENCES)]
    bought = {r: int(round(cyc[cyc["round"] == r]["labels_bought"].max()))
              for r in rounds if not cyc[cyc["round"] == r].empty}
    col = {r: f"r{r} ({bought[r]})" if r in bought else f"r{r}" for r in rounds}
    needed = labels_needed(stats, noise, target) if target is not None else {}
    rows = []
    for label, g in sub.groupby("label", sort=False):
        pipe = g["pipeline"].iloc[0]
        row: dict[str, Any] = {"pipeline": label}
        for r in rounds:
            hit = g[g["round"] == r]
            row[col[r]] = ("—" if hit.empty else
                           _pm(hit["f1_mean"].iloc[0], hit["f1_ci"].iloc[0],
                               int(hit["n_seeds"].iloc[0])))
            if (not hit.empty and pipe not in _REFERENCES and r in bought
                    and hit["labels_bought_min"].iloc[0] < bought[r]):
                row[col[r]] += f" †{int(hit['labels_bought_min'].iloc[0])}"
        if pipe in _REFERENCES:
            row["labels to reach clean − 0.01"] = "reference"
        elif target is None:
            row["labels to reach clean − 0.01"] = "no clean run"
        else:
            n = needed.get(str(label))
            best = g.loc[g["f1_mean"].idxmax()]
            row["labels to reach clean − 0.01"] = (
                str(n) if n is not None
                else f"not reached (best {best['f1_mean']:.3f} at {int(best['labels_bought'])})"
            )
        row["seeds"] = int(g["n_seeds"].max())
        rows.append(row)
    return pd.DataFrame(rows)


def query_precision_table(stats: pd.DataFrame, noise: str) -> pd.DataFrame:
    """Mean query precision per round (share of bought labels that were wrong)."""
    sub = stats[(stats["noise"] == noise) & ~stats["pipeline"].isin(_REFERENCES)
                & (stats["round"] > 0)]
    rounds = sorted(sub["round"].unique())
    rows = []
    for label, g in sub.groupby("label", sort=False):
        row: dict[str, Any] = {"pipeline": label}
        for r in rounds:
            hit = g[g["round"] == r]
            row[f"r{r}"] = "—" if hit.empty else f"{hit['qp_mean'].iloc[0]:.2f}"
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- diagnostics


def _lnl_name(method: str, mix: float) -> str:
    if method == "ce":
        return "CE (small loss)"
    if method == "coteaching" or mix == 0:
        return "Co-teaching"
    return f"CT_VOG m={mix:g}"


def diagnostics_frame(runs: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Per-class phase-1 diagnostics, one row per (noise, LNL method, seed, class).

    Runs that shared one phase-1 computation contribute it once.
    """
    rows, seen = [], set()
    for run in runs:
        p1 = run.get("phase1")
        if not p1 or not p1.get("diagnostics"):
            continue
        lnl = _lnl_name(p1["method"], p1.get("mix", 0.0))
        ident = (run["noise"], lnl, run["seed"])
        if ident in seen:
            continue
        seen.add(ident)
        for d in p1["diagnostics"]:
            rows.append({
                "noise": run["noise"], "lnl": lnl, "seed": run["seed"], "class": d["class"],
                "n_given": d.get("n_given"), "n_correct": d.get("n_correct"),
                "n_selected": d.get("n_selected"), "recall": _num(d.get("recall")),
                "guess_pct": _num(d.get("guess_pct")),
                "selection_precision": p1.get("selection_precision"),
                "selection_recall": p1.get("selection_recall"),
                "clean_size": p1.get("n_clean"), "phase1_test_f1": _num(p1.get("test_f1")),
            })
    return pd.DataFrame(rows)


def _seed_cell(values: pd.Series, digits: int) -> str:
    """Mean ± std over the seeds where the value is defined; says so when some are not
    (Guess % is undefined for a seed whose clean set holds no item given that class)."""
    ok = values.dropna()
    mean, _, half, n = t_interval(ok)
    cell = _pm(mean, half, n, digits)
    if 0 < len(ok) < len(values):
        cell += f" ({len(ok)}/{len(values)} seeds)"
    return cell


def diagnostics_tables(diag: pd.DataFrame, noise: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-class Recall / Guess % table, overall table) for one noise setting."""
    sub = diag[diag["noise"] == noise]
    methods = list(dict.fromkeys(sub["lnl"]))
    classes = list(dict.fromkeys(sub["class"]))
    per_class = []
    for cls in classes:
        row: dict[str, Any] = {"class": cls}
        for m in methods:
            g = sub[(sub["lnl"] == m) & (sub["class"] == cls)]
            row[f"{m} Recall"] = _seed_cell(g["recall"], 2)
            row[f"{m} Guess %"] = _seed_cell(g["guess_pct"], 1)
        per_class.append(row)
    overall = []
    for m in methods:
        g = sub[sub["lnl"] == m].drop_duplicates("seed")
        n = len(g)
        def cell(col: str, digits: int = 3, g: pd.DataFrame = g) -> str:
            mean, _, half, k = t_interval(g[col].astype(float))
            return _pm(mean, half, k, digits)

        overall.append({
            "LNL": m,
            "clean set size": cell("clean_size", 0),
            "selection precision": cell("selection_precision"),
            "selection recall": cell("selection_recall"),
            "phase-1 test F1": cell("phase1_test_f1"),
            "seeds": n,
        })
    return pd.DataFrame(per_class), pd.DataFrame(overall)


# ----------------------------------------------------------------------------- rendering


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table (``|`` in cells escaped)."""
    if df.empty:
        return "_(no rows)_\n"
    cells = [[str(c) for c in df.columns]] + [[str(v) for v in row] for row in df.itertuples(
        index=False)]
    cells = [[c.replace("|", "\\|") for c in row] for row in cells]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(cells[0])]
    lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
    return "\n".join(lines) + "\n"


def plot_curves(stats: pd.DataFrame, noises: Sequence[str]) -> bytes:
    """PNG bytes: F1 vs labels bought, one panel per noise setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(1, len(noises))
    fig, axes = plt.subplots(1, n, figsize=(6.0 * n + 2.2, 4.6), squeeze=False)
    labels = [lab for lab in dict.fromkeys(stats["label"])
              if stats[stats["label"] == lab]["pipeline"].iloc[0] not in _REFERENCES]
    cmap = plt.get_cmap("tab10")
    colors = {lab: cmap(i % 10) for i, lab in enumerate(labels)}
    for ax, noise in zip(axes[0], noises, strict=False):
        sub = stats[stats["noise"] == noise]
        for lab in labels:
            g = sub[sub["label"] == lab].sort_values("round")
            if g.empty:
                continue
            x, y = g["labels_bought"].to_numpy(), g["f1_mean"].to_numpy()
            s = np.nan_to_num(g["f1_ci"].to_numpy())
            style = "-" if g["pipeline"].iloc[0] == "ours" else "--"
            ax.plot(x, y, style, marker="o", ms=3.5, color=colors[lab], label=lab, lw=1.6)
            ax.fill_between(x, y - s, y + s, color=colors[lab], alpha=0.15, lw=0)
        clean = reference_f1(stats, noise, "clean")
        if clean is not None:
            ax.axhline(clean, color="black", ls="--", lw=1.2, label=f"clean labels ({clean:.3f})")
        noisy = reference_f1(stats, noise, "noisy_ce")
        if noisy is not None:
            ax.axhline(noisy, color="grey", ls=":", lw=1.2, label=f"noisy CE ({noisy:.3f})")
        ax.set_title(noise)
        ax.set_xlabel("labels bought (relabeled by the oracle)")
        ax.set_ylabel("test macro-F1 (best-val epoch)")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                      borderaxespad=0.0)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _df_html(df: pd.DataFrame) -> str:
    return df.to_html(index=False, border=0, classes="t", na_rep="—", escape=True)


_CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
color:#222}table.t{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}
table.t th,table.t td{border:1px solid #ccc;padding:3px 8px;text-align:right}
table.t td:first-child,table.t th:first-child{text-align:left}pre{background:#f6f6f6;
padding:1em;overflow:auto;font-size:.8em}img{max-width:100%}"""


def write_report(run_dir: str | Path) -> dict[str, Path]:
    """Write every report file into ``run_dir``; returns their paths by name."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"run folder not found: {run_dir}")
    cfg = load_saved_config(run_dir)
    runs, missing = load_runs(cfg, run_dir)
    if not runs:
        raise ConfigError(f"{run_dir}: no finished runs yet; run 'labelrefine run' first")
    frame = rounds_frame(runs)
    stats = curve_stats(frame)
    noises = list(dict.fromkeys(r["noise"] for r in runs))
    diag = diagnostics_frame(runs)

    md = [f"# Results: {cfg.name}\n",
          f"{len(runs)} finished runs ({len(missing)} planned runs missing). Test macro-F1 of "
          "the selected model, mean ± half-width of the 95 % t-interval over seeds (std with "
          "ddof = 1). Column `rN (L)`: round N, L labels bought so far; `†K`: some seed of this "
          "pipeline had bought only K labels by then (its pool ran out). `clean` trains on "
          "true labels (upper bound), `noisy_ce` on the noisy labels (no cleaning). Paired "
          "differences: per seed, pipeline minus `ours` at the same round; mean ± 95 % "
          "half-width, `*` when the interval excludes 0, (wins/losses) of the pipeline.\n"]
    html_parts = []
    csv_rows = []
    for noise in noises:
        clean = reference_f1(stats, noise, "clean")
        target = None if clean is None else clean - REACH_TOLERANCE
        budget = next(r["budget_per_round"] for r in runs if r["noise"] == noise)
        n_train = next(r["n_train"] for r in runs if r["noise"] == noise)
        head = (f"## {noise}\n\nTraining set {n_train} items, {budget} labels bought per round "
                f"({100 * budget / n_train:.1f} %)."
                + ("" if clean is None else
                   f" Clean-label F1 {clean:.3f}; target {target:.3f}.") + "\n")
        t_f1 = f1_table(stats, noise, target)
        t_qp = query_precision_table(stats, noise)
        ref = reference_label(frame, noise)
        diffs = paired_differences(frame, noise, ref) if ref is not None else pd.DataFrame()
        t_pd = paired_table(diffs)
        short = budget_shortfalls(frame, noise)
        md += [head, "### Test macro-F1 per round\n", markdown_table(t_f1),
               "### Query precision per round (share of bought labels that were wrong)\n",
               markdown_table(t_qp)]
        html_parts += [f"<h2>{html.escape(noise)}</h2><p>{html.escape(head.split(chr(10), 2)[2])}"
                       "</p>", "<h3>Test macro-F1 per round</h3>", _df_html(t_f1),
                       "<h3>Query precision per round</h3>", _df_html(t_qp)]
        if ref is not None and not t_pd.empty:
            title = f"Paired differences against `{ref}` (test macro-F1, per seed)"
            md += [f"### {title}\n", markdown_table(t_pd)]
            html_parts += [f"<h3>{html.escape(title)}</h3>", _df_html(t_pd)]
        if not short.empty:
            note = ("Budgets differ: " + "; ".join(
                f"{r.label} seed {r.seed} bought {r.labels_bought} of {r.most_bought} labels by "
                f"round {r.round}" for r in short.itertuples()) + " (pool exhausted).\n")
            md.append(note)
            html_parts.append(f"<p>{html.escape(note)}</p>")
        sub = stats[stats["noise"] == noise]
        csv_rows.append(sub)
    if missing:
        md.append("Missing runs (not finished or made with other settings): "
                  + ", ".join(f"`{m}`" for m in missing) + "\n")

    diag_md = [f"# Phase-1 diagnostics: {cfg.name}\n",
               "Per class c, with S the clean set and C_c the training items whose given label "
               "is c and correct: Recall = |S ∩ C_c| / |C_c|, Guess % = 100 |S ∩ C_c| / "
               "|S ∩ {given = c}| (the paper's Table 1). Mean ± std over seeds.\n"]
    diag_html = []
    for noise in noises:
        if diag.empty or noise not in set(diag["noise"]):
            continue
        per_class, overall = diagnostics_tables(diag, noise)
        diag_md += [f"## {noise}\n", markdown_table(overall), markdown_table(per_class)]
        diag_html += [f"<h3>{html.escape(noise)}</h3>", _df_html(overall), _df_html(per_class)]

    png = plot_curves(stats, noises)
    paths = {name: run_dir / name for name in
             ("f1_vs_labels.png", "results.md", "results.csv", "diagnostics.md",
              "diagnostics.csv", "report.html")}
    atomic_write_bytes(paths["f1_vs_labels.png"], png)
    atomic_write_text(paths["results.md"], "\n".join(md))
    atomic_write_text(paths["results.csv"], pd.concat(csv_rows).to_csv(index=False))
    atomic_write_text(paths["diagnostics.md"], "\n".join(diag_md))
    atomic_write_text(paths["diagnostics.csv"], diag.to_csv(index=False))
    atomic_write_text(paths["report.html"],
                      _html_page(cfg, runs, missing, png, html_parts, diag_html))
    return paths


def _html_page(cfg: ExperimentConfig, runs: Sequence[dict[str, Any]], missing: Sequence[str],
               png: bytes, parts: Sequence[str], diag: Sequence[str]) -> str:
    img = base64.b64encode(png).decode()
    total = sum(r.get("timings", {}).get("total_s", 0.0) for r in runs)
    cfg_yaml = yaml.safe_dump(cfg.model_dump(mode="json", by_alias=True), sort_keys=False)
    body = [
        f"<h1>labelrefine report: {html.escape(cfg.name)}</h1>",
        f"<p>{len(runs)} finished runs, {len(missing)} missing; summed run time "
        f"{total / 60:.1f} min. Test macro-F1 of the selected model, mean ± half-width of the "
        "95 % t-interval over seeds (std with ddof = 1).</p>",
        f'<img alt="test macro-F1 vs labels bought" src="data:image/png;base64,{img}">',
        *parts,
        "<h2>Phase-1 diagnostics (Table 1)</h2>" if diag else "",
        *diag,
        "<h2>Configuration</h2>",
        f"<pre>{html.escape(cfg_yaml)}</pre>",
    ]
    return ("<!doctype html><html><head><meta charset='utf-8'><title>labelrefine report: "
            f"{html.escape(cfg.name)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
