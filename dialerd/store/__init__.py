"""The store: every lead, attempt, disposition and DNC entry.

Open it through :func:`open_store` or :func:`store_session` (never
``Store.open`` directly), so that the daemon, the CLI, the benchmarks and the
tests all reach the store the same way. Two backends: SQLite (a file, the
default, ``dialerd.store.sqlite``) and PostgreSQL (``store: {url:
postgresql://...}``, ``dialerd.store.postgres``, whose driver is imported
only when such a store is opened).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from dialerd.settings import POSTGRES_SCHEMES, Settings, StoreSettings
from dialerd.store.api import StoreApi
from dialerd.store.sqlite import Store


def _target(where: Settings | StoreSettings | str | Path) -> str | Path:
    """A PostgreSQL URL, or a SQLite file."""
    if isinstance(where, Settings):
        where = where.store
    if isinstance(where, StoreSettings):
        return where.url if where.url is not None else Path(where.path)
    if isinstance(where, str) and where.startswith(POSTGRES_SCHEMES):
        return where
    return Path(where)


async def open_store(where: Settings | StoreSettings | str | Path) -> StoreApi:
    """The store named by ``where`` (the daemon's settings, their ``store:``
    block, a ``postgresql://`` URL or a SQLite file path), opened and
    migrated. Typed as the contract, so a caller cannot come to depend on
    one backend's extras."""
    target = _target(where)
    if isinstance(target, str):
        from dialerd.store.postgres import Store as PgStore

        return await PgStore.open(target)
    return await Store.open(target)


@asynccontextmanager
async def store_session(where: Settings | StoreSettings | str | Path) -> AsyncIterator[StoreApi]:
    """``open_store`` for one block; the store is closed on the way out."""
    store = await open_store(where)
    try:
        yield store
    finally:
        await store.close()
