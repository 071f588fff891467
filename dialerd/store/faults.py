"""Which store failures time can mend, for every backend.

A failure of the store's *state* (locked, disk full, I/O error, the
connection to the server lost, the server restarting) is retried by the
daemon's write queue until it clears; a failure of the *write* itself (a
constraint, a bad value, a bug) is not, since retrying cannot help.

The daemon's queue (``dialerd.daemon.writes.transient``) retries SQLite's
operational errors and any ``OSError``. A PostgreSQL backend raises
:class:`dialerd.store.api.StoreTransientError` (an ``OSError``) for what
:func:`transient` calls transient here, so the queue retries it unchanged;
everything else keeps the driver's own exception. Pure: it reads the
SQLSTATE an exception carries and never imports a driver.
"""

from __future__ import annotations

import sqlite3

#: SQLSTATE classes (first two characters) that are the server's state:
#: 08 connection exception, 53 insufficient resources (disk full, out of
#: memory, too many connections), 58 system error (I/O)
_PG_CLASSES = frozenset({"08", "53", "58"})
#: single SQLSTATEs that are the server's state: 40001 serialization
#: failure, 40P01 deadlock, 55P03 lock not available (``lock_timeout``),
#: 57014 query cancelled (a statement timeout), 57P01-57P05 the server
#: shutting down, crashing, starting, or dropping an idle session, XX001 and
#: XX002 damaged data or index pages (being repaired)
_PG_STATES = frozenset(
    {"40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03", "57P04", "57P05"}
    | {"XX001", "XX002"}
)


def pg_transient(exc: BaseException) -> bool:
    """A PostgreSQL failure (by its SQLSTATE) that is the server's state, or
    the client's link to it (an ``OSError``, a timeout, a connection the
    driver found closed)."""
    if isinstance(exc, OSError | TimeoutError):
        return True
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str):
        return state[:2] in _PG_CLASSES or state in _PG_STATES
    # asyncpg's client-side "connection is closed" is an InterfaceError
    # without a SQLSTATE; its message is the only mark it carries
    return type(exc).__name__ == "ConnectionDoesNotExistError" or "connection is closed" in str(exc)


def transient(exc: BaseException) -> bool:
    """Any backend: a failure time can mend (retry), or the write's own."""
    if isinstance(exc, sqlite3.OperationalError | sqlite3.InternalError | OSError):
        return True
    if type(exc) is sqlite3.DatabaseError:  # "database disk image is malformed"
        return True
    return pg_transient(exc)
