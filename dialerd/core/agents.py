"""The agent pool: who is logged in, for which campaign, and who is free.

Why the connect step and the preview offer's hold live here: both are the
moment an agent stops being free, and both are reached from below the call
table (a freed agent takes the oldest waiting call; an agent who leaves or
pauses gives back the lead on their screen). Keeping them with the pool
lets ``calls`` and ``preview`` build on this module without a cycle.

Status changes go through ``cx.set_status`` (the tables and counters of
:mod:`dialerd.core.state`); the pacing tracker's busy and wrap bookkeeping
is kept here, next to the moves that start and end it.
"""

from __future__ import annotations

import heapq

from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core import state
from dialerd.core.context import CoreContext
from dialerd.core.models import AgentStatus, CallState, InboundState, Lead
from dialerd.core.state import Agent, Call, InboundCall

_S = AgentStatus


def changed(cx: CoreContext, agent: Agent, now: float) -> None:
    reason = agent.pause_reason if agent.status is _S.PAUSED else ""
    cx.emit(cmd.AgentStateChanged(agent.id, agent.campaign, agent.status.value, now, reason))


# ------------------------------------------------------------ login, logout
def joined(cx: CoreContext, e: ev.AgentJoined) -> None:
    agent = cx.agents.get(e.agent_id)
    if agent is None:
        agent = Agent(e.agent_id, _S.READY, e.now, logged_in_at=e.now)
        cx.agents[e.agent_id] = agent
    cx.agent_by_uniqueid.pop(agent.uniqueid, None)
    agent.channel, agent.uniqueid = e.channel, e.uniqueid
    cx.agent_by_uniqueid[e.uniqueid] = agent.id
    want = cx.agent_campaign.get(e.agent_id)
    if agent.campaign != want:
        detach(cx, agent)
        if want is not None:
            attach(cx, agent, want, e.now)
    elif want is not None and agent.status is _S.READY:
        make_ready(cx, agent, e.now)
    if want is None:
        changed(cx, agent, e.now)


def left(cx: CoreContext, agent_id: str, now: float) -> None:
    agent = cx.agents.pop(agent_id, None)
    if agent is None:
        return
    campaign = agent.campaign
    cx.agent_by_uniqueid.pop(agent.uniqueid, None)
    detach(cx, agent)
    busy_end(cx, agent, now, observe=False)
    if agent.call is not None:
        call = cx.calls.get(agent.call)
        if call is not None and call.state is CallState.CONNECTING:
            # the customer is on the way into an empty room: let the
            # dialplan fail-safe take it rather than strand them
            state.set_call_state(cx.campaigns[call.campaign], call, CallState.ABANDONING)
        icall = cx.inbound.get(agent.call)
        if icall is not None and icall.state is InboundState.CONNECTING:
            # a caller on the way to this agent: back to the head of the
            # queue (the Redirect into an empty room fails, or the room
            # ends and the caller's hang-up is recorded)
            requeue(cx, icall)
    cx.emit(cmd.AgentStateChanged(agent_id, campaign, "logged_out", now))


def logout(cx: CoreContext, agent_id: str) -> None:
    """Force the agent out: the shell hangs up their channel (AgentLeft follows)."""
    agent = cx.agents.get(agent_id)
    if agent is not None and agent.channel:
        cx.emit(cmd.HangupAgent(agent_id, agent.channel))


def attach(cx: CoreContext, agent: Agent, campaign: str, now: float) -> None:
    run = cx.campaigns[campaign]
    state.attach(agent, run)
    if agent.status is _S.WRAP:
        run.trk.wrap_started(agent.wrap_until)
        agent.wrap_in = campaign
    elif agent.status is _S.READY:
        make_ready(cx, agent, now)
    cx.dirty.add(campaign)


def detach(cx: CoreContext, agent: Agent) -> None:
    if agent.status is _S.PREVIEW:
        drop_offer(cx, agent, agent.since, skipped=False)
    run = cx.run_of(agent)
    if run is not None:
        state.detach(agent, run)
        cx.dirty.add(run.cfg.name)
    wrap_end(cx, agent)
    agent.campaign = None


