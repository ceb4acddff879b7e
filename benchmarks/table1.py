"""Table 1 on the bundled HAM10000 data: CE small-loss vs Co-teaching vs CT_VOG (phase 1 only).

Embedding mode (cached frozen-encoder features), symmetric noise (default p = 0.4), seeds 0-4
(the split varies with the seed). For each method: clean-set precision / recall over the
training split, and per-class Recall and Guess % (docs/design.md, "Metrics") for the three
rarest classes df, vasc and akiec, mean ± 95 % t half-width over the seeds (std ddof = 1), and
per-seed paired differences against Co-teaching. Writes ``results/table1.md`` and the per-run
rows to ``results/table1.csv``.

    python benchmarks/table1.py [--config configs/ham10000-paper-analog.yaml]
    python benchmarks/table1.py --check-defaults   # the small check behind the head defaults
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from labelrefine.config import ExperimentConfig, LNLConfig, load_config
from labelrefine.data.formats import load_dataset
from labelrefine.data.prepare import prepare_data
from labelrefine.experiments.report import t_interval
from labelrefine.io import atomic_write_text
from labelrefine.lnl.phase1 import Phase1Inputs, run_phase1
from labelrefine.lnl.sources import FeatureSource
from labelrefine.lnl.trainer import EvalSet, fit_ce
from labelrefine.metrics import selection_precision_recall
from labelrefine.models.cache import embed_dataset
from labelrefine.models.heads import build_model

ROOT = Path(__file__).resolve().parents[1]
RARE = ("df", "vasc", "akiec")
# (label, method, mix, VOG option overrides)
METHODS: list[tuple[str, str, float, dict[str, str]]] = [
    ("CE small-loss", "ce", 0.0, {}),
    ("Co-teaching", "coteaching", 0.0, {}),
    ("CT_VOG m=0.2", "ct_vog", 0.2, {}),
    ("CT_VOG m=0.5", "ct_vog", 0.5, {}),
    ("CT_VOG m=1.0", "ct_vog", 1.0, {}),
    ("CT_VOG m=0.2, extra pass", "ct_vog", 0.2, {"pass_": "extra"}),
    ("CT_VOG m=0.2, input-feature VOG", "ct_vog", 0.2, {"gradient": "input_features"}),
    ("CT_VOG m=0.2, weight decay 1e-4", "ct_vog", 0.2, {}),
]
#: LNL overrides per method beyond method / mix / VOG (phase 1's weight decay, measured here)
EXTRA: dict[str, dict[str, Any]] = {"CT_VOG m=0.2, weight decay 1e-4": {"weight_decay": 1e-4}}
#: the paired differences' reference
REFERENCE = "Co-teaching"


class Runner:
    """Loads the dataset and cached features once; prepares labels per (noise rate, seed)."""

    def __init__(self, cfg: ExperimentConfig) -> None:
        self.cfg = cfg
        self.dataset = load_dataset(cfg.dataset)
        fs = embed_dataset(self.dataset, cfg.encoder, device="cpu", progress=True)
        self.source = FeatureSource.from_features(fs)
        self.key = fs.key
        self._prepared: dict[tuple[float, int], Phase1Inputs] = {}

    def inputs(self, rate: float, seed: int) -> Phase1Inputs:
        if (rate, seed) not in self._prepared:
            noise = self.cfg.noise[0].model_copy(update={"kind": "symmetric", "rate": rate})
            data = prepare_data(self.dataset, self.cfg.split, noise, self.cfg.longtail, seed)
            self._prepared[(rate, seed)] = Phase1Inputs(self.dataset, data, self.source, self.key)
        return self._prepared[(rate, seed)]

    def run(self, lnl: LNLConfig, rate: float, seed: int) -> dict[str, Any]:
        inputs = self.inputs(rate, seed)
        d = inputs.data
        t0 = time.perf_counter()
        res = run_phase1(lnl, inputs, seed=seed, tau=rate, track_vog=None)
        seconds = time.perf_counter() - t0
        prec, rec = selection_precision_recall(res.clean_idx, d.train_idx, d.given_labels,
                                               d.true_labels)
        row: dict[str, Any] = {
            "p": rate, "seed": seed, "precision": prec, "recall": rec,
            "clean": int(res.clean_idx.size), "best_val_f1": res.fit.best_val_f1,
            "final_val_f1": res.fit.history[-1]["val_f1"], "test_f1": res.fit.test_f1,
            "seconds": seconds,
        }
        assert res.diagnostics is not None
        diag = res.diagnostics.set_index("class")
        for c in RARE:
            row[f"{c}_recall"] = float(diag.loc[c, "recall"])
            row[f"{c}_guess"] = float(diag.loc[c, "guess_pct"])
            row[f"{c}_n_correct"] = int(diag.loc[c, "n_correct"])
            row[f"{c}_n_given"] = int(diag.loc[c, "n_given"])
        return row

    def clean_reference(self, lnl: LNLConfig, seed: int) -> float:
        """Test macro-F1 of one head trained with CE on the true labels (best-val epoch)."""
        d = self.inputs(self.cfg.noise[0].rate, seed).data
        model = build_model(lnl, d.num_classes, self.source.in_dim, seed)
        fit = fit_ce(model, self.source, d.train_idx, d.true_labels, epochs=lnl.epochs,
                     lr=lnl.lr, batch_size=lnl.batch_size,
                     val=EvalSet(d.val_idx, d.true_labels[d.val_idx]),
                     test=EvalSet(d.test_idx, d.true_labels[d.test_idx]), seed=seed,
                     momentum=lnl.momentum, weight_decay=lnl.weight_decay)
        return fit.test_f1


def _pm(values: pd.Series, digits: int) -> str:
    """mean ± 95 % t half-width over seeds; seeds with no value (nothing selected) are left
    out and the number of seeds with a value is shown."""
    v = values.to_numpy(dtype=float)
    ok = ~np.isnan(v)
    if not ok.any():
        return f"– (0/{v.size})"
    mean, _, half, n = t_interval(v[ok])
    text = f"{mean:.{digits}f}" + ("" if n < 2 else f" ± {half:.{digits}f}")
    return text if ok.all() else f"{text} ({int(ok.sum())}/{v.size})"


PAIRED = ("precision", "recall", "df_recall", "vasc_recall", "akiec_recall", "test_f1")


def paired_lines(grp: pd.DataFrame) -> list[str]:
    """Per method: per-seed differences against :data:`REFERENCE` (mean ± 95 % t half-width,
    ``*`` when the interval excludes 0)."""
    ref = grp[grp["method"] == REFERENCE].set_index("seed")
    lines = [f"Paired per-seed differences, method − {REFERENCE}:", "",
             "| Method | " + " | ".join(PAIRED) + " |", "|---" * (1 + len(PAIRED)) + "|"]
    for label in [m[0] for m in METHODS]:
        g = grp[grp["method"] == label].set_index("seed")
        if label == REFERENCE or g.empty or ref.empty:
            continue
        cells = [label]
        for col in PAIRED:
            d = (g[col] - ref[col]).dropna().to_numpy(dtype=float)
            mean, _, half, n = t_interval(d)
            if n < 2:
                cells.append("–" if n == 0 else f"{mean:+.3f}")
                continue
            star = "*" if (mean - half > 0 or mean + half < 0) else ""
            cells.append(f"{mean:+.3f} ± {half:.3f}{star}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def markdown(rows: pd.DataFrame, cfg: ExperimentConfig, n_train: int,
             reference_f1: list[float]) -> str:
    lnl = cfg.lnl
    lines = [
        "# Table 1 analog: clean-sample selection on the bundled HAM10000 data",
        "",
        f"Phase 1 only, embedding mode ({cfg.encoder.name} features at "
        f"{cfg.encoder.image_size} px, {cfg.encoder.views} augmented views + 1 plain view), "
        f"{lnl.head} heads ({lnl.hidden} hidden units), {lnl.epochs} epochs, warm-up "
        f"{lnl.warmup}, batch {lnl.batch_size}, SGD lr {lnl.lr:g} (momentum {lnl.momentum:g}, "
        f"weight decay {lnl.weight_decay:g}, cosine), forget rate tau = p, VOG window "
        f"{lnl.vog.window} ({lnl.vog.gradient}, {lnl.vog.pass_} pass). Symmetric noise on the "
        f"training split ({n_train} images in the first seed's split), seeds "
        f"{', '.join(str(x) for x in sorted(rows['seed'].unique()))} (each with its own split); "
        "mean ± 95 % t half-width over seeds.",
        "",
        "Precision / Recall: clean-set selection (the union of network f's per-batch selections "
        "in the last epoch) against the true labels. Per class c: Recall = share of the "
        "correctly labelled c samples that were selected; Guess % = share of the selected "
        "samples labelled c whose label is right (nothing selected: left out of the mean, "
        "the count of seeds with a value is shown). Test macro-F1: network f at its best "
        "validation epoch; the same head trained with CE on the clean labels reaches "
        f"{_pm(pd.Series(reference_f1), 3)}.",
        "",
    ]
    for p, grp in rows.groupby("p", sort=True):
        base = []
        for c in RARE:
            n_c, n_g = grp[f"{c}_n_correct"].mean(), grp[f"{c}_n_given"].mean()
            base.append(f"{c} {n_c:.0f} of {n_g:.0f} ({100 * n_c / n_g:.1f} %)")
        lines += [
            f"## p = {p:g}",
            "",
            "Correctly labelled among the training samples given each rare label (mean over "
            "seeds; the Guess % of a selection that ignores the label): " + ", ".join(base)
            + ".",
            "",
            "| Method | Precision | Recall | " + " | ".join(
                f"{c} Recall | {c} Guess %" for c in RARE) + " | test macro-F1 |",
            "|---" * (4 + 2 * len(RARE)) + "|",
        ]
        for label in [m[0] for m in METHODS]:
            g = grp[grp["method"] == label]
            if g.empty:
                continue
            cells = [label, _pm(g["precision"], 3), _pm(g["recall"], 3)]
            for c in RARE:
                cells += [_pm(g[f"{c}_recall"], 2), _pm(g[f"{c}_guess"], 1)]
            cells.append(_pm(g["test_f1"], 3))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        lines += paired_lines(grp)
    mean_s = rows["seconds"].mean()
    lines.append(f"{len(rows)} runs, {mean_s:.1f} s each on average (CPU).")
    return "\n".join(lines) + "\n"


def check_defaults(runner: Runner, base: LNLConfig) -> None:
    """Small grid on p = 0.4, seed 0 (Co-teaching): val macro-F1 decides, precision shown."""
    grid = []
    for head in ("linear", "mlp"):
        for lr in (0.01, 0.05, 0.1):
            for epochs in (30, 50):
                grid.append({"head": head, "lr": lr, "epochs": epochs})
    print("head    lr     epochs  best_val_f1  final_val_f1  precision  recall  seconds")
    for g in grid:
        lnl = base.model_copy(update={"method": "coteaching", **g})
        r = runner.run(lnl, 0.4, 0)
        print(f"{g['head']:7s} {g['lr']:<6g} {g['epochs']:<7d} {r['best_val_f1']:.3f}        "
              f"{r['final_val_f1']:.3f}         {r['precision']:.3f}      {r['recall']:.3f}   "
              f"{r['seconds']:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "ham10000-paper-analog.yaml"))
    ap.add_argument("--rates", default="0.4")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "table1.md")
    ap.add_argument("--check-defaults", action="store_true",
                    help="run the small head/lr/epochs check instead of the table")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(args.config)
    runner = Runner(cfg)
    base = cfg.lnl.model_copy(update={"mode": "embedding"})
    if args.check_defaults:
        check_defaults(runner, base)
        return
    rates = [float(r) for r in args.rates.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for rate in rates:
        for seed in seeds:
            for label, method, mix, vog in METHODS:
                lnl = base.model_copy(update={"method": method, "mix": mix,
                                              "vog": base.vog.model_copy(update=vog),
                                              **EXTRA.get(label, {})})
                row = {"method": label, **runner.run(lnl, rate, seed)}
                rows.append(row)
                print(f"p={rate:g} seed={seed} {label:14s} precision {row['precision']:.3f} "
                      f"recall {row['recall']:.3f} df {row['df_recall']:.2f}/"
                      f"{row['df_guess']:.0f}% vasc {row['vasc_recall']:.2f}/"
                      f"{row['vasc_guess']:.0f}% akiec {row['akiec_recall']:.2f}/"
                      f"{row['akiec_guess']:.0f}% ({row['seconds']:.1f} s)", flush=True)
    df = pd.DataFrame(rows)
    reference = [runner.clean_reference(base, seed) for seed in seeds]
    n_train = runner.inputs(rates[0], seeds[0]).data.train_idx.size
    text = markdown(df, cfg, n_train, reference)
    atomic_write_text(args.out, text)
    atomic_write_text(args.out.with_suffix(".csv"), df.to_csv(index=False))
    print(text)


if __name__ == "__main__":
    main()
