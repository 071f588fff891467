"""Agents: their current state, its history for the reports, the audit
trail of their keys, and the secrets and counters of PIN login (the SQLite
backend's ``agents.py``, in PostgreSQL's terms)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dialerd.core.commands import AgentAction
from dialerd.store.postgres.base import PgBase
from dialerd.store.rows import agent_action, agent_timeline, bounds, login_counter

#: delete the login counters named by two parallel arrays (scope, key)
_CLEAR_COUNTERS = (
    "DELETE FROM login_limits WHERE (scope, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
)


def _columns(keys: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
    return [s for s, _ in keys], [k for _, k in keys]


class AgentsMixin(PgBase):
    """Agents' state and history, their key presses, PINs and login limits."""

    async def upsert_agent_state(
        self, agent_id: str, campaign: str | None, state: str, at: float
    ) -> None:
        await self._execute(
            "INSERT INTO agents (id, campaign, state, updated_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (id) DO UPDATE SET campaign = excluded.campaign, "
            "state = excluded.state, updated_at = excluded.updated_at",
            agent_id,
            campaign,
            state,
            at,
        )

    async def list_agents(self) -> list[tuple[str, str | None, str, float]]:
        rows = await self._fetch("SELECT id, campaign, state, updated_at FROM agents ORDER BY id")
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def record_agent_event(
        self, agent_id: str, campaign: str | None, state: str, at: float
    ) -> None:
        await self._execute(
            "INSERT INTO agent_events (agent_id, campaign, state, at) VALUES ($1, $2, $3, $4)",
            agent_id,
            campaign,
            state,
            at,
        )

    async def agent_events(
        self, since: float | None = None, until: float | None = None
    ) -> list[tuple[str, str | None, str, float]]:
        lo, hi = bounds(since, until)
        before: list[Any] = []
        if since is not None:
            before = await self._fetch(
                "SELECT DISTINCT ON (agent_id) agent_id, campaign, state, at FROM agent_events "
                "WHERE at < $1 ORDER BY agent_id, at DESC, id DESC",
                lo,
            )
        during = await self._fetch(
            "SELECT agent_id, campaign, state, at FROM agent_events "
            "WHERE at >= $1 AND at < $2 ORDER BY agent_id, at, id",
            lo,
            hi,
        )
        return agent_timeline(before, during)

    async def record_agent_action(self, a: AgentAction) -> None:
        await self._execute(
            "INSERT INTO agent_actions (agent_id, campaign, action, detail, ok, at) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            a.agent_id,
            a.campaign,
            a.action,
            a.detail,
            bool(a.ok),
            a.at,
        )

    async def agent_actions(
        self, agent_id: str | None = None
    ) -> list[tuple[str, str | None, str, str, bool, float]]:
        rows = await self._fetch(
            "SELECT agent_id, campaign, action, detail, ok, at FROM agent_actions "
            "WHERE ($1::text IS NULL OR agent_id = $1) ORDER BY at, id",
            agent_id or None,
        )
        return [agent_action(r) for r in rows]

    async def pin_hash(self, agent_id: str) -> str | None:
        r = await self._fetchrow("SELECT pin_hash FROM agent_pins WHERE agent_id = $1", agent_id)
        return str(r[0]) if r else None

    async def set_pin_hash(self, agent_id: str, pin_hash: str, at: float) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO agent_pins (agent_id, pin_hash, set_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (agent_id) DO UPDATE SET pin_hash = excluded.pin_hash, "
                "set_at = excluded.set_at",
                agent_id,
                pin_hash,
                at,
            )
            await db.execute(
                "DELETE FROM login_limits WHERE scope = 'agent' AND key = $1", agent_id
            )

    async def pin_agents(self) -> list[str]:
        rows = await self._fetch("SELECT agent_id FROM agent_pins ORDER BY agent_id")
        return [str(r[0]) for r in rows]

    async def login_counters(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[float, float]]:
        if not keys:
            return {}
        rows = await self._fetch(
            "SELECT scope, key, level, last_at FROM login_limits WHERE (scope, key) IN "
            "(SELECT * FROM unnest($1::text[], $2::text[]))",
            *_columns(keys),
        )
        return {(c[0], c[1]): (c[2], c[3]) for c in map(login_counter, rows)}

    async def all_login_counters(self) -> list[tuple[str, str, float, float]]:
        rows = await self._fetch(
            "SELECT scope, key, level, last_at FROM login_limits ORDER BY scope, key"
        )
        return [login_counter(r) for r in rows]

    async def save_login_counters(self, rows: Sequence[tuple[str, str, float, float]]) -> None:
        async with self._tx() as db:
            await db.executemany(
                "INSERT INTO login_limits (scope, key, level, last_at) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (scope, key) DO UPDATE SET level = excluded.level, "
                "last_at = excluded.last_at",
                rows,
            )

    async def clear_login_counters(self, keys: Sequence[tuple[str, str]]) -> int:
        if not keys:
            return 0
        return await self._execute(_CLEAR_COUNTERS, *_columns(keys))

    async def known_phone(self, agent_id: str, phone: str, since: float) -> bool:
        r = await self._fetchrow(
            "SELECT 1 FROM agent_phones WHERE agent_id = $1 AND phone = $2 AND last_login >= $3",
            agent_id,
            phone,
            since,
        )
        return r is not None

    async def login_succeeded(
        self, agent_id: str, phone: str, at: float, clear: Sequence[tuple[str, str]]
    ) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO agent_phones (agent_id, phone, last_login) VALUES ($1, $2, $3) "
                "ON CONFLICT (agent_id, phone) DO UPDATE SET last_login = excluded.last_login",
                agent_id,
                phone,
                at,
            )
            if clear:
                await db.execute(_CLEAR_COUNTERS, *_columns(clear))
