"""Stratified splits: deterministic, disjoint, covering, per-class proportional."""

from __future__ import annotations

import numpy as np
import pytest

from labelrefine.data.splits import split_counts, stratified_split

FRACTIONS = (0.7, 0.1, 0.2)


def _labels() -> np.ndarray:
    # very imbalanced: 500, 61, 7, 3 samples, shuffled
    y = np.repeat(np.arange(4), [500, 61, 7, 3])
    return np.random.default_rng(123).permutation(y)


def test_split_is_a_partition() -> None:
    y = _labels()
    parts = stratified_split(y, FRACTIONS, seed=0)
    assert len(parts) == 3
    allidx = np.concatenate(parts)
    assert len(allidx) == len(y)
    np.testing.assert_array_equal(np.sort(allidx), np.arange(len(y)))
    for p in parts:
        assert p.dtype == np.int64
        assert np.all(np.diff(p) > 0)  # sorted, no duplicates


def test_per_class_largest_remainder_and_every_class_everywhere() -> None:
    y = _labels()
    train, val, test = stratified_split(y, FRACTIONS, seed=5)
    per_split = [np.bincount(y[p], minlength=4) for p in (train, val, test)]
    # class 0: 500 -> 350/50/100 exactly; class 1: 61 -> 42.7/6.1/12.2 -> 43/6/12
    assert [c[0] for c in per_split] == [350, 50, 100]
    assert [c[1] for c in per_split] == [43, 6, 12]
    # classes with >= 3 samples appear in all three splits, even at 10 %
    for counts in per_split:
        assert np.all(counts > 0)
    assert [c[3] for c in per_split] == [1, 1, 1]


def test_split_counts_rules() -> None:
    assert split_counts(10, FRACTIONS).tolist() == [7, 1, 2]
    assert split_counts(7, FRACTIONS).tolist() == [5, 1, 1]  # 4.9/0.7/1.4 -> 5/1/1
    assert split_counts(3, FRACTIONS).tolist() == [1, 1, 1]  # forced minimum of one each
    assert split_counts(2, FRACTIONS).sum() == 2
    assert split_counts(0, FRACTIONS).tolist() == [0, 0, 0]
    assert split_counts(5, (0.5, 0.5)).tolist() == [3, 2]  # tie goes to the earlier part
    for n in range(60):
        c = split_counts(n, FRACTIONS)
        assert c.sum() == n and np.all(c >= 0)
        if n >= 3:
            assert np.all(c >= 1)


def test_small_class_below_part_count_is_still_covered() -> None:
    y = np.array([0] * 20 + [1] * 20 + [2, 2])  # class 2 has 2 < 3 samples
    parts = stratified_split(y, FRACTIONS, seed=1)
    assert sum(int(np.sum(y[p] == 2)) for p in parts) == 2


def test_deterministic_and_seed_sensitive() -> None:
    y = _labels()
    a = stratified_split(y, FRACTIONS, seed=7)
    b = stratified_split(y, FRACTIONS, seed=7)
    c = stratified_split(y, FRACTIONS, seed=8)
    for pa, pb in zip(a, b, strict=True):
        np.testing.assert_array_equal(pa, pb)
    assert not all(np.array_equal(pa, pc) for pa, pc in zip(a, c, strict=True))
    # different seeds still give the same per-class sizes
    for pa, pc in zip(a, c, strict=True):
        np.testing.assert_array_equal(np.bincount(y[pa], minlength=4),
                                      np.bincount(y[pc], minlength=4))


def test_input_not_modified_and_list_input() -> None:
    y = _labels()
    before = y.copy()
    stratified_split(y, FRACTIONS, seed=0)
    np.testing.assert_array_equal(y, before)
    parts = stratified_split([0, 1, 0, 1, 0, 1], (0.5, 0.5), seed=0)
    assert sorted(np.concatenate(parts).tolist()) == list(range(6))


@pytest.mark.parametrize(
    ("fractions", "message"),
    [
        ((0.7, 0.2), "sum to 1"),
        ((0.7, 0.0, 0.3), "positive"),
        ((1.2, -0.2), "positive"),
        ((), "non-empty"),
        ((0.5, float("nan"), 0.5), "positive"),
    ],
)
def test_bad_fractions(fractions: tuple[float, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        stratified_split(np.array([0, 1, 0, 1]), fractions, seed=0)


def test_bad_labels() -> None:
    with pytest.raises(ValueError, match="1-D"):
        stratified_split(np.zeros((3, 2), dtype=int), FRACTIONS, seed=0)
    with pytest.raises(ValueError, match="integers"):
        stratified_split(np.array([0.5, 1.0]), FRACTIONS, seed=0)
    with pytest.raises(ValueError, match="non-negative"):
        stratified_split(np.array([0, -1, 1]), FRACTIONS, seed=0)
