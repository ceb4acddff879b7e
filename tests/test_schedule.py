"""Forget-rate schedule."""

import numpy as np
import pytest

from labelrefine.lnl.schedule import forget_rates


def test_linear_ramp_then_constant():
    r = forget_rates(0.4, epochs=15, warmup=10)
    assert r.shape == (15,)
    np.testing.assert_allclose(r[:10], np.linspace(0, 0.4, 10))
    np.testing.assert_allclose(r[10:], 0.4)
    assert r[0] == 0.0 and r[9] == pytest.approx(0.4)


def test_sized_by_epochs_run():
    r = forget_rates(0.5, epochs=4, warmup=10)
    np.testing.assert_allclose(r, np.linspace(0, 0.5, 10)[:4])
    assert forget_rates(0.5, epochs=40, warmup=10).shape == (40,)


def test_exponent_and_tau_zero():
    r = forget_rates(0.8, epochs=6, warmup=5, c=2)
    np.testing.assert_allclose(r[:5], 0.8 * np.linspace(0, 1, 5) ** 2)
    assert r[5] == pytest.approx(0.8)
    np.testing.assert_array_equal(forget_rates(0.0, epochs=12), np.zeros(12))


def test_warmup_one_is_constant_after_first_epoch():
    np.testing.assert_allclose(forget_rates(0.3, epochs=3, warmup=1), [0.0, 0.3, 0.3])


def test_warmup_zero_is_tau_from_the_first_epoch():
    np.testing.assert_allclose(forget_rates(0.3, epochs=3, warmup=0), [0.3, 0.3, 0.3])


@pytest.mark.parametrize(
    "kwargs",
    [dict(tau=1.0, epochs=3), dict(tau=-0.1, epochs=3), dict(tau=0.2, epochs=0),
     dict(tau=0.2, epochs=3, warmup=-1), dict(tau=0.2, epochs=3, c=0)],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        forget_rates(**kwargs)
