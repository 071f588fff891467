"""The SQLite store, the default backend.

One class, :class:`Store`, as the contract wants it (callers hold one
object), built from one mixin per area (``leads``, ``attempts``, ``dnc``,
``agents``, ``health``) over ``base.SqliteBase``. Mixins rather than area
objects the store delegates to, because every area must run on the same
connection under the same lock (that lock is what keeps one coroutine's
statements out of another's transaction), and delegation would mean a
forwarding method for each of the contract's calls. Each mixin inherits
the base, so mypy (strict) checks its every use of ``_tx`` and
``_fetchall``; no mixin calls another's methods, and ``store.py`` alone
composes them.

Open it through :func:`dialerd.store.open_store`, not ``Store.open``.
"""

from __future__ import annotations

from dialerd.store.sqlite.base import BUSY_TIMEOUT_MS
from dialerd.store.sqlite.leads import CALLBACK_SQL, HOPPER_SQL
from dialerd.store.sqlite.store import Store

__all__ = ["BUSY_TIMEOUT_MS", "CALLBACK_SQL", "HOPPER_SQL", "Store"]
