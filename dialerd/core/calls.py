"""The call table: a call's life from its Originate to its one outcome.

Why these events are together: Asterisk reports a call's end in several
pieces that race (the OriginateResponse, the hangup of each channel half,
the dialplan's UserEvents), and only the call as a whole can tell which
piece settles it. Everything that reads or writes a call's progress fields
(``originate_done``, ``reason``, ``cause``, ``hung_up``) is here, and
:func:`finish` is the one way out: exactly one ``RecordOutcome`` per
``PlaceCall``.
"""

from __future__ import annotations

import heapq

from dialerd.campaign.model import Campaign
from dialerd.core import agents, dispositions, hopper, state
from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.context import CoreContext
from dialerd.core.models import AgentStatus, CallState, Lead, Outcome
from dialerd.core.state import Agent, Call, CampaignRun
from dialerd.rules.retry import decide, outcome_for_reason

#: a Reason 0 failure waits this long for the hangup cause that classifies it
CAUSE_WAIT_S = 2.0
#: a call still unanswered this long past its ring timeout is ended as
#: interrupted (the shell always posts a verdict, even on errors; this is the
#: backstop that frees its line, its lead and a drain)
VERDICT_GRACE_S = 90.0

_C = CallState


def place(
    cx: CoreContext,
    run: CampaignRun,
    lead: Lead,
    now: float,
    agent: Agent | None = None,
    manual: bool = False,
) -> None:
    """Dial ``lead``. With ``agent`` (preview, manual dial) that agent is
    reserved for the call from now on and gets it when it is answered."""
    c = run.cfg
    attempt_id = cx.new_id()
    call = Call(attempt_id, c.name, lead, _C.DIALING, now)
    state.add_call(cx.calls, run, call)
    if agent is not None:
        call.agent_id = agent.id
        agent.call = attempt_id
        agents.wrap_over(agent, now)
        cx.set_status(agent, AgentStatus.RESERVED)
        agent.since = now
        agents.changed(cx, agent, now)
    cx.live_leads.add(lead.id)
    run.stats.dials += 1
    run.trk.dial_started(now)
    heapq.heappush(cx.verdicts, (now + c.ring_timeout_s + VERDICT_GRACE_S, attempt_id))
    cx.emit(
        cmd.PlaceCall(
            attempt_id=attempt_id,
            campaign=c.name,
            lead_id=lead.id,
            phone=lead.phone,
            channel=c.channel_for(lead.phone),
            caller_id=c.caller_id.ami_value(),
            ring_timeout_s=c.ring_timeout_s,
            variables=_variables(c, attempt_id),
            started_at=now,
            manual=manual,
        )
    )


def _variables(c: Campaign, attempt_id: str) -> dict[str, str]:
    out = {
        "DIALER_ATTEMPT": attempt_id,
        "DIALER_CAMPAIGN": c.name,
        "DIALER_SAFE_HARBOR": c.safe_harbor_sound,
    }
    if c.amd.enabled:
        out["DIALER_AMD"] = c.amd.params()
        out["DIALER_AMD_ACTION"] = c.amd.on_machine.value
        if c.amd.message_sound:
            out["DIALER_AMD_MESSAGE"] = c.amd.message_sound
    return out


# ------------------------------------------------------------------ events
def originate_result(cx: CoreContext, e: ev.OriginateResult) -> None:
    call = cx.calls.get(e.attempt_id)
    if call is None or call.originate_done:
        return
    call.originate_done = True
    call.originate_ok = e.success
    call.reason = e.reason
    if call.state is not _C.DIALING:
        return  # already answered: the UserEvent beat the response
    if e.lost:
        # AMI dropped with the Originate outstanding: the call may ring on.
        # Its Hangup (cause) or the next Resync (gone: interrupted) ends it.
        call.reason = 0
        return
    if not e.success:
        if e.reason == 0 and not call.cause:
            # Reason 0 covers no-answer and real failures alike: the
            # hangup cause, which may come a moment later, tells them apart
            call.fail_at = e.now
            cx.cause_wait[call.attempt_id] = None
            return
        finish(cx, call, outcome_for_reason(e.reason, call.cause), e.now, e.detail)
    elif call.hung_up:
        # answered and gone before the dialplan raised DialerAnswered
        if call.machine:
            finish(cx, call, Outcome.MACHINE, e.now, call.amd)
        else:
            finish(cx, call, Outcome.CUSTOMER_HANGUP, e.now, "hung up at answer")


