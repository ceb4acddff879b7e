"""The campaign ledger: one SQLite file holding everything a relabeling campaign knows.

Tables (schema version :data:`SCHEMA_VERSION`; files of older versions are upgraded in place
when opened):

- ``meta``: key/value settings (schema version, image root, creation time, campaign settings such
  as ``double_read_share`` and ``blind``).
- ``classes``: class index -> name.
- ``items``: one row per image: ``idx`` (dense 0-based index), ``key`` (the image id),
  ``path`` (relative to the image root), ``role`` (``train`` items can be queued; ``val`` and
  ``test`` are held out for model selection / evaluation), ``given_label``, ``sha256`` (content
  hash of the image file, checked by :meth:`Ledger.relocate`), and the derived ``current_label``
  / ``source`` columns, kept in step with the final decision inside the same transaction.
- ``readers``: reader accounts (name, role ``reader`` or ``adjudicator``, SHA-256 of the token).
- ``rounds``: one row per finished ``campaign step`` (model metrics, sampler, budget, settings,
  the calibration ``temperature`` and the model's expected wrong labels in the pool and the
  queue, ``model_estimate``; both NULL in rounds written before schema version 3).
- ``scores``: per round and item, the model's class probabilities, whether the item was in the
  trusted (clean) set, and the sampler score of pool items.
- ``queue``: per round, the ranked items sent to the experts, each with a human-readable reason.
- ``checkpoints``: the model weights written by each round (so the next round fine-tunes them).
- ``annotations``: append-only. One row per reader answer (``label`` or ``unsure``) or
  retraction (``undo``, pointing at the answer it retracts). ``submission_id`` is UNIQUE, so a
  retried submission is recognised and never stored twice; it belongs to the reader who sent it
  (the same id from another reader is a :class:`SubmissionIdTaken`); ``external_id`` names the
  answer in another tool (e.g. a Label Studio annotation id).
- ``void_undos``: append-only. Undo requests that found nothing to undo, so that a retry of one
  stays a no-op instead of retracting an answer given in between.
- ``adjudications``: append-only. An adjudicator's decision on an item whose readers disagree,
  with the live answers it ``resolves``.
- ``leases``: which reader was last handed which item (:meth:`Ledger.assign_next`), one row per
  reader, each with an expiry time.
- ``events``: append-only log of everything that happened (triggers forbid UPDATE and DELETE).

Two views hold the rules every reader of the file uses:

- ``live_answers``: each reader's latest non-retracted answer per item (readers never overwrite
  each other: two readers' answers on one item are both live).
- ``decisions``: one row per answered item with its ``status`` -- ``single`` (one reader gave a
  label), ``agreed`` (several readers gave the same label), ``conflict`` (readers' labels
  differ and nobody adjudicated yet), ``adjudicated`` (an adjudicator decided) or ``unsure``
  (only "unsure" answers) -- and the final ``label`` (NULL for conflicts and unsure items).
  "Unsure" answers never conflict with a label. An adjudication holds while every answer it
  resolved is live; once one is retracted or replaced the item is ``reopened``: a conflict
  again, unless the live answers now agree with the adjudicated label.

Identities: reader names cannot be :data:`RESERVED_NAMES` or a name the admin token answers as
(:meth:`Ledger.claim_admin_name`), so every name in the file stands for one person.

Every write is one short ``BEGIN IMMEDIATE`` transaction (one connection per thread; WAL mode,
``synchronous=FULL``, foreign keys on, a busy timeout), so a crash of the writing process -- or of
the machine -- loses nothing that was acknowledged, and concurrent writers serialise cleanly. Copy
a campaign that may be in use with :meth:`Ledger.backup` (``labelrefine campaign backup``), never
with a plain file copy: answers may still sit in the ``-wal`` file next to it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labelrefine.data.dataset import DataError
from labelrefine.io import atomic_path, to_jsonable
from labelrefine.validation import UNSURE  # the answer's name; never a class name

SCHEMA_VERSION = 4
"""Version of the table layout this code writes and reads."""

APPLICATION_ID = 0x4C524350  # "LRCP": marks the SQLite file as a labelrefine campaign
_SQLITE_SIDECARS = ("-wal", "-shm", "-journal")  # removed with a failed temp file

ROLES = ("train", "val", "test")
ANSWER_KINDS = ("label", "unsure")
READER_ROLES = ("reader", "adjudicator")
DECISION_STATUSES = ("single", "agreed", "adjudicated", "conflict", "unsure")

_SCHEMA_V1 = """
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

