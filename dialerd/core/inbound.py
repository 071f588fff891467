"""Inbound callers: arrival, routing to an agent, the fallback, the record.

Why routing is decided here and not by Asterisk's Queue(): the agents who
answer are the same agents the outbound pacing counts, and only the core
knows, event by event, which of them is free, which is about to be claimed
by an answered outbound call, and how much inbound demand the pacing has
left room for. So a caller waits in a holding context, and the core
Redirects them into an agent's room by the same mechanism as an answered
outbound call (one way into a room, one ``CallConnected``).

Who gets a freed agent (``agents.make_ready``): an answered outbound call
still inside its connect window first (it has under 2 s before the law
counts it abandoned; a caller has ``max_wait_s``), then the caller of the
highest-priority queue the agent answers who has waited longest. A caller
who arrives while an agent of the queue is ready takes the agent who has
been idle longest. The pacing leaves room for this: it subtracts the
callers waiting and those expected over the next call's horizon
(:func:`demand`) from the agents it dials for.

Every caller the core sees ends in exactly one ``RecordInbound``.
"""

from __future__ import annotations

from dialerd.campaign.queues import Fallback, served_by
from dialerd.core import agents, dispositions, state
from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.context import CoreContext
from dialerd.core.models import AgentStatus, InboundOutcome, InboundState
from dialerd.core.state import CampaignRun, InboundCall, QueueRun
from dialerd.pacing.policies import InboundDemand

_S = InboundState
#: a caller whose Redirect failed this many times is let go (the channel is
#: gone; its hang-up, if it ever comes, finds nothing)
MAX_REDIRECT_FAILURES = 2


# ------------------------------------------------------------ configuration
def queues_loaded(cx: CoreContext, e: ev.QueuesLoaded) -> None:
    seen: set[str] = set()
    for q in e.queues:
        seen.add(q.name)
        run = cx.queues.get(q.name)
        if run is None:
            run = QueueRun(cfg=q)
            run.arrivals.start(e.now)
            cx.queues[q.name] = run
        run.cfg = q
        run.removed = not q.enabled
    for name, run in cx.queues.items():
        if name not in seen:
            run.removed = True
    refresh(cx, e.now)


def refresh(cx: CoreContext, now: float) -> None:
    """Who answers which queue, after a queue or campaign change; callers
    waiting for an agent who is now ready get them."""
    camps = {n: r.cfg for n, r in cx.campaigns.items() if not r.removed}
    by_agent: dict[str, list[QueueRun]] = {}
    for q in cx.queues.values():
        q.agents = frozenset() if q.removed else served_by(q.cfg, camps)
        q.campaigns = frozenset(c for a in q.agents if (c := cx.agent_campaign.get(a)) is not None)
        for a in q.agents:
            by_agent.setdefault(a, []).append(q)
        cx.dirty.update(q.campaigns)
    cx.queues_of = {
        a: tuple(q.name for q in sorted(qs, key=lambda q: (-q.cfg.priority, q.name)))
        for a, qs in by_agent.items()
    }
    for q in cx.queues.values():
        dispatch(cx, q, now)


# ------------------------------------------------------------------ events
def arrived(cx: CoreContext, e: ev.InboundArrived) -> None:
    if e.call_id in cx.inbound:
        return  # the same caller announced twice
    icall = InboundCall(e.call_id, e.queue, e.channel, e.caller, e.did, e.now)
    q = cx.queues.get(e.queue)
    if q is None:
        # the queue vanished between the dialplan's lookup and this event
        # (a reload): nobody can be chosen; the caller hears why, and the
        # call is recorded now (its hang-up will find nothing)
        cx.emit(
            cmd.InboundFallback(e.call_id, e.channel, e.queue, "no_agents", "message",
                                None, 0, None, "ss-noservice")
        )  # fmt: skip
        _record(cx, icall, InboundOutcome.FALLBACK, e.now, None, "no_agents")
        return
    state.add_inbound(cx.inbound, q, icall)
    for st in q.tally(e.now):
        st.offered += 1
    q.arrivals.arrived(e.now)
    if cx.draining or not _staffed(cx, q):
        fallback(cx, q, icall, "no_agents", e.now)
        return
    agents.mark_queue(cx, q.name)
    dispatch(cx, q, e.now)


def connected(cx: CoreContext, icall: InboundCall, agent_id: str, now: float) -> None:
    if icall.state is not _S.CONNECTING:
        return
    q = cx.queues.get(icall.queue)
    state.set_inbound_state(q, icall, _S.CONNECTED)
    icall.connected_at = now
    if q is not None:
        wait = now - icall.arrived_at
        for st in q.tally(now):
            st.answered += 1
            st.answer_wait_s += wait
            st.longest_wait_s = max(st.longest_wait_s, wait)
            if wait <= q.cfg.service_level.within_s:
                st.answered_in_sl += 1
    agent = cx.agents.get(icall.agent_id or "")
    if agent is not None and agent.call == icall.call_id:
        cx.set_status(agent, AgentStatus.TALKING)
        agent.since = now
        agents.changed(cx, agent, now)


