"""Resync: what Asterisk says is live, applied in one step.

Why apart: a resync is the one event that rewrites the core's picture
wholesale (after an AMI reconnect or a restart), and it must keep two
promises the rest of the core takes for granted: a call of an earlier run
that is still live is adopted, so its end is recorded once and its lead is
never dialed meanwhile; a call that ended unseen is closed exactly once.
"""

from __future__ import annotations

from dialerd.campaign.model import RetryRules
from dialerd.core import agents, calls, inbound, state
from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.context import CoreContext
from dialerd.core.models import AgentStatus, CallState, Outcome
from dialerd.core.state import Call, CampaignRun
from dialerd.rules.retry import decide


def resync(cx: CoreContext, e: ev.Resync) -> None:
    """Apply a snapshot of what is live in Asterisk (see ``ev.Resync``)."""
    now = e.now
    live = {c.attempt_id: c for c in e.calls}
    # inbound callers whose channel ended while AMI was away: recorded by
    # the state they were last seen in (callers of an earlier run are not
    # adopted: the dialplan's backstop ends their wait)
    for icall in list(cx.inbound.values()):
        if icall.call_id not in live and icall.arrived_at < now:
            inbound.hung_up(cx, icall, 0, now)
    # agents first: an adopted call below may make one of them busy
    in_room = {a.agent_id for a in e.agents}
    for aid in [a for a in cx.agents if a not in in_room]:
        agents.left(cx, aid, now)
    for a in e.agents:
        agents.joined(cx, a)
    # our calls that ended while AMI was away: close them by what we knew
    for call in list(cx.calls.values()):
        if call.attempt_id in live or call.started_at >= now:
            continue  # live, or placed after the snapshot was taken
        if call.state is CallState.CONNECTED:
            outcome = Outcome.ANSWERED
        elif call.state is CallState.DIALING:
            outcome = Outcome.INTERRUPTED
        else:
            outcome = Outcome.ABANDONED  # the dialplan's fail-safe had it
        cx.cause_wait.pop(call.attempt_id, None)
        calls.finish(cx, call, outcome, now, "ended unseen (AMI was away)")
    # attempts an earlier run left open: adopt the live, close the rest
    for oa in e.open_attempts:
        if oa.attempt_id in cx.calls or oa.lead.id in cx.live_leads:
            continue
        run = cx.campaigns.get(oa.campaign)
        lc = live.get(oa.attempt_id)
        if run is not None and lc is not None:
            _adopt(cx, run, oa, lc, now)
            continue
        rules = run.cfg.retry if run is not None else RetryRules()
        cx.emit(
            cmd.RecordOutcome(
                attempt_id=oa.attempt_id,
                campaign=oa.campaign,
                lead_id=oa.lead.id,
                outcome=Outcome.INTERRUPTED,
                ended_at=now,
                lead=decide(rules, oa.lead.id, oa.lead.attempts, Outcome.INTERRUPTED, now),
                detail="left open by an earlier run, not live in Asterisk",
            )
        )
    cx.dirty.update(cx.campaigns)


def _adopt(
    cx: CoreContext, run: CampaignRun, oa: ev.OpenAttempt, lc: ev.LiveCall, now: float
) -> None:
    """Take over a live call of an earlier run: its end is recorded once
    and its lead stays out of the hopper until then."""
    ringing = lc.where == "ringing"
    agent = None if ringing else cx.agents.get(lc.agent_id or "")
    if ringing:
        first = CallState.DIALING
    elif lc.where == "room" and agent is not None and agent.call is None:
        first = CallState.CONNECTED
    else:
        # answered, waiting or hearing the message: the fail-safe owns it
        first = CallState.ABANDONING
    call = Call(oa.attempt_id, oa.campaign, oa.lead, first, oa.started_at)
    call.channel = lc.channel
    state.add_call(cx.calls, run, call)
    cx.live_leads.add(oa.lead.id)
    if ringing:
        # its OriginateResponse went to the dead run: the hangup cause
        # classifies it (Reason 0 semantics), an answer goes the usual way
        call.originate_done, call.reason = True, 0
        run.trk.dial_started(now)
        return
    call.answered_at = now  # not known exactly: it was answered before now
    run.stats.answered += 1
    if agent is None or first is not CallState.CONNECTED:
        return
    call.connected_at = now
    call.agent_id = agent.id
    run.stats.connected += 1
    if agent.status is AgentStatus.PREVIEW:
        # talking to a customer: the lead on their screen goes back
        agents.drop_offer(cx, agent, now, skipped=False)
    agents.busy_start(cx, agent, now)
    cx.set_status(agent, AgentStatus.TALKING)
    agent.call = call.attempt_id
    agent.since = now
    agents.changed(cx, agent, now)
