"""Inbound routing under random event sequences (hypothesis).

Each example drives a ``CoreHarness`` (which checks the core's invariants
after every event, among them: a caller waits only while no agent of the
queue is ready) through a random mix of what the shell reports: agents
joining and leaving, callers arriving, joining rooms, hanging up, Redirects
failing, callback keys, outbound calls answered, connected and ended, time
passing. At the end every caller is hung up and each must have exactly one
``RecordInbound``; an outbound call answered inside its connect window
always got a freed agent before a waiting caller.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.models import AgentStatus, CallState, InboundOutcome, InboundState
from dialerd.core.testing import CoreHarness, campaign, leads, queue

AGENTS = ("1001", "1002", "1003")
ACTIONS = (
    "join", "leave", "arrive", "arrive", "connect", "connect", "hang_up_caller",
    "redirect_failed", "press1", "tick", "tick", "answer", "hang_up_out", "wrap",
)  # fmt: skip


def _harness(mode: str) -> CoreHarness:
    w = CoreHarness(campaign(dial_mode=mode, wrap_up_s=3))
    w.queues(queue(max_wait_s=30, service_level={"percent": 80, "within_s": 10}))
    w.load(leads(200), exhausted=True)
    return w


def _pending_redirects(w: CoreHarness) -> list[cmd.Redirect]:
    """Redirects whose caller or customer has not joined a room yet."""
    out = []
    for r in w.of(cmd.Redirect):
        ic = w.core.inbound.get(r.attempt_id)
        if ic is not None and ic.state is InboundState.CONNECTING and ic.agent_id == r.agent_id:
            out.append(r)
        call = w.core.calls.get(r.attempt_id)
        if call is not None and call.state is CallState.CONNECTING:
            out.append(r)
    return out


def _run(w: CoreHarness, script: list[tuple[str, int, float]]) -> set[str]:
    callers: set[str] = set()
    for n, (action, pick, dt) in enumerate(script):
        w.at(dt)
        core = w.core
        if action == "join":
            a = AGENTS[pick % len(AGENTS)]
            if a not in core.agents:
                w.join(a)
        elif action == "leave":
            a = AGENTS[pick % len(AGENTS)]
            if a in core.agents and core.agents[a].status in (
                AgentStatus.READY, AgentStatus.WRAP, AgentStatus.PAUSED,
            ):  # fmt: skip
                w.leave(a)
        elif action == "arrive":
            cid = f"in-{n}"
            callers.add(cid)
            w.arrive(cid, caller="" if pick % 5 == 0 else f"+4420794{n:05d}")
        elif action == "connect":
            pend = _pending_redirects(w)
            if pend:
                r = pend[pick % len(pend)]
                w.connect(r.attempt_id, r.agent_id)
        elif action == "hang_up_caller":
            live = sorted(c for c in callers if c in core.inbound)
            if live:
                w.hang_up(live[pick % len(live)])
        elif action == "redirect_failed":
            pend = [r for r in _pending_redirects(w) if r.attempt_id in core.inbound]
            if pend:
                w.do(ev.RedirectFailed(w.now, pend[pick % len(pend)].attempt_id, "gone"))
        elif action == "press1":
            fb = sorted(c for c, ic in core.inbound.items() if ic.state is InboundState.FALLBACK)
            if fb:
                w.do(ev.CallbackRequested(w.now, fb[pick % len(fb)], "PJSIP/x"))
        elif action == "tick":
            w.tick()
        elif action == "answer":
            dialing = sorted(
                c.attempt_id for c in core.calls.values() if c.state is CallState.DIALING
            )
            if dialing:
                aid = dialing[pick % len(dialing)]
                out = w.answer(aid)
                _check_outbound_first(w, out)
                w.do(ev.OriginateResult(w.now, aid, True, 4))
        elif action == "hang_up_out":
            talking = sorted(
                c.attempt_id for c in core.calls.values()
                if c.state in (CallState.CONNECTED, CallState.WAITING, CallState.DIALING)
            )  # fmt: skip
            if talking:
                out = w.hang_up(talking[pick % len(talking)])
                _check_outbound_first(w, out)
        elif action == "wrap":
            out = w.tick(5.0)
            _check_outbound_first(w, out)
    return callers


def _check_outbound_first(w: CoreHarness, out: list[cmd.Command]) -> None:
    """No caller was given an agent while an answered outbound call inside
    its connect window waited for one."""
    if any(isinstance(c, cmd.Redirect) and c.attempt_id in w.core.inbound for c in out):
        run = w.core.campaigns["c1"]
        for aid in run.waiting:
            call = w.core.calls[aid]
            assert call.answered_at is None or (
                w.now - call.answered_at >= run.cfg.connect_deadline_s
            ), f"caller routed while outbound call {aid} waited in its window"


step = st.tuples(
    st.sampled_from(ACTIONS), st.integers(0, 50), st.sampled_from([0.0, 0.5, 2.0, 7.0, 40.0])
)


@settings(max_examples=120, deadline=None)
@given(mode=st.sampled_from(["progressive", "predictive"]), script=st.lists(step, max_size=80))
def test_random_sequences_keep_routing_invariants_and_record_each_caller_once(
    mode: str, script: list[tuple[str, int, float]]
) -> None:
    w = _harness(mode)
    callers = _run(w, script)
    # the end of the day: every caller's channel goes
    for cid in sorted(callers):
        w.at(1.0)
        w.hang_up(cid)
    recs = Counter(r.call_id for r in w.of(cmd.RecordInbound))
    assert set(recs) == callers
    assert all(n == 1 for n in recs.values()), recs
    assert not w.core.inbound
    # every callback the core asked for came from a caller recorded as one
    cbs = {m.call_id for m in w.of(cmd.MakeCallback)}
    outcomes = {r.call_id: r.outcome for r in w.of(cmd.RecordInbound)}
    assert all(outcomes[c] is InboundOutcome.CALLBACK for c in cbs)
    assert all(r.phone for r in w.of(cmd.MakeCallback)), "a callback needs a number"


def test_a_caller_waits_only_while_no_agent_of_the_queue_is_ready() -> None:
    """Deterministic companion of the property: agents idle, callers come
    one after another; none of them ever waits."""
    w = _harness("progressive")
    w.core.campaigns["c1"].paused = True  # no outbound: agents stay idle
    for a in AGENTS:
        w.join(a)
    for i in range(3):
        w.arrive(f"in-{i}")
        assert not w.core.queues["q1"].waiting
    w.arrive("in-9")
    assert list(w.core.queues["q1"].waiting) == ["in-9"]


def test_max_wait_fallback_then_callback_then_one_record() -> None:
    w = _harness("progressive")
    w.core.campaigns["c1"].paused = True
    w.join("1001")
    w.arrive("in-1")
    w.arrive("in-2")  # waits: the one agent has in-1
    w.tick(31.0)  # past max_wait_s
    (fb,) = w.of(cmd.InboundFallback)
    assert (fb.call_id, fb.reason, fb.action) == ("in-2", "max_wait", "callback")
    w.do(ev.CallbackRequested(w.at(3.0), "in-2", "PJSIP/x"))
    (mk,) = w.of(cmd.MakeCallback)
    assert mk.phone == "+442079460001" and mk.campaign == "c1"
    w.hang_up("in-2")
    (rec,) = w.of(cmd.RecordInbound)
    assert rec.outcome is InboundOutcome.CALLBACK and rec.fallback == "max_wait"
    assert rec.wait_s >= 31.0  # it waited past max_wait_s (then heard the offer)
