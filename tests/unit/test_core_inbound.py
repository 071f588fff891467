"""The core's inbound callers, event by event: who gets which agent, when
the fallback plays, and that every caller ends in exactly one record.

Each test drives a ``CoreHarness``, which checks the core's invariants
after every event (among them: no caller waits while an agent of their
queue is ready; the queue's line equals a recount of waiting callers)."""

from __future__ import annotations

from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.models import AgentStatus, InboundOutcome, InboundState
from dialerd.core.testing import CoreHarness, campaign, leads, queue


def _blended(**q: object) -> CoreHarness:
    w = CoreHarness(campaign(dial_mode="progressive"))
    w.queues(queue(**q))  # type: ignore[arg-type]
    return w


def test_a_caller_takes_the_longest_idle_agent_and_is_recorded_once() -> None:
    w = _blended()
    w.join("1001")
    w.at(5)
    w.join("1002")
    out = w.arrive("in-1")
    (r,) = [c for c in out if isinstance(c, cmd.Redirect)]
    assert (r.attempt_id, r.agent_id) == ("in-1", "1001")
    (pop,) = [c for c in out if isinstance(c, cmd.InboundPop)]
    assert pop.caller == "+442079460001" and pop.queue == "q1"
    assert w.status("1001") is AgentStatus.RESERVED
    w.at(1)
    w.connect("in-1", "1001")
    assert w.status("1001") is AgentStatus.TALKING
    w.at(200)
    w.hang_up("in-1")
    (rec,) = w.of(cmd.RecordInbound)
    assert rec.outcome is InboundOutcome.ANSWERED and rec.agent_id == "1001"
    assert rec.wait_s == 1.0
    assert w.status("1001") is AgentStatus.WRAP
    st = w.core.queues["q1"].stats
    assert (st.offered, st.answered, st.answered_in_sl) == (1, 1, 1)
    w.hang_up("in-1")
    assert len(w.of(cmd.RecordInbound)) == 1


def test_a_caller_waits_for_the_next_freed_agent() -> None:
    w = _blended()
    w.join("1001")
    w.arrive("in-1")
    w.connect("in-1", "1001")
    w.at(3)
    w.arrive("in-2")
    assert list(w.core.queues["q1"].waiting) == ["in-2"]
    w.at(60)
    w.hang_up("in-1")
    w.tick(5)  # wrap-up (5 s) over: the agent takes the waiting caller
    redirects = [c for c in w.of(cmd.Redirect) if c.attempt_id == "in-2"]
    assert redirects and redirects[0].agent_id == "1001"
    assert w.core.inbound["in-2"].state is InboundState.CONNECTING


def test_an_answered_outbound_call_takes_a_freed_agent_before_a_waiting_caller() -> None:
    w = CoreHarness(campaign(dial_mode="progressive", wrap_up_s=0))
    w.queues(queue())
    w.join("1001")
    w.load(leads(1), exhausted=True)
    (p,) = w.placed()
    w.arrive("in-1")  # the agent is free: the caller takes them at once
    assert w.status("1001") is AgentStatus.RESERVED
    w.connect("in-1", "1001")
    w.at(4)
    w.arrive("in-2")  # waits: nobody free
    w.at(1)
    w.answer(p.attempt_id)  # waits too, inside its 2 s window
    w.at(0.5)
    w.hang_up("in-1")  # no wrap-up: the agent is free at once
    (r,) = [c for c in w.of(cmd.Redirect) if c.attempt_id != "in-1"]
    assert (r.attempt_id, r.agent_id) == (p.attempt_id, "1001")
    assert w.core.inbound["in-2"].state is InboundState.WAITING


def test_no_agent_logged_in_gives_the_no_agents_fallback_at_once() -> None:
    w = _blended()
    out = w.arrive("in-1")
    (fb,) = [c for c in out if isinstance(c, cmd.InboundFallback)]
    assert (fb.reason, fb.action, fb.sound) == ("no_agents", "message", "custom/closed")
    w.at(4)
    w.hang_up("in-1")
    (rec,) = w.of(cmd.RecordInbound)
    assert rec.outcome is InboundOutcome.FALLBACK and rec.fallback == "no_agents"


def test_max_wait_offers_the_callback_and_pressing_1_makes_the_lead() -> None:
    w = _blended()
    w.join("1001")
    w.arrive("in-1")
    w.connect("in-1", "1001")
    w.arrive("in-2", caller="+442079460002")
    w.tick(59)
    assert not w.of(cmd.InboundFallback)
    out = w.tick(1)
    (fb,) = [c for c in out if isinstance(c, cmd.InboundFallback)]
    assert (fb.call_id, fb.reason, fb.action) == ("in-2", "max_wait", "callback")
    assert fb.offer_sound == "custom/offer"
    out = w.do(ev.CallbackRequested(w.at(3), "in-2", "PJSIP/trunk-in-2"))
    (mk,) = [c for c in out if isinstance(c, cmd.MakeCallback)]
    assert (mk.campaign, mk.phone, mk.queue) == ("c1", "+442079460002", "q1")
    w.hang_up("in-2")
    (rec,) = [r for r in w.of(cmd.RecordInbound) if r.call_id == "in-2"]
    assert rec.outcome is InboundOutcome.CALLBACK and rec.callback_campaign == "c1"
    assert w.core.queues["q1"].stats.callbacks == 1


