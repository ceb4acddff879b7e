"""Head-fitting options measured on the bundled HAM10000 features (embedding mode).

For every seed (the split seed varies with it) and label kind (true labels, and symmetric noise
at ``--noise``), one CE fit per variant with the config's schedule; prints test macro-F1 (mean
± 95 % t half-width), the paired per-seed difference against the first variant (the original
defaults), the validation-split F1 the selection reported and the test NLL before / after
temperature scaling fitted on the validation split. A balanced logistic regression on the
standardised plain features (scikit-learn, C = 0.01) is the linear-probe reference.

    python benchmarks/bench_heads.py [--config configs/ham10000-demo.yaml] [--seeds 5]
        [--features FILE.npz]  # a feature file written by `labelrefine embed`

Selection on validation data only; test numbers are reported, never used to choose.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from labelrefine.config import NoiseConfig, SplitConfig, load_config
from labelrefine.data.formats import load_dataset
from labelrefine.data.prepare import prepare_data
from labelrefine.experiments.report import t_interval
from labelrefine.lnl.sources import FeatureSource
from labelrefine.lnl.trainer import EvalSet, fit_ce, predict
from labelrefine.metrics import macro_f1
from labelrefine.models.calibration import fit_temperature, nll
from labelrefine.models.heads import build_model

ROOT = Path(__file__).resolve().parents[1]

VARIANTS: dict[str, dict] = {
    "original (plain std, ce, best_val)": {},
    "train_views std": {"standardize": "train_views"},
    "train_views + logit_adjusted": {"standardize": "train_views", "loss": "logit_adjusted"},
    "train_views + balanced": {"standardize": "train_views", "loss": "balanced"},
    "train_views + smoothed": {"standardize": "train_views", "selection": "smoothed"},
    "train_views + average_last": {"standardize": "train_views", "selection": "average_last"},
    "train_views + logit_adj + smoothed": {"standardize": "train_views",
                                           "loss": "logit_adjusted", "selection": "smoothed"},
}
for _wd in (1e-3, 5e-3, 2e-2, 5e-2):
    VARIANTS[f"tv + logit_adj + smoothed, wd {_wd:g}"] = {
        "standardize": "train_views", "loss": "logit_adjusted", "selection": "smoothed",
        "weight_decay": _wd}
# A linear head (the network is one layer on the standardised features; 1/37 of an MLP-256's
# multiply-adds per sample on 1,280-d features)
_CURRENT = {"standardize": "train_views", "loss": "logit_adjusted", "selection": "smoothed",
            "weight_decay": 5e-3}
VARIANTS["mlp, current defaults"] = dict(_CURRENT)
for _wd in (5e-3, 2e-2, 5e-2):
    for _lr in (0.05, 0.01):
        VARIANTS[f"linear, wd {_wd:g}, lr {_lr:g}"] = {**_CURRENT, "head": "linear",
                                                      "weight_decay": _wd, "lr": _lr}


def linear_probe(plain: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray,
                 c: int) -> float:
    from sklearn.linear_model import LogisticRegression

    x = plain.astype(np.float64)
    mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-6
    clf = LogisticRegression(C=0.01, class_weight="balanced", max_iter=2000)
    clf.fit((x[tr] - mu) / sd, y[tr])
    return macro_f1(y[te], clf.predict((x[te] - mu) / sd), c)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "ham10000-demo.yaml"))
    ap.add_argument("--features", type=Path, default=None)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--noise", type=float, default=0.4)
    ap.add_argument("--variants", nargs="*", default=None, help="subset of variant names")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--kinds", choices=["both", "true", "noisy"], default="both")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(args.config)
    dataset = load_dataset(cfg.dataset)
    if args.features is not None:
        from labelrefine.models.cache import load_features

        fs = load_features(args.features)
    else:
        from labelrefine.models.cache import embed_dataset

        fs = embed_dataset(dataset, cfg.encoder, seed=0, device="cpu")
    views, plain = np.asarray(fs.views), np.asarray(fs.plain)
    base = FeatureSource(views, plain)
    c = dataset.num_classes
    names = args.variants or list(VARIANTS)
    kinds = {"true labels": NoiseConfig(kind="none", rate=0.0),
             f"symmetric {args.noise:g}": NoiseConfig(kind="symmetric", rate=args.noise)}
    if args.kinds != "both":
        kinds = dict([list(kinds.items())[0 if args.kinds == "true" else 1]])
    out: dict = {}
    t_start = time.perf_counter()
    for kind, noise in kinds.items():
        rows: dict[str, dict[str, list[float]]] = {n: {} for n in names}
        probe = []
        for seed in range(args.seeds):
            data = prepare_data(dataset, SplitConfig(seed=seed), noise, None, seed)
            tr = data.train_idx
            labels = data.given_labels
            val = EvalSet(data.val_idx, data.true_labels[data.val_idx])
            test = EvalSet(data.test_idx, data.true_labels[data.test_idx])
            if seed == 0 or kind == "true labels":
                probe.append(linear_probe(plain, labels, tr, data.test_idx, c))
            for name in names:
                lnl = cfg.lnl.model_copy(update=VARIANTS[name])
                src = base.for_split(tr, lnl.standardize, lnl.std_floor)
                model = build_model(lnl, c, src.in_dim, seed * 101 + 2)
                res = fit_ce(model, src, tr, labels, epochs=lnl.epochs, lr=lnl.lr,
                             batch_size=lnl.batch_size, val=val, test=test, seed=seed,
                             momentum=lnl.momentum, weight_decay=lnl.weight_decay)
                z_val, _ = predict(model, src, val.indices, logits=True)
                z_te, _ = predict(model, src, test.indices, logits=True)
                t = fit_temperature(z_val, val.labels)
                r = rows[name]
                for key, v in (("test_f1", res.test_f1), ("val_f1", res.best_val_f1),
                               ("nll", nll(z_te, test.labels)),
                               ("nll_cal", nll(z_te, test.labels, t)), ("T", t),
                               ("guard_ok", float(res.guard.ok if res.guard else np.nan))):
                    r.setdefault(key, []).append(float(v))
            print(f"[{kind}] seed {seed} done ({time.perf_counter() - t_start:.0f} s)",
                  flush=True)
        ref = np.asarray(rows[names[0]]["test_f1"])
        print(f"\n== {kind}: {args.seeds} seeds (split seed = seed), test macro-F1 ==")
        pm, _, ph, _ = t_interval(probe)
        print(f"linear probe (balanced LR, C=0.01, plain view): {pm:.3f} ± "
              f"{0 if np.isnan(ph) else ph:.3f}")
        print(f"{'variant':38s} {'test F1':>15s} {'diff vs original':>24s} {'val F1':>7s} "
              f"{'NLL':>6s} {'NLL cal':>7s} {'T':>5s}")
        for name in names:
            r = rows[name]
            m, _, h, _ = t_interval(r["test_f1"])
            d = np.asarray(r["test_f1"]) - ref
            dm, _, dh, _ = t_interval(d)
            wl = f"{int(np.sum(d > 0))}/{int(np.sum(d < 0))}"
            print(f"{name:38s} {m:7.3f} ± {h:5.3f} {dm:+8.3f} ± {dh:5.3f} ({wl}) "
                  f"{np.mean(r['val_f1']):7.3f} {np.mean(r['nll']):6.3f} "
                  f"{np.mean(r['nll_cal']):7.3f} {np.mean(r['T']):5.2f}")
        out[kind] = {"probe": probe, "variants": rows}
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
