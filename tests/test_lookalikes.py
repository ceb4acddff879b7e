"""Look-alikes: the nearest confirmed items of a class by cosine distance (pure function)."""

from __future__ import annotations

import numpy as np
import pytest

from labelrefine.lookalikes import UNCONFIRMED, nearest_of_class, unit_rows


def brute_force(x: np.ndarray, labels: np.ndarray, query: int, cls: int, k: int) -> list[int]:
    """Reference: every other item of ``cls`` sorted by (1 - cos, index)."""
    q = x[query] / np.linalg.norm(x[query])
    rows = [(1 - float(x[j] @ q / np.linalg.norm(x[j])), j)
            for j in range(len(x)) if j != query and labels[j] == cls]
    return [j for _, j in sorted(rows)[:k]]


def test_matches_brute_force_on_generated_features():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 16))
    labels = rng.integers(-1, 4, size=200)
    for query in (0, 17, 199):
        for cls in range(4):
            got = nearest_of_class(x, labels, query, cls, k=3)
            assert [j for j, _ in got] == brute_force(x, labels, query, cls, 3)
            dists = [d for _, d in got]
            assert dists == sorted(dists) and all(0 <= d <= 2 for d in dists)


def test_distance_is_cosine_not_euclidean():
    # item 1 points the same way as the query but is far away; item 2 is close but at 90°
    x = np.array([[1.0, 0.0], [100.0, 0.0], [0.0, 0.5], [1.0, 1.0]])
    labels = np.array([0, 1, 1, 1])
    got = nearest_of_class(x, labels, 0, 1, k=3)
    assert [j for j, _ in got] == [1, 3, 2]
    assert got[0][1] == pytest.approx(0.0) and got[2][1] == pytest.approx(1.0)
    assert got[1][1] == pytest.approx(1 - np.sqrt(0.5), abs=1e-6)


def test_the_query_itself_is_never_a_lookalike():
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    labels = np.array([1, 1, 1])
    assert [j for j, _ in nearest_of_class(x, labels, 0, 1, k=5)] == [1, 2]
    assert nearest_of_class(x[:1], labels[:1], 0, 1, k=3) == []  # only itself: nothing


def test_only_items_of_the_wanted_class():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4))
    labels = np.full(50, UNCONFIRMED)
    labels[[5, 9, 30]] = 2
    labels[[1, 2, 3, 4]] = 0
    got = nearest_of_class(x, labels, 0, 2, k=3)
    assert sorted(j for j, _ in got) == [5, 9, 30]
    assert nearest_of_class(x, labels, 0, 1, k=3) == []  # a class with no confirmed item
    assert nearest_of_class(x, labels, 0, UNCONFIRMED + 10, k=3) == []


def test_k_larger_than_available_and_zero():
    x = np.eye(5)
    labels = np.array([0, 1, 1, 0, 0])
    assert len(nearest_of_class(x, labels, 0, 1, k=10)) == 2
    assert nearest_of_class(x, labels, 0, 1, k=0) == []


def test_ties_are_broken_by_item_index_whatever_the_order_of_the_rows():
    # items 1..6 all at the same distance from the query (orthogonal unit vectors, some
    # scaled: cosine ignores the length)
    x = np.zeros((7, 8))
    x[0, 0] = 1.0
    for j in range(1, 7):
        x[j, j] = float(j)
    labels = np.array([0, 1, 1, 1, 1, 1, 1])
    first = nearest_of_class(x, labels, 0, 1, k=3)
    assert [j for j, _ in first] == [1, 2, 3]
    assert nearest_of_class(x, labels, 0, 1, k=3) == first  # deterministic
    # float noise far below the rounding does not reorder equal distances
    noisy = x + np.random.default_rng(1).normal(scale=1e-9, size=x.shape)
    assert [j for j, _ in nearest_of_class(noisy, labels, 0, 1, k=3)] == [1, 2, 3]


def test_zero_rows_are_at_distance_one():
    x = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 0.1]])
    labels = np.array([0, 1, 1])
    got = dict(nearest_of_class(x, labels, 0, 1, k=2))
    assert got[1] == pytest.approx(1.0) and got[2] < 0.01
    assert np.isfinite(unit_rows(x)).all() and not unit_rows(x)[1].any()


@pytest.mark.parametrize(("labels", "query", "k", "message"), [
    (np.zeros(3), 0, 3, "same items"),
    (np.zeros(4), 4, 3, "not an item index"),
    (np.zeros(4), -1, 3, "not an item index"),
    (np.zeros(4), 0, -1, "k must be"),
])
def test_bad_input_is_a_clear_error(labels, query, k, message):
    with pytest.raises(ValueError, match=message):
        nearest_of_class(np.ones((4, 2)), labels, query, 0, k)
