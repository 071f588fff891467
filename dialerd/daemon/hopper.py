"""The hopper loader: the core's ``LoadLeads`` becomes a store fetch, each
lead is screened, and what may be dialed goes back as ``LeadsLoaded``.

Screening happens here, before the core sees a lead, because part of it
needs the store (how often the number was tried today, in its own time
zone); the verdict itself comes from ``screen_for_dial``, the one function
the core also runs again just before each Originate, with the core's own
DNC list and abandon lock, so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from dialerd.campaign.model import Campaign
from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.models import Lead
from dialerd.daemon.shell import Shell
from dialerd.rules.screening import screen_for_dial
from dialerd.rules.windows import local_day_start, zones_for_lead

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
        the limit is met or nothing is due."""
        sh = self.shell
        store = sh.need_store()
        camp = sh.campaigns.get(c.campaign)
        now = sh.clock()
        kept: list[Lead] = []
        exhausted = False
        for _ in range(OVERFETCH_ROUNDS):
            want = c.limit - len(kept)
            leads = await store.fetch_due_leads(c.campaign, now, want, frozenset())
            if len(leads) < want:
                exhausted = True
            for lead in leads:
                if camp is None:
                    kept.append(lead)
                    continue
                ok, skip = await self.screen(camp, lead, now)
                if ok is not None:
                    kept.append(ok)
                elif skip is not None:
                    self.execute(skip)
            if exhausted or len(kept) >= c.limit:
                break
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
