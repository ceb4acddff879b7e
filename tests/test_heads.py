"""Head fitting options: train-split standardisation over all views (low-resolution features
that used to crash), class-balanced / logit-adjusted losses, window model selection and
temperature scaling inside ``fit_ce``."""

from __future__ import annotations

import numpy as np
import pytest

from labelrefine.config import LNLConfig
from labelrefine.lnl.sources import FeatureSource, standardization_stats
from labelrefine.lnl.trainer import EvalSet, NonFiniteError, fit_ce, predict
from labelrefine.models.calibration import nll
from labelrefine.models.heads import HeadOptions, build_model

N, D, C = 300, 64, 3
FLAT = np.arange(8)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _lowres(seed: int = 0):
    """Like 28 px images upscaled by the encoder: 8 dimensions are nearly constant on the plain
    view (std 1e-4) but vary in the augmented views (std 0.5)."""
    rng = np.random.default_rng(seed)
    y = rng.choice(C, size=N, p=[0.6, 0.25, 0.15]).astype(np.int64)
    plain = rng.normal(0, 1.5, (C, D))[y] + rng.normal(0, 1, (N, D))
    views = plain[None] + rng.normal(0, 0.3, (3, N, D))
    plain[:, FLAT] = rng.normal(0, 1e-4, (N, FLAT.size))
    views[:, :, FLAT] = rng.normal(0, 0.5, (3, N, FLAT.size))
    return views.astype(np.float16), plain.astype(np.float16), y


TR, VA, TE = np.arange(0, 200), np.arange(200, 250), np.arange(250, 300)


def _fit(source, y, cfg=None, epochs=10, lr=0.05, seed=0):
    model = build_model(cfg or LNLConfig(hidden=32), C, D, 0)
    res = fit_ce(model, source, TR, y, epochs=epochs, lr=lr, batch_size=64,
                 val=EvalSet(VA, y[VA]), test=EvalSet(TE, y[TE]), seed=seed)
    return model, res


def test_plain_view_statistics_blow_up_and_fail_with_a_named_error():
    views, plain, y = _lowres()
    source = FeatureSource(views, plain)  # the original standardisation
    x = next(source.train_batches(TR, TR.size, np.random.default_rng(0)))[1]
    assert float(x.abs().max()) > 1e3
    with pytest.raises(NonFiniteError, match=r"fit_ce.*non-finite.*train_views"):
        _fit(source, y)


def test_train_views_statistics_keep_values_bounded_and_train():
    views, plain, y = _lowres()
    source = FeatureSource(views, plain, standardize="train_views", fit_idx=TR)
    x = next(source.train_batches(TR, TR.size, np.random.default_rng(0)))[1]
    assert float(x.abs().max()) < 20
    _, res = _fit(source, y)
    assert res.best_val_f1 > 0.8 and res.guard is not None and res.guard.ok
    # statistics come from the training items only: changing a test item changes nothing
    views2 = views.copy()
    views2[:, TE[0]] += np.float16(50)
    m1, s1 = standardization_stats(views, plain, "train_views", TR)
    m2, s2 = standardization_stats(views2, plain, "train_views", TR)
    assert np.array_equal(m1, m2) and np.array_equal(s1, s2)


def test_scale_floor_and_for_split_shares_features():
    views, plain, y = _lowres()
    views[:, :, 0] = 0
    plain[:, 0] = 0  # truly constant dimension
    _, std = standardization_stats(views, plain, "train_views", TR, std_floor=0.1)
    assert std[0] == pytest.approx(0.1 * np.median(std))
    base = FeatureSource(views, plain)
    split = base.for_split(TR, "train_views")
    assert split is not base and split._views is base._views
    assert base.for_split(TR, "plain") is base
    with pytest.raises(ValueError, match="needs fit_idx"):
        FeatureSource(views, plain, standardize="train_views")
    with pytest.raises(ValueError, match="standardize must be"):
        FeatureSource(views, plain, standardize="zscore")
    bad = views.astype(np.float32)
    bad[1, 7, 3] = np.inf
    with pytest.raises(ValueError, match="augmented view 1 of item 7"):
        FeatureSource(bad, plain)


