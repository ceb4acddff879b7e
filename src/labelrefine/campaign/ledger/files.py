"""Operations on the campaign file itself: online backup, image-folder relocation, the event log."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from labelrefine.campaign.ledger.core import LedgerCore
from labelrefine.campaign.ledger.records import CampaignError
from labelrefine.campaign.ledger.schema import SQLITE_SIDECARS
from labelrefine.campaign.ledger.sql import insert_event
from labelrefine.io import atomic_path


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Files(LedgerCore):
    """Backup, relocation and the append-only event log."""

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
        with atomic_path(out, perms=None, sidecars=SQLITE_SIDECARS) as tmp:
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
            insert_event(
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
            insert_event(con, kind, payload)

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
