"""An agent's disposition of their last call.

Why apart from the keys: a disposition is applied from two places, the
key pressed in wrap-up (:mod:`dialerd.core.keys`) and the end of a call on
which it was pressed while still talking (:mod:`dialerd.core.calls`). The
keys module dials (manual dial) and so sits above the call table; this one
sits below it, which keeps the import graph free of cycles.
"""

from __future__ import annotations

from dialerd.core import agents
from dialerd.core import commands as cmd
from dialerd.core.context import CoreContext
from dialerd.core.models import AgentStatus
from dialerd.core.state import Agent
from dialerd.rules.dispositions import decide_disposition, find


def dispose(cx: CoreContext, agent: Agent, key: str, minutes: int | None, now: float) -> str | None:
    """Record the disposition of the agent's last call; its code, or None
    when there is no call to dispose or the key means nothing."""
    if agent.last_inbound is not None:
        return _dispose_inbound(cx, agent, key, minutes, now)
    if agent.last_call is None:
        return None
    attempt_id, lead, campaign = agent.last_call
    run = cx.campaigns.get(campaign)
    if run is None:
        return None
    dispo = find(run.cfg.compliance.dispositions, dtmf=key)
    if dispo is None:
        return None
    agent.last_call = None
    cb_at = now + minutes * 60 if minutes else None
    d = decide_disposition(dispo, lead.id, lead.attempts + 1, now, callback_at=cb_at)
    personal = dispo.callback and run.cfg.callback_personal
    due = d.lead.next_due_at
    cx.emit(
        cmd.RecordDisposition(
            attempt_id=attempt_id,
            campaign=campaign,
            lead_id=lead.id,
            phone=lead.phone,
            code=dispo.code,
            lead=d.lead,
            at=now,
            dnc=None if d.dnc is None else d.dnc.value,
            callback=dispo.callback,
            callback_agent=agent.id if personal else None,
            callback_until=(
                due + run.cfg.callback_grace_s if personal and due is not None else None
            ),
        )
    )
    if d.dnc is not None:
        cx.dnc.add(
            lead.phone,
            None if d.dnc.value == "global" else campaign,
            f"disposition:{dispo.code}",
        )
    if agent.status is AgentStatus.WRAP:
        agents.make_ready(cx, agent, now)  # the disposition ends the wrap-up
    return dispo.code


def _dispose_inbound(
    cx: CoreContext, agent: Agent, key: str, minutes: int | None, now: float
) -> str | None:
    """An inbound caller has no lead of their own: the code goes on their
    row, a do-not-call code blocks their number, a callback code makes a
    callback lead for them in the agent's campaign (its dispositions are
    the keys the agent knows)."""
    assert agent.last_inbound is not None
    run = cx.run_of(agent)
    if run is None:
        return None
    dispo = find(run.cfg.compliance.dispositions, dtmf=key)
    if dispo is None:
        return None
    call_id, queue, caller = agent.last_inbound
    agent.last_inbound = None
    cb_at = now + minutes * 60 if minutes else None
    d = decide_disposition(dispo, 0, 1, now, callback_at=cb_at)
    campaign = run.cfg.name
    callback = d.lead.next_due_at if dispo.callback and caller else None
    dnc = d.dnc.value if d.dnc is not None and caller else None
    cx.emit(
        cmd.DisposeInbound(
            call_id, queue, campaign, caller, agent.id, dispo.code, now, dnc, callback
        )
    )
    if dnc is not None:
        cx.dnc.add(caller, None if dnc == "global" else campaign, f"disposition:{dispo.code}")
    if agent.status is AgentStatus.WRAP:
        agents.make_ready(cx, agent, now)
    return dispo.code