def redirect_failed(cx: CoreContext, icall: InboundCall, now: float) -> None:
    if icall.state is not _S.CONNECTING:
        return
    _free_agent(cx, icall, now, talked=False)
    icall.failures += 1
    if icall.failures >= MAX_REDIRECT_FAILURES:
        # Asterisk keeps refusing: the channel is gone and its hang-up was
        # missed. Recorded as abandoned; a late hang-up finds nothing.
        agents.requeue(cx, icall)
        hung_up(cx, icall, 0, now)
        return
    agents.requeue(cx, icall)
    q = cx.queues.get(icall.queue)
    if q is not None:
        dispatch(cx, q, now)


def dispatch(cx: CoreContext, q: QueueRun, now: float) -> None:
    """Give the queue's waiting callers to its ready agents, if any."""
    while q.waiting:
        aid = _longest_idle(cx, q)
        if aid is None:
            return
        agent = cx.agents[aid]
        agents.connect_inbound(cx, cx.inbound[q.waiting[0]], agent, now)
        agents.changed(cx, agent, now)


def hung_up(cx: CoreContext, icall: InboundCall, cause: int, now: float) -> None:
    """The caller's channel is gone: their one record."""
    q = cx.queues.get(icall.queue)
    was = icall.state
    state.remove_inbound(cx.inbound, q, icall)
    wait = now - icall.arrived_at
    if was is _S.WAITING:
        outcome = InboundOutcome.ABANDONED
        if q is not None:
            for st in q.tally(now):
                if wait > q.cfg.service_level.within_s:
                    st.abandoned += 1
                else:
                    st.abandoned_short += 1
                st.longest_wait_s = max(st.longest_wait_s, wait)
            agents.mark_queue(cx, q.name)
    elif was is _S.CONNECTING:
        outcome = InboundOutcome.ABANDONED
        if q is not None:
            for st in q.tally(now):
                st.abandoned += 1
                st.longest_wait_s = max(st.longest_wait_s, wait)
        _free_agent(cx, icall, now, talked=False)
    elif was is _S.CONNECTED:
        outcome = InboundOutcome.ANSWERED
        _free_agent(cx, icall, now, talked=True)
    else:
        outcome = InboundOutcome.CALLBACK if icall.callback_campaign else InboundOutcome.FALLBACK
    agent = icall.agent_id if was is _S.CONNECTED else None
    _record(cx, icall, outcome, now, agent, icall.fallback, cause)


def _record(
    cx: CoreContext,
    icall: InboundCall,
    outcome: InboundOutcome,
    now: float,
    agent_id: str | None,
    fallback: str | None,
    cause: int | None = None,
) -> None:
    end = icall.connected_at if icall.connected_at is not None else now
    cx.emit(
        cmd.RecordInbound(
            call_id=icall.call_id,
            queue=icall.queue,
            did=icall.did,
            caller=icall.caller,
            arrived_at=icall.arrived_at,
            ended_at=now,
            outcome=outcome,
            wait_s=round(end - icall.arrived_at, 3),
            answered_at=icall.connected_at,
            agent_id=agent_id,
            fallback=fallback,
            callback_campaign=icall.callback_campaign,
            cause=cause,
        )
    )


def callback_requested(cx: CoreContext, e: ev.CallbackRequested) -> None:
    """The caller pressed 1 at the offer: the callback lead is the shell's
    to write (``MakeCallback``), which answers the waiting dialplan; with
    no number to call, the answer is no at once."""
    icall = cx.inbound.get(e.call_id)
    channel = e.channel or (icall.channel if icall is not None else "")
    q = cx.queues.get(icall.queue) if icall is not None else None
    fb = _fallback_of(q, icall.fallback) if q is not None and icall is not None else None
    if icall is None or fb is None or fb.callback_campaign is None or not icall.caller:
        if channel:
            cx.emit(cmd.AgentAck(channel, False, ""))
        return
    if icall.callback_campaign is None:
        icall.callback_campaign = fb.callback_campaign
        if q is not None:
            for st in q.tally(e.now):
                st.callbacks += 1
    cx.emit(
        cmd.MakeCallback(icall.call_id, icall.queue, fb.callback_campaign, icall.caller,
                         e.now, channel)
    )  # fmt: skip


# ---------------------------------------------------------------- deadlines
def expire(cx: CoreContext, now: float) -> None:
    """Callers past ``max_wait_s`` get the queue's fallback; so do all the
    waiting callers of a queue whose last agent has left."""
    for q in cx.queues.values():
        if not q.waiting:
            continue
        if not _staffed(cx, q):
            for cid in list(q.waiting):
                fallback(cx, q, cx.inbound[cid], "no_agents", now)
            continue
        while q.waiting:
            icall = cx.inbound[q.waiting[0]]
            if now - icall.arrived_at < q.cfg.max_wait_s:
                break
            fallback(cx, q, icall, "max_wait", now)


