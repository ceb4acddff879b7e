"""Reference results of a small simulated sweep and a small campaign, for ``test_golden.py``.

``compute(workdir)`` runs, on small generated data with fixed seeds and stand-in encoder
features (class-clustered vectors instead of a network's embeddings):

* a sweep (``run_sweep``, one process) over two noise settings (seed 3) of the pipelines
  ``ours`` (random / entropy / coreset samplers, and m = 0), ``ce_al``, ``al_only``,
  ``alc_coteaching``, ``clean`` and ``noisy_ce``, recording each run's stored result (without
  timings), every phase-1 partition it produced and the items it queried per round;
* a campaign (``init_campaign`` + five ``run_step`` calls with different samplers) whose expert
  answers every queued item with its true label, recording per round the queue (items and
  reasons), the metrics and the phase-1 clean set.

Run as a script to (re)write ``golden.json`` next to this file::

    python tests/golden/make_golden.py
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

GOLDEN = Path(__file__).with_name("golden.json")
N_SWEEP, C, D = 200, 3, 10
N_CAMPAIGN = 60
CLASSES = ("akiec", "bcc", "nv")
# Keys whose values are wall-clock or CPU times: never part of a result's identity.
_TIME_KEYS = {"seconds", "timings", "epoch_s", "cpu_s", "time_s", "vog_s"}


def _features(labels: np.ndarray, ids: tuple[str, ...]) -> Any:
    """Stand-in for the encoder: 2 noisy views + a plain view clustered by ``labels``."""
    from labelrefine.models.cache import FeatureSet

    rng = np.random.default_rng(0)
    centers = rng.normal(0.0, 1.6, size=(C, D))
    plain = centers[labels] + rng.normal(0.0, 1.0, size=(len(labels), D))
    views = plain[None] + rng.normal(0.0, 0.3, size=(2, len(labels), D))
    return FeatureSet(views=views.astype(np.float16), plain=plain.astype(np.float16), ids=ids,
                      key="golden")


@contextmanager
def _patched(truth: dict[str, int], log: dict[str, Any]) -> Iterator[None]:
    """Stand-in features keyed by true class; record partitions and oracle queries per run."""
    import labelrefine.models.cache as cache
    import labelrefine.pipelines as pipelines
    from labelrefine.active.oracle import SimulatedOracle
    from labelrefine.lnl.trainer import LNLResult

    saved = (cache.embed_dataset, pipelines.run_pipeline, SimulatedOracle.query,
             LNLResult.__init__)
    current: list[str] = [""]

    def embed_dataset(dataset, cfg, *args, **kwargs):  # noqa: ANN001, ANN202
        labels = np.array([truth[i] for i in dataset.ids], dtype=np.int64)
        return _features(labels, tuple(dataset.ids))

    def run_pipeline(spec, context):  # noqa: ANN001, ANN202
        current[0] = f"{context.noise.tag}__{spec.display}__seed{context.seed}"
        log.setdefault(current[0], {"partitions": [], "queried": []})
        return saved[1](spec, context)

    def query(self, indices):  # noqa: ANN001, ANN202
        if current[0]:
            log[current[0]]["queried"].append(np.asarray(indices).reshape(-1).tolist())
        return saved[2](self, indices)

    def init(self, *args, **kwargs):  # noqa: ANN001, ANN202
        saved[3](self, *args, **kwargs)
        if current[0]:
            part = [np.sort(np.asarray(self.clean_idx)).tolist(),
                    np.sort(np.asarray(self.suspect_idx)).tolist()]
            if part not in log[current[0]]["partitions"]:
                log[current[0]]["partitions"].append(part)

    cache.embed_dataset = embed_dataset
    pipelines.run_pipeline = run_pipeline
    SimulatedOracle.query = query
    LNLResult.__init__ = init
    try:
        yield
    finally:
        (cache.embed_dataset, pipelines.run_pipeline, SimulatedOracle.query,
         LNLResult.__init__) = saved


def _plain(obj: Any) -> Any:
    """JSON-ready copy without timing keys; NaN becomes None."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items() if str(k) not in _TIME_KEYS}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# ----------------------------------------------------------------------------- simulated sweep


def _sweep_config(root: Path) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    labels = rng.choice(C, size=N_SWEEP, p=[0.6, 0.25, 0.15]).astype(np.uint8)
    images = rng.integers(0, 256, size=(N_SWEEP, 4, 4, 3)).astype(np.uint8)
    npz = root / "tiny.npz"
    np.savez(npz, train_images=images, train_labels=labels.reshape(-1, 1))
    return {
        "name": "golden",
        "dataset": {"format": "medmnist", "npz": str(npz), "npz_split": "train"},
        "noise": [{"kind": "symmetric", "rate": 0.3, "mix": 0.5, "budget_per_round": 10},
                  {"kind": "asymmetric", "rate": 0.2}],
        "encoder": {"views": 2, "cache_dir": str(root / "cache")},
        "lnl": {"epochs": 5, "warmup": 2, "batch_size": 64, "hidden": 16, "lr": 0.05,
                "mix": 0.2, "vog": {"window": 2}},
        "active": {"rounds": 2, "budget_per_round": 8, "epochs_per_round": 2, "lr": 0.05,
                   "oracle_error": 0.1},
        "pipelines": [
            {"name": "ours", "sampler": "random"},
            {"name": "ours", "sampler": "entropy"},
            {"name": "ours", "sampler": "coreset"},
            {"name": "ours", "sampler": "margin", "mix": 0.0},
            {"name": "ce_al", "sampler": "entropy"},
            {"name": "ce_al", "sampler": "joint", "ce_al_train_on": "all"},
            {"name": "al_only", "sampler": "entropy"},
            {"name": "alc_coteaching"},
            {"name": "clean"},
            {"name": "noisy_ce"},
        ],
        "seeds": [3],
        "output_dir": str(root / "runs"),
        "device": "cpu",
    }


