"""The one SQLite connection and the discipline every query keeps.

Apart from the areas (leads, attempts, DNC, agents) because it is the only
place that knows how the connection is shared: open it, migrate it, and run
every statement under one lock, a write in one ``BEGIN IMMEDIATE ...
COMMIT``. The area mixins inherit this class so that each of them (and mypy)
sees ``_tx`` and ``_fetchall``, and none of them touches the lock itself.

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
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Self

import aiosqlite

from dialerd.store.sqlite.migrations import upgrade_table

BUSY_TIMEOUT_MS = 5000


class SqliteBase:
    """The connection, its lock, and the two ways in: ``_tx`` (a write) and
    ``_fetchall`` (a read)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | Path) -> Self:
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

    async def explain(self, sql: str, params: Sequence[Any] = ()) -> list[str]:
        """``EXPLAIN QUERY PLAN`` details, so tests can prove a query uses its index."""
        rows = await self._fetchall(f"EXPLAIN QUERY PLAN {sql}", params)
        return [str(r[3]) for r in rows]
