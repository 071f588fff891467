"""Agents: their current state, its history for the reports, the audit
trail of their keys, and the secrets and counters of PIN login.

Apart from leads and calls because none of these rows is read by the
hopper or the attempt log: they serve the reports, the supervisor, and
login's brute-force limits (scrypt hashes only; a PIN is never stored).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dialerd.core.commands import AgentAction
from dialerd.store.rows import agent_action, agent_timeline, bounds, login_counter
from dialerd.store.sqlite.base import SqliteBase


class AgentsMixin(SqliteBase):
    """Agents' state and history, their key presses, PINs and login limits."""

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
        lo, hi = bounds(since, until)
        before: list[Any] = []
        if since is not None:
            # SQLite: the bare columns come from the row holding MAX(at)
            before = await self._fetchall(
                "SELECT agent_id, campaign, state, MAX(at) FROM agent_events "
                "WHERE at < ? GROUP BY agent_id",
                (lo,),
            )
        during = await self._fetchall(
            "SELECT agent_id, campaign, state, at FROM agent_events "
            "WHERE at >= ? AND at < ? ORDER BY agent_id, at, id",
            (lo, hi),
        )
        return agent_timeline(before, during)

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
        return [agent_action(r) for r in rows]

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
        return [login_counter(r) for r in rows]

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
