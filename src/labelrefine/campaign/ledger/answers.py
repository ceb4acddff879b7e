"""Readers' answers: submitting, undoing, importing, and the decisions they lead to."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from labelrefine.campaign.ledger.checks import (
    check_annotator,
    check_index,
    check_note,
    check_owner,
    check_seconds,
    check_submission_id,
)
from labelrefine.campaign.ledger.core import LedgerCore
from labelrefine.campaign.ledger.records import (
    CampaignError,
    ImportResult,
    SubmissionRetracted,
    SubmitResult,
    UndoResult,
)
from labelrefine.campaign.ledger.sql import (
    decision_status,
    insert_event,
    latest_round,
    log_decision_change,
    refresh_item,
    relabelable_given_label,
    utc_now,
)
from labelrefine.validation import UNSURE


def _void_undo_owner(con: sqlite3.Connection, sid: str) -> str | None:
    """The reader of an undo request with this id that had nothing to undo (None: none)."""
    row = con.execute("SELECT annotator FROM void_undos WHERE submission_id = ?", (sid,)).fetchone()
    return None if row is None else str(row[0])


def _prior_submission(
    con: sqlite3.Connection,
    sid: str,
    item: int,
    kind: str,
    label: int | None,
    annotator: str,
    note: str | None,
) -> int | None:
    """The stored annotation id of a retried submission (None: a new submission id).

    Raises when the id names another reader's request (:class:`SubmissionIdTaken`), was used
    for different content (the note counts, unless ``note`` is None: not given), or when its
    answer was undone (a retry then must not report success: the answer is no longer live).
    """
    prior = con.execute(
        "SELECT id, item, kind, label, "
        "EXISTS (SELECT 1 FROM annotations u WHERE u.retracts = a.id), annotator, note "
        "FROM annotations a WHERE submission_id = ?",
        (sid,),
    ).fetchone()
    if prior is None:
        void = _void_undo_owner(con, sid)
        if void is not None:
            check_owner(sid, void, annotator)
            raise CampaignError(f"submission id {sid!r} was already used for another request")
        return None
    check_owner(sid, str(prior[5]), annotator)
    same = (int(prior[1]), prior[2], prior[3]) == (int(item), kind, label)
    if not same or (note is not None and prior[6] != note):
        raise CampaignError(f"submission id {sid!r} was already used for another answer")
    if prior[4]:
        raise SubmissionRetracted(
            f"submission id {sid!r}: that answer was undone; send the answer again with a new "
            "submission id"
        )
    return int(prior[0])


def _insert_answer(
    con: sqlite3.Connection,
    *,
    submission_id: str,
    item: int,
    kind: str,
    label: int | None,
    annotator: str,
    round: int | None,
    now: str,
    answered_at: str | None,
    seconds: float | None,
    origin: str,
    external_id: str | None,
    note: str,
) -> int:
    cur = con.execute(
        "INSERT INTO annotations(submission_id, item, kind, label, retracts, annotator, "
        "round, created_at, answered_at, seconds, origin, external_id, note) "
        "VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            submission_id,
            int(item),
            kind,
            None if label is None else int(label),
            annotator,
            round,
            now,
            answered_at or now,
            seconds,
            origin,
            external_id,
            note,
        ),
    )
    return int(cur.lastrowid)


def _imported_note(con: sqlite3.Connection, answer: Mapping[str, Any], item: int) -> str:
    """An imported answer's checked note; the error names the item and the reader."""
    try:
        return check_note(answer["note"])
    except CampaignError as err:
        row = con.execute("SELECT key FROM items WHERE idx = ?", (item,)).fetchone()
        name = f"item {row[0]!r}" if row is not None else f"item index {item}"
        raise CampaignError(f"{name}, answer by {answer['annotator']!r}: {err}") from None


def _same_answer(
    stored: tuple[Any, ...] | None, kind: str, label: int | None, note: str | None
) -> bool:
    """Whether a stored ``(kind, label, note)`` row is this answer (``note`` None: any note)."""
    if stored is None or (stored[0], stored[1]) != (kind, label):
        return False
    return note is None or stored[2] == note