def fallback(cx: CoreContext, q: QueueRun, icall: InboundCall, reason: str, now: float) -> None:
    state.set_inbound_state(q, icall, _S.FALLBACK)
    agents.mark_queue(cx, q.name)
    icall.fallback = reason
    for st in q.tally(now):
        st.fallbacks += 1
        st.longest_wait_s = max(st.longest_wait_s, now - icall.arrived_at)
    fb = _fallback_of(q, reason)
    assert fb is not None
    cx.emit(
        cmd.InboundFallback(
            call_id=icall.call_id,
            channel=icall.channel,
            queue=q.name,
            reason=reason,
            action=fb.action.value,
            offer_sound=fb.offer_sound,
            offer_timeout_s=fb.offer_timeout_s,
            booked_sound=fb.booked_sound,
            sound=fb.sound,
        )
    )


def drain(cx: CoreContext, now: float) -> None:
    """Shutdown: nobody will take the callers still waiting."""
    for q in cx.queues.values():
        for cid in list(q.waiting):
            fallback(cx, q, cx.inbound[cid], "no_agents", now)


# ------------------------------------------------------------------ pacing
def demand(cx: CoreContext, run: CampaignRun, now: float) -> InboundDemand:
    """The inbound demand on ``run``'s agents: callers waiting now and
    arrivals per second, each queue's share by the part of its logged-in
    agents that work for ``run`` (callers go to whoever frees first); how
    many of ``run``'s agents are on an inbound call (reserved for one or
    talking), which VICIdial's blended rule counts as calls in progress;
    the longest wait now, the queues' service-level counts so far and their
    strictest target (for a policy that guards the level)."""
    waiting = rate = oldest = 0.0
    busy: set[str] = set()
    met = counted = 0
    target = within = 0.0
    name = run.cfg.name
    for q in cx.queues.values():
        if name not in q.campaigns or (q.removed and not q.waiting):
            continue
        mine = total = 0
        for a in q.agents:
            agent = cx.agents.get(a)
            if agent is None or agent.campaign is None:
                continue
            total += 1
            if agent.campaign == name:
                mine += 1
                if agent.call is not None and agent.call in cx.inbound:
                    busy.add(a)  # (an agent of two queues counts once)
        if not total or not mine:
            continue
        share = mine / total
        waiting += len(q.waiting) * share
        if q.waiting:
            oldest = max(oldest, now - cx.inbound[q.waiting[0]].arrived_at)
        if not q.removed:
            rate += q.arrivals.rate(now) * share
        st = q.stats
        met += st.answered_in_sl
        counted += st.answered + st.abandoned + st.fallbacks
        sl = q.cfg.service_level
        target = max(target, sl.percent / 100.0)
        within = sl.within_s if within == 0.0 else min(within, sl.within_s)
    return InboundDemand(waiting, rate, len(busy), oldest, met, counted, target, within)


# ------------------------------------------------------------------ helpers
def _fallback_of(q: QueueRun, reason: str | None) -> Fallback | None:
    if reason == "max_wait":
        return q.cfg.after_max_wait
    if reason == "no_agents":
        return q.cfg.no_agents
    return None


def _staffed(cx: CoreContext, q: QueueRun) -> bool:
    """Some agent who answers the queue is logged in to a campaign."""
    for a in q.agents:
        agent = cx.agents.get(a)
        if agent is not None and agent.campaign is not None:
            return True
    return False


def _longest_idle(cx: CoreContext, q: QueueRun) -> str | None:
    """The ready agent of the queue idle longest (each run's pool is in
    idle order, so the first of each run that answers the queue)."""
    best: str | None = None
    best_since = 0.0
    for name in q.campaigns:
        run = cx.campaigns.get(name)
        if run is None:
            continue
        for aid in run.ready:
            if aid in q.agents:
                since = cx.agents[aid].since
                if best is None or since < best_since:
                    best, best_since = aid, since
                break
    return best


def _free_agent(cx: CoreContext, icall: InboundCall, now: float, talked: bool) -> None:
    """The caller's agent is free of them: wrap-up after a conversation,
    ready again after a connection that never happened."""
    agent = cx.agents.get(icall.agent_id or "")
    if agent is None or agent.call != icall.call_id:
        return
    agent.call = None
    agents.busy_end(cx, agent, now, observe=talked and agent.status is AgentStatus.TALKING)
    if agent.status is AgentStatus.TALKING:
        agent.last_call = None
        agent.last_inbound = (icall.call_id, icall.queue, icall.caller)
        agent.calls += 1
        agent.inbound_calls += 1
        if icall.connected_at is not None:
            agent.talk_s += now - icall.connected_at
            agent.inbound_talk_s += now - icall.connected_at
        run = cx.run_of(agent)
        agents.start_wrap(cx, agent, run.cfg.wrap_up_s if run is not None else 0.0, now)
        if agent.pending_dispo is not None:
            key, minutes = agent.pending_dispo  # pressed while still talking
            agent.pending_dispo = None
            dispositions.dispose(cx, agent, key, minutes, now)
    elif agent.status is AgentStatus.RESERVED:
        agents.make_ready(cx, agent, now)
