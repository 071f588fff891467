"""Preview mode: each ready agent is offered a lead, and nothing is dialed
until the agent accepts it (by key, or by letting the offer time out).

Why apart from the pacing step: a preview campaign takes no pacing
decision at all (one offer per ready agent); what it shares with the
predictive modes is only the hopper and the call table below it. The hold
on an offered lead is kept in :mod:`dialerd.core.agents` (an agent who
leaves or pauses gives it back).
"""

from __future__ import annotations

from dialerd.core import agents, calls, hopper
from dialerd.core import commands as cmd
from dialerd.core.context import CoreContext
from dialerd.core.models import AgentStatus
from dialerd.core.state import Agent, CampaignRun


def offer(cx: CoreContext, run: CampaignRun, now: float) -> None:
    """Every ready agent is offered a lead (screen pop and a tone)."""
    for aid in list(run.ready):
        lead = hopper.next_lead(cx, run, now)
        if lead is None:
            return
        agent = cx.agents[aid]
        cx.set_status(agent, AgentStatus.PREVIEW)
        agent.since = agent.offer_at = now
        agent.offer = lead
        cx.live_leads.add(lead.id)  # held: never in a call meanwhile
        cx.offers[aid] = None
        cx.emit(cmd.ScreenPop(aid, run.cfg.name, "offer", lead, now))
        cx.emit(cmd.AgentPrompt(aid, agent.channel, "offer"))
        agents.changed(cx, agent, now)


def closed_to_agents(cx: CoreContext, run: CampaignRun) -> str | None:
    """Why an agent's own call (a preview accept, a manual dial) cannot
    go out now, or None. A supervisor's pause stops every new dial from
    the campaign's trunk, the agent's own included."""
    if not run.active or cx.draining or not cx.ami_up:
        return "campaign not dialing"
    if cx.store_down:
        return "store down"
    if run.paused:
        return "campaign paused"
    return None


def accept(cx: CoreContext, agent: Agent, now: float) -> tuple[bool, str, str]:
    """Dial the agent's offered lead for them: (ok, prompt, detail)."""
    run = cx.run_of(agent)
    lead = agents.take_offer(cx, agent)
    if lead is None or run is None:
        return False, "invalid", "no offer"
    closed = closed_to_agents(cx, run)
    if closed is not None:
        cx.emit(cmd.ReleaseLeads(run.cfg.name, (lead.id,)))
        agents.make_ready(cx, agent, now)
        return False, "refused", closed
    if not hopper.may_dial(cx, run, lead, now):  # time passed since the offer
        agents.make_ready(cx, agent, now)
        return False, "refused", "lead no longer dialable"
    calls.place(cx, run, lead, now, agent)
    return True, "calling", lead.phone


def time_out(cx: CoreContext, now: float) -> None:
    """Offers past the campaign's ``preview.timeout_s`` are dialed."""
    for aid in list(cx.offers):
        agent = cx.agents.get(aid)
        run = cx.run_of(agent) if agent is not None else None
        if agent is None or run is None:
            cx.offers.pop(aid, None)
            continue
        timeout = run.cfg.preview.timeout_s
        if timeout > 0 and now - agent.offer_at >= timeout:
            ok, _prompt, detail = accept(cx, agent, now)
            cx.emit(cmd.AgentAction(aid, agent.campaign, "preview_timeout", detail, ok, now))


def previewing(cx: CoreContext, name: str) -> int:
    """Agents of campaign ``name`` looking at a preview offer."""
    return sum(1 for aid in cx.offers if (a := cx.agents.get(aid)) and a.campaign == name)
