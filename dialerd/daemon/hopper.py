"""The hopper loader: the core's ``LoadLeads`` becomes a store fetch, each
lead is screened, and what may be dialed goes back as ``LeadsLoaded``.

Screening happens here, before the core sees a lead, because part of it
needs the store (how often the number was tried today, in its own time
zone); the verdict itself comes from ``screen_for_dial``, the one function
the core also runs again just before each Originate, with the core's own
DNC list and abandon lock, so the two can never disagree.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import replace

import structlog

from dialerd.campaign.model import Campaign
from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.models import Lead
from dialerd.daemon.shell import Shell
from dialerd.daemon.writes import Check, describe
from dialerd.rules.screening import screen_for_dial
from dialerd.rules.windows import local_day_start, zones_for_lead
from dialerd.store.api import StoreApi

log = structlog.get_logger("dialerd")

#: fetch rounds per LoadLeads: refused leads are replaced by asking again,
#: up to this many times, so a list full of DNC numbers cannot spin
OVERFETCH_ROUNDS = 5


class HopperLoader:
    def __init__(self, shell: Shell, execute: Callable[[cmd.Command], None]) -> None:
        self.shell = shell
        #: refused leads become ``SkipLead`` commands, carried out (logged,
        #: recorded, published) like any command of the core
        self.execute = execute

    async def load(self, c: cmd.LoadLeads) -> None:
        """Due leads from the index, each screened (DNC, attempt limits, the
        72-hour lock, calling windows). Refused leads are recorded and
        postponed (or finished); the store is asked again for more until
        the limit is met or nothing is due.

        The core always gets its ``LeadsLoaded`` (from the ``finally``), or
        its campaign would wait for it forever. When the store fails, the
        leads screened so far go to the core, the leads fetched but not
        screened go back to the store, and the answer says "nothing more
        due" (the core asks again after a pause); the store is down until
        a write works again."""
        sh = self.shell
        kept: list[Lead] = []
        unscreened: deque[Lead] = deque()
        exhausted = False
        op = "fetch_due_leads"
        try:
            store = sh.need_store()
            camp = sh.campaigns.get(c.campaign)
            now = sh.clock()
            for _ in range(OVERFETCH_ROUNDS):
                want = c.limit - len(kept)
                op = "fetch_due_leads"
                leads = await store.fetch_due_leads(c.campaign, now, want, frozenset())
                sh.writer.succeeded("fetch_due_leads", write=True)
                unscreened.extend(leads)
                if len(leads) < want:
                    exhausted = True
                op = "attempts_since"
                while unscreened:
                    lead = unscreened[0]
                    if camp is None:
                        kept.append(lead)
                    else:
                        ok, skip = await self.screen(camp, lead, now)
                        if ok is not None:
                            kept.append(ok)
                        elif skip is not None:
                            self.execute(skip)
                    unscreened.popleft()
                if exhausted or len(kept) >= c.limit:
                    break
        except Exception as exc:
            exhausted = True
            check: Check | None = None  # a failed fetch (a write): any write
            if op == "attempts_since" and unscreened:
                # a read: cleared when that same read works again
                lead_id = unscreened[0].id

                async def check(store: StoreApi) -> int:
                    return await store.attempts_since(lead_id, 0.0)

            sh.writer.failed(op, exc, check)
            log.error(
                "hopper.load_failed",
                campaign=c.campaign,
                op=op,
                error=describe(exc),
                kept=len(kept),
                released=len(unscreened),
            )
        finally:
            if unscreened:
                self.execute(cmd.ReleaseLeads(c.campaign, tuple(ld.id for ld in unscreened)))
            sh.put(ev.LeadsLoaded(sh.clock(), c.campaign, tuple(kept), exhausted))

    async def screen(
        self, camp: Campaign, lead: Lead, now: float
    ) -> tuple[Lead | None, cmd.SkipLead | None]:
        """The lead (with today's attempt count) if it may be dialed, else
        the skip to record."""
        core = self.shell.core
        zones = zones_for_lead(lead.phone, lead.timezone)
        today = 0
        if zones:
            today = await self.shell.need_store().attempts_since(
                lead.id, local_day_start(zones, now)
            )
        verdict = screen_for_dial(
            camp, lead, now, dnc=core.dnc, lock=core.lock, attempts_today=today
        )
        if verdict.ok:
            return replace(lead, attempts_today=today), None
        return None, cmd.SkipLead(
            camp.name, lead.id, verdict.reason, verdict.detail, now, verdict.retry_at
        )
