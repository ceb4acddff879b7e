"""The campaign ledger: one SQLite file holding everything a relabeling campaign knows.

Tables (schema version :data:`SCHEMA_VERSION`):

- ``meta``: key/value settings (schema version, image root, creation time, campaign settings).
- ``classes``: class index -> name.
- ``items``: one row per image: ``idx`` (dense 0-based index), ``key`` (the image id),
  ``path`` (relative to the image root), ``role`` (``train`` items can be queued; ``val`` and
  ``test`` are held out for model selection / evaluation), ``given_label``, and the derived
  ``current_label`` / ``source`` (``given``, ``expert`` or ``unsure``), kept in step with the
  annotations inside the same transaction.
- ``rounds``: one row per finished ``campaign step`` (model metrics, sampler, budget, settings).
- ``scores``: per round and item, the model's class probabilities, whether the item was in the
  trusted (clean) set, and the sampler score of pool items.
- ``queue``: per round, the ranked items sent to the experts, each with a human-readable reason.
- ``checkpoints``: the model weights written by each round (so the next round fine-tunes them).
- ``annotations``: append-only. One row per expert answer (``label`` or ``unsure``) or
  retraction (``undo``, pointing at the answer it retracts). ``submission_id`` is UNIQUE, so a
  retried submission is recognised and never stored twice.
- ``events``: append-only log of everything that happened (triggers forbid UPDATE and DELETE).

The current answer for an item is its latest annotation that has not been retracted. Every write
is one short ``BEGIN IMMEDIATE`` transaction (one connection per thread; WAL mode,
``synchronous=FULL``, foreign keys on, a busy timeout), so a crash of the writing process -- or of
the machine -- loses nothing that was acknowledged, and concurrent writers serialise cleanly.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labelrefine.data.dataset import DataError

SCHEMA_VERSION = 1
"""Version of the table layout this code writes and reads."""

APPLICATION_ID = 0x4C524350  # "LRCP": marks the SQLite file as a labelrefine campaign

UNSURE = "unsure"
"""The answer an expert gives when they cannot decide; never a class name."""

ROLES = ("train", "val", "test")
ANSWER_KINDS = ("label", "unsure")

_SCHEMA = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE classes (
    idx  INTEGER PRIMARY KEY CHECK (idx >= 0),
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE items (
    idx           INTEGER PRIMARY KEY CHECK (idx >= 0),
    key           TEXT NOT NULL UNIQUE,
    path          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('train', 'val', 'test')),
    given_label   INTEGER NOT NULL REFERENCES classes(idx),
    current_label INTEGER NOT NULL REFERENCES classes(idx),
    source        TEXT NOT NULL DEFAULT 'given' CHECK (source IN ('given', 'expert', 'unsure'))
);
CREATE TABLE rounds (
    round      INTEGER PRIMARY KEY CHECK (round >= 0),
    created_at TEXT NOT NULL,
    kind       TEXT NOT NULL,
    sampler    TEXT,
    budget     INTEGER NOT NULL,
    seed       INTEGER NOT NULL,
    settings   TEXT NOT NULL,
    metrics    TEXT NOT NULL
);
CREATE TABLE scores (
    round   INTEGER NOT NULL REFERENCES rounds(round),
    item    INTEGER NOT NULL REFERENCES items(idx),
    pred    INTEGER NOT NULL REFERENCES classes(idx),
    probs   TEXT NOT NULL,
    clean   INTEGER NOT NULL CHECK (clean IN (0, 1)),
    score   REAL,
    PRIMARY KEY (round, item)
);
CREATE TABLE queue (
    round  INTEGER NOT NULL REFERENCES rounds(round),
    rank   INTEGER NOT NULL CHECK (rank >= 0),
    item   INTEGER NOT NULL REFERENCES items(idx),
    score  REAL,
    reason TEXT NOT NULL,
    PRIMARY KEY (round, rank),
    UNIQUE (round, item)
);
CREATE TABLE checkpoints (
    round INTEGER PRIMARY KEY REFERENCES rounds(round),
    data  BLOB NOT NULL
);
CREATE TABLE annotations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    submission_id TEXT NOT NULL UNIQUE,
    item          INTEGER NOT NULL REFERENCES items(idx),
    kind          TEXT NOT NULL CHECK (kind IN ('label', 'unsure', 'undo')),
    label         INTEGER REFERENCES classes(idx),
    retracts      INTEGER REFERENCES annotations(id),
    annotator     TEXT NOT NULL,
    round         INTEGER,
    created_at    TEXT NOT NULL,
    answered_at   TEXT NOT NULL,
    seconds       REAL,
    origin        TEXT NOT NULL,
    CHECK ((kind = 'label') = (label IS NOT NULL)),
    CHECK ((kind = 'undo') = (retracts IS NOT NULL))
);
CREATE INDEX annotations_item ON annotations(item);
CREATE UNIQUE INDEX annotations_one_retraction ON annotations(retracts)
    WHERE retracts IS NOT NULL;
CREATE TABLE events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    ts      TEXT NOT NULL,
    kind    TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER annotations_no_update BEFORE UPDATE ON annotations
BEGIN SELECT RAISE(ABORT, 'annotations are append-only'); END;
CREATE TRIGGER annotations_no_delete BEFORE DELETE ON annotations
BEGIN SELECT RAISE(ABORT, 'annotations are append-only'); END;
"""


