"""SQLite's numbered schema migrations (the shared machinery, and why it
is shaped so, is ``dialerd.store.migrations``).

Needs a connection in autocommit mode (``isolation_level=None``): the
transactions here are explicit. ``BEGIN IMMEDIATE`` takes the write lock
before the version is read again, so two processes opening a fresh
database at once cannot both apply the same migration.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiosqlite

from dialerd.store.migrations import SchemaTooNewError, UpgradeTable

__all__ = ["MIGRATIONS", "SchemaTooNewError", "SqliteUpgradeTable", "upgrade_table"]


class SqliteUpgradeTable(UpgradeTable[aiosqlite.Connection]):
    async def ensure_version_table(self, conn: aiosqlite.Connection) -> None:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)"
        )

    async def current_version(self, conn: aiosqlite.Connection) -> int:
        return await current_version(conn)

    @asynccontextmanager
    async def locked(self, conn: aiosqlite.Connection) -> AsyncIterator[None]:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise

    async def record(
        self, conn: aiosqlite.Connection, version: int, description: str, at: float
    ) -> None:
        await conn.execute(
            "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
            (version, description, at),
        )


async def current_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


upgrade_table = SqliteUpgradeTable()


async def _run(conn: aiosqlite.Connection, *statements: str) -> None:
    # one execute per statement: executescript() would COMMIT the migration's
    # transaction behind our back
    for sql in statements:
        await conn.execute(sql)


@upgrade_table.register("initial schema: campaigns, leads, attempts, agents")
async def _v1(conn: aiosqlite.Connection) -> None:
    await _run(
        conn,
        """CREATE TABLE campaigns (
            name        TEXT PRIMARY KEY,
            created_at  REAL NOT NULL
        )""",
        """CREATE TABLE leads (
            id           INTEGER PRIMARY KEY,
            campaign     TEXT NOT NULL REFERENCES campaigns(name),
            phone        TEXT NOT NULL,
            priority     INTEGER NOT NULL DEFAULT 0,
            timezone     TEXT,
            fields       TEXT NOT NULL DEFAULT '{}',
            status       TEXT NOT NULL DEFAULT 'new'
                         CHECK (status IN ('new', 'retry', 'dialing', 'done')),
            attempts     INTEGER NOT NULL DEFAULT 0,
            next_due_at  REAL NOT NULL,
            held         INTEGER NOT NULL DEFAULT 0 CHECK (held IN (0, 1)),
            last_outcome TEXT,
            final_reason TEXT,
            created_at   REAL NOT NULL,
            updated_at   REAL NOT NULL,
            UNIQUE (campaign, phone)
        )""",
        # the hopper: only dialable, unheld leads are in it, in fetch order
        """CREATE INDEX leads_hopper ON leads (campaign, priority DESC, next_due_at)
            WHERE held = 0 AND status IN ('new', 'retry')""",
        "CREATE INDEX leads_status ON leads (campaign, status)",
        """CREATE TABLE attempts (
            id           TEXT PRIMARY KEY,
            campaign     TEXT NOT NULL REFERENCES campaigns(name),
            lead_id      INTEGER NOT NULL REFERENCES leads(id),
            phone        TEXT NOT NULL,
            state        TEXT NOT NULL CHECK (state IN ('dialing', 'done')),
            outcome      TEXT,
            started_at   REAL NOT NULL,
            answered_at  REAL,
            connected_at REAL,
            ended_at     REAL,
            agent_id     TEXT,
            cause        INTEGER,
            detail       TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX attempts_campaign ON attempts (campaign, started_at)",
        "CREATE INDEX attempts_lead ON attempts (lead_id)",
        "CREATE INDEX attempts_open ON attempts (started_at) WHERE state = 'dialing'",
        """CREATE TABLE agents (
            id         TEXT PRIMARY KEY,
            campaign   TEXT,
            state      TEXT NOT NULL,
            updated_at REAL NOT NULL
        )""",
    )


@upgrade_table.register("agent_events: agent state history (reports' agent hours)")
async def _v2(conn: aiosqlite.Connection) -> None:
    await _run(
        conn,
        """CREATE TABLE agent_events (
            id        INTEGER PRIMARY KEY,
            agent_id  TEXT NOT NULL,
            campaign  TEXT,
            state     TEXT NOT NULL,
            at        REAL NOT NULL
        )""",
        "CREATE INDEX agent_events_at ON agent_events (at)",
        "CREATE INDEX agent_events_agent ON agent_events (agent_id, at)",
    )


