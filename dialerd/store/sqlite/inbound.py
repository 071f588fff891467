"""The inbound call log: one row per caller, whatever became of them.

Apart from the outbound attempt log because an inbound call has no lead and
no write-ahead: the core writes its one row when the call ends (answered,
abandoned, sent to a fallback, refused for an unknown DID). Reports read
``inbound_calls`` directly; its columns are listed in ``migrations.py``.
"""

from __future__ import annotations

from typing import Any

from dialerd.core.commands import RecordInbound
from dialerd.store.api import StoredInbound
from dialerd.store.rows import INBOUND_COLS, INBOUND_READ_COLS, inbound_params, stored_inbound
from dialerd.store.sqlite.base import SqliteBase


class InboundMixin(SqliteBase):
    """``inbound_calls``: written once per caller, read by reports."""

    async def record_inbound(self, c: RecordInbound, sl_within_s: int | None = None) -> bool:
        async with self._tx() as db:
            cur = await db.execute(
                f"INSERT INTO inbound_calls ({INBOUND_COLS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (call_id) DO NOTHING",
                inbound_params(c, sl_within_s),
            )
            return cur.rowcount == 1

    async def dispose_inbound(self, call_id: str, code: str, at: float) -> bool:
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE inbound_calls SET disposition = ?, disposed_at = ? WHERE call_id = ?",
                (code, at, call_id),
            )
            return cur.rowcount == 1

    async def inbound_calls(
        self, since: float | None = None, until: float | None = None
    ) -> list[StoredInbound]:
        sql = f"SELECT {INBOUND_READ_COLS} FROM inbound_calls WHERE 1 = 1"
        params: list[Any] = []
        if since is not None:
            sql += " AND arrived_at >= ?"
            params.append(since)
        if until is not None:
            sql += " AND arrived_at < ?"
            params.append(until)
        rows = await self._fetchall(sql + " ORDER BY arrived_at, call_id", params)
        return [stored_inbound(r) for r in rows]