# ------------------------------------------------------------ free and busy
def make_ready(cx: CoreContext, agent: Agent, now: float) -> None:
    """The agent can take a call: first the oldest waiting one, if any."""
    run = cx.run_of(agent)
    if agent.status is _S.WRAP and run is not None and agent.wrap_in == run.cfg.name:
        run.trk.wrap_observed(now - agent.since)
    wrap_over(agent, now)
    wrap_end(cx, agent)
    agent.since = now
    if agent.pause_pending:
        agent.pause_pending = False
        cx.set_status(agent, _S.PAUSED)
        changed(cx, agent, now)
        if run is not None:
            cx.dirty.add(run.cfg.name)
        return
    cx.set_status(agent, _S.READY)
    if run is None:
        return
    cx.dirty.add(run.cfg.name)
    while run.waiting:
        call = cx.calls[run.waiting[0]]
        if call.answered_at is not None and (now - call.answered_at < run.cfg.connect_deadline_s):
            connect(cx, call, agent, now)
            changed(cx, agent, now)
            return
        state.set_call_state(run, call, CallState.ABANDONING)
    # then an inbound caller: after the answered outbound call above (it has
    # under 2 s before the law counts it abandoned, a caller has max_wait_s)
    icall = next_caller(cx, agent.id)
    if icall is not None:
        connect_inbound(cx, icall, agent, now)
        changed(cx, agent, now)
        return
    run.ready[agent.id] = None
    changed(cx, agent, now)


# ---------------------------------------------------------- inbound routing
def next_caller(cx: CoreContext, agent_id: str) -> InboundCall | None:
    """The caller ``agent_id`` takes next: from the highest-priority queue
    they answer that has callers waiting; among queues of equal priority,
    the caller who has waited longest."""
    best: InboundCall | None = None
    best_prio = -1
    for name in cx.queues_of.get(agent_id, ()):
        q = cx.queues[name]
        if not q.waiting:
            continue
        prio = q.cfg.priority
        if best is not None and prio < best_prio:
            break  # queues_of is sorted by priority, highest first
        head = cx.inbound[q.waiting[0]]
        if best is None or head.arrived_at < best.arrived_at:
            best, best_prio = head, prio
    return best


def connect_inbound(cx: CoreContext, icall: InboundCall, agent: Agent, now: float) -> None:
    """A waiting (or just arrived) caller meets its agent: the Redirect into
    the agent's room goes out first, then the agent's tone and screen pop."""
    q = cx.queues[icall.queue]
    busy_start(cx, agent, now)
    cx.set_status(agent, _S.RESERVED)
    agent.since = now
    agent.call = icall.call_id
    state.set_inbound_state(q, icall, InboundState.CONNECTING)
    icall.agent_id = agent.id
    cx.emit(cmd.Redirect(icall.call_id, icall.channel, agent.id))
    run = cx.run_of(agent)
    if run is not None and run.cfg.connect_tone:
        cx.emit(cmd.AgentPrompt(agent.id, agent.channel, "connected", ""))
    cx.emit(
        cmd.InboundPop(
            agent.id, icall.queue, icall.call_id, icall.caller, icall.did, now,
            round(now - icall.arrived_at, 3),
        )
    )  # fmt: skip
    mark_queue(cx, q.name)


def requeue(cx: CoreContext, icall: InboundCall) -> None:
    """A caller whose agent never got them: first in line again."""
    state.set_inbound_state(cx.queues.get(icall.queue), icall, InboundState.WAITING)
    icall.agent_id = None
    mark_queue(cx, icall.queue)


def mark_queue(cx: CoreContext, name: str) -> None:
    """The queue's demand changed: re-pace the campaigns of its agents."""
    q = cx.queues.get(name)
    if q is not None:
        cx.dirty.update(q.campaigns)


def connect(cx: CoreContext, call: Call, agent: Agent, now: float) -> None:
    """An answered call meets its agent: the Redirect goes out first."""
    run = cx.campaigns[call.campaign]
    busy_start(cx, agent, now)
    cx.set_status(agent, _S.RESERVED)
    agent.call = call.attempt_id
    state.set_call_state(run, call, CallState.CONNECTING)
    call.agent_id = agent.id
    cx.emit(cmd.Redirect(call.attempt_id, call.channel, agent.id))
    # after the Redirect: nothing may delay the customer's connection
    c = run.cfg
    if c.connect_tone or c.connect_announcement:
        tone = "connected" if c.connect_tone else ""
        cx.emit(cmd.AgentPrompt(agent.id, agent.channel, tone, c.connect_announcement or ""))
    cx.emit(cmd.ScreenPop(agent.id, call.campaign, "connect", call.lead, now, call.attempt_id))