def test_options_from_config_and_losses_differ():
    views, plain, y = _lowres(1)
    source = FeatureSource(views, plain, standardize="train_views", fit_idx=TR)
    cfg = LNLConfig(hidden=32, loss="logit_adjusted", calibrate=True, selection="smoothed",
                    select_window=3)
    assert build_model(cfg, C, D, 0).options == HeadOptions("logit_adjusted", True, "smoothed", 3)
    preds = {}
    for loss in ("ce", "balanced", "logit_adjusted"):
        model, res = _fit(source, y, LNLConfig(hidden=32, loss=loss), epochs=4, lr=0.01)
        preds[loss] = predict(model, source, TE)[0]
        assert np.isfinite(res.best_val_f1)
    assert not np.allclose(preds["ce"], preds["balanced"])
    assert not np.allclose(preds["ce"], preds["logit_adjusted"])
    # minority classes are predicted at least as often with the adjusted losses
    minority = {k: int(np.sum(v.argmax(1) != 0)) for k, v in preds.items()}
    assert minority["logit_adjusted"] >= minority["ce"]
    assert minority["balanced"] >= minority["ce"]


@pytest.mark.parametrize("selection", ["smoothed", "average_last"])
def test_window_selection_reports_the_returned_model(selection):
    views, plain, y = _lowres(2)
    source = FeatureSource(views, plain, standardize="train_views", fit_idx=TR)
    cfg = LNLConfig(hidden=32, selection=selection, select_window=3)
    model, res = _fit(source, y, cfg, epochs=6)
    probs, _ = predict(model, source, VA)
    from labelrefine.metrics import macro_f1
    assert res.best_val_f1 == pytest.approx(macro_f1(y[VA], probs.argmax(1), C))
    if selection == "average_last":
        assert res.best_epoch == 5
    _, again = _fit(source, y, cfg, epochs=6)
    assert again.best_val_f1 == res.best_val_f1 and again.test_f1 == res.test_f1


def test_calibration_in_fit_lowers_validation_nll():
    views, plain, y = _lowres(3)
    source = FeatureSource(views, plain, standardize="train_views", fit_idx=TR)
    # long training at a high lr on 200 items: overconfident
    raw_model, _ = _fit(source, y, LNLConfig(hidden=64, calibrate=False), epochs=40, lr=0.2)
    cal_model, res = _fit(source, y, LNLConfig(hidden=64, calibrate=True), epochs=40, lr=0.2)
    assert raw_model.temperature == 1.0
    assert res.temperature == cal_model.temperature != 1.0
    z, _ = predict(cal_model, source, VA, logits=True)
    assert nll(z, y[VA], cal_model.temperature) <= nll(z, y[VA])
    p_cal = predict(cal_model, source, VA)[0]
    p_raw = predict(raw_model, source, VA)[0]
    assert np.array_equal(p_cal.argmax(1), p_raw.argmax(1))


def test_phase1_non_finite_is_named_and_guard_reported():
    from labelrefine.lnl.trainer import run_lnl

    views, plain, y = _lowres()
    cfg = LNLConfig(method="coteaching", epochs=4, warmup=2, batch_size=64, hidden=32, lr=0.05)
    kw = dict(num_classes=C, val=EvalSet(VA, y[VA]), test=None, seed=0, tau=0.2)
    with pytest.raises(NonFiniteError, match=r"phase 1 \(coteaching\).*non-finite"):
        run_lnl(cfg, FeatureSource(views, plain), TR, y, **kw)
    res = run_lnl(cfg, FeatureSource(views, plain, standardize="train_views", fit_idx=TR), TR,
                  y, **kw)
    assert res.fit.guard is not None and res.fit.guard.ok
