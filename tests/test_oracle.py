"""Simulated oracle: error rate, per-item determinism, unsure answers, async submit/collect."""

from __future__ import annotations

import numpy as np
import pytest

from labelrefine.active.oracle import UNSURE, SimulatedOracle, SyncOracle


def _truth(n: int = 10_000, c: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, c, size=n)


def test_perfect_oracle_returns_truth() -> None:
    truth = _truth(500)
    oracle = SimulatedOracle(truth, 5)
    idx = np.array([4, 0, 499, 4])
    np.testing.assert_array_equal(oracle.query(idx), truth[idx])
    assert oracle.query(idx).dtype == np.int64
    assert oracle.n_queries == 8


def test_error_rate_honoured_and_wrong_answers_are_other_classes() -> None:
    truth = _truth(10_000, c=5)
    oracle = SimulatedOracle(truth, 5, error_rate=0.2, seed=3)
    answers = oracle.query(np.arange(10_000))
    wrong = answers != truth
    # binomial std at n=10,000, p=0.2 is 0.004; allow 4 std
    assert abs(wrong.mean() - 0.2) < 0.016
    assert answers.min() >= 0 and answers.max() < 5
    # wrong answers are spread uniformly over the 4 other classes
    offsets = (answers[wrong] - truth[wrong]) % 5
    counts = np.bincount(offsets, minlength=5)
    assert counts[0] == 0
    assert np.all(np.abs(counts[1:] / wrong.sum() - 0.25) < 0.04)


def test_two_classes_error_always_flips() -> None:
    truth = _truth(2000, c=2)
    answers = SimulatedOracle(truth, 2, error_rate=0.3, seed=1).query(np.arange(2000))
    wrong = answers != truth
    np.testing.assert_array_equal(answers[wrong], 1 - truth[wrong])
    assert abs(wrong.mean() - 0.3) < 0.05


def test_seed_determinism_and_order_independence() -> None:
    truth = _truth(3000)
    idx = np.arange(3000)
    a = SimulatedOracle(truth, 5, error_rate=0.3, seed=7).query(idx)
    b = SimulatedOracle(truth, 5, error_rate=0.3, seed=7).query(idx)
    c = SimulatedOracle(truth, 5, error_rate=0.3, seed=8).query(idx)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # asking in another order, in pieces, or repeatedly gives each item the same answer
    oracle = SimulatedOracle(truth, 5, error_rate=0.3, seed=7)
    perm = np.random.default_rng(0).permutation(3000)
    pieces = np.concatenate([oracle.query(part) for part in np.array_split(perm, 7)])
    np.testing.assert_array_equal(pieces, a[perm])
    np.testing.assert_array_equal(oracle.query(idx[:50]), a[:50])


def test_query_keeps_shape() -> None:
    truth = _truth(20)
    oracle = SimulatedOracle(truth, 5)
    idx = np.array([[1, 2], [3, 4]])
    np.testing.assert_array_equal(oracle.query(idx), truth[idx])
    assert oracle.query(np.zeros(0, dtype=np.int64)).shape == (0,)


def test_unsure_answers() -> None:
    truth = _truth(4000)
    oracle = SimulatedOracle(truth, 5, error_rate=0.1, seed=2, unsure_rate=0.25)
    answers = oracle.query(np.arange(4000))
    unsure = answers == UNSURE
    assert abs(unsure.mean() - 0.25) < 0.03
    # being able to say "unsure" does not change the other answers
    plain = SimulatedOracle(truth, 5, error_rate=0.1, seed=2).query(np.arange(4000))
    np.testing.assert_array_equal(answers[~unsure], plain[~unsure])


def test_is_a_sync_oracle() -> None:
    assert isinstance(SimulatedOracle(_truth(5), 5), SyncOracle)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"true_labels": np.array([0, 5]), "num_classes": 5}, r"true_labels\[1\] = 5"),
        ({"true_labels": np.zeros((2, 2), int), "num_classes": 2}, "1-D"),
        ({"true_labels": np.array([0.5]), "num_classes": 2}, "integer"),
        ({"true_labels": np.array([0, 1]), "num_classes": 2, "error_rate": 1.0}, "error_rate"),
        ({"true_labels": np.array([0, 0]), "num_classes": 1, "error_rate": 0.1}, "2 classes"),
        ({"true_labels": np.array([0, 1]), "num_classes": 2, "unsure_rate": -0.1}, "unsure"),
        ({"true_labels": np.array([0, 1]), "num_classes": 2, "seed": -1}, "seed"),
    ],
)
def test_bad_construction(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SimulatedOracle(**kwargs)


def test_bad_queries_name_the_item() -> None:
    oracle = SimulatedOracle(_truth(10), 5)
    with pytest.raises(IndexError, match="item index 10 is outside the 10 items"):
        oracle.query(np.array([1, 10]))
    with pytest.raises(IndexError, match="item index -1"):
        oracle.query(np.array([-1]))
    assert oracle.n_queries == 0  # rejected queries are not counted
    with pytest.raises(ValueError, match="integer"):
        oracle.query(np.array([1.5]))
