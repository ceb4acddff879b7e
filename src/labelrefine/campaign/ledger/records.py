"""What the ledger takes and returns: its errors and the small records of items and results."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from labelrefine.data.dataset import DataError


class CampaignError(DataError):
    """A campaign cannot do what was asked; the message names the item, class or file."""


class SubmissionRetracted(CampaignError):
    """A submission id whose answer was undone was sent again: send a new submission id."""


class NotAllowed(CampaignError):
    """A reader tried something their account may not do (e.g. undo another reader's answer)."""


class SubmissionIdTaken(CampaignError):
    """A submission id already names another reader's request: send a new submission id."""


@dataclass(frozen=True)
class ItemRecord:
    """One item as it enters a campaign."""

    key: str
    path: str
    given_label: int
    role: str = "train"
    sha256: str | None = None


@dataclass(frozen=True)
class SubmitResult:
    """Outcome of :meth:`Ledger.submit`: the stored annotation and whether it was a retry."""

    annotation_id: int
    item: int
    duplicate: bool
    conflict: bool = False


@dataclass(frozen=True)
class UndoResult:
    """Outcome of :meth:`Ledger.undo_last`: which answer was retracted (None: nothing to undo)."""

    retracted_id: int | None
    item: int | None
    duplicate: bool


@dataclass(frozen=True)
class AdjudicationResult:
    """Outcome of :meth:`Ledger.adjudicate`."""

    adjudication_id: int
    item: int
    label: int
    duplicate: bool


@dataclass(frozen=True)
class ImportResult:
    """Outcome of :meth:`Ledger.import_answers`.

    ``imported``: new answers stored; ``already_present``: answers the ledger already held (same
    submission id, same external id with the same answer, or the same reader's live answer is
    already this answer); ``conflicts``: items that this import turned into a conflict between
    readers (listed in ``conflict_items``). Unpacks as ``(imported, already_present)``.
    """

    imported: int
    already_present: int
    conflicts: int = 0
    conflict_items: tuple[int, ...] = field(default=())

    def __iter__(self) -> Iterator[int]:
        return iter((self.imported, self.already_present))


@dataclass(frozen=True)
class Reader:
    """A reader account: answers are recorded under ``name``; ``adjudicator``s may also decide
    conflicts."""

    name: str
    role: str


@dataclass(frozen=True)
class QueueEntry:
    """A queued item with everything the labeling page shows."""

    round: int
    rank: int
    idx: int
    key: str
    path: str
    given_label: int
    reason: str
    score: float | None
    probs: np.ndarray | None
