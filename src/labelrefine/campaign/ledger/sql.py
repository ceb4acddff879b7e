"""Statements shared by the ledger's parts, run inside the caller's transaction."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from labelrefine.campaign.ledger.records import CampaignError
from labelrefine.io import to_jsonable


def utc_now() -> str:
    """Current UTC time as an ISO-8601 string with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def round_prob(p: float) -> float:
    """Probabilities are stored with 6 decimals (plenty for ranking display and export)."""
    return round(float(p), 6)


def json_text(obj: Mapping[str, Any]) -> str:
    """JSON text of an event payload or round record (numpy values and paths converted)."""
    return json.dumps(to_jsonable(dict(obj), nan="keep"))


def insert_event(
    con: sqlite3.Connection, kind: str, payload: Mapping[str, Any], ts: str | None = None
) -> None:
    con.execute(
        "INSERT INTO events(ts, kind, payload) VALUES (?, ?, ?)",
        (ts or utc_now(), kind, json_text(payload)),
    )


def relabelable_given_label(con: sqlite3.Connection, item: int) -> int:
    """Given label of a relabelable item; errors for unknown or held-out (val/test) items."""
    row = con.execute(
        "SELECT given_label, role, key FROM items WHERE idx = ?", (int(item),)
    ).fetchone()
    if row is None:
        raise CampaignError(f"unknown item index {item}")
    if row[1] != "train":
        raise CampaignError(
            f"item {row[2]!r} is held out ({row[1]}) for model selection and cannot be relabeled"
        )
    return int(row[0])


def latest_round(con: sqlite3.Connection) -> int | None:
    r = con.execute("SELECT MAX(round) FROM rounds").fetchone()[0]
    return None if r is None else int(r)


def decision_status(con: sqlite3.Connection, item: int) -> str | None:
    """The item's decision status (None: nobody answered it)."""
    row = con.execute("SELECT status FROM decisions WHERE item = ?", (int(item),)).fetchone()
    return None if row is None else str(row[0])


def refresh_item(con: sqlite3.Connection, item: int) -> str | None:
    """Recompute ``items.current_label`` / ``source`` from the item's decision; return its
    status."""
    row = con.execute("SELECT status, label FROM decisions WHERE item = ?", (int(item),)).fetchone()
    if row is None:
        label_sql, source = "given_label", "given"
    elif row[1] is not None:
        label_sql, source = str(int(row[1])), "expert"
    else:  # unsure or conflict: the stored column keeps the given label
        label_sql, source = "given_label", "unsure"
    con.execute(
        f"UPDATE items SET current_label = {label_sql}, source = ? WHERE idx = ?",
        (source, int(item)),
    )
    return None if row is None else str(row[0])


def log_decision_change(
    con: sqlite3.Connection,
    item: int,
    before: str | None,
    after: str | None,
    context: Mapping[str, Any],
    now: str,
) -> None:
    """Log the decision changes an answer, undo or import caused: a new conflict, and an
    adjudication reopened because an answer it resolved changed."""
    if after == "conflict" and before != "conflict":
        insert_event(con, "conflict", {"item": item, **context}, now)
    if before == "adjudicated" and after != "adjudicated":
        insert_event(con, "reopen", {"item": item, "status": after, **context}, now)