class Answers(LedgerCore):
    """Append-only answers and retractions, and the live answers and decisions they give."""

    def live_answer(self, item: int, annotator: str) -> tuple[str, int | None] | None:
        """``annotator``'s own live answer on ``item`` as ``(kind, label)`` (None: none)."""
        with self.connect() as con:
            row = con.execute(
                "SELECT kind, label FROM live_answers WHERE item = ? AND annotator = ?",
                (check_index(item), annotator),
            ).fetchone()
        return None if row is None else (str(row[0]), None if row[1] is None else int(row[1]))

    def live_note(self, item: int, annotator: str) -> str:
        """The note of ``annotator``'s live answer on ``item`` (empty: no note or no answer)."""
        with self.connect() as con:
            row = con.execute(
                "SELECT note FROM live_answers WHERE item = ? AND annotator = ?",
                (check_index(item), annotator),
            ).fetchone()
        return "" if row is None else str(row[0])

    def submit(
        self,
        item: int,
        label: int | None,
        *,
        annotator: str,
        submission_id: str,
        seconds: float | None = None,
        round: int | None = None,
        origin: str = "api",
        answered_at: str | None = None,
        external_id: str | None = None,
        note: str = "",
    ) -> SubmitResult:
        """Store one reader's answer in its own transaction; idempotent per ``submission_id``.

        ``label`` is a class index, or None for "unsure". Each reader has their own answer per
        item (a later answer by the same reader replaces their earlier one; other readers'
        answers are kept). When the item's live answers now disagree, the result says
        ``conflict=True`` and the conflict shows in :meth:`conflicts` until adjudicated.

        A retry with the same submission id and the same content returns the stored annotation
        with ``duplicate=True``; the same id with different content is a CampaignError, and the
        id of an answer that was undone is a :class:`SubmissionRetracted` (send a new id).
        ``round`` defaults to the current round. ``note`` is the reader's free-text note on this
        answer (:func:`~labelrefine.campaign.ledger.checks.check_note`); it belongs to the
        answer, so a new answer carries its own note and an undo takes the note with it.
        """
        annotator = check_annotator(annotator)
        submission_id = check_submission_id(submission_id)
        item = check_index(item)
        kind = UNSURE if label is None else "label"
        if label is not None and not 0 <= int(label) < self.num_classes:
            raise CampaignError(f"label index {label} out of range for {self.num_classes} classes")
        seconds = check_seconds(seconds)
        note = check_note(note)
        now = utc_now()
        with self.transaction() as con:
            prior = _prior_submission(con, submission_id, item, kind, label, annotator, note)
            if prior is not None:
                return SubmitResult(prior, item, duplicate=True)
            given = relabelable_given_label(con, item)
            if round is None:
                round = latest_round(con)
            before = decision_status(con, item)
            ann_id = _insert_answer(
                con,
                submission_id=submission_id,
                item=item,
                kind=kind,
                label=label,
                annotator=annotator,
                round=round,
                now=now,
                answered_at=answered_at,
                seconds=seconds,
                origin=origin,
                external_id=external_id,
                note=note,
            )
            after = refresh_item(con, item)
            insert_event(
                con,
                "answer",
                {
                    "annotation": ann_id,
                    "item": item,
                    "kind": kind,
                    "label": label,
                    "given": given,
                    "annotator": annotator,
                    "round": round,
                    "origin": origin,
                    "submission_id": submission_id,
                },
                now,
            )
            log_decision_change(con, item, before, after, {"annotation": ann_id}, now)
        return SubmitResult(ann_id, item, duplicate=False, conflict=after == "conflict")

    def undo_last(
        self, annotator: str, submission_id: str, *, round: int | None = None
    ) -> UndoResult:
        """Retract ``annotator``'s latest live answer (optionally only within ``round``).

        Only the reader's own answers can be retracted. Appends an ``undo`` annotation (history
        stays append-only); the reader's answer on that item falls back to their previous live
        one, if any. Idempotent per ``submission_id``. Returns ``retracted_id=None`` when there
        is nothing to undo.
        """
        annotator = check_annotator(annotator)
        submission_id = check_submission_id(submission_id)
        now = utc_now()
        with self.transaction() as con:
            prior = con.execute(
                "SELECT kind, retracts, item, annotator FROM annotations WHERE submission_id = ?",
                (submission_id,),
            ).fetchone()
            if prior is not None:
                check_owner(submission_id, str(prior[3]), annotator)
                if prior[0] != "undo":
                    raise CampaignError(
                        f"submission id {submission_id!r} was already used for another request"
                    )
                return UndoResult(int(prior[1]), int(prior[2]), duplicate=True)
            void = _void_undo_owner(con, submission_id)
            if void is not None:  # a retry of an undo that found nothing: still nothing
                check_owner(submission_id, void, annotator)
                return UndoResult(None, None, duplicate=True)
            sql = "SELECT a.id, a.item FROM live_answers a WHERE a.annotator = ?"
            params: list[Any] = [annotator]
            if round is not None:
                sql += " AND a.round = ?"
                params.append(int(round))
            row = con.execute(sql + " ORDER BY a.id DESC LIMIT 1", params).fetchone()
            if row is None:
                con.execute(
                    "INSERT INTO void_undos(submission_id, annotator, round, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (submission_id, annotator, latest_round(con), now),
                )
                return UndoResult(None, None, duplicate=False)
            target, item = int(row[0]), int(row[1])
            before = decision_status(con, item)
            con.execute(
                "INSERT INTO annotations(submission_id, item, kind, label, retracts, annotator, "
                "round, created_at, answered_at, seconds, origin) "
                "VALUES (?, ?, 'undo', NULL, ?, ?, ?, ?, ?, NULL, 'api')",
                (submission_id, item, target, annotator, latest_round(con), now, now),
            )
            log_decision_change(con, item, before, refresh_item(con, item), {"undo": target}, now)
            insert_event(
                con,
                "undo",
                {
                    "retracts": target,
                    "item": item,
                    "annotator": annotator,
                    "submission_id": submission_id,
                },
                now,
            )
        return UndoResult(target, item, duplicate=False)

    def answerable(self, item: int) -> str | None:
        """Why item ``item`` cannot take an answer (unknown, held out), or None when it can.

        Importers use it to skip and report stray rows instead of aborting.
        """
        try:
            with self.connect() as con:
                relabelable_given_label(con, check_index(item))
        except CampaignError as err:
            return str(err)
        return None

    def import_answers(
        self,
        answers: Sequence[Mapping[str, Any]],
        *,
        origin: str,
        source_name: str,
    ) -> ImportResult:
        """Store many answers in ONE transaction (all or nothing).

        Each answer: ``item`` (idx), ``label`` (class index or None for unsure), ``annotator``,
        ``submission_id``, optional ``answered_at``, ``seconds``, ``round``, ``external_id``
        (the answer's id in the other tool), ``note`` (the reader's note; absent or None: the
        source has no note, so notes are neither compared nor changed -- a stored answer then
        gets none). An answer is *already present* -- and not stored
        again -- when its submission id is known with the same content, when an answer of this
        ``origin`` with the same ``external_id`` and the same content exists, or when the same
        reader's live answer on the item already is this answer. An answer that differs from
        the reader's live one replaces it (their history keeps both); one that differs from
        another reader's live answer makes a conflict (counted in the result).
        """
        now = utc_now()
        imported = present = 0
        conflict_items: list[int] = []
        with self.transaction() as con:
            current = latest_round(con)
            for a in answers:
                sid = check_submission_id(str(a["submission_id"]))
                item = check_index(a["item"])
                label = None if a.get("label") is None else int(a["label"])
                if label is not None and not 0 <= label < self.num_classes:
                    raise CampaignError(f"label index {label} out of range")
                kind = UNSURE if label is None else "label"
                annotator = check_annotator(str(a["annotator"]))
                ext = a.get("external_id")
                ext = None if ext is None or str(ext) == "" else str(ext)
                note = None if a.get("note") is None else _imported_note(con, a, item)
                if _prior_submission(con, sid, item, kind, label, annotator, note) is not None:
                    present += 1
                    continue
                relabelable_given_label(con, item)
                if ext is not None:
                    same_ext = con.execute(
                        "SELECT kind, label, note FROM annotations WHERE origin = ? AND "
                        "external_id = ? AND item = ? AND annotator = ? ORDER BY id DESC LIMIT 1",
                        (origin, ext, item, annotator),
                    ).fetchone()
                    if _same_answer(same_ext, kind, label, note):
                        present += 1
                        continue
                live = con.execute(
                    "SELECT kind, label, note FROM live_answers WHERE item = ? AND annotator = ?",
                    (item, annotator),
                ).fetchone()
                if _same_answer(live, kind, label, note):
                    present += 1
                    continue
                before = decision_status(con, item)
                _insert_answer(
                    con,
                    submission_id=sid,
                    item=item,
                    kind=kind,
                    label=label,
                    annotator=annotator,
                    round=current if a.get("round") is None else int(a["round"]),
                    now=now,
                    answered_at=a.get("answered_at"),
                    seconds=check_seconds(a.get("seconds")),
                    origin=origin,
                    external_id=ext,
                    note=note or "",
                )
                after = refresh_item(con, item)
                if after == "conflict" and before != "conflict":
                    conflict_items.append(item)
                log_decision_change(con, item, before, after, {"origin": origin}, now)
                imported += 1
            insert_event(
                con,
                "import",
                {
                    "source": source_name,
                    "origin": origin,
                    "imported": imported,
                    "already_present": present,
                    "conflicts": len(conflict_items),
                },
                now,
            )
        return ImportResult(imported, present, len(conflict_items), tuple(conflict_items))

    def count_answers(self, annotator: str, round: int | None) -> int:
        """How many live answers ``annotator`` has given in ``round`` (one COUNT query)."""
        with self.connect() as con:
            row = con.execute("SELECT COUNT(*) FROM live_answers WHERE annotator = ? AND "
                              "round IS ?", (annotator, round)).fetchone()
        return int(row[0])

    def answers(self, *, include_retracted: bool = False) -> pd.DataFrame:
        """Readers' answers: by default each reader's live answer per item (so an item read by
        two readers has two rows), oldest first.

        Columns: id, submission_id, item, kind, label, annotator, round, created_at, answered_at,
        seconds, origin, external_id, note (and ``retracted`` when ``include_retracted``: every
        answer ever given, including retracted and replaced ones).
        """
        with self.connect() as con:
            if include_retracted:
                df = pd.read_sql_query(
                    "SELECT a.*, EXISTS (SELECT 1 FROM annotations u WHERE u.retracts = a.id) "
                    "AS retracted FROM annotations a WHERE a.kind != 'undo' ORDER BY a.id",
                    con,
                )
                df["retracted"] = df["retracted"].astype(bool)
                df["label"] = df["label"].astype("Int64")
                return df.drop(columns=["retracts"])
            df = pd.read_sql_query("SELECT * FROM live_answers ORDER BY id", con)
        df["label"] = df["label"].astype("Int64")
        return df

    def decisions(self) -> pd.DataFrame:
        """One row per answered item: item, status (:data:`DECISION_STATUSES`), label (final
        label, <NA> for conflicts and unsure items), n_readers, n_labels, adjudicator, reopened
        (an adjudication no longer holds: an answer it resolved was retracted or replaced)."""
        with self.connect() as con:
            df = pd.read_sql_query(
                "SELECT item, status, label, n_readers, n_labels, adjudicator, reopened "
                "FROM decisions ORDER BY item",
                con,
            )
        df["label"] = df["label"].astype("Int64")
        df["reopened"] = df["reopened"].astype(bool)
        return df

    def final_answers(self) -> pd.DataFrame:
        """What training uses: one row per item that leaves the suspect pool.

        Columns: item, kind (``label``: its final label -- one reader's, several agreeing
        readers', or an adjudicator's; ``conflict``: readers disagree and nobody adjudicated
        yet, so the item is NOT trained on), label (<NA> for conflicts), status. Items
        answered only "unsure" are not listed: they go back into the pool (flagged by their
        answers).
        """
        d = self.decisions()
        d = d[d["status"] != "unsure"].copy()
        d["kind"] = np.where(d["status"] == "conflict", "conflict", "label")
        return d[["item", "kind", "label", "status"]].reset_index(drop=True)

    def annotation_count(self) -> int:
        """Number of annotation rows (answers and retractions)."""
        with self.connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM annotations").fetchone()[0])
