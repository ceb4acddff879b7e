"""Long-tail subsampling: target counts by class rank, seeded subsets."""

from __future__ import annotations

import numpy as np
import pytest

from labelrefine.data.longtail import longtail_counts, longtail_indices


def test_counts_follow_the_exponential_profile() -> None:
    # 5 equal classes, ratio 16: 1000 * 16^(-k/4) = 1000, 500, 250, 125, 62.5 (ties: class id)
    assert longtail_counts([1000] * 5, 16).tolist() == [1000, 500, 250, 125, 62]
    # ratio 100 over 3 classes: 100, 10, 1
    assert longtail_counts([100, 100, 100], 100).tolist() == [100, 10, 1]


def test_counts_rank_by_size_and_cap_by_availability() -> None:
    # ranks: class 1 (500) -> 0, class 3 (200) -> 1, class 2 (50) -> 2, class 0 (10) -> 3
    # targets 500, 232, 107, 50 -> capped by 200, 50, 10
    assert longtail_counts([10, 500, 50, 200], 10).tolist() == [10, 500, 50, 200]
    # a smaller ratio leaves room for the cap to bind only where needed
    assert longtail_counts([400, 400, 30, 400], 4).tolist() == [400, 251, 30, 158]


def test_counts_minimum_one_zero_stays_zero_and_ratio_one() -> None:
    assert longtail_counts([1000, 3], 10_000).tolist() == [1000, 1]
    assert longtail_counts([50, 0, 50], 2).tolist() == [50, 0, 35]
    assert longtail_counts([5, 9, 2], 1).tolist() == [5, 9, 2]
    assert longtail_counts([7], 100).tolist() == [7]


def test_counts_validation() -> None:
    with pytest.raises(ValueError, match="ratio must be >= 1"):
        longtail_counts([10, 10], 0.5)
    with pytest.raises(ValueError, match="non-negative"):
        longtail_counts([10, -1], 2)
    with pytest.raises(ValueError, match="integer"):
        longtail_counts([10.0, 2.0], 2)


def test_indices_match_counts_and_are_sorted_subsets() -> None:
    rng = np.random.default_rng(0)
    y = rng.permutation(np.repeat(np.arange(4), [800, 800, 600, 300]))
    idx = longtail_indices(y, 100, seed=3)
    assert idx.dtype == np.int64
    assert np.all(np.diff(idx) > 0)
    expected = longtail_counts(np.bincount(y), 100)
    np.testing.assert_array_equal(np.bincount(y[idx], minlength=4), expected)
    # ranks 0..3 over 4 classes, n_max 800: 800, 800/100^(1/3) = 172.3, 37.1, 8
    assert expected.tolist() == [800, 172, 37, 8]


def test_indices_deterministic_and_seed_sensitive() -> None:
    y = np.repeat(np.arange(3), [300, 300, 300])
    a = longtail_indices(y, 10, seed=1)
    b = longtail_indices(y, 10, seed=1)
    c = longtail_indices(y, 10, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len(a) == len(c)


def test_indices_num_classes_and_validation() -> None:
    y = np.array([0] * 50 + [1] * 50)
    # with 3 classes declared the missing class 2 ranks last and keeps 0 items
    idx = longtail_indices(y, 4, seed=0, num_classes=3)
    assert np.bincount(y[idx], minlength=3).tolist() == [50, 25, 0]
    with pytest.raises(ValueError, match="outside"):
        longtail_indices(y, 4, seed=0, num_classes=1)
    with pytest.raises(ValueError, match="1-D integer"):
        longtail_indices(np.zeros((2, 2), dtype=int), 4, seed=0)
    assert longtail_indices(np.array([], dtype=np.int64), 4, seed=0).shape == (0,)
