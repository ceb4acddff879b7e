"""Clean-sample selection rule on hand-made batches."""

import numpy as np
import pytest

from labelrefine.lnl.clean_samples import clean_counts, select_clean


def test_small_loss_only():
    loss = np.array([0.9, 0.1, 0.5, 0.3, 0.7])
    # R = floor(0.6 * 5) = 3 smallest: positions 1, 3, 2
    np.testing.assert_array_equal(select_clean(loss, None, tau=0.4), [1, 2, 3])


def test_mix_zero_equals_small_loss():
    rng = np.random.default_rng(0)
    loss, vog = rng.random(20), rng.random(20)
    np.testing.assert_array_equal(
        select_clean(loss, vog, tau=0.3, mix=0.0), select_clean(loss, None, tau=0.3)
    )


def test_mix_one_is_pure_vog():
    loss = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    vog = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    # R = floor(0.5 * 6) = 3, R1 = 0, R2 = 3 smallest VOG: positions 5, 4, 3
    np.testing.assert_array_equal(select_clean(loss, vog, tau=0.5, mix=1.0), [3, 4, 5])


def test_mixed_rule_vog_among_rest():
    loss = np.array([0.1, 0.2, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 1.0])
    vog = np.array([0.0, 0.0, 9.0, 0.5, 0.1, 7.0, 8.0, 6.0, 5.0, 0.2])
    # B=10, tau=0.2 -> R=8, mix=0.5 -> R1=4 (loss: 0,1,8,7), R2=4 smallest VOG of the rest
    # rest = 2,3,4,5,6,9 with vog 9,.5,.1,7,8,.2 -> 4, 9, 3, 5
    sel = select_clean(loss, vog, tau=0.2, mix=0.5)
    np.testing.assert_array_equal(sel, [0, 1, 3, 4, 5, 7, 8, 9])
    assert sel.dtype == np.int64


def test_counts_use_floor_per_spec():
    assert clean_counts(10, 0.4, 0.2) == (6, 4, 1)  # R1 + R2 may be < R
    assert clean_counts(5, 0.0, 0.5) == (5, 2, 2)
    assert clean_counts(10, 0.9, 0.0) == (1, 1, 0)  # (1 - 0.9) * 10 is 0.999... in floats
    assert len(select_clean(np.arange(10.0), np.arange(10.0), 0.4, 0.2)) == 5


def test_ties_broken_by_index():
    loss = np.array([1.0, 0.5, 0.5, 0.5, 0.5, 2.0])
    # R = floor(0.5 * 6) = 3 -> the three first 0.5's
    np.testing.assert_array_equal(select_clean(loss, None, tau=0.5), [1, 2, 3])
    vog = np.zeros(6)
    # R=3, mix=2/3 -> R1=1 (position 1), R2=2: all VOG tie -> lowest remaining positions 0, 2
    np.testing.assert_array_equal(select_clean(loss, vog, tau=0.5, mix=2 / 3), [0, 1, 2])


def test_deterministic_with_many_ties():
    loss = np.tile([0.3, 0.1], 50)
    vog = np.tile([1.0, 1.0, 0.0, 0.0], 25)
    a = select_clean(loss, vog, 0.4, 0.5)
    b = select_clean(loss.copy(), vog.copy(), 0.4, 0.5)
    np.testing.assert_array_equal(a, b)


def test_batch_of_one():
    assert select_clean(np.array([3.0]), None, tau=0.0).tolist() == [0]
    assert select_clean(np.array([3.0]), np.array([1.0]), tau=0.4, mix=0.5).size == 0
    assert select_clean(np.array([3.0]), np.array([1.0]), tau=0.0, mix=1.0).tolist() == [0]


def test_tau_zero_selects_all_when_mix_is_edge():
    loss = np.array([3.0, 1.0, 2.0])
    np.testing.assert_array_equal(select_clean(loss, None, tau=0.0), [0, 1, 2])
    np.testing.assert_array_equal(select_clean(loss, loss, tau=0.0, mix=0.0), [0, 1, 2])
    np.testing.assert_array_equal(select_clean(loss, loss, tau=0.0, mix=1.0), [0, 1, 2])


def test_empty_batch():
    assert select_clean(np.array([]), None, tau=0.2).size == 0


@pytest.mark.parametrize(
    "args, match",
    [
        ((np.array([1.0, np.nan]), None, 0.2), "loss.*position 1"),
        ((np.array([1.0, 2.0]), np.array([1.0]), 0.2, 0.5), "vog has 1"),
        ((np.ones((2, 2)), None, 0.2), "1-D"),
        ((np.ones(3), None, 1.5), "tau"),
        ((np.ones(3), np.ones(3), 0.2, -0.1), "mix"),
    ],
)
def test_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        select_clean(*args)


def test_exact_counts_fill_r():
    # floor rule: 0.8 * 38 = 30.4 -> 30, 0.2 * 38 = 7.6 -> 7: one short of R = 38
    assert clean_counts(64, 0.4, 0.2) == (38, 30, 7)
    assert clean_counts(64, 0.4, 0.2, exact=True) == (38, 30, 8)
    rng = np.random.default_rng(0)
    loss, vog = rng.random(64), rng.random(64)
    assert select_clean(loss, vog, 0.4, 0.2, exact=True).size == 38
    assert select_clean(loss, vog, 0.4, 0.2).size == 37
