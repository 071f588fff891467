"""The write-ahead attempt log (the SQLite backend's ``attempts.py``, in
PostgreSQL's terms): a call's row before the Originate, its one outcome,
the agent's disposition, and every read of the log. Each write changes the
attempt and its lead in one transaction."""

from __future__ import annotations

import time
from collections.abc import Sequence

from dialerd.core.commands import PlaceCall, RecordDisposition, RecordOutcome
from dialerd.store.api import LeadNotDialableError, OpenAttempt, StoredAttempt
from dialerd.store.postgres.base import PgBase, rowcount
from dialerd.store.rows import (
    ATTEMPT_COLS,
    bounds,
    disposition_params,
    outcome_params,
    stored_attempt,
)


class AttemptsMixin(PgBase):
    """The attempt log: written ahead of each call, finished once, reported on."""

    async def begin_attempt(self, call: PlaceCall) -> None:
        started = call.started_at or time.time()
        states = "status <> 'dialing'" if call.manual else "status IN ('new', 'retry')"
        async with self._tx() as db:
            tag = await db.execute(
                "UPDATE leads SET status = 'dialing', held = FALSE, updated_at = $1 "
                f"WHERE id = $2 AND campaign = $3 AND {states}",
                started,
                call.lead_id,
                call.campaign,
            )
            if rowcount(tag) != 1:
                raise LeadNotDialableError(
                    f"lead {call.lead_id} of {call.campaign!r} is not new/retry"
                )
            await db.execute(
                "INSERT INTO attempts (id, campaign, lead_id, phone, state, started_at) "
                "VALUES ($1, $2, $3, $4, 'dialing', $5)",
                call.attempt_id,
                call.campaign,
                call.lead_id,
                call.phone,
                started,
            )

    async def finish_attempt(self, rec: RecordOutcome) -> bool:
        attempt, lead = outcome_params(rec)
        async with self._tx() as db:
            tag = await db.execute(
                "UPDATE attempts SET state = 'done', outcome = $1, answered_at = $2, "
                "connected_at = $3, ended_at = $4, agent_id = $5, cause = $6, detail = $7 "
                "WHERE id = $8 AND lead_id = $9 AND state = 'dialing'",
                *attempt,
            )
            if rowcount(tag) != 1:
                return False
            await db.execute(
                "UPDATE leads SET status = $1, attempts = $2, "
                "next_due_at = COALESCE($3, next_due_at), last_outcome = $4, final_reason = $5, "
                "held = FALSE, callback_at = NULL, callback_agent = NULL, callback_until = NULL, "
                "updated_at = $6 WHERE id = $7",
                *lead,
            )
        return True

    async def record_disposition(self, d: RecordDisposition) -> bool:
        lead, dnc = disposition_params(d)
        async with self._tx() as db:
            tag = await db.execute(
                "UPDATE attempts SET disposition = $1 WHERE id = $2 AND state = 'done'",
                d.code,
                d.attempt_id,
            )
            if rowcount(tag) != 1:
                return False
            await db.execute(
                "UPDATE leads SET status = $1, attempts = $2, "
                "next_due_at = COALESCE($3, next_due_at), final_reason = $4, callback_at = $5, "
                "callback_agent = $6, callback_until = $7, updated_at = $8 "
                "WHERE id = $9 AND status IN ('retry', 'done')",
                *lead,
            )
            if dnc is not None:
                await db.execute(
                    "INSERT INTO dnc (campaign, phone, source, added_at) "
                    "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    *dnc,
                )
        return True

    async def attempts_since(self, lead_id: int, since: float) -> int:
        r = await self._fetchrow(
            "SELECT COUNT(*) FROM attempts WHERE lead_id = $1 AND started_at >= $2",
            lead_id,
            since,
        )
        return int(r[0]) if r else 0

    async def open_attempts(self) -> list[OpenAttempt]:
        rows = await self._fetch(
            "SELECT id, campaign, lead_id, started_at FROM attempts "
            "WHERE state = 'dialing' ORDER BY started_at"
        )
        return [OpenAttempt(r[0], r[1], r[2], r[3]) for r in rows]

    async def recent_outcomes(self, since: float) -> list[tuple[str, str, str, float]]:
        rows = await self._fetch(
            "SELECT campaign, phone, outcome, ended_at FROM attempts "
            "WHERE state = 'done' AND ended_at >= $1 ORDER BY ended_at",
            since,
        )
        return [(r[0], r[1], r[2], float(r[3])) for r in rows]

    async def outcome_counts(self, campaign: str) -> dict[str, int]:
        rows = await self._fetch(
            "SELECT outcome, COUNT(*) FROM attempts WHERE campaign = $1 AND state = 'done' "
            "GROUP BY outcome",
            campaign,
        )
        return {r[0]: int(r[1]) for r in rows}

    async def list_attempts(self, campaign: str | None = None) -> list[StoredAttempt]:
        rows = await self._fetch(
            f"SELECT {ATTEMPT_COLS} FROM attempts WHERE ($1::text IS NULL OR campaign = $1) "
            "ORDER BY started_at",
            campaign,
        )
        return [stored_attempt(r) for r in rows]

    async def attempts_of_leads(self, lead_ids: Sequence[int]) -> list[StoredAttempt]:
        out: list[StoredAttempt] = []
        for i in range(0, len(lead_ids), 500):
            rows = await self._fetch(
                f"SELECT {ATTEMPT_COLS} FROM attempts WHERE lead_id = ANY($1::bigint[]) "
                "ORDER BY lead_id, started_at",
                list(lead_ids[i : i + 500]),
            )
            out += [stored_attempt(r) for r in rows]
        return out

    async def report_attempts(
        self, campaign: str | None, since: float | None, until: float | None
    ) -> list[StoredAttempt]:
        rows = await self._fetch(
            f"SELECT {ATTEMPT_COLS} FROM attempts WHERE started_at >= $1 AND started_at < $2 "
            "AND ($3::text IS NULL OR campaign = $3) ORDER BY started_at",
            *bounds(since, until),
            campaign,
        )
        return [stored_attempt(r) for r in rows]