_MIGRATIONS: dict[int, tuple[str, ...]] = {
    # version 1 -> 2: readers, adjudications, per-reader live answers, image hashes
    2: (
        "ALTER TABLE annotations ADD COLUMN external_id TEXT",
        "ALTER TABLE items ADD COLUMN sha256 TEXT",
        "CREATE INDEX annotations_item_annotator ON annotations(item, annotator, id)",
        "CREATE INDEX annotations_external ON annotations(origin, external_id) "
        "WHERE external_id IS NOT NULL",
        """CREATE TABLE readers (
            name         TEXT PRIMARY KEY,
            role         TEXT NOT NULL CHECK (role IN ('reader', 'adjudicator')),
            token_sha256 TEXT NOT NULL UNIQUE,
            created_at   TEXT NOT NULL,
            active       INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1))
        )""",
        """CREATE TABLE adjudications (
            id            INTEGER PRIMARY KEY AUTOINCREMENT,
            submission_id TEXT NOT NULL UNIQUE,
            item          INTEGER NOT NULL REFERENCES items(idx),
            label         INTEGER NOT NULL REFERENCES classes(idx),
            adjudicator   TEXT NOT NULL,
            resolves      TEXT NOT NULL,
            round         INTEGER,
            created_at    TEXT NOT NULL,
            seconds       REAL,
            note          TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX adjudications_item ON adjudications(item, id)",
        """CREATE TRIGGER adjudications_no_update BEFORE UPDATE ON adjudications
        BEGIN SELECT RAISE(ABORT, 'adjudications are append-only'); END""",
        """CREATE TRIGGER adjudications_no_delete BEFORE DELETE ON adjudications
        BEGIN SELECT RAISE(ABORT, 'adjudications are append-only'); END""",
        # Each reader's latest non-retracted answer per item.
        """CREATE VIEW live_answers AS
        SELECT a.id, a.submission_id, a.item, a.kind, a.label, a.annotator, a.round,
               a.created_at, a.answered_at, a.seconds, a.origin, a.external_id
        FROM annotations a
        WHERE a.kind != 'undo'
          AND NOT EXISTS (SELECT 1 FROM annotations u WHERE u.retracts = a.id)
          AND NOT EXISTS (
              SELECT 1 FROM annotations b
              WHERE b.item = a.item AND b.annotator = a.annotator AND b.id > a.id
                AND b.kind != 'undo'
                AND NOT EXISTS (SELECT 1 FROM annotations v WHERE v.retracts = b.id))""",
        """CREATE VIEW live_adjudications AS
        SELECT d.* FROM adjudications d
        WHERE NOT EXISTS (SELECT 1 FROM adjudications e WHERE e.item = d.item AND e.id > d.id)""",
        # The final decision per answered item.
        """CREATE VIEW decisions AS
        SELECT p.item, p.n_readers, p.n_labels,
               CASE WHEN d.id IS NOT NULL THEN 'adjudicated'
                    WHEN p.n_distinct > 1 THEN 'conflict'
                    WHEN p.n_labels > 1 THEN 'agreed'
                    WHEN p.n_labels = 1 THEN 'single'
                    ELSE 'unsure' END AS status,
               CASE WHEN d.id IS NOT NULL THEN d.label
                    WHEN p.n_distinct = 1 THEN p.any_label END AS label,
               d.adjudicator AS adjudicator, d.id AS adjudication
        FROM (SELECT item, COUNT(*) AS n_readers, SUM(kind = 'label') AS n_labels,
                     COUNT(DISTINCT label) AS n_distinct, MIN(label) AS any_label
              FROM live_answers GROUP BY item) p
        LEFT JOIN live_adjudications d ON d.item = p.item""",
    ),
    # version 2 -> 3: per round, the temperature and the model's expected wrong labels
    3: (
        "ALTER TABLE rounds ADD COLUMN temperature REAL",
        "ALTER TABLE rounds ADD COLUMN model_estimate TEXT",
    ),
    # version 3 -> 4: undo requests that found nothing to undo (so their retries stay no-ops),
    # item leases shared by every server process, and adjudications that no longer hold once an
    # answer they resolved is retracted or replaced (the item is a conflict again)
    4: (
        """CREATE TABLE void_undos (
            submission_id TEXT PRIMARY KEY,
            annotator     TEXT NOT NULL,
            round         INTEGER,
            created_at    TEXT NOT NULL
        )""",
        """CREATE TRIGGER void_undos_no_update BEFORE UPDATE ON void_undos
        BEGIN SELECT RAISE(ABORT, 'void undos are append-only'); END""",
        """CREATE TRIGGER void_undos_no_delete BEFORE DELETE ON void_undos
        BEGIN SELECT RAISE(ABORT, 'void undos are append-only'); END""",
        """CREATE TABLE leases (
            annotator TEXT PRIMARY KEY,
            item      INTEGER NOT NULL REFERENCES items(idx),
            round     INTEGER NOT NULL,
            expires   REAL NOT NULL
        )""",
        "DROP VIEW decisions",
        "DROP VIEW live_adjudications",
        # ``stale``: an answer the decision resolved is no longer live
        """CREATE VIEW live_adjudications AS
        SELECT d.*, EXISTS (
            SELECT 1 FROM json_each(d.resolves) j
            WHERE j.value NOT IN (SELECT l.id FROM live_answers l WHERE l.item = d.item)
        ) AS stale
        FROM adjudications d
        WHERE NOT EXISTS (SELECT 1 FROM adjudications e WHERE e.item = d.item AND e.id > d.id)""",
        # A stale adjudication is reopened: a conflict while the live answers disagree with each
        # other or with it (``reopened`` = 1), else the answers decide as if never adjudicated.
        """CREATE VIEW decisions AS
        SELECT p.item, p.n_readers, p.n_labels,
               CASE WHEN d.id IS NOT NULL AND NOT d.stale THEN 'adjudicated'
                    WHEN p.n_distinct > 1 THEN 'conflict'
                    WHEN d.id IS NOT NULL AND p.n_distinct = 1 AND p.any_label != d.label
                        THEN 'conflict'
                    WHEN p.n_labels > 1 THEN 'agreed'
                    WHEN p.n_labels = 1 THEN 'single'
                    ELSE 'unsure' END AS status,
               CASE WHEN d.id IS NOT NULL AND NOT d.stale THEN d.label
                    WHEN d.id IS NOT NULL AND p.any_label != d.label THEN NULL
                    WHEN p.n_distinct = 1 THEN p.any_label END AS label,
               CASE WHEN NOT d.stale THEN d.adjudicator END AS adjudicator,
               CASE WHEN NOT d.stale THEN d.id END AS adjudication,
               COALESCE(d.stale, 0) AS reopened
        FROM (SELECT item, COUNT(*) AS n_readers, SUM(kind = 'label') AS n_labels,
                     COUNT(DISTINCT label) AS n_distinct, MIN(label) AS any_label
              FROM live_answers GROUP BY item) p
        LEFT JOIN live_adjudications d ON d.item = p.item""",
    ),
}

RESERVED_NAMES = ("expert", "import")
"""Names readers cannot take: the admin token's default name and the CSV / Label Studio
import's default annotator. The names ``serve --annotator`` used are reserved too
(:meth:`Ledger.claim_admin_name`)."""

_ADMIN_NAMES_KEY = "admin_names"
_REQUIRED_TABLES = (
    "meta", "classes", "items", "rounds", "scores", "queue", "annotations", "events"
)


class CampaignError(DataError):
    """A campaign cannot do what was asked; the message names the item, class or file."""


class SubmissionRetracted(CampaignError):
    """A submission id whose answer was undone was sent again: send a new submission id."""


class NotAllowed(CampaignError):
    """A reader tried something their account may not do (e.g. undo another reader's answer)."""


class SubmissionIdTaken(CampaignError):
    """A submission id already names another reader's request: send a new submission id."""


def utc_now() -> str:
    """Current UTC time as an ISO-8601 string with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def token_hash(token: str) -> str:
    """How reader tokens are stored: their SHA-256 (the token itself is shown once)."""
    return hashlib.sha256(token.encode()).hexdigest()


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
        version = self._check_version()
        try:
            if version < SCHEMA_VERSION:
                self._migrate()
            with self.connect() as con:
                self._class_names = tuple(
                    r[0] for r in con.execute("SELECT name FROM classes ORDER BY idx")
                )
                meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as err:
            self.close()
            raise CampaignError(f"{self.path} is a damaged campaign file ({err})") from None
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
        with atomic_path(path, perms=None, sidecars=_SQLITE_SIDECARS) as tmp:
            con = sqlite3.connect(tmp, isolation_level=None)
            try:
                con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                con.execute("PRAGMA foreign_keys = ON")
                con.executescript(_SCHEMA_V1)
                con.execute("BEGIN")
                for version in sorted(_MIGRATIONS):
                    for stmt in _MIGRATIONS[version]:
                        con.execute(stmt)
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
                    "INSERT INTO items(idx, key, path, role, given_label, current_label, sha256) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        (
                            i,
                            it.key,
                            it.path,
                            it.role,
                            int(it.given_label),
                            int(it.given_label),
                            it.sha256,
                        )
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
        return cls(path)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """This thread's autocommit connection with the campaign's pragmas.

        Connections are kept open per thread: closing the last connection of a WAL database
        checkpoints it, which would cost a few fsyncs on every answer.
        """
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(
                self.path,
                isolation_level=None,
                timeout=self._busy_ms / 1000,
            )
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

    def _check_version(self) -> int:
        try:
            con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        except sqlite3.Error as err:
            raise CampaignError(f"{self.path}: cannot open campaign file: {err}") from None
        try:
            row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
            missing = [t for t in _REQUIRED_TABLES if t not in tables]
        except sqlite3.DatabaseError as err:
            raise CampaignError(f"{self.path} is not a labelrefine campaign file ({err})") from None
        finally:
            con.close()
        if row is None:
            raise CampaignError(
                f"{self.path} is not a labelrefine campaign file (no schema_version)"
            )
        if missing:
            raise CampaignError(
                f"{self.path} is not a complete labelrefine campaign file (missing table(s): "
                f"{', '.join(missing)})"
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
        return version

    def _migrate(self) -> None:
        """Upgrade an older file in place, one version at a time, in one transaction."""
        with self.transaction() as con:
            version = int(
                con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
            )
            start = version
            while version < SCHEMA_VERSION:
                version += 1
                for stmt in _MIGRATIONS[version]:
                    con.execute(stmt)
            con.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
            )
            if start != version:
                _insert_event(con, "migrate", {"from": start, "to": version})

    # ------------------------------------------------------------------------------------------
    # static facts and settings
    # ------------------------------------------------------------------------------------------

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._class_names

    @property
    def num_classes(self) -> int:
        return len(self._class_names)

    @property
    def image_root(self) -> Path:
        return Path(self.meta()["image_root"])

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

    @property
    def double_read_share(self) -> float:
        """Share of queued items (chosen by a hash of their id) read by a second reader."""
        return float(json.loads(self.meta().get("double_read_share", "0")))

    @property
    def blind(self) -> bool:
        """Blind mode: the page hides the given label and the model's suggestions."""
        return bool(json.loads(self.meta().get("blind", "false")))

    def configure(
        self, *, double_read_share: float | None = None, blind: bool | None = None
    ) -> None:
        """Change the campaign's reading settings (taking effect for the next page load)."""
        if double_read_share is not None:
            share = float(double_read_share)
            if not (np.isfinite(share) and 0 <= share <= 1):
                raise CampaignError(f"double-reading share must be in [0, 1], got {share}")
            self.set_meta("double_read_share", share)
        if blind is not None:
            self.set_meta("blind", bool(blind))

    def class_index(self, name: str) -> int:
        """Index of class ``name``; CampaignError when unknown."""
        try:
            return self._class_names.index(name)
        except ValueError:
            known = ", ".join(self._class_names)
            raise CampaignError(f"unknown class {name!r} (known: {known})") from None

    # ------------------------------------------------------------------------------------------
    # readers
    # ------------------------------------------------------------------------------------------

    def add_reader(self, name: str, *, role: str = "reader") -> str:
        """Create a reader account and return its token (shown once; only its hash is kept)."""
        name = _check_annotator(name)
        if role not in READER_ROLES:
            raise CampaignError(f"unknown reader role {role!r} (use {', '.join(READER_ROLES)})")
        token = secrets.token_urlsafe(18)
        with self.transaction() as con:
            if name.casefold() in {n.casefold() for n in _reserved_names(con)}:
                raise CampaignError(
                    f"reader name {name!r} is reserved (it names the admin token's or the "
                    "imports' answers); choose another name"
                )
            if con.execute("SELECT 1 FROM readers WHERE name = ?", (name,)).fetchone():
                raise CampaignError(
                    f"reader {name!r} already exists; use 'campaign reader token' for a new token"
                )
            con.execute(
                "INSERT INTO readers(name, role, token_sha256, created_at) VALUES (?, ?, ?, ?)",
                (name, role, token_hash(token), utc_now()),
            )
            _insert_event(con, "reader_add", {"name": name, "role": role})
        return token

    def new_token(self, name: str, *, reactivate: bool = False) -> str:
        """Replace reader ``name``'s token (the old one stops working) and return the new one.

        A removed reader stays removed unless ``reactivate`` is given.
        """
        token = secrets.token_urlsafe(18)
        with self.transaction() as con:
            row = con.execute("SELECT active FROM readers WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise CampaignError(f"unknown reader {name!r}")
            if not row[0] and not reactivate:
                raise CampaignError(
                    f"reader {name!r} was removed; give --reactivate to restore the account "
                    "with a new token"
                )
            con.execute(
                "UPDATE readers SET token_sha256 = ?, active = 1 WHERE name = ?",
                (token_hash(token), name),
            )
            _insert_event(con, "reader_token", {"name": name, "reactivated": not row[0]})
        return token

    def claim_admin_name(self, name: str) -> str:
        """Reserve ``name`` for the admin token's answers (``serve --annotator``).

        Refused when a reader account has that name: the admin and the reader would share one
        identity (answers, undo). Once claimed, no reader can take it.
        """
        name = _check_annotator(name)
        with self.transaction() as con:
            taken = con.execute(
                "SELECT name FROM readers WHERE lower(name) = lower(?)", (name,)
            ).fetchone()
            if taken is not None:
                raise CampaignError(
                    f"{name!r} is a reader account; the admin token needs a name of its own "
                    "(serve --annotator NAME)"
                )
            claimed = _admin_names(con)
            if name not in claimed:
                text = json.dumps(sorted({*claimed, name}))
                con.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                    (_ADMIN_NAMES_KEY, text),
                )
                _insert_event(con, "admin_name", {"name": name})
        return name

    def reserved_names(self) -> tuple[str, ...]:
        """Names no reader may take (:data:`RESERVED_NAMES` plus the admin names in use)."""
        with self.connect() as con:
            return _reserved_names(con)

    def remove_reader(self, name: str) -> None:
        """Deactivate reader ``name`` (their answers stay; their token stops working)."""
        with self.transaction() as con:
            cur = con.execute("UPDATE readers SET active = 0 WHERE name = ?", (name,))
            if cur.rowcount == 0:
                raise CampaignError(f"unknown reader {name!r}")
            _insert_event(con, "reader_remove", {"name": name})

    def reader_for_token(self, token: str | None) -> Reader | None:
        """The active reader whose token this is, or None."""
        if not token:
            return None
        digest = token_hash(token)
        with self.connect() as con:
            rows = con.execute(
                "SELECT name, role, token_sha256 FROM readers WHERE active = 1"
            ).fetchall()
        for name, role, stored in rows:
            if hmac.compare_digest(stored, digest):
                return Reader(name=name, role=role)
        return None

    def readers(self) -> pd.DataFrame:
        """Reader accounts: name, role, created_at, active (tokens are never returned)."""
        with self.connect() as con:
            df = pd.read_sql_query(
                "SELECT name, role, created_at, active FROM readers ORDER BY created_at, name", con
            )
        df["active"] = df["active"].astype(bool)
        return df

    def n_active_readers(self) -> int:
        with self.connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM readers WHERE active = 1").fetchone()[0])

    # ------------------------------------------------------------------------------------------
    # items
    # ------------------------------------------------------------------------------------------

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
        idx = _check_index(idx)
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
                    _json(settings),
                    _json(metrics),
                    None if temperature is None else float(temperature),
                    None if model_estimate is None else _json(model_estimate),
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

    def _open_items(
        self, con: sqlite3.Connection, round: int
    ) -> list[tuple[int, str, int, int, str | None, set[str]]]:
        """Queue of ``round`` in rank order with what each item still needs:
        ``(item, key, n_readers, n_labels, status, readers)``."""
        rows = con.execute(
            "SELECT q.item, i.key, COALESCE(d.n_readers, 0), COALESCE(d.n_labels, 0), d.status, "
            "(SELECT GROUP_CONCAT(annotator, char(31)) FROM live_answers l WHERE l.item = q.item) "
            "FROM queue q JOIN items i ON i.idx = q.item "
            "LEFT JOIN decisions d ON d.item = q.item WHERE q.round = ? ORDER BY q.rank",
            (round,),
        ).fetchall()
        return [
            (int(r[0]), r[1], int(r[2]), int(r[3]), r[4], set((r[5] or "").split("\x1f")) - {""})
            for r in rows
        ]

    def _wanted(
        self, entry: tuple[int, str, int, int, str | None, set[str]], share: float, readers: int
    ) -> bool:
        """Does this queued item still need a reading? (:meth:`_open_slots` > 0)"""
        return self._open_slots(entry, share, readers) > 0

    @staticmethod
    def _open_slots(
        entry: tuple[int, str, int, int, str | None, set[str]], share: float, readers: int
    ) -> int:
        """How many more readings this queued item needs.

        One when nobody answered it -- two when it is to be read twice, chosen by the
        double-reading ``share`` (a stable hash of its id); after one answer, one more when it
        is to be read twice or was answered only "unsure" in a campaign with two or more
        reader accounts; none after two answers or once readers disagree.
        """
        _, key, n_readers, _, status, _ = entry
        double = share > 0 and _stable_fraction(key) < share
        if n_readers == 0:
            return 2 if double else 1
        if status in ("conflict", "adjudicated") or n_readers >= 2:
            return 0
        return 1 if double or (status == "unsure" and readers >= 2) else 0

    def assign_next(
        self, annotator: str, *, lease_seconds: float = 300.0, round: int | None = None
    ) -> int | None:
        """Hand ``annotator`` the first queued item (by rank) with a reading slot left, and
        lease it to them; None when every open slot is taken or answered.

        One ``BEGIN IMMEDIATE`` transaction: two readers asking at the same moment (from any
        number of server threads or processes) never get the same slot. A reader holds one
        lease at a time (asking again releases the previous one); a lease lapses after
        ``lease_seconds``, so an abandoned item comes back. A reader is never handed an item
        they already answered, so a second reading is always by another reader.
        """
        annotator = _check_annotator(annotator)
        share = self.double_read_share
        readers = self.n_active_readers()
        now = time.time()
        with self.transaction() as con:
            if round is None:
                round = _current_round(con)
                if round is None:
                    return None
            con.execute(
                "DELETE FROM leases WHERE expires <= ? OR round != ? OR annotator = ?",
                (now, round, annotator),
            )
            holders: dict[int, set[str]] = {}
            for item, who in con.execute("SELECT item, annotator FROM leases"):
                holders.setdefault(int(item), set()).add(str(who))
            for entry in self._open_items(con, round):
                if annotator in entry[5]:
                    continue
                taken = len(holders.get(entry[0], set()) - entry[5])
                if self._open_slots(entry, share, readers) > taken:
                    _insert_lease(con, entry[0], annotator, round, now + lease_seconds)
                    return entry[0]
        return None

    def lease(self, item: int, annotator: str, *, lease_seconds: float = 300.0) -> None:
        """Lease ``item`` to ``annotator`` (e.g. the item an undo brought back to them)."""
        annotator = _check_annotator(annotator)
        with self.transaction() as con:
            round = _current_round(con)
            if round is not None:
                expires = time.time() + lease_seconds
                _insert_lease(con, _check_index(item), annotator, round, expires)

    def live_answer(self, item: int, annotator: str) -> tuple[str, int | None] | None:
        """``annotator``'s own live answer on ``item`` as ``(kind, label)`` (None: none)."""
        with self.connect() as con:
            row = con.execute(
                "SELECT kind, label FROM live_answers WHERE item = ? AND annotator = ?",
                (_check_index(item), annotator),
            ).fetchone()
        return None if row is None else (str(row[0]), None if row[1] is None else int(row[1]))

    def next_item(
        self,
        round: int | None = None,
        *,
        skip: Sequence[int] = (),
        annotator: str | None = None,
    ) -> int | None:
        """The first item of the round's queue (by rank) that still needs a reading, or None.

        An item needs a reading when nobody answered it yet, or when it is to be read twice
        (:meth:`needs_second_reading`) and only one reader answered. With ``annotator``, items
        that reader already answered are passed over (a second reading is always by another
        reader). ``skip`` lists items to pass over (e.g. items another reader is looking at);
        when only skipped items remain, the first of them is returned.
        """
        if round is None:
            round = self.current_round()
            if round is None:
                return None
        share = self.double_read_share
        readers = self.n_active_readers()
        with self.connect() as con:
            entries = self._open_items(con, round)
        todo = [
            e[0]
            for e in entries
            if self._wanted(e, share, readers) and (annotator is None or annotator not in e[5])
        ]
        skipset = set(int(s) for s in skip)
        for i in todo:
            if i not in skipset:
                return i
        return todo[0] if todo else None

    def progress(self, round: int | None = None) -> tuple[int, int]:
        """``(done, queued)`` for the round's queue.

        An item is done when it has its reading(s) and no open conflict: it was answered, its
        second reading (if it needs one) is in, and a disagreement between readers has been
        adjudicated.
        """
        if round is None:
            round = self.current_round()
            if round is None:
                return (0, 0)
        share = self.double_read_share
        readers = self.n_active_readers()
        with self.connect() as con:
            entries = self._open_items(con, round)
        done = sum(1 for e in entries if not self._wanted(e, share, readers) and e[4] != "conflict")
        return done, len(entries)

    def is_queued(self, idx: int, round: int | None = None) -> bool:
        """Whether item ``idx`` is in the queue of ``round`` (default: the current round)."""
        if round is None:
            round = self.current_round()
            if round is None:
                return False
        with self.connect() as con:
            row = con.execute(
                "SELECT 1 FROM queue WHERE round = ? AND item = ?", (round, _check_index(idx))
            ).fetchone()
        return row is not None

    # ------------------------------------------------------------------------------------------
    # answers
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
        external_id: str | None = None,
    ) -> SubmitResult:
        """Store one reader's answer in its own transaction; idempotent per ``submission_id``.

        ``label`` is a class index, or None for "unsure". Each reader has their own answer per
        item (a later answer by the same reader replaces their earlier one; other readers'
        answers are kept). When the item's live answers now disagree, the result says
        ``conflict=True`` and the conflict shows in :meth:`conflicts` until adjudicated.

        A retry with the same submission id and the same content returns the stored annotation
        with ``duplicate=True``; the same id with different content is a CampaignError, and the
        id of an answer that was undone is a :class:`SubmissionRetracted` (send a new id).
        ``round`` defaults to the current round.
        """
        annotator = _check_annotator(annotator)
        submission_id = _check_submission_id(submission_id)
        item = _check_index(item)
        kind = UNSURE if label is None else "label"
        if label is not None and not 0 <= int(label) < self.num_classes:
            raise CampaignError(f"label index {label} out of range for {self.num_classes} classes")
        seconds = _check_seconds(seconds)
        now = utc_now()
        with self.transaction() as con:
            prior = _prior_submission(con, submission_id, item, kind, label, annotator)
            if prior is not None:
                return SubmitResult(prior, item, duplicate=True)
            given = _given_label(con, item)
            if round is None:
                round = _current_round(con)
            before = _status(con, item)
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
            )
            after = _refresh_item(con, item)
            _insert_event(
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
            _note_change(con, item, before, after, {"annotation": ann_id}, now)
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
        annotator = _check_annotator(annotator)
        submission_id = _check_submission_id(submission_id)
        now = utc_now()
        with self.transaction() as con:
            prior = con.execute(
                "SELECT kind, retracts, item, annotator FROM annotations WHERE submission_id = ?",
                (submission_id,),
            ).fetchone()
            if prior is not None:
                _check_owner(submission_id, str(prior[3]), annotator)
                if prior[0] != "undo":
                    raise CampaignError(
                        f"submission id {submission_id!r} was already used for another request"
                    )
                return UndoResult(int(prior[1]), int(prior[2]), duplicate=True)
            void = _void_undo_owner(con, submission_id)
            if void is not None:  # a retry of an undo that found nothing: still nothing
                _check_owner(submission_id, void, annotator)
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
                    (submission_id, annotator, _current_round(con), now),
                )
                return UndoResult(None, None, duplicate=False)
            target, item = int(row[0]), int(row[1])
            before = _status(con, item)
            con.execute(
                "INSERT INTO annotations(submission_id, item, kind, label, retracts, annotator, "
                "round, created_at, answered_at, seconds, origin) "
                "VALUES (?, ?, 'undo', NULL, ?, ?, ?, ?, ?, NULL, 'api')",
                (submission_id, item, target, annotator, _current_round(con), now, now),
            )
            _note_change(con, item, before, _refresh_item(con, item), {"undo": target}, now)
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

    def answerable(self, item: int) -> str | None:
        """Why item ``item`` cannot take an answer (unknown, held out), or None when it can.

        Importers use it to skip and report stray rows instead of aborting.
        """
        try:
            with self.connect() as con:
                _given_label(con, _check_index(item))
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
        (the answer's id in the other tool). An answer is *already present* -- and not stored
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
            current = _current_round(con)
            for a in answers:
                sid = _check_submission_id(str(a["submission_id"]))
                item = _check_index(a["item"])
                label = None if a.get("label") is None else int(a["label"])
                if label is not None and not 0 <= label < self.num_classes:
                    raise CampaignError(f"label index {label} out of range")
                kind = UNSURE if label is None else "label"
                annotator = _check_annotator(str(a["annotator"]))
                ext = a.get("external_id")
                ext = None if ext is None or str(ext) == "" else str(ext)
                if _prior_submission(con, sid, item, kind, label, annotator) is not None:
                    present += 1
                    continue
                _given_label(con, item)
                if ext is not None:
                    same_ext = con.execute(
                        "SELECT kind, label FROM annotations WHERE origin = ? AND external_id = ? "
                        "AND item = ? AND annotator = ? ORDER BY id DESC LIMIT 1",
                        (origin, ext, item, annotator),
                    ).fetchone()
                    if same_ext is not None and (same_ext[0], same_ext[1]) == (kind, label):
                        present += 1
                        continue
                live = con.execute(
                    "SELECT kind, label FROM live_answers WHERE item = ? AND annotator = ?",
                    (item, annotator),
                ).fetchone()
                if live is not None and (live[0], live[1]) == (kind, label):
                    present += 1
                    continue
                before = _status(con, item)
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
                    seconds=_check_seconds(a.get("seconds")),
                    origin=origin,
                    external_id=ext,
                )
                after = _refresh_item(con, item)
                if after == "conflict" and before != "conflict":
                    conflict_items.append(item)
                _note_change(con, item, before, after, {"origin": origin}, now)
                imported += 1
            _insert_event(
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
        seconds, origin, external_id (and ``retracted`` when ``include_retracted``: every answer
        ever given, including retracted and replaced ones).
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

    def conflicts(self, *, include_resolved: bool = False) -> pd.DataFrame:
        """Items whose readers' live labels differ.

        One row per item: item, key, given_label, status (``conflict`` or, with
        ``include_resolved``, ``adjudicated``), label (the adjudicated one), answers (list of
        ``(annotator, label or None for unsure, annotation id)``).
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
                    "SELECT annotator, label, id FROM live_answers WHERE item = ? ORDER BY id",
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
                    }
                )
        return pd.DataFrame(
            out, columns=["item", "key", "given_label", "status", "label", "answers"]
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
        adjudicator = _check_annotator(adjudicator)
        submission_id = _check_submission_id(submission_id)
        item = _check_index(item)
        label = int(label)
        if not 0 <= label < self.num_classes:
            raise CampaignError(f"label index {label} out of range for {self.num_classes} classes")
        seconds = _check_seconds(seconds)
        now = utc_now()
        with self.transaction() as con:
            prior = con.execute(
                "SELECT id, item, label, adjudicator FROM adjudications WHERE submission_id = ?",
                (submission_id,),
            ).fetchone()
            if prior is not None:
                _check_owner(submission_id, str(prior[3]), adjudicator)
                if (int(prior[1]), int(prior[2])) != (item, label):
                    raise CampaignError(
                        f"submission id {submission_id!r} was already used for another decision"
                    )
                return AdjudicationResult(int(prior[0]), item, label, duplicate=True)
            _given_label(con, item)
            status = _status(con, item)
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
                    _current_round(con),
                    now,
                    seconds,
                    str(note)[:1000],
                ),
            )
            adj_id = int(cur.lastrowid)
            _refresh_item(con, item)
            _insert_event(
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

    def annotation_count(self) -> int:
        """Number of annotation rows (answers and retractions)."""
        with self.connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM annotations").fetchone()[0])

    # ------------------------------------------------------------------------------------------
    # safe operations: backup and relocation
    # ------------------------------------------------------------------------------------------

    def backup(self, out: str | Path) -> Path:
        """Write a consistent single-file copy of the campaign to ``out`` while it may be in use.

        Uses SQLite's online backup API (every committed answer, including those still in the
        write-ahead log, is in the copy); the copy is written next to ``out`` and renamed into
        place, and it is a self-contained file (rollback journal mode, no ``-wal`` needed).
        Refuses to overwrite an existing file.
        """
        out = Path(out)
        if out.exists():
            raise CampaignError(f"{out} already exists; choose another backup file")
        with atomic_path(out, perms=None, sidecars=_SQLITE_SIDECARS) as tmp:
            dst = sqlite3.connect(tmp, isolation_level=None)
            try:
                with self.connect() as con:
                    con.backup(dst)
                dst.execute("PRAGMA journal_mode = DELETE")
                ok = dst.execute("PRAGMA quick_check").fetchone()[0]
                if ok != "ok":
                    raise CampaignError(f"backup failed its integrity check: {ok}")
            finally:
                dst.close()
        self.log_event("backup", {"file": out.name})
        return out

    def relocate(
        self,
        new_root: str | Path,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Point the campaign at a moved image folder, after checking every file's content.

        Each item's file under ``new_root`` must exist and have the SHA-256 recorded for it (for
        campaigns made before hashes were recorded: the same bytes as the file under the old
        folder, when that still exists). Nothing changes unless every file checks out; the
        error names the first item that does not. Returns the number of files checked.
        """
        new_root = Path(new_root).resolve()
        if not new_root.is_dir():
            raise CampaignError(f"image folder not found: {new_root}")
        old_root = self.image_root
        with self.connect() as con:
            rows = con.execute("SELECT idx, key, path, sha256 FROM items ORDER BY idx").fetchall()
        hashes: list[tuple[str, int]] = []
        for n, (idx, key, rel, stored) in enumerate(rows):
            new = (new_root / rel).resolve()
            if not new.is_relative_to(new_root):
                raise CampaignError(f"item {key!r}: image path {rel!r} leaves {new_root}")
            if not new.is_file():
                raise CampaignError(f"item {key!r}: {new} not found; nothing was changed")
            digest = file_sha256(new)
            expected = stored
            if expected is None and (old_root / rel).is_file():
                expected = file_sha256(old_root / rel)
            if expected is None:
                raise CampaignError(
                    f"item {key!r}: no recorded content hash and the old file {old_root / rel} "
                    "is gone, so the new file cannot be checked; nothing was changed"
                )
            if digest != expected:
                raise CampaignError(
                    f"item {key!r}: {new} differs from the campaign's image (content hash "
                    "mismatch); nothing was changed"
                )
            hashes.append((digest, int(idx)))
            if progress is not None:
                progress(n + 1, len(rows))
        with self.transaction() as con:
            con.executemany("UPDATE items SET sha256 = ? WHERE idx = ?", hashes)
            con.execute("UPDATE meta SET value = ? WHERE key = 'image_root'", (str(new_root),))
            _insert_event(
                con, "relocate", {"from": str(old_root), "to": str(new_root), "files": len(rows)}
            )
        self._meta["image_root"] = str(new_root)
        return len(rows)

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


def _json(obj: Mapping[str, Any]) -> str:
    """JSON text of an event payload or round record (numpy values and paths converted)."""
    return json.dumps(to_jsonable(dict(obj), nan="keep"))


def _insert_event(
    con: sqlite3.Connection, kind: str, payload: Mapping[str, Any], ts: str | None = None
) -> None:
    con.execute(
        "INSERT INTO events(ts, kind, payload) VALUES (?, ?, ?)",
        (ts or utc_now(), kind, _json(payload)),
    )


def _insert_lease(
    con: sqlite3.Connection, item: int, annotator: str, round: int, expires: float
) -> None:
    con.execute(
        "INSERT OR REPLACE INTO leases(annotator, item, round, expires) VALUES (?, ?, ?, ?)",
        (annotator, int(item), int(round), float(expires)),
    )


def _admin_names(con: sqlite3.Connection) -> list[str]:
    row = con.execute("SELECT value FROM meta WHERE key = ?", (_ADMIN_NAMES_KEY,)).fetchone()
    return [] if row is None else [str(n) for n in json.loads(row[0])]


def _reserved_names(con: sqlite3.Connection) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*RESERVED_NAMES, *_admin_names(con))))


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


