"""The core when the store cannot record: it places nothing (every campaign,
the agents' own calls too) while ``StoreDown`` holds, takes back the lead of
a call that was never placed, and its watchdogs free a campaign whose lead
request was never answered and a line whose Originate never got a verdict."""

from __future__ import annotations

from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.calls import VERDICT_GRACE_S
from dialerd.core.hopper import LOAD_TIMEOUT_S
from dialerd.core.models import AgentStatus, Outcome
from dialerd.core.testing import CoreHarness, campaign, leads, of


def test_no_call_is_placed_while_the_store_is_down_and_dialing_resumes_after() -> None:
    h = CoreHarness(campaign(), campaign("c2", agents=["2001"]))
    h.do(ev.StoreDown(h.now, "database is locked"))
    assert h.core.store_down == "database is locked"
    h.load(leads(10))
    h.load(leads(5, start=100, camp="c2"), camp="c2")
    h.join("1001")
    h.join("2001")
    h.tick(1.0)
    assert h.placed() == [], "a call was placed while the store could not record"
    out = h.do(ev.StoreUp(h.at(1.0)))
    assert h.core.store_down is None
    assert {p.campaign for p in of(out, cmd.PlaceCall)} == {"c1", "c2"}


def test_an_agents_own_calls_are_refused_while_the_store_is_down() -> None:
    h = CoreHarness(campaign(dial_mode="preview"))
    h.load(leads(3))
    h.join("1001")
    assert h.status("1001") is AgentStatus.PREVIEW
    h.do(ev.StoreDown(h.now, "disk full"))
    ack = h.key("1001", "ready", channel="Local/1001@a;2")  # accept the offer
    assert not ack.ok and ack.prompt == "refused"
    lead = leads(1, start=50)[0]
    out = h.do(ev.ManualDial(h.at(1.0), "1001", lead, "Local/1001@a;2"))
    assert not of(out, cmd.AgentAck)[0].ok
    assert "store down" in of(out, cmd.AgentAction)[0].detail
    assert h.placed() == []


def test_a_call_not_placed_gives_its_lead_back_and_counts_no_dial() -> None:
    h = CoreHarness(campaign())
    h.load(leads(2))
    h.join("1001")
    first = h.placed()[0]
    h.do(ev.StoreDown(h.now, "disk I/O error"))
    h.do(ev.CallNotPlaced(h.at(0.1), first.attempt_id, "store: disk I/O error"))
    run = h.core.campaigns["c1"]
    assert h.core.calls == {} and run.live == 0 and run.stats.dials == 0
    assert not h.of(cmd.RecordOutcome), "no attempt was made: no outcome to record"
    assert run.hopper[0].id == first.lead_id, "the lead is first in line again"
    out = h.do(ev.StoreUp(h.at(1.0)))
    assert [p.lead_id for p in of(out, cmd.PlaceCall)] == [first.lead_id]


def test_a_lead_the_store_refuses_is_let_go_not_retried() -> None:
    h = CoreHarness(campaign())
    h.load(leads(1))
    h.join("1001")
    first = h.placed()[0]
    out = h.do(ev.CallNotPlaced(h.at(0.1), first.attempt_id, "not dialable", give_back=False))
    assert of(out, cmd.ReleaseLeads) == [cmd.ReleaseLeads("c1", (first.lead_id,))]
    assert len(h.placed()) == 1 and first.lead_id not in h.core.campaigns["c1"].hopper_ids


def test_a_manual_dial_not_placed_frees_its_agent_and_its_lead() -> None:
    h = CoreHarness(campaign())
    h.join("1001")
    h.do(ev.AgentPause(h.now, "1001", True))
    lead = leads(1, start=70)[0]
    h.do(ev.ManualDial(h.at(1.0), "1001", lead, "Local/1001@a;2"))
    (p,) = h.placed()
    assert h.status("1001") is AgentStatus.RESERVED
    out = h.do(ev.CallNotPlaced(h.at(0.1), p.attempt_id, "store: database is locked"))
    assert of(out, cmd.ReleaseLeads) == [cmd.ReleaseLeads("c1", (70,))]
    assert h.status("1001") is AgentStatus.PAUSED, "back to the pause it dialed from"


def test_a_lead_request_never_answered_is_asked_again() -> None:
    h = CoreHarness(campaign())
    h.join("1001")
    assert len(h.of(cmd.LoadLeads)) == 1
    h.tick(LOAD_TIMEOUT_S - 1)
    assert len(h.of(cmd.LoadLeads)) == 1, "asked again before the watchdog's time"
    h.tick(1.0)
    assert len(h.of(cmd.LoadLeads)) == 2
    out = h.load(leads(1))  # the late answer still counts
    assert len(of(out, cmd.PlaceCall)) == 1


def test_a_call_with_no_originate_verdict_is_ended_by_the_watchdog() -> None:
    c = campaign()
    h = CoreHarness(c)
    h.load(leads(1))
    h.join("1001")
    (p,) = h.placed()
    h.tick(c.ring_timeout_s + VERDICT_GRACE_S - 1)
    assert p.attempt_id in h.core.calls
    out = h.tick(1.0)
    (rec,) = of(out, cmd.RecordOutcome)
    assert rec.attempt_id == p.attempt_id and rec.outcome is Outcome.INTERRUPTED
    assert h.core.live_calls == 0 and h.core.campaigns["c1"].live == 0


def test_the_watchdog_leaves_a_call_with_a_verdict_alone() -> None:
    c = campaign()
    h = CoreHarness(c)
    h.load(leads(1))
    h.join("1001")
    (p,) = h.placed()
    h.do(ev.OriginateResult(h.at(1.0), p.attempt_id, True, 4))
    h.answer(p.attempt_id)
    h.connect(p.attempt_id, "1001")
    h.tick(c.ring_timeout_s + VERDICT_GRACE_S + 10)
    assert p.attempt_id in h.core.calls and not h.of(cmd.RecordOutcome)


def test_a_call_whose_verdict_was_lost_with_ami_is_ended_by_the_watchdog() -> None:
    c = campaign()
    h = CoreHarness(c)
    h.load(leads(1))
    h.join("1001")
    (p,) = h.placed()
    h.do(ev.OriginateResult(h.at(1.0), p.attempt_id, False, None, "lost", lost=True))
    h.tick(c.ring_timeout_s + VERDICT_GRACE_S)
    assert [r.outcome for r in h.of(cmd.RecordOutcome)] == [Outcome.INTERRUPTED]
