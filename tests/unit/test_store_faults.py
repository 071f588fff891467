"""Store faults on the real SQLite engine: the error a caller sees is the one
that happened, and the store is usable once the fault clears.

A full disk is made with ``PRAGMA max_page_count`` (SQLite answers exactly as
on a full file system: SQLITE_FULL, "database or disk is full", and rolls the
transaction back itself); a failing COMMIT with a deferred foreign key.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest

from dialerd.store import open_store
from dialerd.store.sqlite import Store

T0 = 1_750_000_000.0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    # SQLite-specific faults: the SQLite class itself, opened the usual way
    s = cast(Store, await open_store(tmp_path / "faults.sqlite3"))
    try:
        yield s
    finally:
        await s.close()


def rows(n: int) -> list[tuple[str, int, str | None, str]]:
    return [(f"+4420794{i:05d}", 0, None, "{}") for i in range(n)]


async def test_a_full_disk_is_reported_as_a_full_disk(store: Store) -> None:
    await store.ensure_campaign("c")
    conn = store._conn
    async with conn.execute("PRAGMA page_count") as cur:
        pages = (await cur.fetchone())[0]  # type: ignore[index]
    await conn.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(sqlite3.OperationalError, match="full"):
        await store.insert_leads("c", rows(2000), T0)
    # the fault clears: the same store writes again, nothing half-written
    await conn.execute("PRAGMA max_page_count = 1073741823")
    assert await store.lead_counts("c") == {}
    assert await store.insert_leads("c", rows(10), T0) == 10


async def test_a_failed_commit_is_rolled_back(store: Store) -> None:
    await store.ensure_campaign("c")
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        async with store._tx() as db:
            await db.execute("PRAGMA defer_foreign_keys = ON")
            await db.execute(
                "INSERT INTO leads (campaign, phone, status, next_due_at, priority, fields,"
                " created_at, updated_at) "
                "VALUES ('no-such-campaign', '+442079460001', 'new', 0, 0, '{}', 0, 0)"
            )
    # the transaction did not stay open: the next write works
    assert await store.insert_leads("c", rows(3), T0) == 3
    assert sum((await store.lead_counts("c")).values()) == 3
