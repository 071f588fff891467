"""Store backends for tests: one contract suite runs on each of them.

``tests/conftest.py`` parametrizes its ``store_backend`` fixture over
:data:`STORE_BACKENDS`; a test that takes it (or the ``store`` fixture built
on it) runs once per backend, as mautrix-python runs one crypto-store suite
on every implementation. Today there is one backend, SQLite on a file; a
PostgreSQL one is one more name here and one more branch in
:func:`make_backend` (a private server from the sandbox, one database per
test), and every store test then runs on it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from dialerd.store import open_store
from dialerd.store.api import StoreApi

#: the backends every store test runs on
STORE_BACKENDS = ("sqlite",)


@dataclass(frozen=True, slots=True)
class StoreBackend:
    """One fresh store database for one test, and how to open it."""

    name: str
    #: what :func:`dialerd.store.open_store` is given (a file for SQLite)
    target: Path
    #: what a broken constraint (a foreign key) raises on this backend
    integrity_error: type[Exception]

    async def open(self) -> StoreApi:
        """A NEW connection to this database (what another process sees),
        opened and migrated as the daemon opens it."""
        return await open_store(self.target)


def make_backend(name: str, workdir: Path) -> StoreBackend:
    """A fresh, empty database of backend ``name`` for one test; its files
    (if any) go in ``workdir``."""
    if name == "sqlite":
        return StoreBackend(name, workdir / "d.sqlite3", aiosqlite.IntegrityError)
    raise ValueError(f"unknown store backend {name!r} (known: {', '.join(STORE_BACKENDS)})")
