"""The do-not-call lists, global (campaign ``''``) and per campaign (the
SQLite backend's ``dnc.py``, in PostgreSQL's terms: ``seq`` is its rowid)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from dialerd.store.postgres.base import PgBase
from dialerd.store.rows import dnc_entry, dnc_list, dnc_stamp


class DncMixin(PgBase):
    """The DNC lists: the global one (campaign ``''``) and each campaign's."""

    async def dnc_entries(self) -> list[tuple[str | None, str, str]]:
        rows = await self._fetch("SELECT campaign, phone, source FROM dnc ORDER BY seq")
        return [dnc_entry(r) for r in rows]

    async def dnc_add(
        self, numbers: Sequence[str], campaign: str | None, source: str, now: float | None = None
    ) -> int:
        # in the given order (seq keeps it); a number twice in one call is
        # one entry, as SQLite's row-by-row insert makes it
        return await self._execute(
            "INSERT INTO dnc (campaign, phone, source, added_at) "
            "SELECT $1, n, $2, $3 FROM unnest($4::text[]) WITH ORDINALITY AS u(n, i) "
            "ORDER BY i ON CONFLICT DO NOTHING",
            dnc_list(campaign),
            source,
            time.time() if now is None else now,
            list(numbers),
        )

    async def dnc_remove(self, numbers: Sequence[str], campaign: str | None) -> int:
        return await self._execute(
            "DELETE FROM dnc WHERE campaign = $1 AND phone = ANY($2::text[])",
            dnc_list(campaign),
            list(numbers),
        )

    async def dnc_stamp(self) -> tuple[float, ...]:
        """(count, latest added_at, sum of seq, sum of added_at): see the
        SQLite backend's; ``seq`` is never reused, so a removal and an
        addition between two polls always move the third."""
        return dnc_stamp(
            await self._fetchrow(
                "SELECT COUNT(*), COALESCE(MAX(added_at), 0), COALESCE(SUM(seq), 0), "
                "COALESCE(SUM(added_at), 0) FROM dnc"
            )
        )
