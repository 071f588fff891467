"""Lead supply: the per-campaign hopper, its refills and the last check
before a lead is dialed.

Why the check lives with the hopper: a lead leaves the hopper only through
:func:`next_lead` (or a preview accept, a manual dial), and every way out
goes through :func:`may_dial`, which asks the ONE screening function
(:func:`dialerd.rules.screening.screen_for_dial`, also used by the daemon's
hopper loader). A DNC entry or an abandon may have come since the store
handed the lead over; a refused lead is skipped with its reason, never
dialed.
"""

from __future__ import annotations

from collections import deque

from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.context import CoreContext
from dialerd.core.models import Lead
from dialerd.core.state import CampaignRun
from dialerd.rules.screening import screen_for_dial

#: ask for more leads when the hopper holds fewer than this many per line
HOPPER_LINES_FACTOR = 2
HOPPER_MIN = 10
#: after the store said "nothing due", wait this long before asking again
EXHAUSTED_RETRY_S = 5.0
#: a ``LoadLeads`` unanswered this long is given up and asked again (the
#: shell always answers, even when the store fails; this is the backstop)
LOAD_TIMEOUT_S = 60.0


def leads_loaded(cx: CoreContext, e: ev.LeadsLoaded) -> None:
    run = cx.campaigns.get(e.campaign)
    if run is None:
        cx.emit(cmd.ReleaseLeads(e.campaign, tuple(ld.id for ld in e.leads)))
        return
    run.loading = False
    run.exhausted_at = e.now if e.exhausted else None
    dropped: list[int] = []
    for lead in e.leads:
        if not run.active or cx.draining:
            dropped.append(lead.id)
        elif lead.id in run.hopper_ids or lead.id in cx.live_leads:
            continue  # already held: never two calls for one lead
        else:
            run.hopper.append(lead)
            run.hopper_ids.add(lead.id)
    if dropped:
        cx.emit(cmd.ReleaseLeads(e.campaign, tuple(dropped)))
    cx.dirty.add(e.campaign)


def refill(cx: CoreContext, run: CampaignRun, now: float) -> None:
    """Ask the store for more leads when the hopper runs low (one request
    at a time; after "nothing due", not again for a while)."""
    want = max(HOPPER_MIN, HOPPER_LINES_FACTOR * run.cfg.max_lines)
    if (
        len(run.hopper) < want
        and not run.loading
        and (run.exhausted_at is None or now - run.exhausted_at >= EXHAUSTED_RETRY_S)
    ):
        run.loading = True
        run.loading_since = now
        cx.emit(cmd.LoadLeads(run.cfg.name, want - len(run.hopper)))


def watch_loads(cx: CoreContext, now: float) -> None:
    """A ``LoadLeads`` that never got its ``LeadsLoaded`` must not stop its
    campaign for good: past ``LOAD_TIMEOUT_S`` it counts as answered with
    nothing (a late answer is still taken: leads already held are not
    added twice)."""
    for name, run in cx.campaigns.items():
        if run.loading and now - run.loading_since >= LOAD_TIMEOUT_S:
            run.loading = False
            cx.dirty.add(name)


def give_back(run: CampaignRun, lead: Lead) -> None:
    """A lead taken for a call that was never placed: first in line again."""
    if lead.id not in run.hopper_ids:
        run.hopper.appendleft(lead)
        run.hopper_ids.add(lead.id)


def release(cx: CoreContext, run: CampaignRun) -> None:
    """Hand every lead of the hopper back to the store."""
    if run.hopper:
        cx.emit(cmd.ReleaseLeads(run.cfg.name, tuple(lead.id for lead in run.hopper)))
    run.hopper.clear()
    run.hopper_ids.clear()


def take(run: CampaignRun, lead_id: int) -> None:
    """Take one lead out of the hopper (an agent dials it by hand)."""
    if lead_id in run.hopper_ids:
        run.hopper_ids.discard(lead_id)
        run.hopper = deque(ld for ld in run.hopper if ld.id != lead_id)


def next_lead(cx: CoreContext, run: CampaignRun, now: float) -> Lead | None:
    """The next lead of the hopper that may be dialed now (the others
    are skipped with their reason)."""
    while run.hopper:
        lead = run.hopper.popleft()
        run.hopper_ids.discard(lead.id)
        if lead.id in cx.live_leads:
            continue
        if may_dial(cx, run, lead, now):
            return lead
    return None


def may_dial(cx: CoreContext, run: CampaignRun, lead: Lead, now: float) -> bool:
    """The last check before the Originate; a refused lead is skipped with
    its reason (a ``SkipLead`` command), never dialed."""
    c = run.cfg
    if cx.screen:
        verdict = screen_for_dial(c, lead, now, dnc=cx.dnc, lock=cx.lock)
        if not verdict.ok:
            cx.emit(
                cmd.SkipLead(c.name, lead.id, verdict.reason, verdict.detail, now, verdict.retry_at)
            )
            return False
    else:
        blocked = cx.dnc.is_blocked(c.name, lead.phone)
        if blocked is not None:
            cx.emit(cmd.SkipLead(c.name, lead.id, blocked.partition(":")[0], blocked, now, None))
            return False
    if (
        lead.callback_agent is not None
        and lead.callback_until is not None
        and now < lead.callback_until
        and lead.callback_agent not in run.ready
    ):
        # a personal callback waits for its agent until the grace ends
        cx.emit(
            cmd.SkipLead(
                c.name,
                lead.id,
                "callback_agent_busy",
                f"agent {lead.callback_agent} not ready",
                now,
                min(now + 10.0, lead.callback_until),
            )
        )
        return False
    return True


def screen_manual(cx: CoreContext, run: CampaignRun, lead: Lead, now: float) -> str | None:
    """Why a number an agent keyed may not be dialed now, or None: the same
    DNC, calling-hours and 72-hour checks as any lead, not the attempt
    limits (a person chose to call)."""
    c = run.cfg
    if cx.screen:
        verdict = screen_for_dial(c, lead, now, dnc=cx.dnc, lock=cx.lock, manual=True)
        if not verdict.ok:
            return verdict.reason
    elif cx.dnc.is_blocked(c.name, lead.phone) is not None:
        return "dnc"
    return None
