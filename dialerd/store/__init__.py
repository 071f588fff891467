"""The store: every lead, attempt, disposition and DNC entry.

Open it through :func:`open_store` or :func:`store_session` (never
``Store.open`` directly), so that the daemon, the CLI, the benchmarks and the
tests all reach the store the same way and a second backend is one change in
one place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from dialerd.settings import Settings, StoreSettings
from dialerd.store.api import StoreApi
from dialerd.store.sqlite import Store


def _path(where: Settings | StoreSettings | str | Path) -> Path:
    if isinstance(where, Settings):
        return Path(where.store.path)
    if isinstance(where, StoreSettings):
        return Path(where.path)
    return Path(where)


async def open_store(where: Settings | StoreSettings | str | Path) -> StoreApi:
    """The store named by ``where`` (the daemon's settings, their ``store:``
    block, or a file path), opened and migrated. Typed as the contract, so
    a caller cannot come to depend on one backend's extras."""
    return await Store.open(_path(where))


@asynccontextmanager
async def store_session(where: Settings | StoreSettings | str | Path) -> AsyncIterator[StoreApi]:
    """``open_store`` for one block; the store is closed on the way out."""
    store = await open_store(where)
    try:
        yield store
    finally:
        await store.close()
