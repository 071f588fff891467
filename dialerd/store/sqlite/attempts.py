"""The write-ahead attempt log: a call's row before the Originate, its one
outcome, the agent's disposition, and every read of the log.

Apart from the lead rows because this is what a restarted daemon and a
regulator read back: each write here changes the attempt and its lead in
one transaction, so the log and the leads never disagree about a call.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from dialerd.core.commands import (
    PlaceCall,
    RecordDisposition,
    RecordOutcome,
)
from dialerd.store.api import (
    LeadNotDialableError,
    OpenAttempt,
    StoredAttempt,
)
from dialerd.store.rows import (
    ATTEMPT_COLS,
    bounds,
    disposition_params,
    outcome_params,
    stored_attempt,
)
from dialerd.store.sqlite.base import SqliteBase


class AttemptsMixin(SqliteBase):
    """The attempt log: written ahead of each call, finished once, reported on."""

    async def begin_attempt(self, call: PlaceCall) -> None:
        """Raises :class:`LeadNotDialableError` (and writes nothing) if the
        lead is not new/retry: the second of two live calls never starts."""
        started = call.started_at or time.time()
        states = "status != 'dialing'" if call.manual else "status IN ('new', 'retry')"
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE leads SET status = 'dialing', held = 0, updated_at = ? "
                f"WHERE id = ? AND campaign = ? AND {states}",
                (started, call.lead_id, call.campaign),
            )
            if cur.rowcount != 1:
                raise LeadNotDialableError(
                    f"lead {call.lead_id} of {call.campaign!r} is not new/retry"
                )
            await db.execute(
                "INSERT INTO attempts (id, campaign, lead_id, phone, state, started_at) "
                "VALUES (?, ?, ?, ?, 'dialing', ?)",
                (call.attempt_id, call.campaign, call.lead_id, call.phone, started),
            )

    async def finish_attempt(self, rec: RecordOutcome) -> bool:
        """False (and nothing written) if the attempt is unknown or already
        finished: a replayed hangup or a reconciliation racing the live
        event must not count an outcome twice."""
        attempt, lead = outcome_params(rec)
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE attempts SET state = 'done', outcome = ?, answered_at = ?, "
                "connected_at = ?, ended_at = ?, agent_id = ?, cause = ?, detail = ? "
                "WHERE id = ? AND lead_id = ? AND state = 'dialing'",
                attempt,
            )
            if cur.rowcount != 1:
                return False
            await db.execute(
                "UPDATE leads SET status = ?, attempts = ?, "
                "next_due_at = COALESCE(?, next_due_at), last_outcome = ?, final_reason = ?, "
                "held = 0, callback_at = NULL, callback_agent = NULL, callback_until = NULL, "
                "updated_at = ? WHERE id = ?",
                lead,
            )
        return True

    async def record_disposition(self, d: RecordDisposition) -> bool:
        """The agent's disposition: on the attempt, the lead's new state
        (a callback gets its time, agent and grace), the DNC entry. Applies
        to a finished attempt only (the outcome is written first)."""
        lead, dnc = disposition_params(d)
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE attempts SET disposition = ? WHERE id = ? AND state = 'done'",
                (d.code, d.attempt_id),
            )
            if cur.rowcount != 1:
                return False
            await db.execute(
                "UPDATE leads SET status = ?, attempts = ?, next_due_at = COALESCE(?, next_due_at),"
                " final_reason = ?, callback_at = ?, callback_agent = ?, callback_until = ?,"
                " updated_at = ? WHERE id = ? AND status IN ('retry', 'done')",
                lead,
            )
            if dnc is not None:
                await db.execute(
                    "INSERT INTO dnc (campaign, phone, source, added_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    dnc,
                )
        return True

    async def attempts_since(self, lead_id: int, since: float) -> int:
        rows = await self._fetchall(
            "SELECT COUNT(*) FROM attempts WHERE lead_id = ? AND started_at >= ?",
            (lead_id, since),
        )
        return int(rows[0][0]) if rows else 0

    async def open_attempts(self) -> list[OpenAttempt]:
        rows = await self._fetchall(
            "SELECT id, campaign, lead_id, started_at FROM attempts "
            "WHERE state = 'dialing' ORDER BY started_at"
        )
        return [OpenAttempt(r[0], r[1], r[2], r[3]) for r in rows]

    async def recent_outcomes(self, since: float) -> list[tuple[str, str, str, float]]:
        """(campaign, phone, outcome, ended_at) of attempts ended since, in
        time order: seeds abandon accounting and the 72-hour lock."""
        rows = await self._fetchall(
            "SELECT campaign, phone, outcome, ended_at FROM attempts "
            "WHERE state = 'done' AND ended_at >= ? ORDER BY ended_at",
            (since,),
        )
        return [(r[0], r[1], r[2], float(r[3])) for r in rows]

    async def outcome_counts(self, campaign: str) -> dict[str, int]:
        rows = await self._fetchall(
            "SELECT outcome, COUNT(*) FROM attempts WHERE campaign = ? AND state = 'done' "
            "GROUP BY outcome",
            (campaign,),
        )
        return {r[0]: r[1] for r in rows}

    async def list_attempts(self, campaign: str | None = None) -> list[StoredAttempt]:
        if campaign is None:
            rows = await self._fetchall(f"SELECT {ATTEMPT_COLS} FROM attempts ORDER BY started_at")
        else:
            rows = await self._fetchall(
                f"SELECT {ATTEMPT_COLS} FROM attempts WHERE campaign = ? ORDER BY started_at",
                (campaign,),
            )
        return [stored_attempt(r) for r in rows]

    async def attempts_of_leads(self, lead_ids: Sequence[int]) -> list[StoredAttempt]:
        """Attempts of the given leads, by lead then start time (the export)."""
        out: list[StoredAttempt] = []
        for i in range(0, len(lead_ids), 500):
            chunk = list(lead_ids[i : i + 500])
            rows = await self._fetchall(
                f"SELECT {ATTEMPT_COLS} FROM attempts "
                f"WHERE lead_id IN ({', '.join('?' * len(chunk))}) ORDER BY lead_id, started_at",
                chunk,
            )
            out += [stored_attempt(r) for r in rows]
        return out

    async def report_attempts(
        self, campaign: str | None, since: float | None, until: float | None
    ) -> list[StoredAttempt]:
        """Finished and live attempts started in [since, until)."""
        sql = f"SELECT {ATTEMPT_COLS} FROM attempts WHERE started_at >= ? AND started_at < ?"
        params: list[Any] = list(bounds(since, until))
        if campaign is not None:
            sql += " AND campaign = ?"
            params.append(campaign)
        rows = await self._fetchall(sql + " ORDER BY started_at", params)
        return [stored_attempt(r) for r in rows]
