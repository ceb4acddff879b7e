"""The state of a cleaning round: what is known about the labels between two rounds.

One :class:`CleaningState` is the whole of it, for the simulated pipelines and for
``campaign step`` alike (docs/design.md, "A round"):

* ``labels`` -- ``(N,)`` current labels: the given ones with every sure answer applied;
* ``pool`` -- the items a round may still query (each at most once);
* ``trusted`` -- the items the next fit trains on by default: phase 1's clean set (with its
  *given* labels) plus every item answered with a label;
* ``answered`` -- the items answered with a label (the expert's labels only).

Naming: *trusted* always means "what the next fit trains on"; *clean* always means phase 1's
clean set. :meth:`CleaningState.apply` is the one place answers change the state; the
strategy (:mod:`labelrefine.active.strategies`) decides the starting pool and which candidate
training sets a round fits.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from labelrefine.active.oracle import UNSURE


def _items(values: np.ndarray | None) -> np.ndarray:
    """Sorted unique int64 item indices (an empty array for None)."""
    if values is None:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.asarray(values, dtype=np.int64))


@dataclass(frozen=True)
class AnswerStep:
    """What one :meth:`CleaningState.apply` changed."""

    picked: np.ndarray  # (k,) items queried
    answers: np.ndarray  # (k,) their answers (UNSURE for "unsure")
    sure: np.ndarray  # (k,) bool: which answers were labels
    n_changed: int  # sure answers that differ from the label they replace


@dataclass(frozen=True)
class CleaningState:
    """Labels, pool, trusted set and answered items between two rounds (module docstring).

    Arrays are never modified in place: :meth:`apply` and :meth:`resplit` return a new
    state.
    """

    labels: np.ndarray
    pool: np.ndarray
    trusted: np.ndarray
    answered: np.ndarray

    @classmethod
    def start(cls, labels: np.ndarray, *, pool: np.ndarray, trusted: np.ndarray | None = None,
              answered: np.ndarray | None = None) -> CleaningState:
        """A state from ``labels`` (copied), the queryable ``pool``, the ``trusted`` set and
        the items already ``answered`` with a label (sorted, unique copies)."""
        return cls(labels=np.array(labels, dtype=np.int64, copy=True), pool=_items(pool),
                   trusted=_items(trusted), answered=_items(answered))

    def apply(self, picked: np.ndarray, answers: np.ndarray) -> tuple[CleaningState, AnswerStep]:
        """Apply one round's answers: labels replaced, queried items leave the pool, labeled
        ones are trusted and answered. An :data:`~labelrefine.active.oracle.UNSURE` answer
        removes the item from the pool without changing its label or trusting it."""
        picked = np.asarray(picked, dtype=np.int64)
        answers = np.asarray(answers, dtype=np.int64)
        if picked.shape != answers.shape:
            raise ValueError(f"{answers.size} answers for {picked.size} queried items")
        sure = answers != UNSURE
        labels = np.array(self.labels, dtype=np.int64, copy=True)
        n_changed = int(np.sum(answers[sure] != labels[picked[sure]]))
        labels[picked[sure]] = answers[sure]
        state = CleaningState(
            labels=labels,
            pool=np.setdiff1d(self.pool, picked, assume_unique=True),
            trusted=np.union1d(self.trusted, picked[sure]),
            answered=np.union1d(self.answered, picked[sure]),
        )
        return state, AnswerStep(picked=picked, answers=answers, sure=sure, n_changed=n_changed)

    def resplit(self, *, pool: np.ndarray | None = None,
                trusted: np.ndarray | None = None) -> CleaningState:
        """The same state with another pool and / or trusted set (``ours_plus``' resplit)."""
        return replace(self, pool=self.pool if pool is None else _items(pool),
                       trusted=self.trusted if trusted is None else _items(trusted))
