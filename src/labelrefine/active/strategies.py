"""Cleaning strategies: which items a round may query, which training sets it fits.

A :class:`Strategy` is the part of a method that both the simulated pipelines and
``campaign step`` drive over a :class:`~labelrefine.active.state.CleaningState`
(docs/design.md, "A round"):

* ``pool`` -- where queries come from: ``suspects`` (phase 1's suspects, the paper) or
  ``all`` (every training item, phase 1's clean set included); items already asked or trusted
  by the team are never queried again;
* ``train_on`` -- the candidate training sets each round fits from the same weights, the
  better-validating kept (:data:`TRAIN_ON`).

The campaign strategies and their simulated twins:

============  =================  ==========================  ===========================
strategy      twin               pool                        train_on
============  =================  ==========================  ===========================
``paper``     ``ours``           suspects                    ``clean``
``plus``      ``ours_plus``      all                         ``select``
``find``      ``ours_find``      all                         ``find.train_on``
============  =================  ==========================  ===========================

``ours_plus`` takes pool and ``train_on`` from ``spec.plus``, ``cleanlab_relabel`` queries every
training item and trains on its ``pruned`` set. How a round ranks its pool (a sampler, the
finder, cleanlab's label quality) is the caller's. Light module: numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from labelrefine.active.state import CleaningState

#: The training sets each ``train_on`` setting fits from the same weights (the better-validating
#: one is kept): ``clean`` = the trusted set (phase 1's clean set plus the answers),
#: ``relabeled`` = the answers only, ``pruned`` = every training item with its current label
#: except the unanswered ones the finder flags (:func:`labelrefine.active.finding.flag_issues`),
#: ``trusted`` = the answers plus the clean-set items of the classes the answers vouch for
#: (``ours_plus``). ``pruned`` and ``trusted`` are supplied by the caller.
TRAIN_ON: dict[str, tuple[str, ...]] = {
    "clean": ("clean",), "relabeled": ("relabeled",), "pruned": ("pruned",),
    "trusted": ("trusted",),
    "select": ("clean", "relabeled"), "select_pruned": ("clean", "relabeled", "pruned"),
}

Pool = Literal["suspects", "all"]


def candidates(train_on: str, sets: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The candidate training sets of ``train_on`` (:data:`TRAIN_ON`) among ``sets``; an empty
    one is dropped, and with none left the ``clean`` set is the only candidate."""
    if train_on not in TRAIN_ON:
        raise ValueError(f"unknown train_on {train_on!r}; choose one of {', '.join(TRAIN_ON)}")
    out = {k: np.asarray(sets[k]) for k in TRAIN_ON[train_on] if k in sets and len(sets[k])}
    return out or {"clean": np.asarray(sets["clean"])}


@dataclass(frozen=True)
class Strategy:
    """Which items a round may query and which candidate training sets it fits."""

    name: str
    pool: Pool
    train_on: str

    def __post_init__(self) -> None:
        if self.pool not in ("suspects", "all"):
            raise ValueError(f"strategy {self.name}: pool must be 'suspects' or 'all', "
                             f"got {self.pool!r}")
        if self.train_on not in TRAIN_ON:
            raise ValueError(f"strategy {self.name}: unknown train_on {self.train_on!r}; "
                             f"choose one of {', '.join(TRAIN_ON)}")

    def queryable(self, train: np.ndarray, clean: np.ndarray) -> np.ndarray:
        """The items this strategy ever queries: ``train`` minus phase 1's ``clean`` set
        (``suspects``) or all of ``train``."""
        train = np.unique(np.asarray(train, dtype=np.int64))
        if self.pool == "all":
            return train
        return np.setdiff1d(train, np.asarray(clean, dtype=np.int64))

    def pool_of(self, train: np.ndarray, clean: np.ndarray,
                settled: np.ndarray | None = None) -> np.ndarray:
        """The pool: :meth:`queryable` minus the ``settled`` items (answered in any way, or
        trusted by the team)."""
        pool = self.queryable(train, clean)
        if settled is None:
            return pool
        return np.setdiff1d(pool, np.asarray(settled, dtype=np.int64))

    def start(self, labels: np.ndarray, *, train: np.ndarray, clean: np.ndarray,
              settled: np.ndarray | None = None,
              answered: np.ndarray | None = None) -> CleaningState:
        """The state a round starts from: ``labels`` (answers applied), the pool
        (:meth:`pool_of`), the trusted set (phase 1's ``clean`` set plus the ``answered``
        items) and the ``answered`` items. A fresh run passes no ``settled`` / ``answered``;
        a campaign passes what its ledger holds."""
        answered = np.zeros(0, dtype=np.int64) if answered is None else answered
        return CleaningState.start(
            labels, pool=self.pool_of(train, clean, settled),
            trusted=np.union1d(np.asarray(clean, dtype=np.int64),
                               np.asarray(answered, dtype=np.int64)),
            answered=answered)

    def candidates(self, state: CleaningState,
                   extra: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """The candidate training sets of a round over ``state``: ``clean`` its trusted set,
        ``relabeled`` its answered items, plus (or instead) the ``extra`` ones."""
        sets = {"clean": state.trusted, "relabeled": state.answered, **(extra or {})}
        return candidates(self.train_on, sets)


#: ``campaign step``'s strategies by name (``find``: :func:`campaign_strategy` fills in
#: ``find.train_on``).
PAPER = Strategy("paper", "suspects", "clean")
PLUS = Strategy("plus", "all", "select")


def campaign_strategy(name: str, find_train_on: str = "select") -> Strategy:
    """The strategy ``campaign step --strategy NAME`` drives (module docstring)."""
    if name == "paper":
        return PAPER
    if name == "plus":
        return PLUS
    if name == "find":
        return Strategy("find", "all", find_train_on)
    raise ValueError(f"unknown strategy {name!r}; choose one of find, paper, plus")
