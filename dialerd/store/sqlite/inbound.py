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
from dialerd.store.sqlite.base import SqliteBase

_INBOUND_COLS = (
    "call_id, queue, did, caller, arrived_at, ended_at, outcome, wait_s, answered_at, "
    "agent_id, fallback, callback_campaign, cause, sl_within_s"
)


class InboundMixin(SqliteBase):
    """``inbound_calls``: written once per caller, read by reports."""

    async def record_inbound(self, c: RecordInbound, sl_within_s: int | None = None) -> bool:
        async with self._tx() as db:
            cur = await db.execute(
                f"INSERT INTO inbound_calls ({_INBOUND_COLS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (call_id) DO NOTHING",
                (
                    c.call_id,
                    c.queue,
                    c.did,
                    c.caller,
                    c.arrived_at,
                    c.ended_at,
                    c.outcome.value,
                    c.wait_s,
                    c.answered_at,
                    c.agent_id,
                    c.fallback,
                    c.callback_campaign,
                    c.cause,
                    sl_within_s,
                ),
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
        sql = f"SELECT {_INBOUND_COLS}, disposition FROM inbound_calls WHERE 1 = 1"
        params: list[Any] = []
        if since is not None:
            sql += " AND arrived_at >= ?"
            params.append(since)
        if until is not None:
            sql += " AND arrived_at < ?"
            params.append(until)
        rows = await self._fetchall(sql + " ORDER BY arrived_at, call_id", params)
        return [StoredInbound(*r) for r in rows]