def test_a_withheld_caller_pressing_1_is_told_no() -> None:
    w = _blended()
    w.join("1001")
    w.arrive("in-1")
    w.arrive("in-2", caller="")
    w.tick(60)
    out = w.do(ev.CallbackRequested(w.at(2), "in-2", "PJSIP/trunk-in-2"))
    (ack,) = [c for c in out if isinstance(c, cmd.AgentAck)]
    assert not ack.ok and not [c for c in out if isinstance(c, cmd.MakeCallback)]


def test_a_caller_who_hangs_up_while_waiting_is_an_abandon() -> None:
    w = _blended()
    w.join("1001")
    w.arrive("in-1")
    w.arrive("in-2")
    w.at(25)
    w.hang_up("in-2")
    (rec,) = w.of(cmd.RecordInbound)
    assert rec.outcome is InboundOutcome.ABANDONED and rec.wait_s == 25
    assert w.core.queues["q1"].stats.abandoned == 1
    assert not w.core.queues["q1"].waiting


def test_the_last_agent_leaving_sends_the_waiting_callers_to_the_fallback() -> None:
    w = _blended()
    w.join("1001")
    w.arrive("in-1")
    w.connect("in-1", "1001")
    w.arrive("in-2")
    w.leave("1001")
    out = w.tick(1)
    fbs = [c for c in out if isinstance(c, cmd.InboundFallback)]
    assert [(f.call_id, f.reason) for f in fbs] == [("in-2", "no_agents")]


def test_a_caller_on_the_way_to_an_agent_who_leaves_is_first_in_line_again() -> None:
    w = _blended()
    w.join("1001")
    w.join("1002")
    w.arrive("in-1")
    w.connect("in-1", "1001")
    w.arrive("in-2")  # to 1002
    w.arrive("in-3")  # waits
    w.leave("1002")
    assert list(w.core.queues["q1"].waiting) == ["in-2", "in-3"]


def test_a_failed_redirect_is_retried_then_given_up() -> None:
    w = _blended()
    w.join("1001")
    w.arrive("in-1")
    w.do(ev.RedirectFailed(w.at(0.1), "in-1", "no such channel"))
    assert w.core.inbound["in-1"].state is InboundState.CONNECTING  # tried again
    w.do(ev.RedirectFailed(w.at(0.1), "in-1", "no such channel"))
    (rec,) = w.of(cmd.RecordInbound)
    assert rec.outcome is InboundOutcome.ABANDONED
    assert "in-1" not in w.core.inbound and w.status("1001") is AgentStatus.READY


def test_higher_priority_queue_first_then_the_longest_wait() -> None:
    w = CoreHarness(campaign(dial_mode="progressive"))
    w.queues(
        queue("low", dids=["+442071234567"]),
        queue("high", dids=["+442071234568"], priority=50),
    )
    w.join("1001")
    w.arrive("a", queue="low")
    w.connect("a", "1001")
    w.arrive("b", queue="low")
    w.at(10)
    w.arrive("c", queue="high")
    w.hang_up("a")
    w.tick(5)
    nxt = [c.attempt_id for c in w.of(cmd.Redirect)][-1]
    assert nxt == "c"


def test_a_queue_of_other_agents_does_not_take_this_campaigns_agents() -> None:
    w = CoreHarness(campaign(dial_mode="progressive"))
    w.queues(queue(campaigns=[], agents=["1003"]))
    w.join("1001")
    w.arrive("in-1")  # 1003 is not logged in: no agents
    (fb,) = w.of(cmd.InboundFallback)
    assert fb.reason == "no_agents"
    assert w.status("1001") is AgentStatus.READY


def test_waiting_callers_hold_back_progressive_dialing() -> None:
    w = _blended()
    w.join("1001")
    w.join("1002")
    w.arrive("in-1")
    w.connect("in-1", "1001")
    w.arrive("in-2")
    w.connect("in-2", "1002")
    w.arrive("in-3")  # waits
    w.join("1003")  # takes in-3 at once, not a lead
    assert w.core.inbound["in-3"].agent_id == "1003"
    w.load(leads(5), exhausted=True)
    assert not w.placed()


