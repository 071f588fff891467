"""Numbered schema migrations, in the shape of mautrix-python's
``UpgradeTable``, for every backend.

Each migration runs in its own transaction together with the row that
records it in ``schema_version``, under a lock that a second process
opening the same database waits on (SQLite: ``BEGIN IMMEDIATE``;
PostgreSQL: a transaction-scoped advisory lock), and the version is read
again under that lock, so two processes opening a fresh database at once
(the daemon and ``leads import``) cannot both apply one migration. A crash
mid-upgrade leaves the database at the previous version, never in between.
Migrations are only ever appended: an installed database is upgraded, never
rebuilt, because it holds the attempt log a regulator may ask for.

The backends keep the same numbering and descriptions (a test compares
them), so "schema v6" means the same tables on both.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Generic, TypeVar

C = TypeVar("C")


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer dialerd: refuse rather than guess."""


@dataclass(frozen=True, slots=True)
class Migration(Generic[C]):
    version: int
    description: str
    upgrade: Callable[[C], Awaitable[None]]


class UpgradeTable(ABC, Generic[C]):
    """The migrations of one backend, whose connections are ``C``."""

    def __init__(self) -> None:
        self.migrations: list[Migration[C]] = []

    def register(
        self, description: str
    ) -> Callable[[Callable[[C], Awaitable[None]]], Callable[[C], Awaitable[None]]]:
        """Decorator: the next version number is the next migration's."""

        def deco(fn: Callable[[C], Awaitable[None]]) -> Callable[[C], Awaitable[None]]:
            self.migrations.append(Migration(len(self.migrations) + 1, description, fn))
            return fn

        return deco

    @property
    def latest(self) -> int:
        return len(self.migrations)

    # ------------------------------------------------- what a backend gives

    @abstractmethod
    async def ensure_version_table(self, conn: C) -> None:
        """Create ``schema_version`` (version, description, applied_at) if missing."""

    @abstractmethod
    async def current_version(self, conn: C) -> int:
        """The highest version recorded (0: none)."""

    @abstractmethod
    def locked(self, conn: C) -> AbstractAsyncContextManager[None]:
        """One transaction holding the migration lock: committed on a clean
        exit, rolled back on an exception."""

    @abstractmethod
    async def record(self, conn: C, version: int, description: str, at: float) -> None:
        """Insert the ``schema_version`` row."""

    # -------------------------------------------------------------- upgrade

    async def upgrade(self, conn: C) -> list[int]:
        """Apply pending migrations; returns the versions applied. Raises
        :class:`SchemaTooNewError` for a database newer than this code."""
        await self.ensure_version_table(conn)
        current = await self.current_version(conn)
        if current > self.latest:
            raise SchemaTooNewError(
                f"database schema is v{current}, this dialerd knows up to v{self.latest}"
            )
        applied: list[int] = []
        for mig in self.migrations:
            if mig.version <= current:
                continue
            async with self.locked(conn):
                if await self.current_version(conn) >= mig.version:  # another process won
                    continue
                await mig.upgrade(conn)
                await self.record(conn, mig.version, mig.description, time.time())
                applied.append(mig.version)
        return applied
