"""The ledger's base: creating, opening and upgrading the file, its connections and transactions,
its settings and class names. Every other part of the ledger builds on :class:`LedgerCore`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import numpy as np

from labelrefine.campaign.ledger.checks import validate_classes, validate_items
from labelrefine.campaign.ledger.records import CampaignError, ItemRecord
from labelrefine.campaign.ledger.schema import (
    APPLICATION_ID,
    MIGRATIONS,
    REQUIRED_TABLES,
    SCHEMA_V1,
    SCHEMA_VERSION,
    SQLITE_SIDECARS,
)
from labelrefine.campaign.ledger.sql import insert_event, utc_now
from labelrefine.io import atomic_path


class LedgerCore:
    """Open, create and upgrade one campaign file; its connections, settings and classes.

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
    ) -> Self:
        """Write a new campaign file atomically (temp file + rename); refuse to overwrite one.

        Validates everything before writing: class names (unique, non-empty, not ``unsure``),
        item keys (unique), labels (in range), roles, and relative paths that stay inside the
        image root. On any error no file is left behind.
        """
        path = Path(path)
        if path.exists():
            raise CampaignError(f"{path} already exists; choose another --out or remove it")
        validate_classes(class_names)
        validate_items(items, len(class_names))
        with atomic_path(path, perms=None, sidecars=SQLITE_SIDECARS) as tmp:
            con = sqlite3.connect(tmp, isolation_level=None)
            try:
                con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                con.execute("PRAGMA foreign_keys = ON")
                con.executescript(SCHEMA_V1)
                con.execute("BEGIN")
                for version in sorted(MIGRATIONS):
                    for stmt in MIGRATIONS[version]:
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
                insert_event(
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
            missing = [t for t in REQUIRED_TABLES if t not in tables]
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
                for stmt in MIGRATIONS[version]:
                    con.execute(stmt)
            con.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
            )
            if start != version:
                insert_event(con, "migrate", {"from": start, "to": version})

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
            insert_event(con, "meta", {"key": key, "value": text})
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

    def current_round(self) -> int | None:
        """The latest finished round (whose queue is being answered), or None before step 1."""
        with self.connect() as con:
            row = con.execute("SELECT MAX(round) FROM rounds").fetchone()
        return None if row[0] is None else int(row[0])
