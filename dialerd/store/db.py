"""The SQLite store: leads, the hopper, the write-ahead attempt log.

One aiosqlite connection in autocommit mode with explicit transactions, and
an asyncio lock around every use of it: aiosqlite runs statements one by
one on its thread, so without the lock two coroutines' statements would
interleave inside each other's ``BEGIN ... COMMIT``.

WAL with ``synchronous=NORMAL``: a commit survives a crash of the daemon
(what write-ahead needs: a restarted daemon must know which calls were
live), though not necessarily a power cut; the speed is worth it here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite

from dialerd.core.commands import (
    AgentAction,
    PlaceCall,
    RecordDisposition,
    RecordOutcome,
    SkipLead,
)
from dialerd.core.models import Lead, LeadStatus

# the contract's records and errors, importable from here as before
from dialerd.store.api import LeadNotDialableError as LeadNotDialableError
from dialerd.store.api import LeadRow as LeadRow
from dialerd.store.api import OpenAttempt, StoreApi
from dialerd.store.api import StoredAttempt as StoredAttempt
from dialerd.store.api import StoredLead as StoredLead
from dialerd.store.api import StoreError as StoreError
from dialerd.store.migrations import upgrade_table

BUSY_TIMEOUT_MS = 5000

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

_LEAD_COLS = (
    "id, campaign, phone, priority, timezone, fields, status, attempts, next_due_at, held, "
    "last_outcome, final_reason"
)
_ATTEMPT_COLS = (
    "id, campaign, lead_id, phone, state, outcome, started_at, answered_at, connected_at, "
    "ended_at, agent_id, cause, detail, disposition"
)


def _due_lead(
    campaign: str,
    r: Sequence[Any],
    callback_agent: str | None = None,
    callback_until: float | None = None,
    callback: bool = False,
) -> Lead:
    """A lead for the core from a row that starts ``id, phone, attempts,
    priority, timezone, fields`` (HOPPER_SQL, CALLBACK_SQL, manual_lead)."""
    return Lead(
        id=r[0],
        campaign=campaign,
        phone=r[1],
        attempts=r[2],
        priority=r[3],
        timezone=r[4],
        fields=json.loads(r[5]),
        callback_agent=callback_agent,
        callback_until=callback_until,
        callback=callback,
    )


def _stored_lead(r: Sequence[Any]) -> StoredLead:
    return StoredLead(
        id=r[0],
        campaign=r[1],
        phone=r[2],
        priority=r[3],
        timezone=r[4],
        fields=json.loads(r[5]),
        status=LeadStatus(r[6]),
        attempts=r[7],
        next_due_at=r[8],
        held=bool(r[9]),
        last_outcome=r[10],
        final_reason=r[11],
    )


class Store:
    """Implements :class:`dialerd.store.api.StoreApi`; also the importer's
    bulk insert and the read-only queries of reports and tests."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | Path) -> Store:
        pending = aiosqlite.connect(str(path), isolation_level=None)
        try:
            conn = await pending
        except BaseException:
            # aiosqlite stops its worker thread without waiting for it: wait
            # here, while the loop runs, or the thread's last message meets a
            # closed loop and prints a traceback over the real error
            thread = getattr(pending, "_thread", None)
            if thread is not None:
                await asyncio.to_thread(thread.join, 5.0)
            raise
        try:
            await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await upgrade_table.upgrade(conn)
        except BaseException:
            await conn.close()
            raise
        return cls(conn)

    async def close(self) -> None:
        async with self._lock:
            await self._conn.close()

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction. IMMEDIATE takes the write lock up front so
        a read-then-write (the hopper) cannot be overtaken by another process."""
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                await self._conn.execute("COMMIT")
            except BaseException:
                # SQLite has already rolled back after some errors ("database
                # or disk is full", I/O errors): a ROLLBACK then raises "no
                # transaction is active" and would hide the real error. A
                # failed COMMIT leaves the transaction open: roll it back, or
                # every later BEGIN fails.
                if self._conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        await self._conn.execute("ROLLBACK")
                raise

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        async with self._lock, self._conn.execute(sql, params) as cur:
            return list(await cur.fetchall())

    # ------------------------------------------------------------------ StoreApi

    #: bytes the probe writes: a few pages, as much as an outcome writes, so
    #: that a disk with room for less fails the probe as it would the outcome
    PROBE_PAD = 12_288

    async def check_writable(self, now: float) -> None:
        """Writes a few pages (the probe row) and passes through what a
        write-ahead touches (an attempt row and every index on attempts,
        a lead row and the hopper's indexes), leaving no change behind."""
        async with self._tx() as db:
            # the probe's attempt row has no lead: checked at COMMIT, when
            # it is gone again (the pragma ends with the transaction)
            await db.execute("PRAGMA defer_foreign_keys = ON")
            # REPLACE deletes and re-inserts: every page of the row is written
            await db.execute(
                "INSERT OR REPLACE INTO store_probe (id, at, pad) VALUES (1, ?, randomblob(?))",
                (now, self.PROBE_PAD),
            )
            await db.execute(
                "INSERT INTO attempts (id, campaign, lead_id, phone, state, started_at) "
                "VALUES ('~probe', '', 0, '', 'dialing', ?)",
                (now,),
            )
            await db.execute("DELETE FROM attempts WHERE id = '~probe'")
            await db.execute(
                "UPDATE leads SET status = status, held = held "
                "WHERE id = (SELECT MIN(id) FROM leads)"
            )

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
        return [_due_lead(campaign, r, r[6], r[7], r[8]) for r in rows]

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
        if rec.lead.lead_id != rec.lead_id:
            raise ValueError(
                f"outcome for lead {rec.lead_id} carries an update for {rec.lead.lead_id}"
            )
        u = rec.lead
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE attempts SET state = 'done', outcome = ?, answered_at = ?, "
                "connected_at = ?, ended_at = ?, agent_id = ?, cause = ?, detail = ? "
                "WHERE id = ? AND lead_id = ? AND state = 'dialing'",
                (
                    rec.outcome.value,
                    rec.answered_at,
                    rec.connected_at,
                    rec.ended_at,
                    rec.agent_id,
                    rec.cause,
                    rec.detail,
                    rec.attempt_id,
                    rec.lead_id,
                ),
            )
            if cur.rowcount != 1:
                return False
            await db.execute(
                "UPDATE leads SET status = ?, attempts = ?, "
                "next_due_at = COALESCE(?, next_due_at), last_outcome = ?, final_reason = ?, "
                "held = 0, callback_at = NULL, callback_agent = NULL, callback_until = NULL, "
                "updated_at = ? WHERE id = ?",
                (
                    u.status.value,
                    u.attempts,
                    u.next_due_at,
                    u.last_outcome.value,
                    u.final_reason,
                    rec.ended_at,
                    u.lead_id,
                ),
            )
        return True

    # ------------------------------------------------------------ compliance

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

    async def attempts_since(self, lead_id: int, since: float) -> int:
        rows = await self._fetchall(
            "SELECT COUNT(*) FROM attempts WHERE lead_id = ? AND started_at >= ?",
            (lead_id, since),
        )
        return int(rows[0][0]) if rows else 0

    async def record_disposition(self, d: RecordDisposition) -> bool:
        """The agent's disposition: on the attempt, the lead's new state
        (a callback gets its time, agent and grace), the DNC entry. Applies
        to a finished attempt only (the outcome is written first)."""
        u = d.lead
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE attempts SET disposition = ? WHERE id = ? AND state = 'done'",
                (d.code, d.attempt_id),
            )
            if cur.rowcount != 1:
                return False
            callback = u.next_due_at if d.callback else None
            await db.execute(
                "UPDATE leads SET status = ?, attempts = ?, next_due_at = COALESCE(?, next_due_at),"
                " final_reason = ?, callback_at = ?, callback_agent = ?, callback_until = ?,"
                " updated_at = ? WHERE id = ? AND status IN ('retry', 'done')",
                (
                    u.status.value,
                    u.attempts,
                    u.next_due_at,
                    u.final_reason,
                    callback,
                    d.callback_agent,
                    d.callback_until,
                    d.at,
                    d.lead_id,
                ),
            )
            if d.dnc is not None:
                await db.execute(
                    "INSERT INTO dnc (campaign, phone, source, added_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    (
                        "" if d.dnc == "global" else d.campaign,
                        d.phone,
                        f"disposition:{d.code}",
                        d.at,
                    ),
                )
        return True

    async def set_callback(
        self, lead_id: int, at: float, agent: str | None = None, until: float | None = None
    ) -> bool:
        """A customer-chosen callback (``dialerd leads callback``): due at
        ``at``, before fresh leads; ``agent`` takes it until ``until``."""
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE leads SET status = 'retry', next_due_at = ?, callback_at = ?, "
                "callback_agent = ?, callback_until = ?, final_reason = NULL, updated_at = ? "
                "WHERE id = ? AND status != 'dialing'",
                (at, at, agent, until, time.time(), lead_id),
            )
            return cur.rowcount == 1

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

    async def dnc_entries(self) -> list[tuple[str | None, str, str]]:
        """Every DNC entry: (campaign or None for the global list, E.164, source)."""
        rows = await self._fetchall("SELECT campaign, phone, source FROM dnc ORDER BY rowid")
        return [(r[0] or None, r[1], r[2]) for r in rows]

    async def dnc_add(
        self, numbers: Sequence[str], campaign: str | None, source: str, now: float | None = None
    ) -> int:
        at = time.time() if now is None else now
        async with self._tx() as db:
            cur = await db.executemany(
                "INSERT INTO dnc (campaign, phone, source, added_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [(campaign or "", n, source, at) for n in numbers],
            )
            return cur.rowcount

    async def dnc_remove(self, numbers: Sequence[str], campaign: str | None) -> int:
        async with self._tx() as db:
            cur = await db.executemany(
                "DELETE FROM dnc WHERE campaign = ? AND phone = ?",
                [(campaign or "", n) for n in numbers],
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
        if not rows:
            return (0, 0.0, 0, 0.0)
        r = rows[0]
        return (int(r[0]), float(r[1]), int(r[2]), float(r[3]))

    async def recent_outcomes(self, since: float) -> list[tuple[str, str, str, float]]:
        """(campaign, phone, outcome, ended_at) of attempts ended since, in
        time order: seeds abandon accounting and the 72-hour lock."""
        rows = await self._fetchall(
            "SELECT campaign, phone, outcome, ended_at FROM attempts "
            "WHERE state = 'done' AND ended_at >= ? ORDER BY ended_at",
            (since,),
        )
        return [(r[0], r[1], r[2], float(r[3])) for r in rows]

    async def open_attempts(self) -> list[OpenAttempt]:
        rows = await self._fetchall(
            "SELECT id, campaign, lead_id, started_at FROM attempts "
            "WHERE state = 'dialing' ORDER BY started_at"
        )
        return [OpenAttempt(r[0], r[1], r[2], r[3]) for r in rows]

    # ------------------------------------------------------------------ agents

    async def upsert_agent_state(
        self, agent_id: str, campaign: str | None, state: str, at: float
    ) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO agents (id, campaign, state, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET campaign = excluded.campaign, "
                "state = excluded.state, updated_at = excluded.updated_at",
                (agent_id, campaign, state, at),
            )

    async def list_agents(self) -> list[tuple[str, str | None, str, float]]:
        rows = await self._fetchall(
            "SELECT id, campaign, state, updated_at FROM agents ORDER BY id"
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def record_agent_event(
        self, agent_id: str, campaign: str | None, state: str, at: float
    ) -> None:
        """Append one agent state change to the history reports read (agent
        hours, occupancy). ``state`` is the core's: ready, reserved, talking,
        wrap, paused, logged_out."""
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO agent_events (agent_id, campaign, state, at) VALUES (?, ?, ?, ?)",
                (agent_id, campaign, state, at),
            )

    async def agent_events(
        self, since: float | None = None, until: float | None = None
    ) -> list[tuple[str, str | None, str, float]]:
        """(agent_id, campaign, state, at) in [since, until), ordered by agent
        and time; each agent's last event before ``since`` comes first, so
        the state an agent was in when the period began is known."""
        lo = float("-inf") if since is None else since
        hi = float("inf") if until is None else until
        rows: list[Any] = []
        if since is not None:
            # SQLite: the bare columns come from the row holding MAX(at)
            rows += await self._fetchall(
                "SELECT agent_id, campaign, state, MAX(at) FROM agent_events "
                "WHERE at < ? GROUP BY agent_id",
                (lo,),
            )
        rows += await self._fetchall(
            "SELECT agent_id, campaign, state, at FROM agent_events "
            "WHERE at >= ? AND at < ? ORDER BY agent_id, at, id",
            (lo, hi),
        )
        out = [(r[0], r[1], r[2], float(r[3])) for r in rows]
        out.sort(key=lambda e: (e[0], e[3]))
        return out

    async def record_agent_action(self, a: AgentAction) -> None:
        """An agent's key press and whether it was accepted (audit trail)."""
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO agent_actions (agent_id, campaign, action, detail, ok, at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (a.agent_id, a.campaign, a.action, a.detail, int(a.ok), a.at),
            )

    async def agent_actions(
        self, agent_id: str | None = None
    ) -> list[tuple[str, str | None, str, str, bool, float]]:
        """(agent_id, campaign, action, detail, ok, at), oldest first."""
        where, params = ("WHERE agent_id = ?", (agent_id,)) if agent_id else ("", ())
        rows = await self._fetchall(
            "SELECT agent_id, campaign, action, detail, ok, at FROM agent_actions "
            f"{where} ORDER BY at, id",
            params,
        )
        return [(r[0], r[1], r[2], r[3], bool(r[4]), float(r[5])) for r in rows]

    async def manual_lead(
        self, campaign: str, phone: str, timezone: str | None, now: float
    ) -> Lead | None:
        """The lead for a number an agent keyed: the campaign's own if it has
        one, else a new one (fields ``{"source": "manual"}``), held so the
        hopper leaves it alone. None if it is in a call right now."""
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO leads (campaign, phone, priority, timezone, fields, status, "
                "attempts, next_due_at, held, created_at, updated_at) "
                "VALUES (?, ?, 0, ?, '{\"source\": \"manual\"}', 'new', 0, ?, 1, ?, ?) "
                "ON CONFLICT (campaign, phone) DO NOTHING",
                (campaign, phone, timezone, now, now, now),
            )
            async with db.execute(
                "SELECT id, phone, attempts, priority, timezone, fields, status FROM leads "
                "WHERE campaign = ? AND phone = ?",
                (campaign, phone),
            ) as cur:
                r = await cur.fetchone()
            if r is None or r[6] == "dialing":
                return None
            await db.execute("UPDATE leads SET held = 1 WHERE id = ?", (r[0],))
        return _due_lead(campaign, r)

    # ------------------------------------------------------------------ import

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

    # ------------------------------------------------------------------ queries

    async def lead_counts(self, campaign: str) -> dict[str, int]:
        rows = await self._fetchall(
            "SELECT status, COUNT(*) FROM leads WHERE campaign = ? GROUP BY status", (campaign,)
        )
        return {r[0]: r[1] for r in rows}

    async def outcome_counts(self, campaign: str) -> dict[str, int]:
        rows = await self._fetchall(
            "SELECT outcome, COUNT(*) FROM attempts WHERE campaign = ? AND state = 'done' "
            "GROUP BY outcome",
            (campaign,),
        )
        return {r[0]: r[1] for r in rows}

    async def get_lead(self, lead_id: int) -> StoredLead | None:
        rows = await self._fetchall(f"SELECT {_LEAD_COLS} FROM leads WHERE id = ?", (lead_id,))
        return _stored_lead(rows[0]) if rows else None

    async def list_leads(self, campaign: str) -> list[StoredLead]:
        rows = await self._fetchall(
            f"SELECT {_LEAD_COLS} FROM leads WHERE campaign = ? ORDER BY id", (campaign,)
        )
        return [_stored_lead(r) for r in rows]

    async def list_attempts(self, campaign: str | None = None) -> list[StoredAttempt]:
        if campaign is None:
            rows = await self._fetchall(f"SELECT {_ATTEMPT_COLS} FROM attempts ORDER BY started_at")
        else:
            rows = await self._fetchall(
                f"SELECT {_ATTEMPT_COLS} FROM attempts WHERE campaign = ? ORDER BY started_at",
                (campaign,),
            )
        return [StoredAttempt(*r) for r in rows]

    async def query_leads(
        self,
        campaign: str,
        status: Sequence[str] | None = None,
        limit: int | None = None,
        after_id: int = 0,
    ) -> list[StoredLead]:
        """Leads of a campaign in id order, optionally of some statuses;
        ``after_id`` pages through a large campaign."""
        sql = f"SELECT {_LEAD_COLS} FROM leads WHERE campaign = ? AND id > ?"
        params: list[Any] = [campaign, after_id]
        if status:
            sql += f" AND status IN ({', '.join('?' * len(status))})"
            params += list(status)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_stored_lead(r) for r in await self._fetchall(sql, params)]

    async def attempts_of_leads(self, lead_ids: Sequence[int]) -> list[StoredAttempt]:
        """Attempts of the given leads, by lead then start time (the export)."""
        out: list[StoredAttempt] = []
        for i in range(0, len(lead_ids), 500):
            chunk = list(lead_ids[i : i + 500])
            rows = await self._fetchall(
                f"SELECT {_ATTEMPT_COLS} FROM attempts "
                f"WHERE lead_id IN ({', '.join('?' * len(chunk))}) ORDER BY lead_id, started_at",
                chunk,
            )
            out += [StoredAttempt(*r) for r in rows]
        return out

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
        if "dialing" in status:
            raise StoreError("leads that are dialing cannot be reset")
        bad = set(status) - {"done", "retry", "new"}
        if bad or not status:
            raise StoreError(f"cannot reset leads of status {sorted(bad) or '(none)'}")
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

    async def report_attempts(
        self, campaign: str | None, since: float | None, until: float | None
    ) -> list[StoredAttempt]:
        """Finished and live attempts started in [since, until)."""
        sql = f"SELECT {_ATTEMPT_COLS} FROM attempts WHERE started_at >= ? AND started_at < ?"
        params: list[Any] = [
            float("-inf") if since is None else since,
            float("inf") if until is None else until,
        ]
        if campaign is not None:
            sql += " AND campaign = ?"
            params.append(campaign)
        rows = await self._fetchall(sql + " ORDER BY started_at", params)
        return [StoredAttempt(*r) for r in rows]

    async def campaign_names(self) -> list[str]:
        rows = await self._fetchall("SELECT name FROM campaigns ORDER BY name")
        return [r[0] for r in rows]

    # ---------------------------------------------------- agent PINs, limits

    async def pin_hash(self, agent_id: str) -> str | None:
        rows = await self._fetchall(
            "SELECT pin_hash FROM agent_pins WHERE agent_id = ?", (agent_id,)
        )
        return str(rows[0][0]) if rows else None

    async def set_pin_hash(self, agent_id: str, pin_hash: str, at: float) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO agent_pins (agent_id, pin_hash, set_at) VALUES (?, ?, ?) "
                "ON CONFLICT (agent_id) DO UPDATE SET pin_hash = excluded.pin_hash, "
                "set_at = excluded.set_at",
                (agent_id, pin_hash, at),
            )
            await db.execute(
                "DELETE FROM login_limits WHERE scope = 'agent' AND key = ?", (agent_id,)
            )

    async def pin_agents(self) -> list[str]:
        rows = await self._fetchall("SELECT agent_id FROM agent_pins ORDER BY agent_id")
        return [str(r[0]) for r in rows]

    async def login_counters(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[float, float]]:
        out: dict[tuple[str, str], tuple[float, float]] = {}
        for scope, key in keys:
            rows = await self._fetchall(
                "SELECT level, last_at FROM login_limits WHERE scope = ? AND key = ?",
                (scope, key),
            )
            if rows:
                out[(scope, key)] = (float(rows[0][0]), float(rows[0][1]))
        return out

    async def all_login_counters(self) -> list[tuple[str, str, float, float]]:
        rows = await self._fetchall(
            "SELECT scope, key, level, last_at FROM login_limits ORDER BY scope, key"
        )
        return [(str(r[0]), str(r[1]), float(r[2]), float(r[3])) for r in rows]

    async def save_login_counters(self, rows: Sequence[tuple[str, str, float, float]]) -> None:
        async with self._tx() as db:
            await db.executemany(
                "INSERT INTO login_limits (scope, key, level, last_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (scope, key) DO UPDATE SET level = excluded.level, "
                "last_at = excluded.last_at",
                rows,
            )

    async def clear_login_counters(self, keys: Sequence[tuple[str, str]]) -> int:
        n = 0
        async with self._tx() as db:
            for scope, key in keys:
                cur = await db.execute(
                    "DELETE FROM login_limits WHERE scope = ? AND key = ?", (scope, key)
                )
                n += cur.rowcount
        return n

    async def known_phone(self, agent_id: str, phone: str, since: float) -> bool:
        rows = await self._fetchall(
            "SELECT 1 FROM agent_phones WHERE agent_id = ? AND phone = ? AND last_login >= ?",
            (agent_id, phone, since),
        )
        return bool(rows)

    async def login_succeeded(
        self, agent_id: str, phone: str, at: float, clear: Sequence[tuple[str, str]]
    ) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO agent_phones (agent_id, phone, last_login) VALUES (?, ?, ?) "
                "ON CONFLICT (agent_id, phone) DO UPDATE SET last_login = excluded.last_login",
                (agent_id, phone, at),
            )
            for scope, key in clear:
                await db.execute(
                    "DELETE FROM login_limits WHERE scope = ? AND key = ?", (scope, key)
                )

    async def explain(self, sql: str, params: Sequence[Any] = ()) -> list[str]:
        """``EXPLAIN QUERY PLAN`` details, so tests can prove a query uses its index."""
        rows = await self._fetchall(f"EXPLAIN QUERY PLAN {sql}", params)
        return [str(r[3]) for r in rows]


if TYPE_CHECKING:
    # mypy proves Store keeps up with the contract the daemon is typed against
    _contract: type[StoreApi] = Store
