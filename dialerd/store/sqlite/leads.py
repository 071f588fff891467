"""Lead rows outside a call: campaigns, the hopper, import, queries,
list recycling, callbacks and screening skips.

Apart from the attempt log because these writes own a lead between calls
(claim it for the hopper, postpone it, put it back to ``new``), while
``attempts.py`` changes a lead only in the transaction that records one of
its calls (the start, the outcome, the disposition). The hopper's two
SELECTs live here, beside the partial indexes they must be served by (in
``migrations.py``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import aiosqlite

from dialerd.core.commands import SkipLead
from dialerd.core.models import Lead
from dialerd.store.api import LeadRow, PhoneLead, StoredLead
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
from dialerd.store.sqlite.base import SqliteBase

#: the hopper's SELECT; it must be served by the ``leads_hopper`` partial index
#: (its WHERE repeats the index's condition verbatim so SQLite can use it)
HOPPER_SQL = (
    "SELECT id, phone, attempts, priority, timezone, fields FROM leads "
    "WHERE campaign = ? AND held = 0 AND status IN ('new', 'retry') "
    "AND next_due_at <= ? ORDER BY priority DESC, next_due_at LIMIT ?"
)
#: due callbacks first, from the ``leads_callbacks`` partial index
CALLBACK_SQL = (
    "SELECT id, phone, attempts, priority, timezone, fields, callback_agent, callback_until "
    "FROM leads WHERE campaign = ? AND held = 0 AND status = 'retry' "
    "AND callback_at IS NOT NULL AND callback_at <= ? ORDER BY callback_at LIMIT ?"
)

#: one lead added unless the campaign has the phone already (an agent's
#: manual dial, an inbound caller's callback): (campaign, phone, timezone,
#: fields, next_due_at, held, created_at, updated_at)
ADD_LEAD_SQL = (
    "INSERT INTO leads (campaign, phone, priority, timezone, fields, status, "
    "attempts, next_due_at, held, created_at, updated_at) "
    "VALUES (?, ?, 0, ?, ?, 'new', 0, ?, ?, ?, ?) ON CONFLICT (campaign, phone) DO NOTHING"
)
#: a customer-chosen callback: due at a time, ahead of fresh leads (shared
#: by ``set_callback`` and ``callback_for_phone``); never for a lead dialing
CALLBACK_SET_SQL = (
    "UPDATE leads SET status = 'retry', next_due_at = ?, callback_at = ?, "
    "callback_agent = ?, callback_until = ?, final_reason = NULL, updated_at = ? "
    "WHERE id = ? AND status != 'dialing'"
)


async def _own_lead(
    db: aiosqlite.Connection,
    campaign: str,
    phone: str,
    timezone: str | None,
    fields: str,
    due: float,
    held: int,
    now: float,
) -> Any | None:
    """The campaign's lead for ``phone`` (added with these values if it has
    none), in the caller's write transaction: ``id, phone, attempts,
    priority, timezone, fields, status, callback_at``; None while it is
    dialing."""
    await db.execute(ADD_LEAD_SQL, (campaign, phone, timezone, fields, due, held, now, now))
    async with db.execute(
        "SELECT id, phone, attempts, priority, timezone, fields, status, callback_at FROM leads "
        "WHERE campaign = ? AND phone = ?",
        (campaign, phone),
    ) as cur:
        r = await cur.fetchone()
    return None if r is None or r[6] == "dialing" else r


class LeadsMixin(SqliteBase):
    """The lead rows: campaigns, the hopper, import, queries, recycling, skips."""

    async def ensure_campaign(self, name: str) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO campaigns (name, created_at) VALUES (?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                (name, time.time()),
            )

    async def fetch_due_leads(
        self, campaign: str, now: float, limit: int, exclude: frozenset[int] = frozenset()
    ) -> list[Lead]:
        if limit <= 0:
            return []
        # exclude is a safety net on top of ``held``; filtered here rather than
        # with a variable-length NOT IN, so the statement (and plan) stays fixed
        async with self._tx() as db:
            async with db.execute(CALLBACK_SQL, (campaign, now, limit + len(exclude))) as cur:
                cbs = [r for r in await cur.fetchall() if r[0] not in exclude][:limit]
            rows: list[Any] = [(*r, True) for r in cbs]
            if len(rows) < limit:
                seen = {r[0] for r in rows}
                async with db.execute(
                    HOPPER_SQL, (campaign, now, limit + len(exclude) + len(rows))
                ) as cur:
                    more = [
                        r for r in await cur.fetchall() if r[0] not in exclude and r[0] not in seen
                    ]
                rows += [(*r, None, None, False) for r in more[: limit - len(rows)]]
            await db.executemany(
                "UPDATE leads SET held = 1, updated_at = ? WHERE id = ?",
                [(now, r[0]) for r in rows],
            )
        return [due_lead(campaign, r, r[6], r[7], r[8]) for r in rows]

    async def release_leads(self, lead_ids: list[int]) -> None:
        now = time.time()
        async with self._tx() as db:
            await db.executemany(
                "UPDATE leads SET held = 0, updated_at = ? WHERE id = ? AND held = 1",
                [(now, i) for i in lead_ids],
            )

    async def release_all_held(self) -> int:
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE leads SET held = 0, updated_at = ? WHERE held = 1", (time.time(),)
            )
            return cur.rowcount

    async def manual_lead(
        self, campaign: str, phone: str, timezone: str | None, now: float
    ) -> Lead | None:
        """The lead for a number an agent keyed: the campaign's own if it has
        one, else a new one (fields ``{"source": "manual"}``), held so the
        hopper leaves it alone. None if it is in a call right now."""
        async with self._tx() as db:
            r = await _own_lead(db, campaign, phone, timezone, MANUAL_FIELDS, now, 1, now)
            if r is None:
                return None
            await db.execute("UPDATE leads SET held = 1 WHERE id = ?", (r[0],))
        return due_lead(campaign, r)

    #: page cache (KiB) a big batch raises the connection's to. Leads go in
    #: file order, so their (campaign, phone) index grows at random places:
    #: with SQLite's default 2 MB cache, a million-lead import re-read and
    #: re-wrote its ~40 MB of index pages over and over (the insert took
    #: twice as long). The cache only grows as pages are used.
    BULK_CACHE_KIB = 65_536

    async def insert_leads(self, campaign: str, rows: Sequence[LeadRow], now: float) -> int:
        """One batch in one transaction; returns how many were new. A phone
        already in the campaign is skipped (``ON CONFLICT DO NOTHING``), so
        the difference is the duplicates, and re-running an import is safe."""
        if not rows:
            return 0
        async with self._tx() as db:
            if len(rows) >= 1000:
                await db.execute(f"PRAGMA cache_size = -{self.BULK_CACHE_KIB}")
            cur = await db.executemany(
                "INSERT INTO leads (campaign, phone, priority, timezone, fields, status, "
                "attempts, next_due_at, held, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, 'new', 0, ?, 0, ?, ?) "
                "ON CONFLICT (campaign, phone) DO NOTHING",
                [(campaign, p, pr, tz, f, now, now, now) for (p, pr, tz, f) in rows],
            )
            return cur.rowcount

    async def lead_counts(self, campaign: str) -> dict[str, int]:
        rows = await self._fetchall(
            "SELECT status, COUNT(*) FROM leads WHERE campaign = ? GROUP BY status", (campaign,)
        )
        return {r[0]: r[1] for r in rows}

    async def get_lead(self, lead_id: int) -> StoredLead | None:
        rows = await self._fetchall(f"SELECT {LEAD_COLS} FROM leads WHERE id = ?", (lead_id,))
        return stored_lead(rows[0]) if rows else None

    async def list_leads(self, campaign: str) -> list[StoredLead]:
        rows = await self._fetchall(
            f"SELECT {LEAD_COLS} FROM leads WHERE campaign = ? ORDER BY id", (campaign,)
        )
        return [stored_lead(r) for r in rows]

    async def query_leads(
        self,
        campaign: str,
        status: Sequence[str] | None = None,
        limit: int | None = None,
        after_id: int = 0,
    ) -> list[StoredLead]:
        """Leads of a campaign in id order, optionally of some statuses;
        ``after_id`` pages through a large campaign."""
        sql = f"SELECT {LEAD_COLS} FROM leads WHERE campaign = ? AND id > ?"
        params: list[Any] = [campaign, after_id]
        if status:
            sql += f" AND status IN ({', '.join('?' * len(status))})"
            params += list(status)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [stored_lead(r) for r in await self._fetchall(sql, params)]

    async def campaign_names(self) -> list[str]:
        rows = await self._fetchall("SELECT name FROM campaigns ORDER BY name")
        return [r[0] for r in rows]

    async def reset_leads(
        self,
        campaign: str,
        status: Sequence[str] = ("done",),
        reasons: Sequence[str] | None = None,
        now: float | None = None,
    ) -> tuple[int, int]:
        """List recycling: finished (or retry) leads go back to ``new`` with
        no attempts, due now. Leads ``dialing`` are refused, and so are leads
        a running daemon holds in its hopper. Returns (reset, held_skipped).
        ``reasons`` filters on ``final_reason`` (e.g. ``max_attempts_busy``).
        The attempt log is never touched."""
        check_reset(status)
        at = time.time() if now is None else now
        where = f"campaign = ? AND status IN ({', '.join('?' * len(status))})"
        params: list[Any] = [campaign, *status]
        if reasons:
            where += f" AND final_reason IN ({', '.join('?' * len(reasons))})"
            params += list(reasons)
        async with self._tx() as db:
            async with db.execute(
                f"SELECT COUNT(*) FROM leads WHERE {where} AND held = 1", params
            ) as cur:
                row = await cur.fetchone()
            held = int(row[0]) if row else 0
            cur2 = await db.execute(
                "UPDATE leads SET status = 'new', attempts = 0, next_due_at = ?, "
                "last_outcome = NULL, final_reason = NULL, updated_at = ? "
                f"WHERE {where} AND held = 0",
                [at, at, *params],
            )
            return cur2.rowcount, held

    async def set_callback(
        self, lead_id: int, at: float, agent: str | None = None, until: float | None = None
    ) -> bool:
        """A customer-chosen callback (``dialerd leads callback``): due at
        ``at``, before fresh leads; ``agent`` takes it until ``until``."""
        async with self._tx() as db:
            cur = await db.execute(CALLBACK_SET_SQL, (at, at, agent, until, time.time(), lead_id))
            return cur.rowcount == 1

    async def callback_for_phone(
        self, campaign: str, phone: str, at: float, now: float, fields: dict[str, Any]
    ) -> int | None:
        """An inbound caller pressed 1: their lead in ``campaign`` (new if
        none) is a callback due at ``at``, or earlier if it already was."""
        async with self._tx() as db:
            r = await _own_lead(db, campaign, phone, None, callback_fields(fields), at, 0, now)
            if r is None:
                return None
            lead_id = int(r[0])
            if keeps_earlier_callback(r[6], r[7], at):
                return lead_id
            await db.execute(CALLBACK_SET_SQL, (at, at, None, None, now, lead_id))
            return lead_id

    async def leads_for_phone(self, phone: str, limit: int) -> list[PhoneLead]:
        """A caller's leads in every campaign (the ``leads_phone`` index),
        most recently touched first, each with its last attempt."""
        if limit <= 0:
            return []
        rows = await self._fetchall(
            f"SELECT {LEAD_COLS} FROM leads WHERE phone = ? ORDER BY updated_at DESC, id DESC "
            "LIMIT ?",
            (phone, limit),
        )
        out: list[PhoneLead] = []
        for r in rows:
            last = await self._fetchall(
                f"SELECT {ATTEMPT_COLS} FROM attempts "
                "WHERE lead_id = ? ORDER BY started_at DESC LIMIT 1",
                (r[0],),
            )
            out.append(PhoneLead(stored_lead(r), stored_attempt(last[0]) if last else None))
        return out

    async def recycle_leads(
        self, campaign: str, reasons: Sequence[str], finished_before: float, now: float
    ) -> int:
        """List recycling by the campaign's rule: leads finished for one of
        ``reasons`` before ``finished_before`` go back to new (attempts 0).
        The hopper's screening still stops a number on a DNC list since."""
        if not reasons:
            return 0
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE leads SET status = 'new', attempts = 0, next_due_at = ?, "
                "last_outcome = NULL, final_reason = NULL, updated_at = ? "
                f"WHERE campaign = ? AND status = 'done' AND held = 0 AND updated_at < ? "
                f"AND final_reason IN ({', '.join('?' * len(reasons))})",
                [now, now, campaign, finished_before, *reasons],
            )
            return cur.rowcount

    async def skip_lead(self, s: SkipLead) -> None:
        """Record why the screening did not dial a lead, and postpone it to
        ``retry_at`` (or finish it with the reason when None)."""
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO lead_skips (lead_id, campaign, at, reason, detail, retry_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (s.lead_id, s.campaign, s.at, s.reason, s.detail, s.retry_at),
            )
            if s.retry_at is None:
                await db.execute(
                    "UPDATE leads SET status = 'done', final_reason = ?, held = 0, "
                    "callback_at = NULL, updated_at = ? "
                    "WHERE id = ? AND status IN ('new', 'retry')",
                    (s.reason, s.at, s.lead_id),
                )
            else:
                # a due callback keeps its place ahead of fresh leads
                await db.execute(
                    "UPDATE leads SET next_due_at = ?, held = 0, updated_at = ?, "
                    "callback_at = CASE WHEN callback_at IS NULL THEN NULL ELSE ? END "
                    "WHERE id = ? AND status IN ('new', 'retry')",
                    (s.retry_at, s.at, s.retry_at, s.lead_id),
                )

    async def lead_skips(self, campaign: str) -> list[tuple[int, float, str, str, float | None]]:
        """(lead_id, at, reason, detail, retry_at) of a campaign, in time order."""
        rows = await self._fetchall(
            "SELECT lead_id, at, reason, detail, retry_at FROM lead_skips "
            "WHERE campaign = ? ORDER BY at, id",
            (campaign,),
        )
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]
