"""What the core must know before its first dial: the DNC lists and the
last 30 days of outcomes (abandon accounting, the 72-hour lock).

The DNC table is also written while the daemon runs (``dialerd dnc add``,
from another process), so it is polled: a cheap stamp each time, the whole
list only when the stamp moved.
"""

from __future__ import annotations

import structlog

from dialerd.core import events as ev
from dialerd.daemon.shell import Shell
from dialerd.daemon.writes import describe
from dialerd.rules.abandon import DAYS_30

log = structlog.get_logger("dialerd")

#: how often the DNC table is checked for changes made by ``dialerd dnc``
DNC_REFRESH_S = 5.0


class ComplianceFeed:
    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        self._dnc_stamp: tuple[float, ...] | None = None

    async def load(self) -> None:
        """Queued for the core ahead of anything that could make it dial."""
        sh = self.shell
        await self.refresh_dnc()
        now = sh.clock()
        hist = await sh.need_store().recent_outcomes(now - DAYS_30)
        sh.put(ev.HistoryLoaded(now, tuple(hist)))
        log.info("compliance.loaded", dnc=len(sh.core.dnc), outcomes_30d=len(hist))

    async def refresh_dnc(self) -> None:
        """The core gets the whole list again when the table changed."""
        sh = self.shell
        store = sh.need_store()
        stamp = await store.dnc_stamp()
        if stamp == self._dnc_stamp:
            return
        entries = await store.dnc_entries()
        self._dnc_stamp = stamp
        sh.put(ev.DncUpdated(sh.clock(), tuple(entries), replace=True))

    async def poll_dnc(self) -> None:
        """The running daemon's poll: a DNC list that cannot be read may be
        stale, so the store is down (no new dials) until it reads again."""
        try:
            await self.refresh_dnc()
        except Exception as exc:
            log.error("compliance.dnc_poll_failed", error=describe(exc))
            # cleared when the list is read again (by the writer's checks, or
            # the next poll)
            self.shell.writer.failed("dnc_poll", exc, lambda _store: self.refresh_dnc())
            return
        self.shell.writer.succeeded("dnc_poll", write=False)
