"""The simulated oracle: answers label queries from ground truth, optionally wrong or unsure.

:class:`SyncOracle` -- ``query(indices) -> labels``, answering at once -- is what the simulated
phase 2 asks. Real experts do not sit behind this interface: they answer through a campaign
(:mod:`labelrefine.campaign`), whose ledger records each answer as it arrives and is read back by
``labelrefine campaign step``.

:class:`SimulatedOracle` derives its randomness per item from ``(seed, item index)``, so an
item's answer does not depend on which other items were asked, in which order or in how many
calls.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from labelrefine.validation import UNSURE_LABEL, check_labels

#: Sentinel in :meth:`SimulatedOracle.query` output for an "unsure" answer (the integer form
#: of :data:`labelrefine.validation.UNSURE`; this name is kept for existing imports).
UNSURE = UNSURE_LABEL


@runtime_checkable
class SyncOracle(Protocol):
    """Answers label queries immediately."""

    def query(self, indices: np.ndarray) -> np.ndarray:
        """Labels for ``indices`` (int64, same shape; :data:`UNSURE` where unsure)."""
        ...


def _item_uniforms(seed: int, items: np.ndarray) -> np.ndarray:
    """Three uniforms per item drawn from ``default_rng([seed, item])``: shape ``(n, 3)``."""
    out = np.empty((items.size, 3))
    for row, item in enumerate(items.tolist()):
        out[row] = np.random.default_rng([seed, item]).random(3)
    return out


class SimulatedOracle:
    """An annotator simulated from true labels, optionally wrong or unsure.

    For each queried item ``i`` three uniforms ``u_1, u_2, u_3`` come from
    ``numpy.random.default_rng([seed, i])``. If ``u_1 < unsure_rate`` the answer is "unsure";
    otherwise if ``u_2 < error_rate`` it is a class drawn uniformly from the ``C - 1`` classes
    other than the true one (picked by ``u_3``); otherwise it is the true label. The same item
    always gets the same answer for a seed, whatever else is queried and in whatever order.

    Args:
        true_labels: ``(N,)`` ground-truth class of every item (indexed by item index).
        num_classes: ``C``.
        error_rate: probability ``epsilon`` of a wrong answer, in ``[0, 1)``.
        seed: seeds the per-item randomness.
        unsure_rate: probability of an "unsure" answer, in ``[0, 1)`` (default 0).
    """

    def __init__(self, true_labels: np.ndarray, num_classes: int, error_rate: float = 0.0,
                 seed: int = 0, *, unsure_rate: float = 0.0) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        labels = check_labels(true_labels, num_classes, name="true_labels").copy()
        if not 0.0 <= error_rate < 1.0:
            raise ValueError(f"error_rate must be in [0, 1), got {error_rate}")
        if error_rate > 0 and num_classes < 2:
            raise ValueError("error_rate > 0 needs at least 2 classes (a wrong class to answer)")
        if not 0.0 <= unsure_rate < 1.0:
            raise ValueError(f"unsure_rate must be in [0, 1), got {unsure_rate}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.true_labels = labels
        self.num_classes = int(num_classes)
        self.error_rate = float(error_rate)
        self.unsure_rate = float(unsure_rate)
        self.seed = int(seed)
        self.n_queries = 0  # answers given so far, including repeats and unsure ones

    def _check(self, indices: np.ndarray) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"indices must be integer item indices, got dtype {idx.dtype}")
        idx = idx.astype(np.int64)
        n = self.true_labels.size
        bad = np.flatnonzero((idx < 0) | (idx >= n))
        if bad.size:
            raise IndexError(f"item index {int(idx.reshape(-1)[bad[0]])} is outside the "
                             f"{n} items the oracle knows")
        return idx

    def query(self, indices: np.ndarray) -> np.ndarray:
        """Answers for ``indices`` (any shape), int64; :data:`UNSURE` (-1) where unsure."""
        idx = self._check(indices)
        flat = idx.reshape(-1)
        truth = self.true_labels[flat]
        answers = truth.copy()
        if flat.size and (self.error_rate > 0 or self.unsure_rate > 0):
            u = _item_uniforms(self.seed, flat)
            wrong = u[:, 1] < self.error_rate
            if wrong.any():
                offset = 1 + np.minimum((u[wrong, 2] * (self.num_classes - 1)).astype(np.int64),
                                        self.num_classes - 2)
                answers[wrong] = (truth[wrong] + offset) % self.num_classes
            answers[u[:, 0] < self.unsure_rate] = UNSURE
        self.n_queries += int(flat.size)
        return answers.reshape(idx.shape)