def start_wrap(cx: CoreContext, agent: Agent, wrap_s: float, now: float) -> None:
    if wrap_s <= 0:
        make_ready(cx, agent, now)
        return
    cx.set_status(agent, _S.WRAP)
    agent.since = now
    agent.wrap_until = now + wrap_s
    run = cx.run_of(agent)
    if run is not None:
        run.trk.wrap_started(agent.wrap_until)
        agent.wrap_in = run.cfg.name
    heapq.heappush(cx.wraps, (agent.wrap_until, agent.id))
    changed(cx, agent, now)


def end_wraps(cx: CoreContext, now: float) -> None:
    """Wrap-ups whose time is up (a heap entry left by an earlier wrap-up
    of the same agent is skipped)."""
    while cx.wraps and cx.wraps[0][0] <= now:
        until, aid = heapq.heappop(cx.wraps)
        agent = cx.agents.get(aid)
        if agent is not None and agent.status is _S.WRAP and agent.wrap_until == until:
            make_ready(cx, agent, now)


def pause(cx: CoreContext, agent_id: str, paused: bool, now: float, reason: str = "") -> None:
    """Pause takes a ready agent out of the pool at once; a busy agent is
    paused when the call and its wrap-up end (never mid-call)."""
    agent = cx.agents.get(agent_id)
    if agent is None:
        return
    if not paused:
        agent.pause_pending = False
        if agent.status is _S.PAUSED:
            make_ready(cx, agent, now)
        return
    agent.pause_reason = reason
    if agent.status is _S.PREVIEW:
        drop_offer(cx, agent, now, skipped=False)  # READY, out of the pool
    if agent.status is _S.READY:
        run = cx.run_of(agent)
        cx.set_status(agent, _S.PAUSED)
        if run is not None:
            cx.dirty.add(run.cfg.name)
        agent.since = now
        changed(cx, agent, now)
    elif agent.status is not _S.PAUSED:
        agent.pause_pending = True


# ------------------------------------------------------- tracker bookkeeping
def busy_start(cx: CoreContext, agent: Agent, now: float) -> None:
    """The agent took a call (reserved for it): the pacing tracker counts
    it as busy from now on."""
    busy_end(cx, agent, now, observe=False)
    run = cx.run_of(agent)
    if run is not None:
        agent.busy_since = now
        agent.busy_in = run.cfg.name
        run.trk.talk_started(now)


def busy_end(cx: CoreContext, agent: Agent, now: float, observe: bool) -> None:
    run = cx.campaigns.get(agent.busy_in or "")
    if run is not None:
        run.trk.talk_ended(agent.busy_since, now, observe)
    agent.busy_in = None


def wrap_over(agent: Agent, now: float) -> None:
    """An agent leaving wrap-up (ready, paused, or a manual dial): its time
    counts in ``wrap_s`` (the occupancy's)."""
    if agent.status is _S.WRAP:
        agent.wrap_s += max(0.0, now - agent.since)


def wrap_end(cx: CoreContext, agent: Agent) -> None:
    run = cx.campaigns.get(agent.wrap_in or "")
    if run is not None:
        run.trk.wrap_ended(agent.wrap_until)
    agent.wrap_in = None


# ------------------------------------------------------ preview offer's hold
def take_offer(cx: CoreContext, agent: Agent) -> Lead | None:
    """The agent's offered lead, no longer held for them."""
    lead = agent.offer
    agent.offer = None
    cx.offers.pop(agent.id, None)
    if lead is not None:
        cx.live_leads.discard(lead.id)
    return lead


def drop_offer(cx: CoreContext, agent: Agent, now: float, skipped: bool) -> None:
    """Give the offered lead back: due again at once (the agent left or
    paused) or after the campaign's ``preview.skip_retry_s`` (skipped).
    The agent is READY again, but not back in the pool: each caller
    decides that (pause, skip, logout, detach)."""
    lead = take_offer(cx, agent)
    cx.set_status(agent, _S.READY)
    run = cx.run_of(agent)
    if lead is None or run is None:
        return
    if skipped:
        cx.emit(
            cmd.SkipLead(
                run.cfg.name,
                lead.id,
                "preview_skipped",
                f"agent {agent.id}",
                now,
                now + run.cfg.preview.skip_retry_s,
            )
        )
    else:
        cx.emit(cmd.ReleaseLeads(run.cfg.name, (lead.id,)))
