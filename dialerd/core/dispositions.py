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
