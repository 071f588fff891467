"""Store backends for tests: one contract suite runs on each of them.

``tests/conftest.py`` parametrizes its ``store_backend`` fixture over
:data:`STORE_BACKENDS`; a test that takes it (or the ``store`` fixture built
on it) runs once per backend, as mautrix-python runs one crypto-store suite
on every implementation: SQLite on a file, and PostgreSQL on a private
cluster the sandbox starts (``dialerd.sandbox.postgres``, one per test
worker), one schema per test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dialerd.store import open_store
from dialerd.store.api import StoreApi

if TYPE_CHECKING:
    from dialerd.sandbox.postgres import PostgresCluster

#: the backends every store test runs on
STORE_BACKENDS = ("sqlite", "postgresql")


@dataclass(frozen=True, slots=True)
class StoreBackend:
    """One fresh store database for one test, and how to open it."""

    name: str
    #: what :func:`dialerd.store.open_store` is given (a file for SQLite, a
    #: ``postgresql://`` URL for PostgreSQL)
    target: Path | str
    #: what a broken constraint (a foreign key) raises on this backend
    integrity_error: type[Exception]
    #: PostgreSQL: the cluster and the schema the store lives in
    cluster: PostgresCluster | None = field(default=None, repr=False)
    schema: str | None = None

    async def open(self) -> StoreApi:
        """A NEW connection to this database (what another process sees),
        opened and migrated as the daemon opens it."""
        return await open_store(self.target)

    def settings(self) -> dict[str, str]:
        """The ``store:`` block of a dialerd.yaml on this database (for a
        daemon under test: ``seed_campaign(..., store=backend.settings())``)."""
        if self.name == "postgresql":
            return {"url": str(self.target)}
        return {"path": str(self.target)}

    def close(self) -> None:
        """Drop what the backend made for the test (its files go with ``workdir``)."""
        if self.cluster is not None and self.schema is not None:
            self.cluster.drop_schema(self.schema)


def make_backend(name: str, workdir: Path, cluster: PostgresCluster | None = None) -> StoreBackend:
    """A fresh, empty database of backend ``name`` for one test; its files
    (if any) go in ``workdir``; PostgreSQL's in a new schema of ``cluster``."""
    if name == "sqlite":
        import aiosqlite

        return StoreBackend(name, workdir / "d.sqlite3", aiosqlite.IntegrityError)
    if name == "postgresql":
        if cluster is None:
            raise ValueError("the postgresql backend needs a running PostgresCluster")
        import asyncpg

        schema = cluster.create_schema()
        return StoreBackend(
            name,
            cluster.url(search_path=schema, application_name=schema),
            asyncpg.IntegrityConstraintViolationError,
            cluster,
            schema,
        )
    raise ValueError(f"unknown store backend {name!r} (known: {', '.join(STORE_BACKENDS)})")
