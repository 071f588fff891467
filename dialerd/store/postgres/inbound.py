"""The inbound call log (the SQLite backend's ``inbound.py``, in
PostgreSQL's terms): one row per caller, written once, read by reports."""

from __future__ import annotations

from dialerd.core.commands import RecordInbound
from dialerd.store.api import StoredInbound
from dialerd.store.postgres.base import PgBase
from dialerd.store.rows import (
    INBOUND_COLS,
    INBOUND_READ_COLS,
    bounds,
    inbound_params,
    stored_inbound,
)


class InboundMixin(PgBase):
    """``inbound_calls``: written once per caller, read by reports."""

    async def record_inbound(self, c: RecordInbound, sl_within_s: int | None = None) -> bool:
        n = await self._execute(
            f"INSERT INTO inbound_calls ({INBOUND_COLS}) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) "
            "ON CONFLICT (call_id) DO NOTHING",
            *inbound_params(c, sl_within_s),
        )
        return n == 1

    async def dispose_inbound(self, call_id: str, code: str, at: float) -> bool:
        n = await self._execute(
            "UPDATE inbound_calls SET disposition = $1, disposed_at = $2 WHERE call_id = $3",
            code,
            at,
            call_id,
        )
        return n == 1

    async def inbound_calls(
        self, since: float | None = None, until: float | None = None
    ) -> list[StoredInbound]:
        rows = await self._fetch(
            f"SELECT {INBOUND_READ_COLS} FROM inbound_calls "
            "WHERE arrived_at >= $1 AND arrived_at < $2 ORDER BY arrived_at, call_id",
            *bounds(since, until),
        )
        return [stored_inbound(r) for r in rows]
