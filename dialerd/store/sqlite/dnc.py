"""The do-not-call lists, global and per campaign.

Apart because the daemon polls them on their own (``dnc_stamp``) and the
CLI edits them without touching leads or attempts; a disposition's DNC
entry is written with its attempt, in ``attempts.py``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from dialerd.store.rows import dnc_entry, dnc_list, dnc_stamp
from dialerd.store.sqlite.base import SqliteBase


class DncMixin(SqliteBase):
    """The DNC lists: the global one (campaign ``''``) and each campaign's."""

    async def dnc_entries(self) -> list[tuple[str | None, str, str]]:
        """Every DNC entry: (campaign or None for the global list, E.164, source)."""
        rows = await self._fetchall("SELECT campaign, phone, source FROM dnc ORDER BY rowid")
        return [dnc_entry(r) for r in rows]

    async def dnc_add(
        self, numbers: Sequence[str], campaign: str | None, source: str, now: float | None = None
    ) -> int:
        at = time.time() if now is None else now
        async with self._tx() as db:
            cur = await db.executemany(
                "INSERT INTO dnc (campaign, phone, source, added_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [(dnc_list(campaign), n, source, at) for n in numbers],
            )
            return cur.rowcount

    async def dnc_remove(self, numbers: Sequence[str], campaign: str | None) -> int:
        async with self._tx() as db:
            cur = await db.executemany(
                "DELETE FROM dnc WHERE campaign = ? AND phone = ?",
                [(dnc_list(campaign), n) for n in numbers],
            )
            return cur.rowcount

    async def dnc_stamp(self) -> tuple[float, ...]:
        """Cheap change detection for the daemon: (count, latest added_at,
        sum of rowids, sum of added_at). An addition raises the count; a
        removal lowers it; a removal and an addition between two polls
        leave the count but move the sums (the new row has another rowid,
        or, reusing the removed one, another added_at), even when the
        addition is dated before the latest entry."""
        rows = await self._fetchall(
            "SELECT COUNT(*), COALESCE(MAX(added_at), 0), COALESCE(SUM(rowid), 0), "
            "TOTAL(added_at) FROM dnc"
        )
        return dnc_stamp(rows[0] if rows else None)