def not_placed(cx: CoreContext, e: ev.CallNotPlaced) -> None:
    """No Originate was sent (see ``ev.CallNotPlaced``): the call is undone,
    not ended; there is no outcome to record. An agent reserved for it is
    free again; the lead goes back to the hopper, or (an agent's own call,
    a lead the store refused) back to the store."""
    call = cx.calls.get(e.attempt_id)
    if call is None or call.originate_done or call.state is not _C.DIALING:
        return
    run = cx.campaigns[call.campaign]
    state.remove_call(cx.calls, run, call)
    cx.live_leads.discard(call.lead.id)
    run.stats.dials -= 1
    run.trk.dial_ended(call.started_at, e.now, None)
    agent = cx.agents.get(call.agent_id or "")
    if e.give_back and agent is None and run.active and not cx.draining:
        hopper.give_back(run, call.lead)
    else:
        cx.emit(cmd.ReleaseLeads(call.campaign, (call.lead.id,)))
    if agent is not None and agent.call == call.attempt_id:
        agent.call = None
        agents.busy_end(cx, agent, e.now, observe=False)
        if agent.status is AgentStatus.RESERVED:
            agents.make_ready(cx, agent, e.now)
    cx.dirty.add(call.campaign)


def answered(cx: CoreContext, e: ev.CallAnswered) -> None:
    call = cx.calls.get(e.attempt_id)
    if call is None or call.state is not _C.DIALING:
        return
    run = cx.campaigns[call.campaign]
    call.answered_at = e.now
    call.channel = e.channel
    run.stats.answered += 1
    run.trk.dial_ended(call.started_at, e.now, True)
    run.trk.answered(e.now)
    reserved = cx.agents.get(call.agent_id or "")
    if reserved is not None and reserved.call == call.attempt_id:
        agents.connect(cx, call, reserved, e.now)  # preview or manual: their call
        cx.dirty.add(call.campaign)
        return
    call.agent_id = None
    agent_id = call.lead.callback_agent
    if agent_id not in run.ready:
        agent_id = next(iter(run.ready), None)
    if agent_id is not None:
        agents.connect(cx, call, cx.agents[agent_id], e.now)
    else:
        state.set_call_state(run, call, _C.WAITING)
    cx.dirty.add(call.campaign)


def connected(cx: CoreContext, e: ev.CallConnected) -> None:
    call = cx.calls.get(e.attempt_id)
    if call is None or call.state is not _C.CONNECTING:
        return
    run = cx.campaigns[call.campaign]
    state.set_call_state(run, call, _C.CONNECTED)
    call.connected_at = e.now
    run.stats.connected += 1
    agent = cx.agents.get(call.agent_id or "")
    if agent is not None and agent.call == call.attempt_id:
        cx.set_status(agent, AgentStatus.TALKING)
        agent.since = e.now
        agents.changed(cx, agent, e.now)


def safe_harbor(cx: CoreContext, attempt_id: str) -> None:
    call = cx.calls.get(attempt_id)
    if call is None:
        return
    call.safe_harbor = True
    if call.state is _C.WAITING:
        state.set_call_state(cx.campaigns[call.campaign], call, _C.ABANDONING)


def redirect_failed(cx: CoreContext, attempt_id: str, now: float) -> None:
    call = cx.calls.get(attempt_id)
    if call is None or call.state is not _C.CONNECTING:
        return
    state.set_call_state(cx.campaigns[call.campaign], call, _C.ABANDONING)
    agent = cx.agents.get(call.agent_id or "")
    call.agent_id = None
    if agent is not None and agent.call == attempt_id:
        agent.call = None
        agents.busy_end(cx, agent, now, observe=False)
        agents.make_ready(cx, agent, now)


def hung_up(cx: CoreContext, e: ev.CallHungUp) -> None:
    call = cx.calls.get(e.attempt_id)
    if call is None:
        return
    call.hung_up = True
    if e.cause or call.cause is None:
        call.cause = e.cause  # a ;1 half may say 0 where the ;2 half has the cause
    if call.state is _C.DIALING:
        # not answered: the OriginateResponse says why; it finishes the call
        if call.originate_done:
            if call.originate_ok:
                outcome = Outcome.MACHINE if call.machine else Outcome.CUSTOMER_HANGUP
            elif call.reason == 0 and not call.cause:
                # wait for a half that carries the cause (or the tick)
                if call.attempt_id not in cx.cause_wait:
                    call.fail_at = e.now
                    cx.cause_wait[call.attempt_id] = None
                return
            else:
                outcome = outcome_for_reason(call.reason, call.cause)
            cx.cause_wait.pop(call.attempt_id, None)
            finish(cx, call, outcome, e.now, f"cause {call.cause}")
        return
    if call.state is _C.CONNECTED:
        finish(cx, call, Outcome.ANSWERED, e.now)
    elif call.state is _C.CONNECTING:
        finish(cx, call, Outcome.CUSTOMER_HANGUP, e.now, "hung up while connecting")
    else:  # WAITING or ABANDONING
        run = cx.campaigns[call.campaign]
        late = call.answered_at is not None and (
            e.now - call.answered_at >= run.cfg.connect_deadline_s
        )
        if call.safe_harbor or late or call.state is _C.ABANDONING:
            finish(cx, call, Outcome.ABANDONED, e.now)
        else:
            finish(cx, call, Outcome.CUSTOMER_HANGUP, e.now, "hung up before connect")


