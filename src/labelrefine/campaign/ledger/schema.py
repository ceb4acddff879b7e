"""The campaign file's layout: the DDL of version 1 and the migrations to each later version.

A new file runs :data:`SCHEMA_V1` and then every migration in order; an older file runs the
migrations after its version (:meth:`LedgerCore._migrate`). Nothing here touches a file.
"""

from __future__ import annotations

SCHEMA_VERSION = 5
"""Version of the table layout this code writes and reads."""

APPLICATION_ID = 0x4C524350  # "LRCP": marks the SQLite file as a labelrefine campaign
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")  # removed with a failed temp file

ROLES = ("train", "val", "test")
ANSWER_KINDS = ("label", "unsure")
READER_ROLES = ("reader", "adjudicator")
DECISION_STATUSES = ("single", "agreed", "adjudicated", "conflict", "unsure")
NOTE_MAX_CHARS = 2000
"""Longest free-text note a reader may keep with an answer."""

SCHEMA_V1 = """
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

MIGRATIONS: dict[int, tuple[str, ...]] = {
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
    # version 4 -> 5: a reader's free-text note with each answer (empty in older answers); the
    # views over live_answers read it by name, so replacing that view leaves them as they are
    5: (
        "ALTER TABLE annotations ADD COLUMN note TEXT NOT NULL DEFAULT ''",
        "DROP VIEW live_answers",
        """CREATE VIEW live_answers AS
        SELECT a.id, a.submission_id, a.item, a.kind, a.label, a.annotator, a.round,
               a.created_at, a.answered_at, a.seconds, a.origin, a.external_id, a.note
        FROM annotations a
        WHERE a.kind != 'undo'
          AND NOT EXISTS (SELECT 1 FROM annotations u WHERE u.retracts = a.id)
          AND NOT EXISTS (
              SELECT 1 FROM annotations b
              WHERE b.item = a.item AND b.annotator = a.annotator AND b.id > a.id
                AND b.kind != 'undo'
                AND NOT EXISTS (SELECT 1 FROM annotations v WHERE v.retracts = b.id))""",
    ),
}

RESERVED_NAMES = ("expert", "import")
"""Names readers cannot take: the admin token's default name and the CSV / Label Studio
import's default annotator. The names ``serve --annotator`` used are reserved too
(:meth:`Ledger.claim_admin_name`)."""

ADMIN_NAMES_KEY = "admin_names"
REQUIRED_TABLES = (
    "meta", "classes", "items", "rounds", "scores", "queue", "annotations", "events"
)
