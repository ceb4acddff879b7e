"""Conflicts between readers and the adjudicators' decisions on them."""

from __future__ import annotations

import json

import pandas as pd

from labelrefine.campaign.ledger.checks import (
    check_annotator,
    check_index,
    check_owner,
    check_seconds,
    check_submission_id,
)
from labelrefine.campaign.ledger.core import LedgerCore
from labelrefine.campaign.ledger.records import AdjudicationResult, CampaignError
from labelrefine.campaign.ledger.sql import (
    decision_status,
    insert_event,
    latest_round,
    refresh_item,
    relabelable_given_label,
    utc_now,
)


class Adjudication(LedgerCore):
    """Lists conflicts and records adjudicators' decisions."""

    def conflicts(self, *, include_resolved: bool = False) -> pd.DataFrame:
        """Items whose readers' live labels differ.

        One row per item: item, key, given_label, status (``conflict`` or, with
        ``include_resolved``, ``adjudicated``), label (the adjudicated one), answers (list of
        ``(annotator, label or None for unsure, annotation id)``), notes (the readers' notes on
        those answers, in the same order; empty text where a reader wrote none).
        """
        statuses = ("conflict", "adjudicated") if include_resolved else ("conflict",)
        with self.connect() as con:
            rows = con.execute(
                "SELECT d.item, i.key, i.given_label, d.status, d.label FROM decisions d "
                "JOIN items i ON i.idx = d.item "
                f"WHERE d.status IN ({','.join('?' * len(statuses))}) ORDER BY d.item",
                statuses,
            ).fetchall()
            out = []
            for item, key, given, status, label in rows:
                ans = con.execute(
                    "SELECT annotator, label, id, note FROM live_answers WHERE item = ? "
                    "ORDER BY id",
                    (item,),
                ).fetchall()
                if status == "adjudicated":
                    labels = {a[1] for a in ans if a[1] is not None}
                    if len(labels) < 2:
                        continue  # adjudicated, but the readers did not disagree
                out.append(
                    {
                        "item": int(item),
                        "key": key,
                        "given_label": int(given),
                        "status": status,
                        "label": None if label is None else int(label),
                        "answers": [(a[0], a[1], int(a[2])) for a in ans],
                        "notes": [str(a[3]) for a in ans],
                    }
                )
        return pd.DataFrame(
            out, columns=["item", "key", "given_label", "status", "label", "answers", "notes"]
        )

    def adjudicate(
        self,
        item: int,
        label: int,
        *,
        adjudicator: str,
        submission_id: str,
        seconds: float | None = None,
        note: str = "",
    ) -> AdjudicationResult:
        """Record an adjudicator's final label for an item whose readers disagree.

        Allowed on items in conflict (or already adjudicated: the latest decision counts).
        Idempotent per ``submission_id``. The decision becomes the item's final label for
        training and export; the readers' answers stay as they were.
        """
        adjudicator = check_annotator(adjudicator)
        submission_id = check_submission_id(submission_id)
        item = check_index(item)
        label = int(label)
        if not 0 <= label < self.num_classes:
            raise CampaignError(f"label index {label} out of range for {self.num_classes} classes")
        seconds = check_seconds(seconds)
        now = utc_now()
        with self.transaction() as con:
            prior = con.execute(
                "SELECT id, item, label, adjudicator FROM adjudications WHERE submission_id = ?",
                (submission_id,),
            ).fetchone()
            if prior is not None:
                check_owner(submission_id, str(prior[3]), adjudicator)
                if (int(prior[1]), int(prior[2])) != (item, label):
                    raise CampaignError(
                        f"submission id {submission_id!r} was already used for another decision"
                    )
                return AdjudicationResult(int(prior[0]), item, label, duplicate=True)
            relabelable_given_label(con, item)
            status = decision_status(con, item)
            live = con.execute(
                "SELECT id, label FROM live_answers WHERE item = ? ORDER BY id", (item,)
            ).fetchall()
            disagree = len({r[1] for r in live if r[1] is not None}) > 1
            if status != "conflict" and not (status == "adjudicated" and disagree):
                key = con.execute("SELECT key FROM items WHERE idx = ?", (item,)).fetchone()[0]
                raise CampaignError(
                    f"item {key!r} has no disagreement to adjudicate (status: {status or 'none'})"
                )
            cur = con.execute(
                "INSERT INTO adjudications(submission_id, item, label, adjudicator, resolves, "
                "round, created_at, seconds, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    submission_id,
                    item,
                    label,
                    adjudicator,
                    json.dumps([int(r[0]) for r in live]),
                    latest_round(con),
                    now,
                    seconds,
                    str(note)[:1000],
                ),
            )
            adj_id = int(cur.lastrowid)
            refresh_item(con, item)
            insert_event(
                con,
                "adjudicate",
                {"adjudication": adj_id, "item": item, "label": label, "adjudicator": adjudicator},
                now,
            )
        return AdjudicationResult(adj_id, item, label, duplicate=False)

    def adjudications(self) -> pd.DataFrame:
        """Every adjudication (oldest first): id, submission_id, item, label, adjudicator,
        resolves (list of annotation ids), round, created_at, seconds, note."""
        with self.connect() as con:
            df = pd.read_sql_query("SELECT * FROM adjudications ORDER BY id", con)
        df["resolves"] = df["resolves"].map(json.loads)
        return df