def amd_result(cx: CoreContext, e: ev.AmdResult) -> None:
    call = cx.calls.get(e.attempt_id)
    if call is None:
        return
    call.amd = f"amd {e.status} {e.cause}".strip()
    if e.status == "MACHINE" and e.action != "connect":
        call.machine = True
        call.amd += f" ({e.action or 'hangup'})"
    elif e.status == "MACHINE":
        call.amd += " (connected)"


# ---------------------------------------------------------------- deadlines
def end_cause_waits(cx: CoreContext, now: float) -> None:
    """Reason 0 failures whose hangup cause never came: failed."""
    while cx.cause_wait:
        aid = next(iter(cx.cause_wait))
        call = cx.calls.get(aid)
        if call is not None and call.fail_at is not None and now - call.fail_at < CAUSE_WAIT_S:
            break
        del cx.cause_wait[aid]
        if call is not None and call.state is _C.DIALING:
            finish(cx, call, outcome_for_reason(call.reason, call.cause), now, "no cause")


def end_unanswered_originates(cx: CoreContext, now: float) -> None:
    """Calls still unanswered past the deadline set when they were placed
    (no verdict came, or it was lost with the AMI link and neither a Hangup
    nor a Resync settled them): by then Asterisk has given up ringing, so
    they are interrupted (their line, lead and agent are freed; the retry
    rules decide when the lead is dialed again)."""
    while cx.verdicts and cx.verdicts[0][0] <= now:
        _deadline, aid = heapq.heappop(cx.verdicts)
        call = cx.calls.get(aid)
        if call is not None and call.state is _C.DIALING:
            finish(cx, call, Outcome.INTERRUPTED, now, "no Originate verdict in time")


def expire_waiting(cx: CoreContext, now: float) -> None:
    """Answered calls past their connect deadline belong to the dialplan's
    fail-safe from now on; every campaign is re-paced."""
    for name, run in cx.campaigns.items():
        while run.waiting:
            call = cx.calls[run.waiting[0]]
            if call.answered_at is None or now - call.answered_at < run.cfg.connect_deadline_s:
                break
            state.set_call_state(run, call, _C.ABANDONING)
        cx.dirty.add(name)


# ---------------------------------------------------------------------- end
def finish(cx: CoreContext, call: Call, outcome: Outcome, now: float, detail: str = "") -> None:
    """The call's one outcome: recorded, its lead and agent freed."""
    run = cx.campaigns[call.campaign]
    state.remove_call(cx.calls, run, call)
    cx.live_leads.discard(call.lead.id)
    trk = run.trk
    if call.state is _C.DIALING:
        trk.dial_ended(
            call.started_at,
            now,
            None if outcome is Outcome.INTERRUPTED else outcome.live_answer,
        )
        if outcome.live_answer:
            trk.answered(now)
    st = run.stats
    run.abandons.record(outcome, now)
    if outcome.abandon:
        cx.lock.abandoned(call.lead.phone, now)
    if call.amd:
        detail = f"{call.amd}; {detail}" if detail else call.amd
    st.outcomes[outcome.value] = st.outcomes.get(outcome.value, 0) + 1
    if outcome.abandon:
        st.abandoned += 1
        trk.abandoned(now)
    if call.state is _C.DIALING and outcome.live_answer:
        st.answered += 1  # answered without a DialerAnswered event
    agent = cx.agents.get(call.agent_id or "")
    if agent is not None and agent.call == call.attempt_id:
        agent.call = None
        agents.busy_end(cx, agent, now, observe=agent.status is AgentStatus.TALKING)
        if agent.status is AgentStatus.TALKING:
            agent.last_call = (call.attempt_id, call.lead, call.campaign)
            agent.last_inbound = None
            agent.calls += 1
            if call.connected_at is not None:
                agent.talk_s += now - call.connected_at
            agents.start_wrap(cx, agent, run.cfg.wrap_up_s, now)
        elif agent.status is AgentStatus.RESERVED:
            agents.make_ready(cx, agent, now)
    cx.emit(
        cmd.RecordOutcome(
            attempt_id=call.attempt_id,
            campaign=call.campaign,
            lead_id=call.lead.id,
            outcome=outcome,
            ended_at=now,
            lead=decide(run.cfg.retry, call.lead.id, call.lead.attempts, outcome, now),
            answered_at=call.answered_at,
            connected_at=call.connected_at,
            agent_id=call.agent_id,
            cause=call.cause,
            detail=detail,
        )
    )
    cx.dirty.add(call.campaign)
    if agent is not None and agent.pending_dispo is not None and agent.last_call:
        key, minutes = agent.pending_dispo
        agent.pending_dispo = None
        dispositions.dispose(cx, agent, key, minutes, now)