def sweep(root: Path) -> dict[str, Any]:
    from labelrefine.config import parse_config
    from labelrefine.data.formats import load_dataset
    from labelrefine.experiments.runner import run_sweep
    from labelrefine.experiments.sweep import expand_runs, read_run, run_path, sweep_dir

    cfg = parse_config(_sweep_config(root))
    ds = load_dataset(cfg.dataset)
    truth = dict(zip(ds.ids, ds.labels.tolist(), strict=True))
    log: dict[str, Any] = {}
    with _patched(truth, log):
        summary = run_sweep(cfg, workers=1, threads=1)
    if summary.failed:
        raise RuntimeError(f"golden sweep: runs failed: {summary.failed}")
    out = {}
    for key in expand_runs(cfg):
        data = read_run(run_path(sweep_dir(cfg), key))
        assert data is not None, key.name
        # provenance only: when the file was written, and which run a reused result came from
        data = {k: v for k, v in data.items()
                if k not in ("fingerprint", "finished_at", "reused_from")}
        out[key.name] = {"result": _plain(data),
                         **log.get(key.name, {"partitions": [], "queried": []})}
    return out


# ----------------------------------------------------------------------------- campaign


def campaign(root: Path) -> dict[str, Any]:
    from labelrefine.campaign.create import init_campaign
    from labelrefine.campaign.ledger import Ledger
    from labelrefine.campaign.step import StepOptions, run_step
    from labelrefine.config import parse_config

    rng = np.random.default_rng(2)
    true = rng.choice(C, size=N_CAMPAIGN, p=[0.5, 0.3, 0.2])
    given = true.copy()
    wrong = rng.choice(N_CAMPAIGN, size=12, replace=False)
    given[wrong] = (true[wrong] + 1 + rng.integers(0, C - 1, size=wrong.size)) % C
    images = root / "campaign_images"
    images.mkdir()
    ids = [f"im{i:03d}" for i in range(N_CAMPAIGN)]
    for i, key in enumerate(ids):
        pix = np.full((8, 8, 3), 40 * (i % 6), dtype=np.uint8)
        Image.fromarray(pix).save(images / f"{key}.png")
    csv = root / "campaign.csv"
    pd.DataFrame({"image_id": ids, "dx": [CLASSES[g] for g in given]}).to_csv(csv, index=False)
    db = root / "campaign.db"
    init_campaign(images, csv, db, classes=CLASSES, suffix=".png", val_fraction=0.2, seed=0)
    cfg = parse_config({
        "dataset": {"format": "csv", "images": str(images), "labels": str(csv)},
        "noise": [{"kind": "symmetric", "rate": 0.25, "mix": 0.5}],
        "encoder": {"views": 2, "cache_dir": str(root / "cache")},
        "lnl": {"epochs": 8, "warmup": 3, "batch_size": 16, "hidden": 16, "lr": 0.1,
                "vog": {"window": 2}},
        "active": {"rounds": 3, "budget_per_round": 5, "epochs_per_round": 3, "lr": 0.1},
    })
    truth = dict(zip(ids, true.tolist(), strict=True))
    steps = [("entropy", None), ("coreset", None), ("random", 4), ("margin", None),
             ("joint", 3)]
    rounds = []
    with _patched(truth, {}):
        for n, (sampler, budget) in enumerate(steps):
            res = run_step(db, StepOptions(experiment=cfg, sampler=sampler, seed=5,
                                           budget=budget, device="cpu", strategy="paper"))
            ledger = Ledger(db)
            q = ledger.queue(res.round)
            rounds.append({"round": res.round, "kind": res.kind, "sampler": sampler,
                           "metrics": _plain(res.metrics),
                           "queue": [[ids[int(i)] for i in q["item"]], list(q["reason"])]})
            if n == 0:
                s0 = ledger.scores(0)
                rounds[-1]["phase1_clean"] = sorted(
                    int(i) for i in s0.loc[s0["clean"].to_numpy(), "item"])
            for idx in q["item"]:  # the scripted expert: answer every queued item truthfully
                ledger.submit(int(idx), int(true[int(idx)]), annotator="expert",
                              submission_id=f"expert-{res.round}-{int(idx)}")
    return {"rounds": rounds}


def compute(workdir: Path) -> dict[str, Any]:
    """The whole reference: ``{"sweep": ..., "campaign": ...}`` (see the module docstring)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        (workdir / "sweep").mkdir()
        (workdir / "campaign").mkdir()
        return {"sweep": sweep(workdir / "sweep"), "campaign": campaign(workdir / "campaign")}
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        ref = compute(Path(tmp))
    GOLDEN.write_text(json.dumps(ref, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN} ({len(ref['sweep'])} runs, {len(ref['campaign']['rounds'])} "
          "campaign rounds)", file=sys.stderr)
