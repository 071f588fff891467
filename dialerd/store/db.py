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
import json
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite

from dialerd.core.commands import PlaceCall, RecordOutcome
from dialerd.core.models import Lead, LeadStatus
from dialerd.store.api import OpenAttempt, StoreApi
from dialerd.store.migrations import upgrade_table

BUSY_TIMEOUT_MS = 5000

#: a lead row for the importer: (phone E.164, priority, timezone, fields JSON)
LeadRow = tuple[str, int, str | None, str]

#: the hopper's SELECT; it must be served by the ``leads_hopper`` partial index
#: (its WHERE repeats the index's condition verbatim so SQLite can use it)
HOPPER_SQL = (
    "SELECT id, phone, attempts, priority, timezone, fields FROM leads "
    "WHERE campaign = ? AND held = 0 AND status IN ('new', 'retry') "
    "AND next_due_at <= ? ORDER BY priority DESC, next_due_at LIMIT ?"
)


class StoreError(RuntimeError):
    pass


class LeadNotDialableError(StoreError):
    """``begin_attempt`` for a lead that is already dialing or done: the
    store refuses the second live call even if the core asked for it."""


@dataclass(frozen=True, slots=True)
class StoredLead:
    id: int
    campaign: str
    phone: str
    priority: int
    timezone: str | None
    fields: dict[str, Any]
    status: LeadStatus
    attempts: int
    next_due_at: float
    held: bool
    last_outcome: str | None
    final_reason: str | None


@dataclass(frozen=True, slots=True)
class StoredAttempt:
    id: str
    campaign: str
    lead_id: int
    phone: str
    state: str
    outcome: str | None
    started_at: float
    answered_at: float | None
    connected_at: float | None
    ended_at: float | None
    agent_id: str | None
    cause: int | None
    detail: str


_LEAD_COLS = (
    "id, campaign, phone, priority, timezone, fields, status, attempts, next_due_at, held, "
    "last_outcome, final_reason"
)
_ATTEMPT_COLS = (
    "id, campaign, lead_id, phone, state, outcome, started_at, answered_at, connected_at, "
    "ended_at, agent_id, cause, detail"
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
        conn = await aiosqlite.connect(str(path), isolation_level=None)
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
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        async with self._lock, self._conn.execute(sql, params) as cur:
            return list(await cur.fetchall())

    # ------------------------------------------------------------------ StoreApi

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
            async with db.execute(HOPPER_SQL, (campaign, now, limit + len(exclude))) as cur:
                rows = [r for r in await cur.fetchall() if r[0] not in exclude][:limit]
            await db.executemany(
                "UPDATE leads SET held = 1, updated_at = ? WHERE id = ?",
                [(now, r[0]) for r in rows],
            )
        return [
            Lead(
                id=r[0],
                campaign=campaign,
                phone=r[1],
                attempts=r[2],
                priority=r[3],
                timezone=r[4],
                fields=json.loads(r[5]),
            )
            for r in rows
        ]

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
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE leads SET status = 'dialing', held = 0, updated_at = ? "
                "WHERE id = ? AND campaign = ? AND status IN ('new', 'retry')",
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
                "held = 0, updated_at = ? WHERE id = ?",
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

    # ------------------------------------------------------------------ import

    async def insert_leads(self, campaign: str, rows: Sequence[LeadRow], now: float) -> int:
        """One batch in one transaction; returns how many were new. A phone
        already in the campaign is skipped (``ON CONFLICT DO NOTHING``), so
        the difference is the duplicates, and re-running an import is safe."""
        if not rows:
            return 0
        async with self._tx() as db:
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

    async def explain(self, sql: str, params: Sequence[Any] = ()) -> list[str]:
        """``EXPLAIN QUERY PLAN`` details, so tests can prove a query uses its index."""
        rows = await self._fetchall(f"EXPLAIN QUERY PLAN {sql}", params)
        return [str(r[3]) for r in rows]


if TYPE_CHECKING:
    # mypy proves Store keeps up with the contract the daemon is typed against
    _contract: type[StoreApi] = Store
