"""Checks of the values a caller hands the ledger; each error names the bad value."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from labelrefine.campaign.ledger.records import CampaignError, ItemRecord, SubmissionIdTaken
from labelrefine.campaign.ledger.schema import NOTE_MAX_CHARS, ROLES
from labelrefine.validation import UNSURE

_MAX_INDEX = 2**62


def check_index(idx: Any) -> int:
    """An item index as int; CampaignError for non-integers and absurd values."""
    try:
        value = int(idx)
    except (TypeError, ValueError, OverflowError):
        raise CampaignError(f"item index must be an integer, got {idx!r}") from None
    if not 0 <= value < _MAX_INDEX:
        raise CampaignError(f"unknown item index {idx}")
    return value


def check_seconds(seconds: Any) -> float | None:
    if seconds is None:
        return None
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise CampaignError(f"seconds must be a non-negative number, got {seconds!r}") from None
    if not (np.isfinite(value) and 0 <= value < 1e7):
        raise CampaignError(f"seconds must be a non-negative number, got {seconds!r}")
    return value


def check_annotator(name: str) -> str:
    name = str(name).strip()
    if not name or len(name) > 64 or not name.isprintable():
        raise CampaignError(f"annotator name must be 1-64 printable characters, got {name!r}")
    return name


def check_submission_id(sid: str) -> str:
    sid = str(sid).strip()
    if not sid or len(sid) > 128 or not sid.isprintable():
        raise CampaignError(f"submission id must be 1-128 printable characters, got {sid!r}")
    return sid


def validate_classes(class_names: Sequence[str]) -> None:
    if len(class_names) < 2:
        raise CampaignError(f"a campaign needs at least 2 classes, got {list(class_names)}")
    seen: set[str] = set()
    for name in class_names:
        if not str(name).strip():
            raise CampaignError("class names must be non-empty")
        if name.lower() == UNSURE:
            raise CampaignError(f"class name {name!r} is reserved for the 'unsure' answer")
        if name in seen:
            raise CampaignError(f"duplicate class name {name!r}")
        seen.add(name)


def validate_items(items: Sequence[ItemRecord], num_classes: int) -> None:
    if not items:
        raise CampaignError("a campaign needs at least one item")
    keys: set[str] = set()
    for it in items:
        if it.key in keys:
            raise CampaignError(f"duplicate item id {it.key!r}")
        keys.add(it.key)
        if it.role not in ROLES:
            raise CampaignError(f"item {it.key!r}: unknown role {it.role!r} (use {ROLES})")
        if not 0 <= int(it.given_label) < num_classes:
            raise CampaignError(f"item {it.key!r}: label index {it.given_label} out of range")
        rel = Path(it.path)
        if rel.is_absolute() or ".." in rel.parts or not it.path:
            raise CampaignError(
                f"item {it.key!r}: image path {it.path!r} must be relative to the image root "
                "and stay inside it"
            )
    if not any(it.role == "train" for it in items):
        raise CampaignError("a campaign needs at least one 'train' item to relabel")


def check_owner(sid: str, owner: str, annotator: str) -> None:
    """A submission id belongs to the reader who first sent it; anyone else gets an error."""
    if owner != annotator:
        raise SubmissionIdTaken(
            f"submission id {sid!r} belongs to another reader's request; send a new "
            "submission id"
        )


def check_note(note: Any) -> str:
    """A reader's note as stored: text without surrounding blanks, at most
    :data:`NOTE_MAX_CHARS` characters, no control characters other than line breaks and tabs."""
    if note is None:
        return ""
    if not isinstance(note, str):
        raise CampaignError(f"a note must be text, got {type(note).__name__}")
    text = note.strip()
    if len(text) > NOTE_MAX_CHARS:
        raise CampaignError(
            f"the note has {len(text)} characters; at most {NOTE_MAX_CHARS} are kept, so "
            "shorten it"
        )
    bad = next((c for c in text if not c.isprintable() and c not in "\n\r\t"), None)
    if bad is not None:
        raise CampaignError(f"the note holds a control character ({bad!r}); remove it")
    return text
