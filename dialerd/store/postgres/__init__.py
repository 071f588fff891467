"""The PostgreSQL store (asyncpg), for a centre past one box: chosen by
``store: {url: postgresql://user@host:port/db}`` in ``dialerd.yaml``.

Built like the SQLite backend (``dialerd.store.sqlite``): one class,
:class:`Store`, from one mixin per area (``leads``, ``attempts``, ``dnc``,
``agents``, ``health``) over ``base.PgBase`` (the pool, ``_tx``,
``_fetch``), with numbered migrations in ``migrations.py``. What both
backends do alike (row mapping, checks, statement values, which failures
are transient) is in ``dialerd.store.rows`` and ``dialerd.store.faults``;
only the SQL differs.

Nothing here imports ``asyncpg`` at import time: the package is loaded when
a store is opened, so a SQLite install runs without it.

Open it through :func:`dialerd.store.open_store`, not ``Store.open``.
"""

from __future__ import annotations

from dialerd.store.postgres.base import LOCK_TIMEOUT_MS
from dialerd.store.postgres.leads import CLAIM_CALLBACKS_SQL, CLAIM_HOPPER_SQL
from dialerd.store.postgres.store import Store

__all__ = ["CLAIM_CALLBACKS_SQL", "CLAIM_HOPPER_SQL", "LOCK_TIMEOUT_MS", "Store"]
