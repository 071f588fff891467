"""The core with no I/O: events in, commands out."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.models import Lead, LeadStatus, Outcome
from dialerd.core.testing import CoreHarness, campaign, leads, of


def world(**camp: Any) -> CoreHarness:
    """c1 (agents 1001-1003) with AMI up, at t=1000."""
    return CoreHarness(campaign(**camp))


def test_no_agents_no_calls_but_leads_requested() -> None:
    w = world()
    out = w.do(ev.LeadsLoaded(w.now, "c1", leads(5), exhausted=True))
    assert of(out, cmd.PlaceCall) == []
    assert of(w.out, cmd.LoadLeads), "the core asks for leads at campaign start"


def test_progressive_one_call_per_ready_agent() -> None:
    w = world()
    w.do(ev.LeadsLoaded(w.now, "c1", leads(20), exhausted=False))
    w.join("1001")
    out = w.join("1002")
    placed = of(w.out, cmd.PlaceCall)
    assert len(placed) == 2
    assert len(of(out, cmd.PlaceCall)) == 1
    p = placed[0]
    assert p.channel == "Local/442071200001@sim-customers"
    assert p.variables["DIALER_ATTEMPT"] == p.attempt_id
    assert p.caller_id == '"Acme" <+442071234567>'


def test_unassigned_agent_places_nothing() -> None:
    w = world()
    w.do(ev.LeadsLoaded(w.now, "c1", leads(5), exhausted=False))
    out = w.join("9999")
    assert of(out, cmd.PlaceCall) == []


def test_answer_redirects_longest_idle_agent() -> None:
    w = world(dial_mode="ratio", dial_ratio=2.0)
    w.join("1002")
    w.at(1)
    w.join("1001")
    w.do(ev.LeadsLoaded(w.now, "c1", leads(10), exhausted=False))
    placed = of(w.out, cmd.PlaceCall)
    assert len(placed) == 4
    out = w.do(ev.CallAnswered(w.at(3), placed[0].attempt_id, "Local/x;1"))
    (r,) = of(out, cmd.Redirect)
    assert r.agent_id == "1002" and r.channel == "Local/x;1"


def test_connected_call_ends_answered_then_wrap_then_ready() -> None:
    w = world()
    w.join("1001")
    w.do(ev.LeadsLoaded(w.now, "c1", leads(3), exhausted=False))
    (p,) = of(w.out, cmd.PlaceCall)
    w.do(ev.CallAnswered(w.at(2), p.attempt_id, "ch;1"))
    w.do(ev.OriginateResult(w.now, p.attempt_id, True, 4))
    w.do(ev.CallConnected(w.at(0.01), p.attempt_id, "1001"))
    assert w.core.agents["1001"].status.value == "talking"
    out = w.do(ev.CallHungUp(w.at(30), p.attempt_id, 16))
    (rec,) = of(out, cmd.RecordOutcome)
    assert rec.outcome is Outcome.ANSWERED and rec.agent_id == "1001"
    assert rec.lead.status is LeadStatus.DONE
    assert of(out, cmd.PlaceCall) == [], "agent in wrap-up: no new call yet"
    out = w.do(ev.Tick(w.at(5.1)))
    assert len(of(out, cmd.PlaceCall)) == 1


def test_unanswered_call_abandoned_after_deadline() -> None:
    w = world(dial_mode="ratio", dial_ratio=3.0)
    w.join("1001")
    w.do(ev.LeadsLoaded(w.now, "c1", leads(10), exhausted=False))
    p = of(w.out, cmd.PlaceCall)
    w.do(ev.CallAnswered(w.at(2), p[0].attempt_id, "a;1"))
    w.do(ev.CallAnswered(w.at(0.1), p[1].attempt_id, "b;1"))
    w.do(ev.Tick(w.at(1.6)))  # deadline 1.5 s passed for the second call
    w.do(ev.SafeHarborPlayed(w.at(0.4), p[1].attempt_id))
    out = w.do(ev.CallHungUp(w.at(4), p[1].attempt_id, 16))
    (rec,) = of(out, cmd.RecordOutcome)
    assert rec.outcome is Outcome.ABANDONED
    assert rec.lead.status is LeadStatus.RETRY


def test_waiting_call_served_when_agent_frees_within_deadline() -> None:
    w = world(dial_mode="ratio", dial_ratio=2.0, wrap_up_s=0)
    w.join("1001")
    w.do(ev.LeadsLoaded(w.now, "c1", leads(10), exhausted=False))
    a, b = of(w.out, cmd.PlaceCall)[:2]
    w.do(ev.CallAnswered(w.at(2), a.attempt_id, "a;1"))
    w.do(ev.CallConnected(w.at(0.01), a.attempt_id, "1001"))
    w.do(ev.CallAnswered(w.at(5), b.attempt_id, "b;1"))
    out = w.do(ev.CallHungUp(w.at(1.0), a.attempt_id, 16))  # agent frees 1 s later
    (r,) = of(out, cmd.Redirect)
    assert r.attempt_id == b.attempt_id


def test_redirect_never_after_deadline() -> None:
    w = world(dial_mode="ratio", dial_ratio=2.0, wrap_up_s=0)
    w.join("1001")
    w.do(ev.LeadsLoaded(w.now, "c1", leads(10), exhausted=False))
    a, b = of(w.out, cmd.PlaceCall)[:2]
    w.do(ev.CallAnswered(w.at(2), a.attempt_id, "a;1"))
    w.do(ev.CallConnected(w.at(0.01), a.attempt_id, "1001"))
    w.do(ev.CallAnswered(w.at(5), b.attempt_id, "b;1"))
    out = w.do(ev.CallHungUp(w.at(1.6), a.attempt_id, 16))  # past 1.5 s, no tick in between
    assert all(r.attempt_id != b.attempt_id for r in of(out, cmd.Redirect))


def test_failed_originate_follows_retry_rules() -> None:
    w = world()
    w.join("1001")
    w.do(ev.LeadsLoaded(w.now, "c1", leads(3), exhausted=False))
    (p,) = of(w.out, cmd.PlaceCall)
    w.do(ev.CallHungUp(w.at(1), p.attempt_id, 17))  # Hangup may come first
    out = w.do(ev.OriginateResult(w.now, p.attempt_id, False, 5))
    (rec,) = of(out, cmd.RecordOutcome)
    assert rec.outcome is Outcome.BUSY
    assert rec.lead.status is LeadStatus.RETRY and rec.lead.next_due_at == w.now + 60
    assert len(of(out, cmd.PlaceCall)) == 1, "the agent is free again: next lead"


def test_busy_stops_at_max_attempts() -> None:
    w = world()
    w.join("1001")
    w.do(ev.LeadsLoaded(w.now, "c1", (Lead(7, "c1", "+442071200007", attempts=1),), False))
    (p,) = of(w.out, cmd.PlaceCall)
    (rec,) = of(w.do(ev.OriginateResult(w.at(1), p.attempt_id, False, 5)), cmd.RecordOutcome)
    assert rec.lead.status is LeadStatus.DONE and rec.lead.attempts == 2
    assert rec.lead.final_reason == "max_attempts_busy"


def test_lead_loaded_twice_dialed_once() -> None:
    w = world(dial_mode="ratio", dial_ratio=3.0)
    w.join("1001")
    w.join("1002")
    one = leads(1)
    w.do(ev.LeadsLoaded(w.now, "c1", one + one, exhausted=False))
    w.do(ev.LeadsLoaded(w.now, "c1", one, exhausted=False))
    assert len(of(w.out, cmd.PlaceCall)) == 1


def test_ami_down_stops_dialing() -> None:
    w = world()
    w.do(ev.AmiDown(w.now, "lost"))
    w.do(ev.LeadsLoaded(w.now, "c1", leads(5), exhausted=False))
    assert of(w.join("1001"), cmd.PlaceCall) == []
    assert len(of(w.do(ev.AmiUp(w.at(1))), cmd.PlaceCall)) == 1


def test_drain_releases_hopper_and_places_nothing() -> None:
    w = world()
    w.do(ev.LeadsLoaded(w.now, "c1", leads(5), exhausted=False))
    out = w.do(ev.Drain(w.now))
    (rel,) = of(out, cmd.ReleaseLeads)
    assert rel.lead_ids == (1, 2, 3, 4, 5)
    assert of(w.join("1001"), cmd.PlaceCall) == []


def test_removed_campaign_stops_dialing_live_calls_finish() -> None:
    w = world()
    w.join("1001")
    w.do(ev.LeadsLoaded(w.now, "c1", leads(5), exhausted=False))
    (p,) = of(w.out, cmd.PlaceCall)
    w.do(ev.CampaignRemoved(w.at(1), "c1"))
    out = w.do(ev.OriginateResult(w.at(1), p.attempt_id, False, 3))
    assert of(out, cmd.RecordOutcome)[0].outcome is Outcome.NO_ANSWER
    assert of(out, cmd.PlaceCall) == []


def test_agent_leaving_mid_redirect_does_not_strand_call() -> None:
    w = world()
    w.join("1001")
    w.do(ev.LeadsLoaded(w.now, "c1", leads(2), exhausted=False))
    (p,) = of(w.out, cmd.PlaceCall)
    w.do(ev.CallAnswered(w.at(1), p.attempt_id, "a;1"))
    w.do(ev.AgentLeft(w.now, "1001"))
    out = w.do(ev.CallHungUp(w.at(3), p.attempt_id, 16))
    assert of(out, cmd.RecordOutcome)[0].outcome is Outcome.ABANDONED


# ---------------------------------------------------------------- properties

actions = st.lists(
    st.tuples(
        st.sampled_from(["join", "leave", "answer", "fail", "hangup", "connect", "tick", "load"]),
        st.integers(0, 30),
        st.floats(0.0, 3.0),
    ),
    max_size=120,
)


@settings(max_examples=200, deadline=None)
@given(actions, st.sampled_from(["progressive", "ratio"]))
def test_invariants_under_random_events(script: list[tuple[str, int, float]], mode: str) -> None:
    """Whatever order Asterisk reports things in: no lead in two live calls,
    never more lines than allowed, every call ends in exactly one outcome."""
    w = world(dial_mode=mode, dial_ratio=2.5, max_lines=4)
    next_lead = 1
    for kind, k, dt in script:
        w.at(dt)
        live = list(w.core.calls)
        if kind == "join":
            w.join(f"100{1 + k % 3}")
        elif kind == "leave":
            w.do(ev.AgentLeft(w.now, f"100{1 + k % 3}"))
        elif kind == "load":
            w.do(ev.LeadsLoaded(w.now, "c1", leads(3, start=1 + k % 8), exhausted=False))
            next_lead += 3
        elif kind == "tick":
            w.do(ev.Tick(w.now))
        elif live:
            aid = live[k % len(live)]
            if kind == "answer":
                w.do(ev.CallAnswered(w.now, aid, f"{aid};1"))
            elif kind == "fail":
                w.do(ev.OriginateResult(w.now, aid, False, 5))
            elif kind == "hangup":
                w.do(ev.CallHungUp(w.now, aid, 16))
                w.do(ev.OriginateResult(w.now, aid, True, 4))
            elif kind == "connect":
                agent = next(iter(w.core.agents), "1001")
                w.do(ev.CallConnected(w.now, aid, agent))
        # invariants after every event
        live_leads = [c.lead.id for c in w.core.calls.values()]
        assert len(live_leads) == len(set(live_leads))
        assert w.core.campaigns["c1"].live == len(w.core.calls) <= 4
    # drain, then finish everything still live: each call ends exactly once
    w.do(ev.Drain(w.now))
    for aid in list(w.core.calls):
        w.do(ev.OriginateResult(w.at(1), aid, False, 3))
        w.do(ev.CallHungUp(w.now, aid, 16))
    placed_ids = [p.attempt_id for p in of(w.out, cmd.PlaceCall)]
    ended_ids = [r.attempt_id for r in of(w.out, cmd.RecordOutcome)]
    assert sorted(placed_ids) == sorted(ended_ids)
    assert len(set(ended_ids)) == len(ended_ids)
    assert not w.core.calls and not w.core.live_leads


def test_reason_zero_classified_by_later_hangup_cause() -> None:
    """Asterisk reports a far-end no-answer (cause 19) as Reason 0."""
    w = world()
    w.join("1001")
    w.do(ev.LeadsLoaded(w.now, "c1", leads(3), exhausted=False))
    (p,) = of(w.out, cmd.PlaceCall)
    assert of(w.do(ev.OriginateResult(w.at(1), p.attempt_id, False, 0)), cmd.RecordOutcome) == []
    w.do(ev.CallHungUp(w.now, p.attempt_id, 0))  # the ;1 half: no cause
    (rec,) = of(w.do(ev.CallHungUp(w.now, p.attempt_id, 19)), cmd.RecordOutcome)
    assert rec.outcome is Outcome.NO_ANSWER


def test_reason_zero_without_cause_fails_after_wait() -> None:
    w = world()
    w.join("1001")
    w.do(ev.LeadsLoaded(w.now, "c1", leads(3), exhausted=False))
    (p,) = of(w.out, cmd.PlaceCall)
    w.do(ev.OriginateResult(w.at(1), p.attempt_id, False, 0))
    assert of(w.do(ev.Tick(w.at(1))), cmd.RecordOutcome) == []
    (rec,) = of(w.do(ev.Tick(w.at(1.5))), cmd.RecordOutcome)
    assert rec.outcome is Outcome.FAILED


def test_paused_campaign_places_nothing_until_resumed() -> None:
    w = world()
    w.do(ev.LeadsLoaded(w.now, "c1", leads(5), exhausted=False))
    w.do(ev.CampaignPause(w.now, "c1", True))
    assert of(w.join("1001"), cmd.PlaceCall) == []
    assert len(of(w.do(ev.CampaignPause(w.at(1), "c1", False)), cmd.PlaceCall)) == 1


def test_dial_level_cap_limits_lines() -> None:
    w = world(dial_mode="ratio", dial_ratio=3.0)
    w.do(ev.SetDialLevel(w.now, "c1", 1.0))
    w.join("1001")
    w.join("1002")
    w.do(ev.LeadsLoaded(w.now, "c1", leads(10), exhausted=False))
    assert len(of(w.out, cmd.PlaceCall)) == 2
    w.do(ev.SetDialLevel(w.at(1), "c1", None))
    assert len(of(w.out, cmd.PlaceCall)) == 6


def test_agent_pause_waits_for_call_end_and_logout_hangs_up() -> None:
    w = world(wrap_up_s=0)
    w.join("1001")
    w.do(ev.LeadsLoaded(w.now, "c1", leads(5), exhausted=False))
    (p,) = of(w.out, cmd.PlaceCall)
    w.do(ev.CallAnswered(w.at(1), p.attempt_id, "a;1"))
    w.do(ev.CallConnected(w.now, p.attempt_id, "1001"))
    w.do(ev.AgentPause(w.now, "1001", True))
    assert w.core.agents["1001"].status.value == "talking", "never paused mid-call"
    out = w.do(ev.CallHungUp(w.at(5), p.attempt_id, 16))
    assert w.core.agents["1001"].status.value == "paused"
    assert of(out, cmd.PlaceCall) == []
    assert len(of(w.do(ev.AgentPause(w.at(1), "1001", False)), cmd.PlaceCall)) == 1
    (h,) = of(w.do(ev.AgentLogout(w.now, "1001")), cmd.HangupAgent)
    assert h.channel == "Local/1001@a;2"


# ------------------------------------------------------------------ resync


def test_resync_adopts_earlier_runs_calls_and_closes_dead_ones() -> None:
    w = world(wrap_up_s=0)
    ringing = ev.OpenAttempt("old-1", "c1", Lead(1, "c1", "+442071200001"), w.now - 5)
    in_room = ev.OpenAttempt("old-2", "c1", Lead(2, "c1", "+442071200002"), w.now - 60)
    dead = ev.OpenAttempt("old-3", "c1", Lead(3, "c1", "+442071200003", attempts=1), w.now - 9)
    out = w.do(
        ev.Resync(
            w.now,
            calls=(
                ev.LiveCall("old-1", "L/1;1", "ringing"),
                ev.LiveCall("old-2", "L/2;1", "room", "1001"),
            ),
            agents=(w.agent_event("1001"), w.agent_event("1002")),
            open_attempts=(ringing, in_room, dead),
        )
    )
    (closed,) = of(out, cmd.RecordOutcome)
    assert closed.attempt_id == "old-3" and closed.outcome is Outcome.INTERRUPTED
    assert closed.lead.status is LeadStatus.RETRY
    assert w.core.agents["1001"].status.value == "talking", "agent with a customer is busy"
    # the hopper offers the adopted leads again: never dialed while live
    w.do(ev.LeadsLoaded(w.now, "c1", leads(4), exhausted=False))
    # agent 1002 is ready, but the adopted ringing call is its line already
    assert of(w.out, cmd.PlaceCall) == []
    # the adopted ringing call ends by its cause, the room call as answered
    out = w.do(ev.CallHungUp(w.at(1), "old-1", 17))
    (r1,) = of(out, cmd.RecordOutcome)
    assert r1.outcome is Outcome.BUSY
    placed = of(w.out, cmd.PlaceCall)
    assert len(placed) == 1 and placed[0].lead_id not in (1, 2), "adopted leads are live"
    (r2,) = of(w.do(ev.CallHungUp(w.at(1), "old-2", 16)), cmd.RecordOutcome)
    assert r2.outcome is Outcome.ANSWERED and r2.agent_id == "1001"
    assert w.core.agents["1001"].status.value in ("ready", "reserved")


def test_lost_originate_kept_until_resync_or_hangup() -> None:
    w = world()
    w.join("1001")
    w.join("1002")
    w.do(ev.LeadsLoaded(w.now, "c1", leads(5), exhausted=False))
    a, b = of(w.out, cmd.PlaceCall)[:2]
    w.do(ev.AmiDown(w.at(1), "lost"))
    assert (
        of(w.do(ev.OriginateResult(w.now, a.attempt_id, False, None, lost=True)), cmd.RecordOutcome)
        == []
    )
    w.do(ev.OriginateResult(w.now, b.attempt_id, False, None, lost=True))
    # a's far end gives up while we are away; we see its hangup after all
    (ra,) = of(w.do(ev.CallHungUp(w.at(1), a.attempt_id, 19)), cmd.RecordOutcome)
    assert ra.outcome is Outcome.NO_ANSWER
    # b vanished unseen: the resync closes it as interrupted (retried later)
    w.do(ev.AmiUp(w.at(1)))
    out = w.do(ev.Resync(w.now, (), (w.agent_event("1001"), w.agent_event("1002")), ()))
    (rb,) = [r for r in of(out, cmd.RecordOutcome) if r.attempt_id == b.attempt_id]
    assert rb.outcome is Outcome.INTERRUPTED and rb.lead.status is LeadStatus.RETRY


def test_resync_closes_calls_that_ended_unseen_and_agents_gone() -> None:
    w = world()
    w.join("1001")
    w.join("1002")
    w.do(ev.LeadsLoaded(w.now, "c1", leads(5), exhausted=False))
    a = of(w.out, cmd.PlaceCall)[0]
    w.do(ev.CallAnswered(w.at(2), a.attempt_id, "a;1"))
    w.do(ev.CallConnected(w.now, a.attempt_id, "1001"))
    w.do(ev.AmiDown(w.at(10), "lost"))
    out = w.do(ev.Resync(w.at(5), (), (w.agent_event("1001"),), ()))
    recs = {r.attempt_id: r for r in of(out, cmd.RecordOutcome)}
    assert recs[a.attempt_id].outcome is Outcome.ANSWERED
    assert "1002" not in w.core.agents, "an agent no longer in a room is logged out"


def test_resync_finds_a_previewing_agent_talking_and_the_offer_goes_back() -> None:
    """An agent with a lead on screen who is found in their room with a
    customer (an earlier run's call) is talking: the offer is released, never
    dialed behind their back."""
    w = world(dial_mode="preview", preview={"timeout_s": 20})
    w.join("1001")
    w.do(ev.LeadsLoaded(w.now, "c1", leads(2), exhausted=True))
    assert w.status("1001").value == "preview" and w.core.previewing("c1") == 1
    old = ev.OpenAttempt("old-1", "c1", Lead(9, "c1", "+442071200009"), w.now - 30)
    out = w.do(
        ev.Resync(
            w.at(1),
            calls=(ev.LiveCall("old-1", "L/9;1", "room", "1001"),),
            agents=(w.agent_event("1001"),),
            open_attempts=(old,),
        )
    )
    assert w.status("1001").value == "talking" and w.core.agents["1001"].call == "old-1"
    assert [r.lead_ids for r in of(out, cmd.ReleaseLeads)] == [(1,)]
    assert 1 not in w.core.live_leads and w.core.previewing("c1") == 0
    assert w.core.campaigns["c1"].talking == 1
    w.do(ev.Tick(w.at(30)))
    assert of(w.out, cmd.PlaceCall) == [], "nothing dialed for the talking agent"


def test_an_agent_moved_to_another_campaign_mid_call_is_counted_where_they_work() -> None:
    """The agent's call began in c1, the agent now works for c2: talking and
    wrap-up are counted in c2 (the harness recounts after every event)."""
    w = CoreHarness(campaign("c1", agents=["1001"]), campaign("c2", agents=[]))
    w.join("1001")
    w.do(ev.LeadsLoaded(w.now, "c1", leads(1), exhausted=True))
    (p,) = w.placed()
    w.at(2)
    w.answer(p.attempt_id)
    assert w.status("1001").value == "reserved"
    w.do(ev.CampaignLoaded(w.now, campaign("c1", agents=[])))
    w.do(ev.CampaignLoaded(w.now, campaign("c2", agents=["1001"])))
    assert w.core.agents["1001"].campaign == "c2"
    w.connect(p.attempt_id, "1001")
    c1, c2 = w.core.campaigns["c1"], w.core.campaigns["c2"]
    assert (c1.talking, c2.talking) == (0, 1)
    w.at(30)
    (rec,) = of(w.hang_up(p.attempt_id), cmd.RecordOutcome)
    assert rec.outcome is Outcome.ANSWERED and rec.campaign == "c1"
    assert (c1.talking, c2.talking, c1.wrap, c2.wrap) == (0, 0, 0, 1)
