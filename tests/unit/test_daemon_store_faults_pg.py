"""The daemon's shell when its PostgreSQL store fails, on the worker's real
cluster (``pg_cluster``; no Asterisk, no mock store), as
test_daemon_store_faults.py does on a real SQLite file:

- a connection killed mid-write: the write waits on a lock another
  session holds, and its backend is ended with ``pg_terminate_backend``
  (what an administrator, a failover or a pooler does); the server rolls
  the write back, the daemon's queue retries it on a new connection, and
  nothing is lost, the DNC request still first;
- the server stopped (every connection dropped, new ones refused) and
  started again: a write-ahead that fails places nothing and gives the
  lead back, the store comes back up by itself.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from test_daemon_store_faults import NOW, drain, place, queued, shell

from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.models import LeadStatus, LeadUpdate, Outcome
from dialerd.daemon import writes
from dialerd.sandbox.postgres import PostgresCluster
from dialerd.sandbox.stores import StoreBackend
from dialerd.store import faults
from dialerd.store.api import StoreTransientError


@asynccontextmanager
async def admin(pg_backend: StoreBackend) -> AsyncIterator[Any]:
    """Another session on the test's schema, not the store's (its own
    application_name, so killing the store's backends spares it)."""
    conn = await asyncpg.connect(
        str(pg_backend.target), server_settings={"application_name": "admin"}
    )
    try:
        yield conn
    finally:
        await conn.close()


async def kill_waiting(conn: Any, pg_backend: StoreBackend, timeout: float = 10.0) -> int:
    """``pg_terminate_backend`` on the store's backends once one of them
    waits on a lock (a write in flight); returns how many were ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # the activity view is a snapshot kept for the transaction (the
        # admin holds one open, with the lock): take a fresh one each time
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        waiting = await conn.fetchval(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1 "
            "AND wait_event_type = 'Lock'",
            pg_backend.schema,
        )
        if waiting:
            # in the select list, not the WHERE: a WHERE may call it first
            # for every backend (the admin's own included)
            ended = await conn.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = $1",
                pg_backend.schema,
            )
            return sum(1 for r in ended if r[0])
        await asyncio.sleep(0.02)
    raise AssertionError("no store write waited on the lock")


def outcome(lead_id: int) -> cmd.RecordOutcome:
    return cmd.RecordOutcome(
        attempt_id="a-1",
        campaign="c1",
        lead_id=lead_id,
        outcome=Outcome.ANSWERED,
        ended_at=NOW + 20,
        lead=LeadUpdate(lead_id, LeadStatus.RETRY, 1, Outcome.ANSWERED, NOW + 3600),
        answered_at=NOW + 5,
        connected_at=NOW + 5,
        agent_id="1001",
    )


def dnc_disposition(lead_id: int, phone: str) -> cmd.RecordDisposition:
    return cmd.RecordDisposition(
        attempt_id="a-1",
        campaign="c1",
        lead_id=lead_id,
        phone=phone,
        code="do_not_call",
        lead=LeadUpdate(lead_id, LeadStatus.DONE, 1, Outcome.ANSWERED, None, "do_not_call"),
        at=NOW + 25,
        dnc="campaign",
    )


async def test_a_connection_killed_mid_write_loses_nothing_dnc_first(
    tmp_path: Path, pg_backend: StoreBackend
) -> None:
    async with (
        shell(tmp_path, opened=await pg_backend.open()) as (d, store),
        admin(pg_backend) as other,
    ):
        (lead,) = await store.fetch_due_leads("c1", NOW, 1, frozenset())
        await store.begin_attempt(place(lead.id, lead.phone))
        # the order the server takes the writes in, recorded by the server
        await other.execute(
            """CREATE TABLE write_order (n BIGSERIAL, what TEXT);
            CREATE FUNCTION w_log() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN INSERT INTO write_order (what) VALUES (TG_ARGV[0]); RETURN NULL; END $$;
            CREATE TRIGGER w_dnc AFTER INSERT ON dnc FOR EACH ROW EXECUTE FUNCTION w_log('dnc');
            CREATE TRIGGER w_out AFTER UPDATE OF state ON attempts
                FOR EACH ROW EXECUTE FUNCTION w_log('outcome');
            CREATE TRIGGER w_dis AFTER UPDATE OF disposition ON attempts
                FOR EACH ROW EXECUTE FUNCTION w_log('disposition');"""
        )
        seen: list[Any] = []
        lock = other.transaction()
        await lock.start()
        await other.execute("LOCK TABLE attempts IN ACCESS EXCLUSIVE MODE")
        d.executor.execute(outcome(lead.id))  # the writer's UPDATE waits on the lock
        assert await kill_waiting(other, pg_backend) >= 1
        down = await queued(d, ev.StoreDown, seen)
        assert "finish_attempt" in down.reason
        assert "AdminShutdown" in down.reason or "ConnectionDoesNotExist" in down.reason
        # the outcome is owed; the agent keys do-not-call meanwhile
        d.executor.execute(dnc_disposition(lead.id, lead.phone))
        assert d.writer.pending == 3
        # killed again while a retry waits on the lock
        await kill_waiting(other, pg_backend)
        await asyncio.sleep(0.3)
        assert d.writer.pending >= 1 and not [e for e in drain(d) if isinstance(e, ev.StoreUp)]
        await lock.rollback()
        await queued(d, ev.StoreUp, seen, timeout=15)
        assert d.writer.pending == 0
        order = [r[0] for r in await other.fetch("SELECT what FROM write_order ORDER BY n")]
        assert order == ["dnc", "outcome", "disposition"]
        (a,) = await store.list_attempts("c1")
        assert (a.state, a.outcome, a.disposition, a.agent_id) == (
            "done",
            "answered",
            "do_not_call",
            "1001",
        )
        assert ("c1", lead.phone, "disposition:do_not_call") in await store.dnc_entries()
        got = await store.get_lead(lead.id)
        assert got is not None and got.status is LeadStatus.DONE and not got.held


async def test_a_server_restart_fails_closed_and_comes_back_by_itself(
    tmp_path: Path, pg_backend: StoreBackend, pg_cluster: PostgresCluster
) -> None:
    async with shell(tmp_path, opened=await pg_backend.open()) as (d, store):
        first, second = await store.fetch_due_leads("c1", NOW, 2, frozenset())
        await store.begin_attempt(place(first.id, first.phone, "a-1"))
        seen: list[Any] = []
        await asyncio.to_thread(pg_cluster.stop)  # every connection dropped
        try:
            d.executor.execute(outcome(first.id))
            d.executor.execute(place(second.id, second.phone, "a-2"))  # write-ahead fails
            not_placed = await queued(d, ev.CallNotPlaced, seen)
            assert not_placed.attempt_id == "a-2" and not_placed.give_back
            kinds = [type(e) for e in seen]
            assert kinds.index(ev.StoreDown) < kinds.index(ev.CallNotPlaced)
            await asyncio.sleep(0.5)  # down: still owed
            assert d.writer.pending == 1
        finally:
            await asyncio.to_thread(pg_cluster.start)
        await queued(d, ev.StoreUp, seen, timeout=20)
        assert d.writer.pending == 0
        [a] = await store.list_attempts("c1")  # the outcome landed; a-2 never began
        assert (a.id, a.state, a.outcome) == ("a-1", "done", "answered")
        got = await store.get_lead(second.id)
        assert got is not None and got.status is LeadStatus.NEW


@pytest.mark.parametrize(
    "exc",
    [
        sqlite3.OperationalError("database is locked"),
        sqlite3.DatabaseError("database disk image is malformed"),
        sqlite3.IntegrityError("FOREIGN KEY constraint failed"),
        OSError(28, "No space left on device"),
        StoreTransientError("ConnectionDoesNotExistError: connection was closed"),
        ValueError("a bug"),
    ],
)
def test_the_queue_retries_what_the_store_calls_transient(exc: BaseException) -> None:
    """The daemon's write queue and ``dialerd.store.faults`` agree on every
    backend's failures (the PostgreSQL store raises StoreTransientError for
    what faults.pg_transient calls transient)."""
    assert writes.transient(exc) is faults.transient(exc)
