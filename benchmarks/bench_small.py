"""A new user's first campaign: phase 1 with default settings on a small subset.

Takes a stratified ``--n``-image subset of the bundled HAM10000 data (default 300), splits it
70/10/20, injects symmetric noise ``--noise`` and runs phase 1 (CT_VOG) the way ``campaign
step`` does, with the library's default settings, for two setting sets: ``original`` (the
defaults before the head-fitting options) and ``current`` (the defaults now, schedule derived
from the training-set size). Prints, per seed and setting: validation macro-F1 and balanced
accuracy with the trivial baselines (majority class, nearest class centroid), the sanity
guard's verdict, and how spread the pool's predictive entropies are (quantiles, share of items
predicted with max probability >= 0.99): the uncertainty queue is only meaningful when they
are spread. A third row per seed, ``probe``, is an exact L2 logistic regression (scikit-learn,
class-balanced, C = 0.01, features standardised on the training split) on the same noisy
training labels, judged by the same guard: how often can *any* learner on these features pass
the guard on a validation split this small?

    python benchmarks/bench_small.py [--n 300] [--seeds 3] [--features FILE.npz]
                                     [--settings current --settings probe]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from labelrefine.config import LNLConfig, NoiseConfig, SplitConfig, load_config, parse_config
from labelrefine.data.dataset import ImageDataset
from labelrefine.data.formats import load_dataset
from labelrefine.data.prepare import prepare_data
from labelrefine.data.splits import stratified_split
from labelrefine.lnl.adaptive import apply_adaptive
from labelrefine.lnl.guard import GuardReport, sanity_check
from labelrefine.lnl.sources import FeatureSource, for_training
from labelrefine.lnl.trainer import EvalSet, predict, run_lnl

ROOT = Path(__file__).resolve().parents[1]

ORIGINAL = {"standardize": "plain", "loss": "ce", "calibrate": False, "selection": "best_val",
            "auto_schedule": False}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "ham10000-demo.yaml"))
    ap.add_argument("--features", type=Path, default=None)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--noise", type=float, default=0.2)
    ap.add_argument("--settings", action="append", choices=["original", "current", "probe"],
                    default=None, help="rows to run (default: all three)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="lnl option for the 'current' setting (e.g. loss=logit_adjusted)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(args.config)
    ds = load_dataset(cfg.dataset)
    if args.features is not None:
        from labelrefine.models.cache import load_features

        fs = load_features(args.features)
    else:
        from labelrefine.models.cache import embed_dataset

        fs = embed_dataset(ds, cfg.encoder, seed=0, device="cpu")
    y_all = np.asarray(ds.labels)
    keep = np.sort(stratified_split(y_all, (args.n / y_all.size, 1 - args.n / y_all.size),
                                    0)[0])
    sub = ImageDataset(ids=tuple(ds.ids[i] for i in keep), labels=y_all[keep],
                       class_names=ds.class_names,
                       images=np.zeros((keep.size, 1, 1, 3), np.uint8), name="subset")
    views = np.asarray(fs.views)[:, keep]
    plain = np.asarray(fs.plain)[keep]
    base_source = FeatureSource(views, plain)
    defaults = LNLConfig()
    extra = {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    settings = {"original": defaults.model_copy(update=ORIGINAL),
                "current": defaults.model_copy(update=extra)}
    rows = args.settings or ["original", "current", "probe"]
    settings = {k: v for k, v in settings.items() if k in rows}
    verdicts: dict[str, list[str]] = {name: [] for name in rows}
    noise = NoiseConfig(kind="symmetric", rate=args.noise)
    print(f"{keep.size} images, symmetric noise {args.noise:g}, phase 1 = CT_VOG with the "
          f"library defaults")
    for seed in range(args.seeds):
        data = prepare_data(sub, SplitConfig(seed=seed), noise, None, seed)
        val = EvalSet(data.val_idx, data.true_labels[data.val_idx])
        for name, lnl in settings.items():
            exp = parse_config({"dataset": {"format": "medmnist", "npz": "x.npz"}})
            exp = exp.model_copy(update={"lnl": lnl})
            exp = apply_adaptive(exp, int(data.train_idx.size))
            lnl_run = exp.lnl
            src = for_training(base_source, data.train_idx, lnl_run)
            t0 = time.perf_counter()
            res = run_lnl(lnl_run, src, data.train_idx, data.given_labels,
                          num_classes=data.num_classes, val=val, test=None, seed=seed,
                          tau=args.noise)
            g = res.fit.guard
            pool = res.suspect_idx
            probs, _ = predict(res.model, src, pool)
            ent = -(probs * np.log(np.clip(probs, 1e-12, None))).sum(1)
            q = np.quantile(ent, [0.1, 0.5, 0.9]) if ent.size else [np.nan] * 3
            conf = float(np.mean(probs.max(1) >= 0.99)) if ent.size else float("nan")
            assert g is not None
            print(f"seed {seed} {name:8s} epochs {lnl_run.epochs:3d} batch "
                  f"{lnl_run.batch_size:3d} lr {lnl_run.lr:.3f}: val F1 {g.model_f1:.3f} "
                  f"(majority {g.majority_f1:.3f}, centroid {g.centroid_f1:.3f}), bal.acc "
                  f"{g.model_bacc:.3f} ({g.majority_bacc:.3f}, {g.centroid_bacc:.3f}) -> "
                  f"{g.status}; pool {pool.size}: entropy q10/50/90 {q[0]:.3f}/{q[1]:.3f}/"
                  f"{q[2]:.3f}, max-prob>=0.99 {100 * conf:.0f} %, T {res.model.temperature:.2f}"
                  f" ({time.perf_counter() - t0:.0f} s)", flush=True)
            verdicts[name].append(g.status)
        if "probe" in rows:
            g = probe_guard(plain.astype(np.float64), data)
            verdicts["probe"].append(g.status)
            print(f"seed {seed} probe    logistic regression C=0.01: val F1 {g.model_f1:.3f} "
                  f"(majority {g.majority_f1:.3f}, centroid {g.centroid_f1:.3f}), bal.acc "
                  f"{g.model_bacc:.3f} ({g.majority_bacc:.3f}, {g.centroid_bacc:.3f}) -> "
                  f"{g.status}", flush=True)
    for name, got in verdicts.items():
        counts = ", ".join(f"{s} {got.count(s)}" for s in ("ok", "weak", "failed"))
        print(f"{name}: guard over {len(got)} seeds: {counts}")


def probe_guard(x: np.ndarray, data) -> GuardReport:
    """The guard's verdict on an exact L2 logistic regression trained on the noisy labels."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    tr, va = data.train_idx, data.val_idx
    scaler = StandardScaler().fit(x[tr])
    x_tr, x_va = scaler.transform(x[tr]), scaler.transform(x[va])
    probe = LogisticRegression(C=0.01, class_weight="balanced", max_iter=2000)
    probe.fit(x_tr, data.given_labels[tr])
    return sanity_check(data.true_labels[va], probe.predict(x_va),
                        train_labels=data.given_labels[tr], num_classes=data.num_classes,
                        train_x=x_tr, val_x=x_va)


if __name__ == "__main__":
    main()
