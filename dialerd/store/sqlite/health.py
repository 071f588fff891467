"""The store's write probe.

Apart from every area because it belongs to none: after a write failed
(full disk, locked file, I/O error) the daemon calls it to learn that the
store writes again, so it has to touch what a write-ahead touches (the
attempt and lead tables and their indexes) while leaving nothing behind.
"""

from __future__ import annotations

from dialerd.store.rows import PROBE_PAD
from dialerd.store.sqlite.base import SqliteBase


class HealthMixin(SqliteBase):
    """The write probe the daemon runs to learn the store takes writes again."""

    #: bytes the probe writes (``dialerd.store.rows.PROBE_PAD``)
    PROBE_PAD = PROBE_PAD

    async def check_writable(self, now: float) -> None:
        """Writes a few pages (the probe row) and passes through what a
        write-ahead touches (an attempt row and every index on attempts,
        a lead row and the hopper's indexes), leaving no change behind."""
        async with self._tx() as db:
            # the probe's attempt row has no lead: checked at COMMIT, when
            # it is gone again (the pragma ends with the transaction)
            await db.execute("PRAGMA defer_foreign_keys = ON")
            # REPLACE deletes and re-inserts: every page of the row is written
            await db.execute(
                "INSERT OR REPLACE INTO store_probe (id, at, pad) VALUES (1, ?, randomblob(?))",
                (now, self.PROBE_PAD),
            )
            await db.execute(
                "INSERT INTO attempts (id, campaign, lead_id, phone, state, started_at) "
                "VALUES ('~probe', '', 0, '', 'dialing', ?)",
                (now,),
            )
            await db.execute("DELETE FROM attempts WHERE id = '~probe'")
            await db.execute(
                "UPDATE leads SET status = status, held = held "
                "WHERE id = (SELECT MIN(id) FROM leads)"
            )