class CampaignError(DataError):
    """A campaign cannot do what was asked; the message names the item, class or file."""


def utc_now() -> str:
    """Current UTC time as an ISO-8601 string with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class ItemRecord:
    """One item as it enters a campaign."""

    key: str
    path: str
    given_label: int
    role: str = "train"


@dataclass(frozen=True)
class SubmitResult:
    """Outcome of :meth:`Ledger.submit`: the stored annotation and whether it was a retry."""

    annotation_id: int
    item: int
    duplicate: bool


@dataclass(frozen=True)
class UndoResult:
    """Outcome of :meth:`Ledger.undo_last`: which answer was retracted (None: nothing to undo)."""

    retracted_id: int | None
    item: int | None
    duplicate: bool


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


class Ledger:
    """Read and write one campaign file.

    Safe to share between threads: each thread uses its own connection, SQLite serialises the
    writers (``BEGIN IMMEDIATE`` with a busy timeout), and each method runs in its own
    transaction.
    """

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 30_000):
        self.path = Path(path)
        self._busy_ms = int(busy_timeout_ms)
        self._local = threading.local()
        if not self.path.is_file():
            raise CampaignError(f"campaign file not found: {self.path}")
        self._check_version()
        with self.connect() as con:
            self._class_names = tuple(
                r[0] for r in con.execute("SELECT name FROM classes ORDER BY idx")
            )
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        self._meta = meta

    # ------------------------------------------------------------------------------------------
    # creation and connections
    # ------------------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        image_root: str | Path,
        class_names: Sequence[str],
        items: Sequence[ItemRecord],
        meta: Mapping[str, Any] | None = None,
    ) -> Ledger:
        """Write a new campaign file atomically (temp file + rename); refuse to overwrite one.

        Validates everything before writing: class names (unique, non-empty, not ``unsure``),
        item keys (unique), labels (in range), roles, and relative paths that stay inside the
        image root. On any error no file is left behind.
        """
        path = Path(path)
        if path.exists():
            raise CampaignError(f"{path} already exists; choose another --out or remove it")
        _validate_classes(class_names)
        _validate_items(items, len(class_names))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            con = sqlite3.connect(tmp, isolation_level=None)
            try:
                con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                con.execute("PRAGMA foreign_keys = ON")
                con.executescript(_SCHEMA)
                con.execute("BEGIN")
                now = utc_now()
                rows = {
                    "schema_version": str(SCHEMA_VERSION),
                    "image_root": str(Path(image_root).resolve()),
                    "created_at": now,
                }
                for k, v in (meta or {}).items():
                    rows[k] = v if isinstance(v, str) else json.dumps(v)
                con.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", rows.items())
                con.executemany(
                    "INSERT INTO classes(idx, name) VALUES (?, ?)", enumerate(class_names)
                )
                con.executemany(
                    "INSERT INTO items(idx, key, path, role, given_label, current_label) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        (i, it.key, it.path, it.role, int(it.given_label), int(it.given_label))
                        for i, it in enumerate(items)
                    ),
                )
                _insert_event(
                    con,
                    "init",
                    {
                        "items": len(items),
                        "classes": list(class_names),
                        "image_root": rows["image_root"],
                    },
                    now,
                )
                con.execute("COMMIT")
                con.execute("PRAGMA journal_mode = WAL")
            finally:
                con.close()
            os.replace(tmp, path)
        except BaseException:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(tmp) + suffix).unlink(missing_ok=True)
            raise
        return cls(path)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """This thread's autocommit connection with the campaign's pragmas.

        Connections are kept open per thread: closing the last connection of a WAL database
        checkpoints it, which would cost a few fsyncs on every answer.
        """
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, isolation_level=None, timeout=self._busy_ms / 1000)
            con.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            con.execute("PRAGMA foreign_keys = ON")
            con.execute("PRAGMA synchronous = FULL")
            self._local.con = con
        yield con

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on any exception)."""
        with self.connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _check_version(self) -> None:
        try:
            con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        except sqlite3.Error as err:
            raise CampaignError(f"{self.path}: cannot open campaign file: {err}") from None
        try:
            row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as err:
            raise CampaignError(f"{self.path} is not a labelrefine campaign file ({err})") from None
        finally:
            con.close()
        if row is None:
            raise CampaignError(
                f"{self.path} is not a labelrefine campaign file (no schema_version)"
            )
        try:
            version = int(row[0])
        except ValueError:
            raise CampaignError(f"{self.path}: bad schema_version {row[0]!r}") from None
        if version > SCHEMA_VERSION:
            raise CampaignError(
                f"{self.path} uses campaign schema version {version}, but this labelrefine "
                f"reads up to version {SCHEMA_VERSION}; upgrade labelrefine to open it"
            )
        if version < 1:
            raise CampaignError(f"{self.path}: unknown campaign schema version {version}")

    # ------------------------------------------------------------------------------------------
    # static facts
    # ------------------------------------------------------------------------------------------

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._class_names

    @property
    def num_classes(self) -> int:
        return len(self._class_names)

    @property
    def image_root(self) -> Path:
        return Path(self._meta["image_root"])

    def meta(self) -> dict[str, str]:
        """All meta key/values (re-read from the file)."""
        with self.connect() as con:
            return dict(con.execute("SELECT key, value FROM meta").fetchall())

    def set_meta(self, key: str, value: Any) -> None:
        """Set one meta value (JSON-encoded unless a string) and log it."""
        text = value if isinstance(value, str) else json.dumps(value)
        with self.transaction() as con:
            con.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, text))
            _insert_event(con, "meta", {"key": key, "value": text})
        self._meta[key] = text

    def class_index(self, name: str) -> int:
        """Index of class ``name``; CampaignError when unknown."""
        try:
            return self._class_names.index(name)
        except ValueError:
            known = ", ".join(self._class_names)
            raise CampaignError(f"unknown class {name!r} (known: {known})") from None

    # ------------------------------------------------------------------------------------------
    # items
    # ------------------------------------------------------------------------------------------

    def items(self) -> pd.DataFrame:
        """All items by ``idx``: idx, key, path, role, given_label, current_label, source."""
        with self.connect() as con:
            df = pd.read_sql_query(
                "SELECT idx, key, path, role, given_label, current_label, source "
                "FROM items ORDER BY idx",
                con,
            )
        return df

    def item(self, idx: int) -> dict[str, Any]:
        """One item as a dict; CampaignError when ``idx`` is unknown."""
        with self.connect() as con:
            row = con.execute(
                "SELECT idx, key, path, role, given_label, current_label, source "
                "FROM items WHERE idx = ?",
                (int(idx),),
            ).fetchone()
        if row is None:
            raise CampaignError(f"unknown item index {idx}")
        return dict(
            zip(
                ("idx", "key", "path", "role", "given_label", "current_label", "source"),
                row,
                strict=True,
            )
        )

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

    # ------------------------------------------------------------------------------------------
    # rounds, scores, queue
    # ------------------------------------------------------------------------------------------

    def rounds(self) -> pd.DataFrame:
        """One row per finished round: round, created_at, kind, sampler, budget, seed, settings
        (dict), metrics (dict), queue_size."""
        with self.connect() as con:
            df = pd.read_sql_query(
                "SELECT r.round, r.created_at, r.kind, r.sampler, r.budget, r.seed, r.settings, "
                "r.metrics, (SELECT COUNT(*) FROM queue q WHERE q.round = r.round) AS queue_size "
                "FROM rounds r ORDER BY r.round",
                con,
            )
        df["settings"] = df["settings"].map(json.loads)
        df["metrics"] = df["metrics"].map(json.loads)
        return df

    def current_round(self) -> int | None:
        """The latest finished round (whose queue is being answered), or None before step 1."""
        with self.connect() as con:
            row = con.execute("SELECT MAX(round) FROM rounds").fetchone()
        return None if row[0] is None else int(row[0])

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
    ) -> None:
        """Record a finished round in ONE transaction: its row, scores, queue and checkpoint.

        ``round`` must be exactly one more than the latest round (0 for the first), so a step
        that crashed before this call is simply redone, and a finished round is never repeated.
        ``probs`` is ``(len(scored_items), C)``; ``clean`` a bool mask over ``scored_items``;
        ``queue`` is ``(item idx, score, reason)`` in rank order.
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
                "metrics) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    round,
                    now,
                    kind,
                    sampler,
                    int(budget),
                    int(seed),
                    json.dumps(dict(settings), default=_json_default),
                    json.dumps(dict(metrics), default=_json_default),
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
            _insert_event(
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
        """The ranked queue of ``round`` (default: current) with each item's current answer.

        Columns: rank, item, key, path, given_label, score, reason, answer_kind (None, 'label',
        'unsure'), answer_label, annotator.
        """
        if round is None:
            round = self.current_round()
            if round is None:
                return pd.DataFrame(
                    columns=[
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
                    ]
                )
        with self.connect() as con:
            q = pd.read_sql_query(
                "SELECT q.rank, q.item, i.key, i.path, i.given_label, q.score, q.reason "
                "FROM queue q JOIN items i ON i.idx = q.item WHERE q.round = ? ORDER BY q.rank",
                con,
                params=(round,),
            )
            live = _live_answers(con)
        live = live.set_index("item")
        q["answer_kind"] = q["item"].map(live["kind"]).astype(object)
        q["answer_label"] = q["item"].map(live["label"]).astype(object)
        q["annotator"] = q["item"].map(live["annotator"]).astype(object)
        q = q.where(pd.notna(q), None)
        return q

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

    def next_item(self, round: int | None = None, *, skip: Sequence[int] = ()) -> int | None:
        """The first item of the round's queue (by rank) without a current answer, or None.

        ``skip`` lists items to pass over (e.g. items another annotator is looking at); when only
        skipped items remain, the first of them is returned.
        """
        if round is None:
            round = self.current_round()
            if round is None:
                return None
        with self.connect() as con:
            rows = con.execute(
                "SELECT q.item FROM queue q WHERE q.round = ? AND NOT EXISTS ("
                "  SELECT 1 FROM annotations a WHERE a.item = q.item AND a.kind != 'undo' "
                "  AND NOT EXISTS (SELECT 1 FROM annotations u WHERE u.retracts = a.id)"
                ") ORDER BY q.rank",
                (round,),
            ).fetchall()
        todo = [int(r[0]) for r in rows]
        skipset = set(int(s) for s in skip)
        for i in todo:
            if i not in skipset:
                return i
        return todo[0] if todo else None

    def progress(self, round: int | None = None) -> tuple[int, int]:
        """``(answered, queued)`` for the round's queue (answered = has a current answer)."""
        if round is None:
            round = self.current_round()
            if round is None:
                return (0, 0)
        with self.connect() as con:
            total = con.execute("SELECT COUNT(*) FROM queue WHERE round = ?", (round,)).fetchone()
            done = con.execute(
                "SELECT COUNT(*) FROM queue q WHERE q.round = ? AND EXISTS ("
                "  SELECT 1 FROM annotations a WHERE a.item = q.item AND a.kind != 'undo' "
                "  AND NOT EXISTS (SELECT 1 FROM annotations u WHERE u.retracts = a.id))",
                (round,),
            ).fetchone()
        return int(done[0]), int(total[0])

    # ------------------------------------------------------------------------------------------
    # annotations
    # ------------------------------------------------------------------------------------------

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
    ) -> SubmitResult:
        """Store one expert answer in its own transaction; idempotent per ``submission_id``.

        ``label`` is a class index, or None for "unsure". A retry with the same submission id and
        the same content returns the stored annotation with ``duplicate=True``; the same id with
        different content is a CampaignError. ``round`` defaults to the current round.
        """
        annotator = _check_annotator(annotator)
        submission_id = _check_submission_id(submission_id)
        kind = UNSURE if label is None else "label"
        if label is not None and not 0 <= int(label) < self.num_classes:
            raise CampaignError(f"label index {label} out of range for {self.num_classes} classes")
        if seconds is not None and not (np.isfinite(seconds) and seconds >= 0):
            raise CampaignError(f"seconds must be a non-negative number, got {seconds!r}")
        now = utc_now()
        with self.transaction() as con:
            prior = con.execute(
                "SELECT id, item, kind, label FROM annotations WHERE submission_id = ?",
                (submission_id,),
            ).fetchone()
            if prior is not None:
                same = (int(prior[1]), prior[2], prior[3]) == (
                    int(item),
                    kind,
                    None if label is None else int(label),
                )
                if not same:
                    raise CampaignError(
                        f"submission id {submission_id!r} was already used for another answer"
                    )
                return SubmitResult(int(prior[0]), int(prior[1]), duplicate=True)
            given = _given_label(con, item)
            if round is None:
                r = con.execute("SELECT MAX(round) FROM rounds").fetchone()[0]
                round = None if r is None else int(r)
            cur = con.execute(
                "INSERT INTO annotations(submission_id, item, kind, label, retracts, annotator, "
                "round, created_at, answered_at, seconds, origin) "
                "VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?)",
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
                ),
            )
            ann_id = int(cur.lastrowid)
            if label is None:
                con.execute(
                    "UPDATE items SET current_label = given_label, source = 'unsure' WHERE idx = ?",
                    (int(item),),
                )
            else:
                con.execute(
                    "UPDATE items SET current_label = ?, source = 'expert' WHERE idx = ?",
                    (int(label), int(item)),
                )
            _insert_event(
                con,
                "answer",
                {
                    "annotation": ann_id,
                    "item": int(item),
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
        return SubmitResult(ann_id, int(item), duplicate=False)

    def undo_last(
        self, annotator: str, submission_id: str, *, round: int | None = None
    ) -> UndoResult:
        """Retract ``annotator``'s latest live answer (optionally within ``round``).

        Appends an ``undo`` annotation (history stays append-only); the item's current answer
        falls back to its previous live answer or to the given label. Idempotent per
        ``submission_id``. Returns ``retracted_id=None`` when there is nothing to undo.
        """
        annotator = _check_annotator(annotator)
        submission_id = _check_submission_id(submission_id)
        now = utc_now()
        with self.transaction() as con:
            prior = con.execute(
                "SELECT kind, retracts, item FROM annotations WHERE submission_id = ?",
                (submission_id,),
            ).fetchone()
            if prior is not None:
                if prior[0] != "undo":
                    raise CampaignError(
                        f"submission id {submission_id!r} was already used for an answer"
                    )
                return UndoResult(int(prior[1]), int(prior[2]), duplicate=True)
            sql = (
                "SELECT a.id, a.item FROM annotations a WHERE a.annotator = ? "
                "AND a.kind != 'undo' "
                "AND NOT EXISTS (SELECT 1 FROM annotations u WHERE u.retracts = a.id)"
            )
            params: list[Any] = [annotator]
            if round is not None:
                sql += " AND a.round = ?"
                params.append(int(round))
            row = con.execute(sql + " ORDER BY a.id DESC LIMIT 1", params).fetchone()
            if row is None:
                return UndoResult(None, None, duplicate=False)
            target, item = int(row[0]), int(row[1])
            r = con.execute("SELECT MAX(round) FROM rounds").fetchone()[0]
            con.execute(
                "INSERT INTO annotations(submission_id, item, kind, label, retracts, annotator, "
                "round, created_at, answered_at, seconds, origin) "
                "VALUES (?, ?, 'undo', NULL, ?, ?, ?, ?, ?, NULL, 'api')",
                (submission_id, item, target, annotator, r, now, now),
            )
            _refresh_item(con, item)
            _insert_event(
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

    def import_answers(
        self,
        answers: Sequence[Mapping[str, Any]],
        *,
        origin: str,
        source_name: str,
    ) -> tuple[int, int]:
        """Store many answers in ONE transaction (all or nothing).

        Each answer: ``item`` (idx), ``label`` (class index or None for unsure), ``annotator``,
        ``submission_id``, optional ``answered_at``, ``seconds``, ``round``. Already-present
        submission ids with the same content are skipped. Returns ``(imported, skipped)``.
        """
        now = utc_now()
        imported = skipped = 0
        with self.transaction() as con:
            current = con.execute("SELECT MAX(round) FROM rounds").fetchone()[0]
            for a in answers:
                sid = _check_submission_id(str(a["submission_id"]))
                label = a.get("label")
                kind = UNSURE if label is None else "label"
                prior = con.execute(
                    "SELECT item, kind, label FROM annotations WHERE submission_id = ?", (sid,)
                ).fetchone()
                if prior is not None:
                    if (int(prior[0]), prior[1], prior[2]) != (int(a["item"]), kind, label):
                        raise CampaignError(
                            f"submission id {sid!r} already holds a different answer"
                        )
                    skipped += 1
                    continue
                _given_label(con, int(a["item"]))
                con.execute(
                    "INSERT INTO annotations(submission_id, item, kind, label, retracts, "
                    "annotator, round, created_at, answered_at, seconds, origin) "
                    "VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?)",
                    (
                        sid,
                        int(a["item"]),
                        kind,
                        label,
                        _check_annotator(str(a["annotator"])),
                        current if a.get("round") is None else int(a["round"]),
                        now,
                        a.get("answered_at") or now,
                        a.get("seconds"),
                        origin,
                    ),
                )
                _refresh_item(con, int(a["item"]))
                imported += 1
            _insert_event(
                con,
                "import",
                {"source": source_name, "origin": origin, "imported": imported, "skipped": skipped},
                now,
            )
        return imported, skipped

    def answers(self, *, include_retracted: bool = False) -> pd.DataFrame:
        """Expert answers: by default the current (live) one per item.

        Columns: id, submission_id, item, kind, label, annotator, round, created_at, answered_at,
        seconds, origin (and ``retracted`` when ``include_retracted``).
        """
        with self.connect() as con:
            if include_retracted:
                df = pd.read_sql_query(
                    "SELECT a.*, EXISTS (SELECT 1 FROM annotations u WHERE u.retracts = a.id) "
                    "AS retracted FROM annotations a WHERE a.kind != 'undo' ORDER BY a.id",
                    con,
                )
                df["retracted"] = df["retracted"].astype(bool)
                return df.drop(columns=["retracts"])
            return _live_answers(con)

    def annotation_count(self) -> int:
        """Number of annotation rows (answers and retractions)."""
        with self.connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM annotations").fetchone()[0])

    # ------------------------------------------------------------------------------------------
    # events
    # ------------------------------------------------------------------------------------------

    def log_event(self, kind: str, payload: Mapping[str, Any]) -> None:
        """Append one event to the log in its own transaction."""
        with self.transaction() as con:
            _insert_event(con, kind, payload)

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The event log (oldest first), optionally only events of ``kind``."""
        sql = "SELECT id, ts, kind, payload FROM events"
        params: tuple[Any, ...] = ()
        if kind is not None:
            sql += " WHERE kind = ?"
            params = (kind,)
        with self.connect() as con:
            rows = con.execute(sql + " ORDER BY id", params).fetchall()
        return [{"id": r[0], "ts": r[1], "kind": r[2], "payload": json.loads(r[3])} for r in rows]


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def round_prob(p: float) -> float:
    """Probabilities are stored with 6 decimals (plenty for ranking display and export)."""
    return round(float(p), 6)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _insert_event(
    con: sqlite3.Connection, kind: str, payload: Mapping[str, Any], ts: str | None = None
) -> None:
    con.execute(
        "INSERT INTO events(ts, kind, payload) VALUES (?, ?, ?)",
        (ts or utc_now(), kind, json.dumps(dict(payload), default=_json_default)),
    )


def _given_label(con: sqlite3.Connection, item: int) -> int:
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


def _refresh_item(con: sqlite3.Connection, item: int) -> None:
    """Recompute ``items.current_label`` / ``source`` from the item's latest live answer."""
    row = con.execute(
        "SELECT a.kind, a.label FROM annotations a WHERE a.item = ? AND a.kind != 'undo' "
        "AND NOT EXISTS (SELECT 1 FROM annotations u WHERE u.retracts = a.id) "
        "ORDER BY a.id DESC LIMIT 1",
        (int(item),),
    ).fetchone()
    if row is None:
        con.execute(
            "UPDATE items SET current_label = given_label, source = 'given' WHERE idx = ?",
            (int(item),),
        )
    elif row[0] == UNSURE:
        con.execute(
            "UPDATE items SET current_label = given_label, source = 'unsure' WHERE idx = ?",
            (int(item),),
        )
    else:
        con.execute(
            "UPDATE items SET current_label = ?, source = 'expert' WHERE idx = ?",
            (int(row[1]), int(item)),
        )


def _live_answers(con: sqlite3.Connection) -> pd.DataFrame:
    """The latest non-retracted answer per item."""
    df = pd.read_sql_query(
        "SELECT a.id, a.submission_id, a.item, a.kind, a.label, a.annotator, a.round, "
        "a.created_at, a.answered_at, a.seconds, a.origin FROM annotations a "
        "WHERE a.kind != 'undo' "
        "AND NOT EXISTS (SELECT 1 FROM annotations u WHERE u.retracts = a.id) "
        "AND a.id = (SELECT MAX(b.id) FROM annotations b WHERE b.item = a.item "
        "  AND b.kind != 'undo' "
        "  AND NOT EXISTS (SELECT 1 FROM annotations v WHERE v.retracts = b.id)) "
        "ORDER BY a.id",
        con,
    )
    df["label"] = df["label"].astype("Int64")
    return df


def _check_annotator(name: str) -> str:
    name = str(name).strip()
    if not name or len(name) > 64 or not name.isprintable():
        raise CampaignError(f"annotator name must be 1-64 printable characters, got {name!r}")
    return name


def _check_submission_id(sid: str) -> str:
    sid = str(sid).strip()
    if not sid or len(sid) > 128 or not sid.isprintable():
        raise CampaignError(f"submission id must be 1-128 printable characters, got {sid!r}")
    return sid


def _validate_classes(class_names: Sequence[str]) -> None:
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


def _validate_items(items: Sequence[ItemRecord], num_classes: int) -> None:
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
