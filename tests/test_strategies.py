"""Cleaning state and strategies (active.state, active.strategies) on small index sets."""

from __future__ import annotations

import numpy as np
import pytest

from labelrefine.active.oracle import UNSURE
from labelrefine.active.state import CleaningState
from labelrefine.active.strategies import PAPER, PLUS, Strategy, campaign_strategy, candidates

TRAIN = np.arange(10, dtype=np.int64)
CLEAN = np.array([0, 1, 2, 3, 4, 5], dtype=np.int64)


def test_pool_is_the_suspects_or_every_training_item_minus_the_settled() -> None:
    settled = np.array([1, 7], dtype=np.int64)
    assert PAPER.pool_of(TRAIN, CLEAN, settled).tolist() == [6, 8, 9]
    assert PLUS.pool_of(TRAIN, CLEAN, settled).tolist() == [0, 2, 3, 4, 5, 6, 8, 9]
    assert campaign_strategy("find").pool_of(TRAIN, CLEAN).tolist() == TRAIN.tolist()


def test_start_trusts_the_clean_set_plus_the_answers_and_apply_moves_items() -> None:
    labels = np.zeros(10, dtype=np.int64)
    state = PLUS.start(labels, train=TRAIN, clean=CLEAN, settled=np.array([8]),
                       answered=np.array([8]))
    assert state.trusted.tolist() == [0, 1, 2, 3, 4, 5, 8] and state.answered.tolist() == [8]
    assert 8 not in state.pool
    new, step = state.apply(np.array([9, 2, 6]), np.array([1, UNSURE, 0]))
    assert new.labels.tolist() == [0] * 9 + [1] and labels[9] == 0  # input not modified
    assert step.n_changed == 1 and step.sure.tolist() == [True, False, True]
    assert new.answered.tolist() == [6, 8, 9]
    assert new.trusted.tolist() == [0, 1, 2, 3, 4, 5, 6, 8, 9]
    assert not {9, 2, 6} & set(new.pool.tolist())  # unsure leaves the pool too
    assert state.pool.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 9]  # the old state is unchanged


def test_candidates_follow_train_on_and_fall_back_to_the_trusted_set() -> None:
    state = CleaningState.start(np.zeros(10), pool=[6, 7], trusted=CLEAN, answered=[])
    assert list(PAPER.candidates(state)) == ["clean"]
    got = PLUS.candidates(state)  # no answer yet: "relabeled" is empty and dropped
    assert list(got) == ["clean"] and got["clean"].tolist() == CLEAN.tolist()
    state, _ = state.apply(np.array([6]), np.array([2]))
    got = PLUS.candidates(state)
    assert list(got) == ["clean", "relabeled"] and got["relabeled"].tolist() == [6]
    pruned = Strategy("x", "all", "pruned").candidates(state, {"pruned": np.array([1, 2])})
    assert list(pruned) == ["pruned"] and pruned["pruned"].tolist() == [1, 2]
    out = candidates("select_pruned", {"clean": np.array([1]), "relabeled": np.array([]),
                                       "pruned": np.array([3])})
    assert list(out) == ["clean", "pruned"]


@pytest.mark.parametrize(("make", "says"), [
    (lambda: Strategy("x", "all", "best"), "strategy x: unknown train_on 'best'"),
    (lambda: Strategy("x", "some", "clean"), "strategy x: pool must be"),
    (lambda: campaign_strategy("best"), "unknown strategy 'best'"),
])
def test_bad_strategies_are_named(make, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        make()
