"""Reader accounts and their tokens, and the names no reader may take."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3

import pandas as pd

from labelrefine.campaign.ledger.checks import check_annotator
from labelrefine.campaign.ledger.core import LedgerCore
from labelrefine.campaign.ledger.records import CampaignError, Reader
from labelrefine.campaign.ledger.schema import ADMIN_NAMES_KEY, READER_ROLES, RESERVED_NAMES
from labelrefine.campaign.ledger.sql import insert_event, utc_now


def token_hash(token: str) -> str:
    """How reader tokens are stored: their SHA-256 (the token itself is shown once)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _admin_names(con: sqlite3.Connection) -> list[str]:
    row = con.execute("SELECT value FROM meta WHERE key = ?", (ADMIN_NAMES_KEY,)).fetchone()
    return [] if row is None else [str(n) for n in json.loads(row[0])]


def _reserved_names(con: sqlite3.Connection) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*RESERVED_NAMES, *_admin_names(con))))


class Identities(LedgerCore):
    """Reader accounts: names, roles, tokens (only their hashes are stored)."""

    def add_reader(self, name: str, *, role: str = "reader") -> str:
        """Create a reader account and return its token (shown once; only its hash is kept)."""
        name = check_annotator(name)
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
            insert_event(con, "reader_add", {"name": name, "role": role})
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
            insert_event(con, "reader_token", {"name": name, "reactivated": not row[0]})
        return token

    def claim_admin_name(self, name: str) -> str:
        """Reserve ``name`` for the admin token's answers (``serve --annotator``).

        Refused when a reader account has that name: the admin and the reader would share one
        identity (answers, undo). Once claimed, no reader can take it.
        """
        name = check_annotator(name)
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
                    (ADMIN_NAMES_KEY, text),
                )
                insert_event(con, "admin_name", {"name": name})
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
            insert_event(con, "reader_remove", {"name": name})

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
