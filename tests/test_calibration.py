"""Temperature scaling on generated, deliberately miscalibrated logits."""

from __future__ import annotations

import numpy as np
import pytest

from labelrefine.models.calibration import (
    fit_temperature,
    nll,
    softmax_with_temperature,
)


def _overconfident(seed: int = 0, n: int = 2000, c: int = 4, scale: float = 6.0):
    """Labels drawn from softmax(z); the model reports ``scale * z`` (far too confident)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, c))
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(c, p=row) for row in p])
    return scale * z, y


def test_fit_recovers_temperature_and_lowers_val_nll():
    logits, y = _overconfident()
    val, test = slice(0, 1000), slice(1000, None)
    t = fit_temperature(logits[val], y[val])
    assert 4.0 < t < 8.0  # the true miscalibration factor is 6
    assert nll(logits[val], y[val], t) < nll(logits[val], y[val]) - 0.3
    # fitted on val, it also helps on held-out rows
    assert nll(logits[test], y[test], t) < nll(logits[test], y[test]) - 0.3


def test_underconfident_logits_get_sharpened():
    logits, y = _overconfident(scale=0.3)
    t = fit_temperature(logits, y)
    assert t < 0.6
    assert nll(logits, y, t) < nll(logits, y)


def test_argmax_unchanged_and_deterministic():
    logits, y = _overconfident(seed=1, n=300)
    t = fit_temperature(logits, y)
    assert t == fit_temperature(logits, y)
    p = softmax_with_temperature(logits, t)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    assert np.array_equal(p.argmax(1), logits.argmax(1))


def test_degenerate_and_bad_input():
    assert fit_temperature(np.zeros((1, 3)), np.array([2])) == 1.0
    with pytest.raises(ValueError, match=r"labels\[1\] = 3: label 3 outside 0..2"):
        fit_temperature(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="row 0 are not finite"):
        fit_temperature(np.array([[np.nan, 0.0], [0.0, 1.0]]), np.array([0, 1]))
    with pytest.raises(ValueError, match="must be \\(n, C\\)"):
        fit_temperature(np.zeros(3), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        nll(np.zeros((2, 2)), np.array([0, 1]), 0.0)
