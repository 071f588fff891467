"""The store's write probe (the SQLite backend's ``health.py``): a small
real write through what a write-ahead touches, leaving nothing behind."""

from __future__ import annotations

import os

from dialerd.store.postgres.base import PgBase
from dialerd.store.rows import PROBE_PAD


class HealthMixin(PgBase):
    """The write probe the daemon runs to learn the store takes writes again."""

    async def check_writable(self, now: float) -> None:
        """Writes the probe row (random, so incompressible: real pages) and
        passes through an attempt row and every index on attempts, and a
        lead row; committed, so the WAL is flushed as a real write's is."""
        async with self._tx() as db:
            # the probe's attempt row has no lead: checked at COMMIT, when
            # it is gone again
            await db.execute(
                "SET CONSTRAINTS attempts_lead_id_fkey, attempts_campaign_fkey DEFERRED"
            )
            await db.execute(
                "INSERT INTO store_probe (id, at, pad) VALUES (1, $1, $2) "
                "ON CONFLICT (id) DO UPDATE SET at = excluded.at, pad = excluded.pad",
                now,
                os.urandom(PROBE_PAD),
            )
            await db.execute(
                "INSERT INTO attempts (id, campaign, lead_id, phone, state, started_at) "
                "VALUES ('~probe', '', 0, '', 'dialing', $1)",
                now,
            )
            await db.execute("DELETE FROM attempts WHERE id = '~probe'")
            await db.execute(
                "UPDATE leads SET status = status, held = held "
                "WHERE id = (SELECT MIN(id) FROM leads)"
            )
