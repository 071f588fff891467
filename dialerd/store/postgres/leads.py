"""Lead rows outside a call: campaigns, the hopper, import, queries, list
recycling, callbacks and screening skips (the SQLite backend's
``leads.py``, in PostgreSQL's terms).

The hopper claims with one statement per kind (due callbacks first, then
fresh and retry leads): ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE
SKIP LOCKED LIMIT n) RETURNING``, so two daemons, or a daemon and an
import, never wait for each other's rows and never get the same lead. The
import copies a batch into a temporary table (``COPY``) and inserts from it
with ``ON CONFLICT (campaign, phone) DO NOTHING``: the dedup rule SQLite's
importer applies, and the file order kept in the ids.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from dialerd.core.commands import SkipLead
from dialerd.core.models import Lead
from dialerd.store.api import LeadRow, PhoneLead, StoredLead
from dialerd.store.postgres.base import PgBase, rowcount
from dialerd.store.rows import (
    ATTEMPT_COLS,
    LEAD_COLS,
    MANUAL_FIELDS,
    callback_fields,
    check_reset,
    due_lead,
    keeps_earlier_callback,
    stored_attempt,
    stored_lead,
)

#: due callbacks, earliest first, from the ``leads_callbacks`` partial index
#: ($1 campaign, $2 now, $3 ids never to return, $4 limit)
CLAIM_CALLBACKS_SQL = (
    "UPDATE leads SET held = TRUE, updated_at = $2 WHERE id IN ("
    " SELECT id FROM leads WHERE campaign = $1 AND NOT held AND status = 'retry'"
    " AND callback_at IS NOT NULL AND callback_at <= $2 AND id <> ALL($3::bigint[])"
    " ORDER BY callback_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) "
    "RETURNING id, phone, attempts, priority, timezone, fields, callback_agent, callback_until,"
    " callback_at"
)
#: the hopper's claim, from the ``leads_hopper`` partial index (same parameters)
CLAIM_HOPPER_SQL = (
    "UPDATE leads SET held = TRUE, updated_at = $2 WHERE id IN ("
    " SELECT id FROM leads WHERE campaign = $1 AND NOT held AND status IN ('new', 'retry')"
    " AND next_due_at <= $2 AND id <> ALL($3::bigint[])"
    " ORDER BY priority DESC, next_due_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) "
    "RETURNING id, phone, attempts, priority, timezone, fields, next_due_at"
)
#: one lead added unless the campaign has the phone already (an agent's
#: manual dial, an inbound caller's callback): $1 campaign, $2 phone,
#: $3 timezone, $4 fields, $5 next_due_at, $6 held, $7 now
ADD_LEAD_SQL = (
    "INSERT INTO leads (campaign, phone, priority, timezone, fields, status, "
    "attempts, next_due_at, held, created_at, updated_at) "
    "VALUES ($1, $2, 0, $3, $4, 'new', 0, $5, $6, $7, $7) ON CONFLICT (campaign, phone) DO NOTHING"
)
#: a customer-chosen callback: due at a time, ahead of fresh leads (shared
#: by ``set_callback`` and ``callback_for_phone``); never for a lead dialing
#: ($1 at, $2 agent, $3 until, $4 now, $5 lead id)
CALLBACK_SET_SQL = (
    "UPDATE leads SET status = 'retry', next_due_at = $1, callback_at = $1, "
    "callback_agent = $2, callback_until = $3, final_reason = NULL, updated_at = $4 "
    "WHERE id = $5 AND status <> 'dialing'"
)
#: the staging table a batch is copied into (dropped at commit)
_STAGE = "leads_import"


async def _own_lead(
    db: Any,
    campaign: str,
    phone: str,
    timezone: str | None,
    fields: str,
    due: float,
    held: bool,
    now: float,
) -> Any | None:
    """The campaign's lead for ``phone`` (added with these values if it has
    none), locked for the transaction: ``id, phone, attempts, priority,
    timezone, fields, status, callback_at``; None while it is dialing."""
    await db.execute(ADD_LEAD_SQL, campaign, phone, timezone, fields, due, held, now)
    r = await db.fetchrow(
        "SELECT id, phone, attempts, priority, timezone, fields, status, callback_at FROM leads "
        "WHERE campaign = $1 AND phone = $2 FOR UPDATE",
        campaign,
        phone,
    )
    return None if r is None or r[6] == "dialing" else r


class LeadsMixin(PgBase):
    """The lead rows: campaigns, the hopper, import, queries, recycling, skips."""

    async def ensure_campaign(self, name: str) -> None:
        await self._execute(
            "INSERT INTO campaigns (name, created_at) VALUES ($1, $2) "
            "ON CONFLICT (name) DO NOTHING",
            name,
            time.time(),
        )

    async def fetch_due_leads(
        self, campaign: str, now: float, limit: int, exclude: frozenset[int] = frozenset()
    ) -> list[Lead]:
        if limit <= 0:
            return []
        # RETURNING comes in no set order: sorted back into the claim's order
        async with self._tx() as db:
            cbs = sorted(
                await db.fetch(CLAIM_CALLBACKS_SQL, campaign, now, list(exclude), limit),
                key=lambda r: (r[8], r[0]),
            )
            leads = [due_lead(campaign, r, r[6], r[7], True) for r in cbs]
            if len(leads) < limit:
                more = sorted(
                    await db.fetch(
                        CLAIM_HOPPER_SQL, campaign, now, list(exclude), limit - len(leads)
                    ),
                    key=lambda r: (-r[3], r[6], r[0]),
                )
                leads += [due_lead(campaign, r) for r in more]
        return leads

    async def release_leads(self, lead_ids: list[int]) -> None:
        await self._execute(
            "UPDATE leads SET held = FALSE, updated_at = $1 WHERE id = ANY($2::bigint[]) AND held",
            time.time(),
            lead_ids,
        )

    async def release_all_held(self) -> int:
        return await self._execute(
            "UPDATE leads SET held = FALSE, updated_at = $1 WHERE held", time.time()
        )

    async def manual_lead(
        self, campaign: str, phone: str, timezone: str | None, now: float
    ) -> Lead | None:
        async with self._tx() as db:
            r = await _own_lead(db, campaign, phone, timezone, MANUAL_FIELDS, now, True, now)
            if r is None:
                return None
            await db.execute("UPDATE leads SET held = TRUE WHERE id = $1", r[0])
        return due_lead(campaign, r)

    async def insert_leads(self, campaign: str, rows: Sequence[LeadRow], now: float) -> int:
        """One batch in one transaction: COPY into a staging table, then one
        INSERT ... SELECT in file order; a phone already in the campaign (or
        earlier in the batch) is skipped. Returns how many were new."""
        if not rows:
            return 0
        async with self._tx() as db:
            await db.execute(
                f"CREATE TEMPORARY TABLE {_STAGE} (n INTEGER, phone TEXT, priority INTEGER,"
                " timezone TEXT, fields TEXT) ON COMMIT DROP"
            )
            await db.copy_records_to_table(_STAGE, records=[(i, *r) for i, r in enumerate(rows)])
            status = await db.execute(
                "INSERT INTO leads (campaign, phone, priority, timezone, fields, status, "
                "attempts, next_due_at, held, created_at, updated_at) "
                f"SELECT $1, phone, priority, timezone, fields, 'new', 0, $2, FALSE, $2, $2 "
                f"FROM {_STAGE} ORDER BY n ON CONFLICT (campaign, phone) DO NOTHING",
                campaign,
                now,
            )
            return rowcount(status)

    async def lead_counts(self, campaign: str) -> dict[str, int]:
        rows = await self._fetch(
            "SELECT status, COUNT(*) FROM leads WHERE campaign = $1 GROUP BY status", campaign
        )
        return {r[0]: int(r[1]) for r in rows}

    async def get_lead(self, lead_id: int) -> StoredLead | None:
        r = await self._fetchrow(f"SELECT {LEAD_COLS} FROM leads WHERE id = $1", lead_id)
        return stored_lead(r) if r is not None else None

    async def list_leads(self, campaign: str) -> list[StoredLead]:
        rows = await self._fetch(
            f"SELECT {LEAD_COLS} FROM leads WHERE campaign = $1 ORDER BY id", campaign
        )
        return [stored_lead(r) for r in rows]

    async def query_leads(
        self,
        campaign: str,
        status: Sequence[str] | None = None,
        limit: int | None = None,
        after_id: int = 0,
    ) -> list[StoredLead]:
        rows = await self._fetch(
            f"SELECT {LEAD_COLS} FROM leads WHERE campaign = $1 AND id > $2 "
            "AND ($3::text[] IS NULL OR status = ANY($3::text[])) ORDER BY id LIMIT $4",
            campaign,
            after_id,
            list(status) if status else None,
            limit,
        )
        return [stored_lead(r) for r in rows]

    async def campaign_names(self) -> list[str]:
        rows = await self._fetch("SELECT name FROM campaigns ORDER BY name")
        return [r[0] for r in rows]

    async def reset_leads(
        self,
        campaign: str,
        status: Sequence[str] = ("done",),
        reasons: Sequence[str] | None = None,
        now: float | None = None,
    ) -> tuple[int, int]:
        check_reset(status)
        at = time.time() if now is None else now
        where = (
            "campaign = $1 AND status = ANY($2::text[]) "
            "AND ($3::text[] IS NULL OR final_reason = ANY($3::text[]))"
        )
        params: list[Any] = [campaign, list(status), list(reasons) if reasons else None]
        async with self._tx() as db:
            held = await db.fetchval(f"SELECT COUNT(*) FROM leads WHERE {where} AND held", *params)
            status_tag = await db.execute(
                "UPDATE leads SET status = 'new', attempts = 0, next_due_at = $4, "
                "last_outcome = NULL, final_reason = NULL, updated_at = $4 "
                f"WHERE {where} AND NOT held",
                *params,
                at,
            )
            return rowcount(status_tag), int(held)

    async def set_callback(
        self, lead_id: int, at: float, agent: str | None = None, until: float | None = None
    ) -> bool:
        n = await self._execute(CALLBACK_SET_SQL, at, agent, until, time.time(), lead_id)
        return n == 1

    async def callback_for_phone(
        self, campaign: str, phone: str, at: float, now: float, fields: dict[str, Any]
    ) -> int | None:
        async with self._tx() as db:
            r = await _own_lead(db, campaign, phone, None, callback_fields(fields), at, False, now)
            if r is None:
                return None
            lead_id = int(r[0])
            if not keeps_earlier_callback(r[6], r[7], at):
                await db.execute(CALLBACK_SET_SQL, at, None, None, now, lead_id)
            return lead_id

    async def leads_for_phone(self, phone: str, limit: int) -> list[PhoneLead]:
        """A caller's leads in every campaign (the ``leads_phone`` index),
        most recently touched first, each with its last attempt (one
        statement: a lateral join)."""
        if limit <= 0:
            return []
        cols = ", ".join(f"l.{c.strip()}" for c in LEAD_COLS.split(","))
        acols = ", ".join(f"a.{c.strip()}" for c in ATTEMPT_COLS.split(","))
        rows = await self._fetch(
            f"SELECT {cols}, {acols} FROM (SELECT * FROM leads WHERE phone = $1 "
            "ORDER BY updated_at DESC, id DESC LIMIT $2) l "
            f"LEFT JOIN LATERAL (SELECT {ATTEMPT_COLS} FROM attempts "
            "WHERE lead_id = l.id ORDER BY started_at DESC LIMIT 1) a ON TRUE "
            "ORDER BY l.updated_at DESC, l.id DESC",
            phone,
            limit,
        )
        n = len(LEAD_COLS.split(","))
        return [
            PhoneLead(stored_lead(r[:n]), stored_attempt(r[n:]) if r[n] is not None else None)
            for r in rows
        ]

    async def recycle_leads(
        self, campaign: str, reasons: Sequence[str], finished_before: float, now: float
    ) -> int:
        if not reasons:
            return 0
        return await self._execute(
            "UPDATE leads SET status = 'new', attempts = 0, next_due_at = $1, "
            "last_outcome = NULL, final_reason = NULL, updated_at = $1 "
            "WHERE campaign = $2 AND status = 'done' AND NOT held AND updated_at < $3 "
            "AND final_reason = ANY($4::text[])",
            now,
            campaign,
            finished_before,
            list(reasons),
        )

    async def skip_lead(self, s: SkipLead) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO lead_skips (lead_id, campaign, at, reason, detail, retry_at) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                s.lead_id,
                s.campaign,
                s.at,
                s.reason,
                s.detail,
                s.retry_at,
            )
            if s.retry_at is None:
                await db.execute(
                    "UPDATE leads SET status = 'done', final_reason = $1, held = FALSE, "
                    "callback_at = NULL, updated_at = $2 "
                    "WHERE id = $3 AND status IN ('new', 'retry')",
                    s.reason,
                    s.at,
                    s.lead_id,
                )
            else:
                # a due callback keeps its place ahead of fresh leads
                await db.execute(
                    "UPDATE leads SET next_due_at = $1, held = FALSE, updated_at = $2, "
                    "callback_at = CASE WHEN callback_at IS NULL THEN NULL ELSE $1 END "
                    "WHERE id = $3 AND status IN ('new', 'retry')",
                    s.retry_at,
                    s.at,
                    s.lead_id,
                )

    async def lead_skips(self, campaign: str) -> list[tuple[int, float, str, str, float | None]]:
        rows = await self._fetch(
            "SELECT lead_id, at, reason, detail, retry_at FROM lead_skips "
            "WHERE campaign = $1 ORDER BY at, id",
            campaign,
        )
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]
