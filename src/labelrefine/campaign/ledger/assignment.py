"""Who reads what next: the open reading slots of the queue and the readers' leases on them."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Sequence

from labelrefine.campaign.ledger.checks import check_annotator, check_index
from labelrefine.campaign.ledger.identities import Identities
from labelrefine.campaign.ledger.sql import latest_round


def _insert_lease(
    con: sqlite3.Connection, item: int, annotator: str, round: int, expires: float
) -> None:
    con.execute(
        "INSERT OR REPLACE INTO leases(annotator, item, round, expires) VALUES (?, ?, ?, ?)",
        (annotator, int(item), int(round), float(expires)),
    )


def _stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by an item id (chooses the double-read share reproducibly)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class Assignment(Identities):
    """Hands out queued items to readers (double reading, leases) and counts progress."""

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
        annotator = check_annotator(annotator)
        share = self.double_read_share
        readers = self.n_active_readers()
        now = time.time()
        with self.transaction() as con:
            if round is None:
                round = latest_round(con)
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
        annotator = check_annotator(annotator)
        with self.transaction() as con:
            round = latest_round(con)
            if round is not None:
                expires = time.time() + lease_seconds
                _insert_lease(con, check_index(item), annotator, round, expires)

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
