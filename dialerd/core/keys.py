"""Agents' keys in their room (dispositions, ready, pause, skip, logout)
and the manual dial.

Why together: each is an agent asking for something by DTMF, and each gets
the same treatment: act if allowed, answer the dialplan that waits
(``AgentAck``), record the request and its verdict (``AgentAction``). The
verdicts are (ok, prompt, detail) triples so that the answer and the record
cannot disagree.
"""

from __future__ import annotations

from dialerd.core import agents, calls, dispositions, hopper, preview
from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.context import CoreContext
from dialerd.core.models import AgentStatus
from dialerd.core.state import Agent
from dialerd.rules.dispositions import find

_S = AgentStatus


def agent_key(cx: CoreContext, e: ev.AgentKey) -> None:
    """An agent's key: act, answer the waiting dialplan, record it."""
    agent = cx.agents.get(e.agent_id)
    if agent is None:
        ok, prompt, detail = False, "invalid", "not logged in"
    else:
        ok, prompt, detail = _key(cx, agent, e)
    if e.channel:
        cx.emit(cmd.AgentAck(e.channel, ok, prompt))
    action = f"disposition {e.key}" if e.key.isdigit() else e.key
    detail = f"{e.data} {detail}".strip() if e.data else detail
    campaign = agent.campaign if agent is not None else None
    cx.emit(cmd.AgentAction(e.agent_id, campaign, action, detail, ok, e.now))


def _key(cx: CoreContext, agent: Agent, e: ev.AgentKey) -> tuple[bool, str, str]:
    now, st = e.now, agent.status
    on_call = st in (_S.TALKING, _S.RESERVED)
    if e.key.isdigit():
        minutes = int(e.data) if e.data.isdigit() else None
        if on_call and agent.call:
            run = cx.run_of(agent)
            if run is None or find(run.cfg.compliance.dispositions, dtmf=e.key) is None:
                return False, "invalid", "no such disposition key"
            agent.pending_dispo = (e.key, minutes)  # applied when the call ends
            return True, "ok", "applied when the call ends"
        code = dispositions.dispose(cx, agent, e.key, minutes, now)
        if code is None:
            return False, "invalid", "no call to dispose or no such key"
        return True, "ok", code
    if e.key == "ready":
        if st is _S.PREVIEW:
            return preview.accept(cx, agent, now)
        if st in (_S.WRAP, _S.PAUSED):
            agents.make_ready(cx, agent, now)
            return True, "ready", f"from {st.value}"
        if agent.pause_pending:
            agent.pause_pending = False
            return True, "ready", "pause cancelled"
        if st is _S.READY:
            return True, "ready", "already ready"
        return False, "invalid", "on a call"
    if e.key == "pause":
        if st is _S.PAUSED:
            agent.pause_reason = e.data
            agents.changed(cx, agent, now)
            return True, "paused", "reason changed"
        agents.pause(cx, agent.id, True, now, e.data)
        return True, "paused", "after the call" if agent.pause_pending else ""
    if e.key == "skip":
        if st is not _S.PREVIEW:
            return False, "invalid", "no offer"
        agents.drop_offer(cx, agent, now, skipped=True)
        agents.make_ready(cx, agent, now)
        return True, "ok", ""
    if e.key == "logout":
        if on_call:
            return False, "invalid", "on a call"
        if st is _S.PREVIEW:
            agents.drop_offer(cx, agent, now, skipped=False)
        return True, "goodbye", ""  # the dialplan hangs up: AgentLeft follows
    return False, "invalid", f"unknown key {e.key!r}"


def manual_dial(cx: CoreContext, e: ev.ManualDial) -> None:
    agent = cx.agents.get(e.agent_id)
    if agent is None:
        ok, prompt, detail = False, "invalid", "not logged in"
    else:
        ok, prompt, detail = _manual(cx, agent, e)
    if not ok and e.lead.id not in cx.live_leads:
        # the shell holds the lead for this call: hand it back
        cx.emit(cmd.ReleaseLeads(e.lead.campaign, (e.lead.id,)))
    if e.channel:
        cx.emit(cmd.AgentAck(e.channel, ok, prompt))
    campaign = agent.campaign if agent is not None else None
    cx.emit(
        cmd.AgentAction(e.agent_id, campaign, "dial", f"{e.lead.phone} {detail}".strip(), ok, e.now)
    )


def _manual(cx: CoreContext, agent: Agent, e: ev.ManualDial) -> tuple[bool, str, str]:
    """A number the agent keyed: dialed for that agent alone, after the
    same DNC, calling-hours and 72-hour checks as any lead (not the
    attempt limits: a person chose to call)."""
    now, lead = e.now, e.lead
    run = cx.run_of(agent)
    if run is None or lead.campaign != run.cfg.name:
        return False, "refused", "not in a campaign"
    closed = preview.closed_to_agents(cx, run)
    if closed is not None:
        return False, "refused", closed
    if agent.status in (_S.TALKING, _S.RESERVED):
        return False, "invalid", "on a call"
    if lead.id in cx.live_leads:
        return False, "refused", "already in a call"
    refused = hopper.screen_manual(cx, run, lead, now)
    if refused is not None:
        return False, "refused", refused
    hopper.take(run, lead.id)  # it is this agent's call now
    st = agent.status
    if st is _S.PREVIEW:
        agents.drop_offer(cx, agent, now, skipped=False)
    elif st is _S.WRAP:
        agents.wrap_end(cx, agent)
    elif st is _S.PAUSED:
        agent.pause_pending = True  # back to the pause after this call
    calls.place(cx, run, lead, now, agent, manual=True)
    cx.dirty.add(run.cfg.name)
    return True, "calling", ""
