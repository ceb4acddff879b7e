"""Sanity guard and the model-free fallback ranking, on generated data and a broken fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labelrefine.config import LNLConfig
from labelrefine.lnl.guard import (
    fallback_queue,
    model_free_ranking,
    nearest_centroid_predict,
    sanity_check,
)
from labelrefine.lnl.sources import FeatureSource
from labelrefine.lnl.trainer import EvalSet, NonFiniteError, fit_ce
from labelrefine.models.heads import build_model

C, D = 3, 16


def _blobs(seed: int = 0, n: int = 300):
    rng = np.random.default_rng(seed)
    y = rng.choice(C, size=n, p=[0.6, 0.25, 0.15]).astype(np.int64)
    x = rng.normal(0, 1.5, size=(C, D))[y] + rng.normal(size=(n, D))
    return x, y


def test_verdicts():
    x, y = _blobs()
    tr, va = np.arange(200), np.arange(200, 300)
    kw = dict(train_labels=y[tr], num_classes=C, train_x=x[tr], val_x=x[va])
    good = sanity_check(y[va], y[va], **kw)
    assert good.status == "ok" and good.ok and good.model_f1 == 1.0
    majority = sanity_check(y[va], np.zeros(100, np.int64), **kw)
    assert majority.status == "failed"
    assert "majority class" in majority.message
    assert majority.model_f1 == pytest.approx(majority.majority_f1)
    # a model that beats majority but is worse than the centroid classifier
    cent = nearest_centroid_predict(x[tr], y[tr], x[va])
    worse = cent.copy()
    wrong = np.flatnonzero(cent == y[va])[:25]
    worse[wrong] = (worse[wrong] + 1) % C
    weak = sanity_check(y[va], worse, **kw)
    assert weak.status == "weak", weak
    assert "nearest-centroid" in weak.message
    # without features only the majority baseline is used
    assert np.isnan(sanity_check(y[va], y[va], train_labels=y[tr], num_classes=C).centroid_f1)
    with pytest.raises(ValueError, match="train_labels is empty"):
        sanity_check(y[va], y[va], train_labels=np.zeros(0, np.int64), num_classes=C)


def test_model_free_ranking_puts_flipped_labels_first():
    x, y = _blobs(1)
    given = y.copy()
    flipped = np.arange(0, 300, 15)
    given[flipped] = (given[flipped] + 1) % C
    pool = np.arange(300)
    items, scores = model_free_ranking(x, given, np.arange(300), pool, k=10)
    assert sorted(items.tolist()) == pool.tolist()
    assert np.all(np.diff(scores) <= 0)
    top = set(items[: flipped.size].tolist())
    assert len(top & set(flipped.tolist())) >= 0.8 * flipped.size
    again = model_free_ranking(x, given, np.arange(300), pool, k=10)
    assert np.array_equal(items, again[0])


@pytest.fixture
def small_world():
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    y = rng.choice(C, size=300, p=[0.6, 0.25, 0.15]).astype(np.int64)
    rng.normal(0, 0.5, size=(C, D))  # (keeps the stream of the measured case)
    rng.normal(size=(300, D))
    rng.normal(0, 0.3, size=(2, 300, D))
    x = rng.normal(0, 0.8, size=(C, D))[y] + rng.normal(size=(300, D))
    views = x[None] + rng.normal(0, 0.3, size=(2, *x.shape))
    return FeatureSource(views.astype(np.float16), x.astype(np.float16)), y


def test_fit_ce_reports_guard_and_broken_lr_is_flagged(small_world):
    source, y = small_world
    tr, va = np.arange(200), np.arange(200, 300)
    # plain CE with best-epoch selection: lr 10 stays broken (the default smoothed, logit-
    # adjusted fit recovers from it on this easy data once the cosine schedule lowers lr)
    cfg = LNLConfig(hidden=16, loss="ce", selection="best_val")
    kw = dict(epochs=8, batch_size=32, val=EvalSet(va, y[va]), test=None, seed=0)
    res = fit_ce(build_model(cfg, C, D, 0), source, tr, y, lr=0.05, **kw)
    assert res.guard is not None and res.guard.status == "ok", res.guard
    # lr 10: the loss stays finite here, but the fit is far below the centroid baseline
    bad = fit_ce(build_model(cfg, C, D, 0), source, tr, y, lr=10.0, **kw)
    assert bad.guard is not None and bad.guard.status == "weak", bad.guard
    assert "nearest-centroid" in bad.guard.message
    assert bad.guard.model_f1 < bad.guard.centroid_f1 - 0.1


def test_diverging_lr_is_a_named_error(small_world):
    source, y = small_world
    x = np.asarray(source._plain, np.float32) * 30  # larger inputs: lr 10 now diverges
    big = FeatureSource(np.stack([x, x]).astype(np.float16), x.astype(np.float16),
                        standardize=False)
    with pytest.raises(NonFiniteError, match="fit_ce.*learning rate"):
        fit_ce(build_model(LNLConfig(hidden=16), C, D, 0), big, np.arange(200), y,
               epochs=8, lr=10.0, batch_size=32, val=EvalSet(np.arange(200, 300),
                                                             y[200:300]), test=None, seed=0)


def test_fallback_queue_reasons():
    x, y = _blobs(1)
    given = y.copy()
    given[[0, 15, 30]] = (given[[0, 15, 30]] + 1) % C
    items, scores, reasons = fallback_queue(x, given, np.arange(300), np.arange(300), 5,
                                            class_names=["a", "b", "c"])
    assert items.size == 5 and len(reasons) == 5 and scores[0] >= scores[-1]
    assert {0, 15, 30} <= set(items.tolist())
    assert "nearest neighbours" in reasons[0] and "model-free" in reasons[0]
    assert reasons[0].startswith(f"labelled {'abc'[given[items[0]]]}")


def test_campaign_step_with_broken_lr_says_so(tmp_path):
    """``campaign step`` with lr 10: the step and ``campaign status`` print the guard's
    warning and the queue is ranked without the model."""
    from labelrefine.campaign.ledger import Ledger
    from test_campaign_cli import init, make_folder, run

    cache_dir = tmp_path / "cache"
    images, csv, _ = make_folder(tmp_path)
    db = init(tmp_path, images, csv)
    cfg = tmp_path / "broken.yaml"
    cfg.write_text(
        f"dataset: {{format: csv, images: {images}, labels: {csv}}}\n"
        f"encoder: {{views: 1, image_size: 32, batch_size: 32, cache_dir: {cache_dir}}}\n"
        "lnl: {epochs: 3, warmup: 1, batch_size: 16, hidden: 16, lr: 10.0, loss: ce, "
        "selection: best_val, vog: {window: 2}}\n"
        "active: {epochs_per_round: 2, budget_per_round: 4}\n"
        "noise: [{kind: symmetric, rate: 0.2}]\n"
    )
    res = run("campaign", "step", db, "--config", cfg, "--device", "cpu", "--strategy", "paper")
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "warning:" in out and "model" in out, out
    assert "model-free" in out
    q = Ledger(db).queue()
    assert len(q) == 4 and all("model-free ranking" in r for r in q["reason"])
    status = run("campaign", "status", db)
    assert "model check:" in " ".join(status.output.split())


def test_cli_prints_a_diverged_fit_as_one_line(capfd):
    """A NonFiniteError reaching a command is one red line naming the stage, exit code 1."""
    import typer

    from labelrefine.cli._common import friendly_errors
    from labelrefine.lnl.trainer import _non_finite

    with pytest.raises(typer.Exit) as exit_info, friendly_errors():
        raise _non_finite("fit_ce", "the training loss", epoch=3)
    assert exit_info.value.exit_code == 1
    out = capfd.readouterr().err
    assert "fit_ce: the training loss became non-finite at epoch 3" in out
    assert "Traceback" not in out
