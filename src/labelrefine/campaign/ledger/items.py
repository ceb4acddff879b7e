"""Items, rounds, scores and queues: what a campaign step writes and the pages show."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labelrefine.campaign.ledger.checks import check_index
from labelrefine.campaign.ledger.core import LedgerCore
from labelrefine.campaign.ledger.records import CampaignError, QueueEntry
from labelrefine.campaign.ledger.sql import insert_event, json_text, round_prob, utc_now


def _item_paths(ledger: LedgerCore) -> tuple[list[str], list[str]]:
    with ledger.connect() as con:
        rows = con.execute("SELECT key, path FROM items ORDER BY idx").fetchall()
    return [r[0] for r in rows], [r[1] for r in rows]


class Items(LedgerCore):
    """Items and what each finished round recorded about them."""

    _ITEM_SQL = (
        "SELECT i.idx, i.key, i.path, i.role, i.given_label, "
        "COALESCE(d.label, i.given_label) AS current_label, "
        "CASE WHEN d.status IS NULL THEN 'given' "
        "     WHEN d.status IN ('single', 'agreed', 'adjudicated') THEN 'expert' "
        "     ELSE d.status END AS source, "
        "COALESCE(d.status, 'given') AS decision "
        "FROM items i LEFT JOIN decisions d ON d.item = i.idx"
    )

    def items(self) -> pd.DataFrame:
        """All items by ``idx``: idx, key, path, role, given_label, current_label, source,
        decision.

        ``current_label`` is the final label (agreed or adjudicated expert label, else the given
        one); ``source`` is ``given``, ``expert``, ``unsure`` or ``conflict``; ``decision`` is
        the :data:`DECISION_STATUSES` value, or ``given`` for items nobody answered.
        """
        with self.connect() as con:
            df = pd.read_sql_query(self._ITEM_SQL + " ORDER BY i.idx", con)
        return df

    def item(self, idx: int) -> dict[str, Any]:
        """One item as a dict (see :meth:`items`); CampaignError when ``idx`` is unknown."""
        idx = check_index(idx)
        with self.connect() as con:
            cur = con.execute(self._ITEM_SQL + " WHERE i.idx = ?", (idx,))
            row = cur.fetchone()
            cols = [d[0] for d in cur.description]
        if row is None:
            raise CampaignError(f"unknown item index {idx}")
        return dict(zip(cols, row, strict=True))

    def item_index(self, key: str) -> int:
        """``idx`` of the item whose id is ``key``; CampaignError naming it when unknown."""
        with self.connect() as con:
            row = con.execute("SELECT idx FROM items WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise CampaignError(f"unknown item {key!r}: not in this campaign")
        return int(row[0])

    def resolve_image(self, idx: int) -> Path:
        """Absolute image path of item ``idx``, guaranteed to lie inside the image root.

        Raises CampaignError when the stored path escapes the root (``..``, absolute paths,
        symlinks pointing outside) or the file is missing.
        """
        item = self.item(idx)
        root = self.image_root.resolve()
        rel = Path(item["path"])
        if rel.is_absolute():
            raise CampaignError(f"item {item['key']!r}: image path is not relative to the root")
        target = (root / rel).resolve()
        if not target.is_relative_to(root):
            raise CampaignError(f"item {item['key']!r}: image path leaves the image root")
        if not target.is_file():
            raise CampaignError(f"item {item['key']!r}: image file missing: {rel}")
        return target

    def check_images(self) -> None:
        """Raise a CampaignError naming the first missing image file (e.g. a moved folder)."""
        root = self.image_root
        for key, rel in zip(*_item_paths(self), strict=True):
            if not (root / rel).is_file():
                raise CampaignError(
                    f"image of item {key!r} not found: {root / rel}; if the image folder moved, "
                    "run 'labelrefine campaign relocate CAMPAIGN --images NEW_FOLDER'"
                )

    # ------------------------------------------------------------------------------------------
    # rounds, scores, queue
    # ------------------------------------------------------------------------------------------

    def rounds(self) -> pd.DataFrame:
        """One row per finished round: round, created_at, kind, sampler, budget, seed, settings
        (dict), metrics (dict), queue_size, temperature and model_estimate (dict; both None
        when the round recorded none)."""
        with self.connect() as con:
            df = pd.read_sql_query(
                "SELECT r.round, r.created_at, r.kind, r.sampler, r.budget, r.seed, r.settings, "
                "r.metrics, (SELECT COUNT(*) FROM queue q WHERE q.round = r.round) AS queue_size, "
                "r.temperature, r.model_estimate FROM rounds r ORDER BY r.round",
                con,
            )
        df["settings"] = df["settings"].map(json.loads)
        df["metrics"] = df["metrics"].map(json.loads)
        df["temperature"] = df["temperature"].astype(object).where(df["temperature"].notna(), None)
        df["model_estimate"] = [None if v is None else json.loads(v) for v in df["model_estimate"]]
        return df

    def write_round(
        self,
        round: int,
        *,
        kind: str,
        sampler: str | None,
        budget: int,
        seed: int,
        settings: Mapping[str, Any],
        metrics: Mapping[str, Any],
        probs: np.ndarray,
        scored_items: np.ndarray,
        clean: np.ndarray,
        pool_scores: Mapping[int, float],
        queue: Sequence[tuple[int, float | None, str]],
        checkpoint: bytes | None = None,
        temperature: float | None = None,
        model_estimate: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a finished round in ONE transaction: its row, scores, queue and checkpoint.

        ``round`` must be exactly one more than the latest round (0 for the first), so a step
        that crashed before this call is simply redone, and a finished round is never repeated.
        ``probs`` is ``(len(scored_items), C)``; ``clean`` a bool mask over ``scored_items``;
        ``queue`` is ``(item idx, score, reason)`` in rank order. ``temperature`` (the
        calibration used for ``probs``) and ``model_estimate`` (the model's expected wrong
        labels, :func:`labelrefine.campaign.estimates.model_estimate`) are optional.
        """
        probs = np.asarray(probs, dtype=np.float64)
        scored_items = np.asarray(scored_items, dtype=np.int64)
        clean = np.asarray(clean, dtype=bool)
        if probs.shape != (len(scored_items), self.num_classes):
            raise ValueError(
                f"probs has shape {probs.shape}, expected ({len(scored_items)}, {self.num_classes})"
            )
        if clean.shape != scored_items.shape:
            raise ValueError("clean mask must match scored_items")
        queued = [int(q[0]) for q in queue]
        if len(set(queued)) != len(queued):
            raise ValueError("queue contains an item twice")
        now = utc_now()
        with self.transaction() as con:
            row = con.execute("SELECT MAX(round) FROM rounds").fetchone()
            expected = 0 if row[0] is None else int(row[0]) + 1
            if round != expected:
                raise CampaignError(
                    f"round {round} cannot be written: the next round of this campaign is "
                    f"{expected} (was this step already finished by another process?)"
                )
            con.execute(
                "INSERT INTO rounds(round, created_at, kind, sampler, budget, seed, settings, "
                "metrics, temperature, model_estimate) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    round,
                    now,
                    kind,
                    sampler,
                    int(budget),
                    int(seed),
                    json_text(settings),
                    json_text(metrics),
                    None if temperature is None else float(temperature),
                    None if model_estimate is None else json_text(model_estimate),
                ),
            )
            preds = probs.argmax(axis=1)
            con.executemany(
                "INSERT INTO scores(round, item, pred, probs, clean, score) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    (
                        round,
                        int(i),
                        int(preds[j]),
                        json.dumps([round_prob(p) for p in probs[j]]),
                        int(clean[j]),
                        None if int(i) not in pool_scores else float(pool_scores[int(i)]),
                    )
                    for j, i in enumerate(scored_items)
                ),
            )
            con.executemany(
                "INSERT INTO queue(round, rank, item, score, reason) VALUES (?, ?, ?, ?, ?)",
                (
                    (round, rank, int(i), None if s is None else float(s), str(reason))
                    for rank, (i, s, reason) in enumerate(queue)
                ),
            )
            if checkpoint is not None:
                con.execute(
                    "INSERT INTO checkpoints(round, data) VALUES (?, ?)", (round, checkpoint)
                )
            insert_event(
                con,
                "round",
                {
                    "round": round,
                    "kind": kind,
                    "sampler": sampler,
                    "queue": len(queue),
                    "metrics": dict(metrics),
                },
                now,
            )

    def checkpoint(self, round: int) -> bytes | None:
        """The model weights stored by ``round`` (None when that round stored none)."""
        with self.connect() as con:
            row = con.execute("SELECT data FROM checkpoints WHERE round = ?", (round,)).fetchone()
        return None if row is None else bytes(row[0])

    def scores(self, round: int) -> pd.DataFrame:
        """Scores of ``round``: item, pred, probs (np.ndarray), clean (bool), score."""
        with self.connect() as con:
            df = pd.read_sql_query(
                "SELECT item, pred, probs, clean, score FROM scores WHERE round = ? ORDER BY item",
                con,
                params=(round,),
            )
        df["probs"] = df["probs"].map(lambda s: np.asarray(json.loads(s), dtype=np.float64))
        df["clean"] = df["clean"].astype(bool)
        return df

    def queue(self, round: int | None = None) -> pd.DataFrame:
        """The ranked queue of ``round`` (default: current) with each item's decision.

        Columns: rank, item, key, path, given_label, score, reason, answer_kind (None: nobody
        answered; ``label``: a final label; ``unsure``; ``conflict``), answer_label (the final
        label), annotator (the readers who answered, joined by ``, ``), decision.
        """
        cols = [
            "rank",
            "item",
            "key",
            "path",
            "given_label",
            "score",
            "reason",
            "answer_kind",
            "answer_label",
            "annotator",
            "decision",
        ]
        if round is None:
            round = self.current_round()
            if round is None:
                return pd.DataFrame(columns=cols)
        with self.connect() as con:
            q = pd.read_sql_query(
                "SELECT q.rank, q.item, i.key, i.path, i.given_label, q.score, q.reason, "
                "CASE WHEN d.status IS NULL THEN NULL "
                "     WHEN d.label IS NOT NULL THEN 'label' ELSE d.status END AS answer_kind, "
                "d.label AS answer_label, "
                "(SELECT GROUP_CONCAT(annotator, ', ') FROM "
                "   (SELECT annotator FROM live_answers l WHERE l.item = q.item ORDER BY l.id)"
                ") AS annotator, d.status AS decision "
                "FROM queue q JOIN items i ON i.idx = q.item "
                "LEFT JOIN decisions d ON d.item = q.item "
                "WHERE q.round = ? ORDER BY q.rank",
                con,
                params=(round,),
            )
        q = q.astype(object).where(pd.notna(q), None)
        return q[cols]

    def queue_entry(self, idx: int, round: int | None = None) -> QueueEntry | None:
        """Everything the labeling page shows for item ``idx`` in ``round`` (None: not queued)."""
        if round is None:
            round = self.current_round()
            if round is None:
                return None
        with self.connect() as con:
            row = con.execute(
                "SELECT q.rank, q.item, i.key, i.path, i.given_label, q.reason, q.score, s.probs "
                "FROM queue q JOIN items i ON i.idx = q.item "
                "LEFT JOIN scores s ON s.round = q.round AND s.item = q.item "
                "WHERE q.round = ? AND q.item = ?",
                (round, int(idx)),
            ).fetchone()
        if row is None:
            return None
        rank, item, key, path, given, reason, score, probs = row
        return QueueEntry(
            round=round,
            rank=int(rank),
            idx=int(item),
            key=key,
            path=path,
            given_label=int(given),
            reason=reason,
            score=score,
            probs=None if probs is None else np.asarray(json.loads(probs), dtype=np.float64),
        )

    def is_queued(self, idx: int, round: int | None = None) -> bool:
        """Whether item ``idx`` is in the queue of ``round`` (default: the current round)."""
        if round is None:
            round = self.current_round()
            if round is None:
                return False
        with self.connect() as con:
            row = con.execute(
                "SELECT 1 FROM queue WHERE round = ? AND item = ?", (round, check_index(idx))
            ).fetchone()
        return row is not None
