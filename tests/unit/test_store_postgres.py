"""What only the PostgreSQL backend has (the contract itself runs on it in
test_store.py and test_importer.py): its migrations, its claim with
``FOR UPDATE SKIP LOCKED`` (two stores never block each other nor share a
lead), its COPY import, its plan, which failures it calls transient, and
that a SQLite install never imports its driver. On the worker's private
cluster (``pg_cluster``)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest

from dialerd.sandbox.postgres import PostgresCluster, reap_stale
from dialerd.sandbox.stores import StoreBackend
from dialerd.settings import StoreSettings
from dialerd.store import open_store
from dialerd.store.api import StoreTransientError
from dialerd.store.faults import pg_transient
from dialerd.store.migrations import SchemaTooNewError
from dialerd.store.postgres import CLAIM_HOPPER_SQL, Store
from dialerd.store.postgres.base import rowcount, server_settings, transient_error
from dialerd.store.postgres.migrations import upgrade_table as pg_table
from dialerd.store.sqlite.migrations import upgrade_table as sqlite_table

C = "sales"
T0 = 1_700_000_000.0


def row(phone: str, priority: int = 0) -> tuple[str, int, str | None, str]:
    return (phone, priority, None, json.dumps({"n": phone[-2:]}))


@pytest.fixture
async def store(pg_backend: StoreBackend) -> AsyncIterator[Store]:
    s = cast(Store, await pg_backend.open())
    await s.ensure_campaign(C)
    try:
        yield s
    finally:
        await s.close()


# --------------------------------------------------------------- migrations


def test_same_versions_as_sqlite() -> None:
    """A version means the same tables on both backends: a migration added
    to one is added to the other, under the same number and description."""
    assert [(m.version, m.description) for m in pg_table.migrations] == [
        (m.version, m.description) for m in sqlite_table.migrations
    ]


async def test_migrations_recorded_and_idempotent(store: Store, pg_backend: StoreBackend) -> None:
    await store.insert_leads(C, [row("+442079460001")], T0)
    again = await pg_backend.open()  # second open: nothing re-applied, data kept
    try:
        assert await again.lead_counts(C) == {"new": 1}
    finally:
        await again.close()
    versions = [r[0] for r in await store._fetch("SELECT version FROM schema_version")]
    assert sorted(versions) == list(range(1, pg_table.latest + 1))


async def test_concurrent_first_opens_migrate_once(pg_backend: StoreBackend) -> None:
    stores = await asyncio.gather(*(pg_backend.open() for _ in range(4)))
    try:
        s = cast(Store, stores[0])
        rows = await s._fetch("SELECT version, COUNT(*) FROM schema_version GROUP BY version")
        assert sorted((r[0], r[1]) for r in rows) == [(v, 1) for v in range(1, pg_table.latest + 1)]
    finally:
        for x in stores:
            await x.close()


async def test_refuses_a_newer_schema(store: Store, pg_backend: StoreBackend) -> None:
    async with store._tx() as db:
        await db.execute(
            "INSERT INTO schema_version VALUES ($1, 'from the future', 0)", pg_table.latest + 1
        )
    with pytest.raises(SchemaTooNewError):
        await pg_backend.open()


# ------------------------------------------------------------ the claim


async def test_hopper_claim_uses_the_partial_index(store: Store) -> None:
    await store.insert_leads(C, [row(f"+4420794602{i:02d}", i % 3) for i in range(30)], T0)
    async with store._tx() as db:
        await db.execute("ANALYZE leads")
        await db.execute("SET LOCAL enable_seqscan = off")  # 30 rows: force the choice
        plan = "\n".join(r[0] for r in await db.fetch(f"EXPLAIN {CLAIM_HOPPER_SQL}", C, T0, [], 10))
    assert "leads_hopper" in plan, plan
    assert "LockRows" in plan, plan
    assert "Sort" not in plan.split("LockRows", 1)[1], plan  # the index gives the order


async def test_two_stores_never_block_each_other_nor_share_a_lead(
    store: Store, pg_backend: StoreBackend
) -> None:
    """A transaction holding claimed rows (another daemon, mid-claim) does
    not make a second claim wait: SKIP LOCKED passes over its rows."""
    await store.insert_leads(C, [row(f"+4420794603{i:02d}") for i in range(10)], T0)
    other = cast(Store, await pg_backend.open())
    try:
        async with store._tx() as db:
            held = await db.fetch(
                "SELECT id FROM leads WHERE campaign = $1 ORDER BY id LIMIT 4 FOR UPDATE", C
            )
            # while those 4 are locked: the other store claims at once
            got = await asyncio.wait_for(other.fetch_due_leads(C, T0, 10, frozenset()), 2.0)
        assert len(got) == 6
        assert not {r[0] for r in held} & {x.id for x in got}
        rest = await store.fetch_due_leads(C, T0, 10, frozenset())
        assert sorted(x.id for x in rest) == sorted(r[0] for r in held)
    finally:
        await other.close()


async def test_many_claims_from_two_stores_share_nothing(
    store: Store, pg_backend: StoreBackend
) -> None:
    await store.insert_leads(C, [row(f"+442079461{i:03d}") for i in range(300)], T0)
    other = await pg_backend.open()
    try:
        batches = await asyncio.gather(
            *(s.fetch_due_leads(C, T0, 7, frozenset()) for _ in range(25) for s in (store, other))
        )
    finally:
        await other.close()
    ids = [x.id for b in batches for x in b]
    assert len(ids) == 300 == len(set(ids))


async def test_callbacks_first_then_priority_then_due(store: Store) -> None:
    await store.insert_leads(C, [row("+442079460001", 0), row("+442079460002", 5)], T0)
    await store.insert_leads(C, [row("+442079460003", 5)], T0 - 10)
    await store.insert_leads(C, [row("+442079460004", 0)], T0)
    ids = {x.phone: x.id for x in await store.list_leads(C)}
    assert await store.set_callback(ids["+442079460004"], T0 - 5, agent="1001")
    got = await store.fetch_due_leads(C, T0, 3, frozenset({ids["+442079460002"]}))
    assert [x.phone[-1] for x in got] == ["4", "3", "1"]
    assert got[0].callback and got[0].callback_agent == "1001" and not got[1].callback


# ------------------------------------------------------------ import


async def test_copy_import_keeps_file_order_and_dedups(store: Store) -> None:
    rows = [row(f"+44207946{i:04d}") for i in range(2000)]
    assert await store.insert_leads(C, [*rows, rows[5], rows[7]], T0) == 2000
    assert await store.insert_leads(C, [*rows[:10], row("+442079469999")], T0) == 1
    leads = await store.list_leads(C)
    assert [x.phone for x in leads[:2000]] == [r[0] for r in rows]  # ids in file order
    assert leads[3].fields == {"n": "03"} and leads[3].status.value == "new"


# ------------------------------------------------------------ faults


class _Pg(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_Pg("57P01"), True),  # admin shutdown (pg_terminate_backend)
        (_Pg("08006"), True),  # connection failure
        (_Pg("53100"), True),  # disk full
        (_Pg("55P03"), True),  # lock timeout
        (_Pg("40P01"), True),  # deadlock
        (_Pg("23503"), False),  # foreign key: the write's own
        (_Pg("23505"), False),  # unique
        (_Pg("42P01"), False),  # undefined table: a bug
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (ValueError("x"), False),
    ],
)
def test_which_failures_are_transient(exc: BaseException, expected: bool) -> None:
    assert pg_transient(exc) is expected
    mapped = transient_error(exc)
    assert (mapped is not None) is expected
    if mapped is not None:
        assert isinstance(mapped, OSError)  # what the daemon's queue retries


async def test_a_lock_timeout_is_transient_and_leaves_nothing(
    pg_cluster: PostgresCluster, pg_backend: StoreBackend, store: Store
) -> None:
    await store.insert_leads(C, [row("+442079460001")], T0)
    quick = cast(Store, await open_store(cast(str, pg_backend.target) + "&lock_timeout=100"))
    try:
        async with store._tx() as db:
            await db.execute("LOCK TABLE leads IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(StoreTransientError, match="LockNotAvailable"):
                await quick.insert_leads(C, [row("+442079460002")], T0)
        assert await quick.insert_leads(C, [row("+442079460002")], T0) == 1
    finally:
        await quick.close()


# ------------------------------------------------------------ settings


def test_settings_choose_the_backend() -> None:
    s = StoreSettings.model_validate({"url": "postgresql://u:secret@db:5432/dialer"})
    assert s.backend == "postgresql" and "secret" not in s.describe()
    assert StoreSettings().backend == "sqlite"
    with pytest.raises(ValueError, match="postgresql://"):
        StoreSettings.model_validate({"url": "mysql://x"})
    with pytest.raises(ValueError, match="not both"):
        StoreSettings.model_validate({"url": "postgresql://x/y", "path": "/tmp/x.db"})


def test_url_settings_win_over_ours() -> None:
    assert server_settings("postgresql://h/d")["lock_timeout"] == "5000"
    assert "lock_timeout" not in server_settings("postgresql://h/d?lock_timeout=100")
    assert rowcount("INSERT 0 12") == 12 and rowcount("UPDATE 3") == 3


def test_a_sqlite_store_never_imports_asyncpg(tmp_path: Path) -> None:
    code = (
        "import asyncio, sys\n"
        "from dialerd.store import open_store\n"
        "async def main():\n"
        f"    s = await open_store({str(tmp_path / 'd.sqlite3')!r})\n"
        "    await s.ensure_campaign('c')\n"
        "    await s.close()\n"
        "asyncio.run(main())\n"
        "import dialerd.cli, dialerd.daemon\n"
        "print('asyncpg' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False", out.stderr


def test_a_cluster_left_by_a_killed_run_is_reaped(tmp_path: Path) -> None:
    """A run killed before its teardown leaves its cluster behind; the next
    run's first cluster stops it (through its own data directory) and
    removes it, and leaves a live run's alone."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    left = tmp_path / "dialerd-pg-left"
    live = tmp_path / "dialerd-pg-live"
    for d, owner in ((left, dead), (live, str(os.getpid()))):
        d.mkdir()
        (d / "owner.pid").write_text(owner)
    assert reap_stale(tmp_path) == [left]
    assert not left.exists() and live.exists()