def test_the_pacing_snapshot_carries_the_inbound_demand_shared_by_campaign() -> None:
    w = CoreHarness(
        campaign("c1", dial_mode="progressive"),
        campaign("c2", dial_mode="progressive", agents=["2001"]),
    )
    w.queues(queue(campaigns=["c1", "c2"]))
    for a in ("1001", "1002", "1003", "2001"):
        w.join(a)
    for i in range(4):
        w.arrive(f"in-{i}")
        w.connect(f"in-{i}", w.core.inbound[f"in-{i}"].agent_id or "")
    w.arrive("in-9")  # waits: all four agents talk
    s1, s2 = w.core.snapshot("c1", w.now), w.core.snapshot("c2", w.now)
    assert (s1.inbound_waiting, s2.inbound_waiting) == (0.75, 0.25)
    assert s1.inbound_now == 1 and s2.inbound_now == 1
    # five arrivals in the first moments: the young estimate is scaled to
    # its warm-up time, not to a whole time constant
    assert s1.inbound_rate == 3 * s2.inbound_rate > 0


def test_a_drain_sends_waiting_callers_to_the_fallback_and_waits_for_the_rest() -> None:
    w = _blended()
    w.join("1001")
    w.arrive("in-1")
    w.connect("in-1", "1001")
    w.arrive("in-2")
    out = w.do(ev.Drain(w.at(1)))
    assert [(c.call_id, c.reason) for c in out if isinstance(c, cmd.InboundFallback)] == [
        ("in-2", "no_agents")
    ]
    assert w.core.live_calls == 2  # the drain waits for both to end
    out = w.arrive("in-3")
    assert [c.call_id for c in out if isinstance(c, cmd.InboundFallback)] == ["in-3"]
    for cid in ("in-1", "in-2", "in-3"):
        w.hang_up(cid)
    assert w.core.live_calls == 0 and len(w.of(cmd.RecordInbound)) == 3


def test_a_resync_closes_callers_whose_channel_ended_unseen() -> None:
    w = _blended()
    w.join("1001")
    w.arrive("in-1")
    w.connect("in-1", "1001")
    w.arrive("in-2")
    w.at(30)
    agent = w.agent_event("1001")
    live = (ev.LiveCall("in-1", "PJSIP/trunk-in-1", "room", "1001"),)
    w.do(ev.Resync(w.now, live, (agent,), ()))
    (rec,) = w.of(cmd.RecordInbound)
    assert (rec.call_id, rec.outcome) == ("in-2", InboundOutcome.ABANDONED)
    assert "in-1" in w.core.inbound and w.status("1001") is AgentStatus.TALKING


def _talked(w: CoreHarness, cid: str, caller: str = "+442079460001") -> None:
    w.arrive(cid, caller=caller)
    w.connect(cid, "1001")
    w.at(60)
    w.hang_up(cid)


def test_a_disposition_in_wrap_up_applies_to_the_inbound_caller() -> None:
    w = _blended()
    w.join("1001")
    _talked(w, "in-1")
    assert w.status("1001") is AgentStatus.WRAP
    ack = w.key("1001", "3", "90", channel="ack-1", dt=1)
    assert ack.ok
    (d,) = w.of(cmd.DisposeInbound)
    assert (d.call_id, d.queue, d.campaign, d.code) == ("in-1", "q1", "c1", "callback")
    assert d.caller == "+442079460001" and d.callback_at == w.now + 90 * 60
    assert w.status("1001") is AgentStatus.READY  # the disposition ended the wrap-up
    assert not w.of(cmd.RecordDisposition)  # no lead, no attempt touched
    assert not w.key("1001", "1", channel="ack-2").ok  # nothing left to dispose


def test_do_not_call_on_an_inbound_caller_blocks_their_number() -> None:
    w = _blended()
    w.join("1001")
    _talked(w, "in-1", caller="+442079460077")
    w.key("1001", "5", channel="ack-1")
    (d,) = w.of(cmd.DisposeInbound)
    assert d.dnc == "campaign" and d.callback_at is None
    assert w.core.dnc.is_blocked("c1", "+442079460077") is not None


def test_a_key_pressed_while_talking_to_a_caller_applies_when_the_call_ends() -> None:
    w = _blended()
    w.join("1001")
    w.arrive("in-1")
    w.connect("in-1", "1001")
    assert w.key("1001", "1", channel="ack-1", dt=5).ok
    assert not w.of(cmd.DisposeInbound)
    w.hang_up("in-1")
    (d,) = w.of(cmd.DisposeInbound)
    assert d.code == "sale" and w.status("1001") is AgentStatus.READY


def test_an_outbound_call_after_a_caller_takes_the_disposition_back() -> None:
    w = CoreHarness(campaign(dial_mode="progressive", wrap_up_s=0))
    w.queues(queue())
    w.join("1001")
    _talked(w, "in-1")
    w.load(leads(1), exhausted=True)
    (p,) = w.placed()
    w.answer(p.attempt_id)
    w.connect(p.attempt_id, "1001")
    w.hang_up(p.attempt_id)
    w.key("1001", "2", channel="ack-1")
    assert not w.of(cmd.DisposeInbound) and len(w.of(cmd.RecordDisposition)) == 1