def _current_round(con: sqlite3.Connection) -> int | None:
    r = con.execute("SELECT MAX(round) FROM rounds").fetchone()[0]
    return None if r is None else int(r)


def _status(con: sqlite3.Connection, item: int) -> str | None:
    """The item's decision status (None: nobody answered it)."""
    row = con.execute("SELECT status FROM decisions WHERE item = ?", (int(item),)).fetchone()
    return None if row is None else str(row[0])


def _refresh_item(con: sqlite3.Connection, item: int) -> str | None:
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


def _check_owner(sid: str, owner: str, annotator: str) -> None:
    """A submission id belongs to the reader who first sent it; anyone else gets an error."""
    if owner != annotator:
        raise SubmissionIdTaken(
            f"submission id {sid!r} belongs to another reader's request; send a new "
            "submission id"
        )


def _void_undo_owner(con: sqlite3.Connection, sid: str) -> str | None:
    """The reader of an undo request with this id that had nothing to undo (None: none)."""
    row = con.execute("SELECT annotator FROM void_undos WHERE submission_id = ?", (sid,)).fetchone()
    return None if row is None else str(row[0])


def _note_change(
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
        _insert_event(con, "conflict", {"item": item, **context}, now)
    if before == "adjudicated" and after != "adjudicated":
        _insert_event(con, "reopen", {"item": item, "status": after, **context}, now)


def _prior_submission(
    con: sqlite3.Connection, sid: str, item: int, kind: str, label: int | None, annotator: str
) -> int | None:
    """The stored annotation id of a retried submission (None: a new submission id).

    Raises when the id names another reader's request (:class:`SubmissionIdTaken`), was used
    for different content, or when its answer was undone (a retry then must not report
    success: the answer is no longer live).
    """
    prior = con.execute(
        "SELECT id, item, kind, label, "
        "EXISTS (SELECT 1 FROM annotations u WHERE u.retracts = a.id), annotator "
        "FROM annotations a WHERE submission_id = ?",
        (sid,),
    ).fetchone()
    if prior is None:
        void = _void_undo_owner(con, sid)
        if void is not None:
            _check_owner(sid, void, annotator)
            raise CampaignError(f"submission id {sid!r} was already used for another request")
        return None
    _check_owner(sid, str(prior[5]), annotator)
    if (int(prior[1]), prior[2], prior[3]) != (int(item), kind, None if label is None else label):
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
) -> int:
    cur = con.execute(
        "INSERT INTO annotations(submission_id, item, kind, label, retracts, annotator, "
        "round, created_at, answered_at, seconds, origin, external_id) "
        "VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?)",
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
        ),
    )
    return int(cur.lastrowid)


def _stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by an item id (chooses the double-read share reproducibly)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _item_paths(ledger: Ledger) -> tuple[list[str], list[str]]:
    with ledger.connect() as con:
        rows = con.execute("SELECT key, path FROM items ORDER BY idx").fetchall()
    return [r[0] for r in rows], [r[1] for r in rows]


_MAX_INDEX = 2**62


def _check_index(idx: Any) -> int:
    """An item index as int; CampaignError for non-integers and absurd values."""
    try:
        value = int(idx)
    except (TypeError, ValueError, OverflowError):
        raise CampaignError(f"item index must be an integer, got {idx!r}") from None
    if not 0 <= value < _MAX_INDEX:
        raise CampaignError(f"unknown item index {idx}")
    return value


def _check_seconds(seconds: Any) -> float | None:
    if seconds is None:
        return None
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise CampaignError(f"seconds must be a non-negative number, got {seconds!r}") from None
    if not (np.isfinite(value) and 0 <= value < 1e7):
        raise CampaignError(f"seconds must be a non-negative number, got {seconds!r}")
    return value


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
