"""The connection pool and the discipline every query keeps.

Apart from the areas (leads, attempts, DNC, agents) because it is the only
place that knows how connections are had: open the pool, migrate, and run
every statement through ``_tx`` (a write: one transaction, committed before
it returns) or ``_fetch`` / ``_fetchrow`` (a read). The area mixins inherit
this class so that each of them (and mypy) sees those, and none of them
touches the pool itself.

A pool rather than SQLite's one connection and lock: the server serialises
what must be serialised (row locks, ``FOR UPDATE SKIP LOCKED``), so the
daemon's tasks need not wait for each other's transactions. Each call takes
one connection for one transaction; a connection the server dropped
(``pg_terminate_backend``, a restart) fails that call as
:class:`StoreTransientError`, which the daemon's write queue retries, and
the pool opens a new one for the next.

``asyncpg`` is imported here, lazily: a SQLite install never needs it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from dialerd.store.api import StoreTransientError, StoreUnavailableError
from dialerd.store.faults import pg_transient
from dialerd.store.postgres.migrations import upgrade_table

#: how long a statement waits for a lock another transaction holds before it
#: fails (transient, retried): SQLite's busy timeout. Set per connection;
#: a ``?lock_timeout=...`` in the store's URL wins
LOCK_TIMEOUT_MS = 5000
#: connections the daemon may use at once (the hopper, the write-ahead, the
#: writer, the DNC poll, reports)
POOL_MAX = 4
#: TCP connect + authentication deadline
CONNECT_TIMEOUT_S = 10.0


def asyncpg_module() -> Any:
    """``asyncpg``, imported on first use (only a ``postgresql://`` store needs it)."""
    try:
        import asyncpg
    except ImportError as exc:  # pragma: no cover - a dependency of dialerd
        raise StoreUnavailableError(
            "a postgresql:// store needs the asyncpg package (pip install asyncpg)"
        ) from exc
    return asyncpg


def transient_error(exc: BaseException) -> StoreTransientError | None:
    """The :class:`StoreTransientError` to raise for a driver failure that
    is the server's state (``dialerd.store.faults``), or None: the call's own.
    Its message names the first failure: a statement that lost its
    connection also fails the transaction's exit ("the underlying
    connection is closed"), and that second error hides the first."""
    if isinstance(exc, StoreTransientError) or not pg_transient(exc):
        return None
    first = exc
    while first.__context__ is not None and pg_transient(first.__context__):
        first = first.__context__
    return StoreTransientError(f"{type(first).__name__}: {first}")


@contextmanager
def mapped_errors() -> Iterator[None]:
    """Re-raise a driver failure that is the server's state as
    :class:`StoreTransientError` (its cause kept); anything else as it is."""
    try:
        yield
    except Exception as exc:
        mapped = transient_error(exc)
        if mapped is None:
            raise
        raise mapped from exc


def server_settings(url: str) -> dict[str, str]:
    """The session settings every connection starts with, less those the
    URL's query sets itself."""
    given = parse_qs(urlsplit(url).query)
    ours = {"lock_timeout": str(LOCK_TIMEOUT_MS), "application_name": "dialerd"}
    return {k: v for k, v in ours.items() if k not in given}


def rowcount(status: str) -> int:
    """Rows a statement touched, from its command tag (``UPDATE 3``,
    ``INSERT 0 5``, ``DELETE 1``)."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class PgBase:
    """The pool, and the ways in: ``_tx`` (a write), ``_fetch`` / ``_fetchrow`` (reads)."""

    def __init__(self, pool: Any, url: str) -> None:
        self._pool = pool
        self._url = url

    @classmethod
    async def open(cls, url: str) -> Self:
        """Connect, migrate, and return the store. A server that cannot be
        reached raises (the caller names it), never waits forever."""
        asyncpg = asyncpg_module()
        pool = await asyncpg.create_pool(
            url,
            min_size=1,
            max_size=POOL_MAX,
            timeout=CONNECT_TIMEOUT_S,
            server_settings=server_settings(url),
        )
        try:
            async with pool.acquire() as conn:
                await upgrade_table.upgrade(conn)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, url)

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[Any]:
        """One write transaction on a connection of its own (read
        committed: the hopper's claim takes its rows with ``FOR UPDATE
        SKIP LOCKED``, so it needs no stronger isolation)."""
        with mapped_errors():
            async with self._pool.acquire() as conn, conn.transaction():
                yield conn

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        with mapped_errors():
            async with self._pool.acquire() as conn:
                return list(await conn.fetch(sql, *args))

    async def _fetchrow(self, sql: str, *args: Any) -> Sequence[Any] | None:
        rows = await self._fetch(sql, *args)
        return rows[0] if rows else None

    async def _execute(self, sql: str, *args: Any) -> int:
        """One statement in its own transaction; returns the rows it touched."""
        async with self._tx() as db:
            return rowcount(await db.execute(sql, *args))

    async def explain(self, sql: str, *args: Any) -> list[str]:
        """``EXPLAIN`` lines, so tests can prove a query uses its index."""
        rows = await self._fetch(f"EXPLAIN {sql}", *args)
        return [str(r[0]) for r in rows]