@upgrade_table.register("compliance: dnc, lead_skips, callbacks, attempt dispositions")
async def _v_compliance(conn: aiosqlite.Connection) -> None:
    await _run(
        conn,
        # campaign '' is the global list (NULL would defeat the primary key)
        """CREATE TABLE dnc (
            campaign  TEXT NOT NULL DEFAULT '',
            phone     TEXT NOT NULL,
            source    TEXT NOT NULL,
            added_at  REAL NOT NULL,
            PRIMARY KEY (campaign, phone)
        )""",
        # every lead the screening postponed or finished, and why
        """CREATE TABLE lead_skips (
            id        INTEGER PRIMARY KEY,
            lead_id   INTEGER NOT NULL REFERENCES leads(id),
            campaign  TEXT NOT NULL,
            at        REAL NOT NULL,
            reason    TEXT NOT NULL,
            detail    TEXT NOT NULL DEFAULT '',
            retry_at  REAL
        )""",
        "CREATE INDEX lead_skips_lead ON lead_skips (lead_id, at)",
        "CREATE INDEX lead_skips_campaign ON lead_skips (campaign, at)",
        "ALTER TABLE leads ADD COLUMN callback_at REAL",
        "ALTER TABLE leads ADD COLUMN callback_agent TEXT",
        "ALTER TABLE leads ADD COLUMN callback_until REAL",
        # due callbacks are fetched before fresh leads, from their own index
        """CREATE INDEX leads_callbacks ON leads (campaign, callback_at)
            WHERE held = 0 AND status = 'retry' AND callback_at IS NOT NULL""",
        "ALTER TABLE attempts ADD COLUMN disposition TEXT",
        "CREATE INDEX attempts_lead_started ON attempts (lead_id, started_at)",
    )


@upgrade_table.register("agent_actions: every key an agent pressed, and the verdict")
async def _v_agent_actions(conn: aiosqlite.Connection) -> None:
    await _run(
        conn,
        """CREATE TABLE agent_actions (
            id        INTEGER PRIMARY KEY,
            agent_id  TEXT NOT NULL,
            campaign  TEXT,
            action    TEXT NOT NULL,
            detail    TEXT NOT NULL DEFAULT '',
            ok        INTEGER NOT NULL,
            at        REAL NOT NULL
        )""",
        "CREATE INDEX agent_actions_agent ON agent_actions (agent_id, at)",
    )


@upgrade_table.register("agent PINs (scrypt hashes), login limits and known phones")
async def _v_agent_pins(conn: aiosqlite.Connection) -> None:
    await _run(
        conn,
        # set by `dialerd agents set-pin`; never a PIN in clear
        """CREATE TABLE agent_pins (
            agent_id  TEXT PRIMARY KEY,
            pin_hash  TEXT NOT NULL,
            set_at    REAL NOT NULL
        )""",
        # the wrong-PIN counters (dialerd.login_limits): scope phone, agent
        # or all; kept here so a restart forgets nothing
        """CREATE TABLE login_limits (
            scope     TEXT NOT NULL,
            key       TEXT NOT NULL,
            level     REAL NOT NULL,
            last_at   REAL NOT NULL,
            PRIMARY KEY (scope, key)
        )""",
        # the phones an agent logged in from (their own desk is not slowed
        # down by failures against their id from elsewhere)
        """CREATE TABLE agent_phones (
            agent_id   TEXT NOT NULL,
            phone      TEXT NOT NULL,
            last_login REAL NOT NULL,
            PRIMARY KEY (agent_id, phone)
        )""",
    )


@upgrade_table.register("store_probe: one row the daemon rewrites to learn the store writes again")
async def _v_store_probe(conn: aiosqlite.Connection) -> None:
    await _run(
        conn,
        """CREATE TABLE store_probe (
            id   INTEGER PRIMARY KEY CHECK (id = 1),
            at   REAL NOT NULL,
            pad  BLOB NOT NULL
        )""",
    )


@upgrade_table.register("inbound_calls: one row per inbound caller; leads by phone (screen pops)")
async def _v_inbound(conn: aiosqlite.Connection) -> None:
    await _run(
        conn,
        # one row per caller the dialplan announced (and per unknown-DID call
        # the FastAGI handler refused): whatever became of it. Times are epoch
        # seconds; sl_within_s is the queue's service-level target when the
        # call ended, so reports need no configuration to judge it
        """CREATE TABLE inbound_calls (
            call_id           TEXT PRIMARY KEY,
            queue             TEXT NOT NULL,
            did               TEXT NOT NULL,
            caller            TEXT NOT NULL,
            arrived_at        REAL NOT NULL,
            ended_at          REAL NOT NULL,
            outcome           TEXT NOT NULL CHECK (outcome IN
                              ('answered', 'abandoned', 'callback', 'fallback', 'refused')),
            wait_s            REAL NOT NULL,
            answered_at       REAL,
            agent_id          TEXT,
            fallback          TEXT,
            callback_campaign TEXT,
            cause             INTEGER,
            sl_within_s       INTEGER
        )""",
        "CREATE INDEX inbound_calls_arrived ON inbound_calls (arrived_at)",
        "CREATE INDEX inbound_calls_queue ON inbound_calls (queue, arrived_at)",
        "CREATE INDEX inbound_calls_agent ON inbound_calls (agent_id, arrived_at)",
        # an inbound caller's screen pop finds their leads in every campaign
        "CREATE INDEX leads_phone ON leads (phone)",
    )


@upgrade_table.register("inbound_calls: the agent's disposition of the caller")
async def _v_inbound_disposition(conn: aiosqlite.Connection) -> None:
    await _run(
        conn,
        # written after the row (the disposition key comes in wrap-up, the
        # row when the call ended; both through the write queue, in order)
        "ALTER TABLE inbound_calls ADD COLUMN disposition TEXT",
        "ALTER TABLE inbound_calls ADD COLUMN disposed_at REAL",
    )


MIGRATIONS = upgrade_table.migrations
