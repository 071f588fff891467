"""Blended pacing: the outbound policies with inbound demand in the snapshot
(unit and property tests, no I/O, no clock), and the simulator's blended
world (callers drawn on their own streams, measured once each)."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_pacing import snap, warm_tracker

from dialerd.core.testing import CoreHarness, campaign, leads, queue
from dialerd.pacing.inbound import agents_for, service_level
from dialerd.pacing.policies import PacingSnapshot, Progressive, Vicidial
from dialerd.pacing.predictive import Predictive
from dialerd.pacing.registry import make_policy
from dialerd.sim.inbound import reserve_plan
from dialerd.sim.scenario import Scenario
from dialerd.sim.world import simulate


def _with(s: PacingSnapshot, **kw: float) -> PacingSnapshot:
    return dataclasses.replace(s, **kw)  # type: ignore[arg-type]


@settings(max_examples=80, deadline=None)
@given(
    mode=st.sampled_from(["progressive", "ratio", "soonfree", "predictive"]),
    ready=st.integers(0, 20),
    talking=st.integers(0, 30),
    dialing=st.integers(0, 40),
    waiting=st.floats(0, 8),
    rate=st.floats(0, 0.2),
    seed=st.integers(0, 4),
)
def test_inbound_demand_never_means_more_outbound_calls(
    mode: str, ready: int, talking: int, dialing: int, waiting: float, rate: float, seed: int
) -> None:
    """Callers waiting, or expected, hold outbound dialing back (or leave
    it as it was): never more calls than with no inbound at all, and more
    demand never means more calls."""
    t = warm_tracker(seed=seed, busy=talking, ringing=dialing)
    base = snap(t, logged=ready + talking, ready=ready, talking=talking, dialing=dialing)
    out = []
    for w, r in ((0.0, 0.0), (waiting, rate), (waiting + 1.0, rate * 2)):
        p = make_policy(mode)
        out.append(p.calls_to_place(_with(base, inbound_waiting=w, inbound_rate=r)))
    assert out[0] >= out[1] >= out[2]


@settings(max_examples=60, deadline=None)
@given(
    ready=st.integers(0, 10),
    talking=st.integers(0, 30),
    dialing=st.integers(0, 30),
    waiting=st.integers(0, 12),
    seed=st.integers(0, 4),
)
def test_with_callers_waiting_and_no_agent_free_no_call_beyond_the_model(
    ready: int, talking: int, dialing: int, waiting: int, seed: int
) -> None:
    """Callers waiting for every ready agent (and more): progressive places
    nothing; predictive places only what its risk rule allows with the
    callers counted as claims on the agents (its marginal risk at the last
    call placed is within its threshold, or it placed none)."""
    t = warm_tracker(seed=seed, busy=talking, ringing=dialing)
    s = snap(t, logged=ready + talking, ready=ready, talking=talking, dialing=dialing)
    s = _with(s, inbound_waiting=float(ready + waiting))
    assert Progressive().calls_to_place(s) == 0
    p = Predictive()
    n = p.calls_to_place(s)
    if n > 0:
        assert p.last_risk <= p.theta + 1e-12
    # the same state with the callers gone allows at least as many
    assert Predictive().calls_to_place(_with(s, inbound_waiting=0.0)) >= n


def _vici(queue_no_dial: bool = False) -> Vicidial:
    """Level 2, not adapting during the test."""
    v = Vicidial(queue_no_dial=queue_no_dial)
    v.level = 2.0
    v.next_adapt = float("inf")
    return v


def test_vicidial_queue_no_dial_and_its_inbound_counting() -> None:
    t = warm_tracker(busy=8, ringing=0)
    s = snap(t, logged=10, ready=0, talking=8, dialing=0, lines=6)
    v = _vici()
    assert v.calls_to_place(s) == 20 - 6
    # two agents on inbound calls, one caller waiting: all count as calls
    # in progress while no agent is ready
    v = _vici()
    assert v.calls_to_place(_with(s, inbound_busy=2, inbound_waiting=1.0)) == 20 - 6 - 3
    # with an agent ready VICIdial's override counts only outbound calls
    v = _vici()
    s_ready = _with(s, agents_ready=1, inbound_busy=2, inbound_waiting=1.0)
    assert v.calls_to_place(s_ready) == 20 - 6
    # inbound_queue_no_dial: nothing while a caller waits
    v = _vici(queue_no_dial=True)
    assert v.calls_to_place(s_ready) == 0


def test_inbound_weight_holds_back_more_for_the_expected_arrivals() -> None:
    t = warm_tracker(busy=20, ringing=4)
    s = _with(snap(t, logged=24, ready=4, talking=20, dialing=4), inbound_rate=0.1)
    light, heavy = Predictive(), Predictive()
    light.inbound_weight, heavy.inbound_weight = 1.0, 3.0
    assert heavy.calls_to_place(s) <= light.calls_to_place(s)


def test_a_waiting_caller_holds_back_predictive_dialing_in_the_core() -> None:
    """Through the core: the agent who frees goes to the waiting caller and
    the pacing, seeing the caller, does not dial for that agent."""
    w = CoreHarness(campaign(dial_mode="progressive", agents=["1001", "1002"]))
    w.queues(queue())
    w.join("1001")
    w.join("1002")
    w.arrive("in-1")
    w.connect("in-1", "1001")
    w.arrive("in-2")
    w.connect("in-2", "1002")
    w.arrive("in-3")  # waits: both agents talk
    w.load(leads(10), exhausted=True)
    assert not w.placed()
    s = w.core.snapshot("c1", w.now)
    assert s.inbound_waiting == 1.0 and s.inbound_busy == 2
    assert Progressive().calls_to_place(s) == 0
    w.at(100)
    w.hang_up("in-1")
    w.tick(6.0)  # 1001's wrap-up (5 s) is over: in-3 takes them
    assert w.core.inbound["in-3"].agent_id == "1001"
    assert not w.placed()


# ------------------------------------------------------------ simulator
def _blended(**q: object) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "t",
            "duration_s": 1800,
            "agents": {"count": 6, "login_spread_s": 5},
            "talk": {"dist": "lognormal", "mean": 120, "cv": 0.8},
            "inbound": {"queues": [{"calls_per_min": 1.0, **q}]},
        }
    )


def test_sim_callers_are_the_same_under_every_policy_and_each_is_recorded_once() -> None:
    sc = _blended()
    out = {p: simulate(sc, p, 3) for p in ("predictive", "vicidial-blended", "reserve")}
    offered = {
        p: r.blended["offered"] + r.blended["unfinished"] for p, r in out.items() if r.blended
    }
    assert len(set(offered.values())) == 1, offered  # the same arrivals
    for r in out.values():
        b = r.blended
        assert b is not None
        n = b["answered"] + b["abandoned"] + b["abandoned_short"] + b["fallbacks"]
        assert n == b["offered"]  # one outcome per recorded caller
        assert 0.0 <= r.talk_share <= 1.0


def test_sim_impatient_callers_abandon_and_max_wait_offers_callbacks() -> None:
    sc = _blended(calls_per_min=6.0, patience={"dist": "fixed", "value": 25}, max_wait_s=20)
    r = simulate(sc, "predictive", 1)
    b = r.blended
    assert b is not None and b["fallbacks"] > 0 and b["callbacks"] > 0
    assert b["callbacks"] <= b["callback_leads"] <= b["callbacks"] + b["unfinished"]
    sc = _blended(calls_per_min=6.0, patience={"dist": "fixed", "value": 8}, max_wait_s=60)
    b2 = simulate(sc, "predictive", 1).blended
    assert b2 is not None and b2["abandoned_short"] > 0 and b2["fallbacks"] == 0


def test_reserve_plan_follows_the_hourly_rate_by_erlang_c() -> None:
    sc = Scenario.model_validate(
        {
            "agents": {"count": 40},
            "duration_s": 3 * 3600,
            "wrap_s": 15,
            "inbound": {
                "queues": [
                    {
                        "hourly_calls_per_min": [1.0, 4.0, 1.0],
                        "talk": {"dist": "fixed", "value": 225},
                    }
                ]
            },
        }
    )
    plan = reserve_plan(sc)
    n1 = agents_for(1.0 / 60, 240, 20, 80)
    n4 = agents_for(4.0 / 60, 240, 20, 80)
    assert plan == [(0.0, n1), (3600.0, n4), (7200.0, n1)]
    assert service_level(n4, 4.0 / 60, 240, 20) >= 0.8 > service_level(n4 - 1, 4.0 / 60, 240, 20)


def test_blended_physical_limit_counts_inbound_load() -> None:
    sc = _blended(calls_per_min=1.0, talk={"dist": "fixed", "value": 290})
    sc = sc.model_copy(
        update={"agents": sc.agents.model_copy(update={"count": 10}), "wrap_s": 10.0}
    )
    lim_out, _ = sc.model_copy(update={"inbound": None}).physical_limit()
    lim, _ = sc.physical_limit()
    u = 1.0 / 60 * 300 / 10  # half the agents' time on inbound calls
    assert abs(lim - (u * 290 / 300 + (1 - u) * lim_out)) < 1e-9


# ---------------------------------------------------- the blended guards
def _queue_snap(t: object, **kw: float) -> PacingSnapshot:
    """Twenty agents, four ready, a queue with an 80%-in-20 s target."""
    s = snap(t, logged=20, ready=4, talking=16, dialing=2)  # type: ignore[arg-type]
    return _with(s, inbound_sl_target=0.8, inbound_within_s=20.0, **kw)


def _guarded() -> Predictive:
    """The engine with the service-level guard on (off by default: measured,
    it cost talk share with no gain in service level, docs/pacing.md)."""
    p = Predictive()
    p.sl_guard = True
    return p


def test_the_service_level_guard_keeps_agents_back_while_the_level_is_short() -> None:
    t = warm_tracker(busy=16, ringing=2)
    p = _guarded()
    free = p.calls_to_place(_queue_snap(t))
    assert p.in_reserve == 0.0
    # ten callers counted, four in time: 40% against an aim of 85%
    p2 = _guarded()
    n = p2.calls_to_place(_queue_snap(t, inbound_sl_met=4, inbound_sl_counted=10))
    assert p2.in_reserve == pytest.approx(0.5 * (6 * 0.85 - 4 * 0.15))
    assert n < free
    # then a run of callers answered in time brings it back to nothing
    p2.calls_to_place(_queue_snap(t, inbound_sl_met=104, inbound_sl_counted=110))
    assert p2.in_reserve == 0.0


def test_the_guard_never_keeps_back_more_agents_than_there_are() -> None:
    t = warm_tracker(busy=16, ringing=2)
    p = _guarded()
    p.calls_to_place(_queue_snap(t, inbound_sl_met=0, inbound_sl_counted=1000))
    assert p.in_reserve == 20.0
    assert p.calls_to_place(_queue_snap(t, inbound_sl_met=0, inbound_sl_counted=1001)) == 0


def test_without_a_queue_the_blended_guards_do_nothing() -> None:
    """An outbound-only snapshot (no target): the engine decides as before."""
    t = warm_tracker(busy=16, ringing=2)
    s = snap(t, logged=20, ready=4, talking=16, dialing=2)
    a, b = _guarded(), Predictive()
    b.floor_arrivals = False
    assert a.calls_to_place(s) == b.calls_to_place(s)


def test_the_floor_counts_the_callers_expected_before_a_call_answers() -> None:
    """When the risk rule would place nothing, "never fewer than
    progressive" is less the arrivals expected within a new call's mean
    time to answer (one every 6 s here: about 2 in 11.5 s)."""
    t = warm_tracker(busy=16, ringing=0)
    s = _queue_snap(t, inbound_rate=1 / 6)
    s = _with(s, calls_dialing=0, lines_in_use=16)
    p = Predictive()
    p.log_theta = math.log(1e-3)
    p.gain = 0.0
    horizon = t.ring_est.mean_answer_time() + t.connect_deadline_s
    n = p.calls_to_place(s)
    assert n == max(0, 4 - round(horizon / 6))
    q = Predictive()
    q.floor_arrivals = False
    q.log_theta, q.gain = math.log(1e-3), 0.0
    assert q.calls_to_place(s) >= n


def test_hold_rule_places_nothing_while_a_caller_has_waited_too_long() -> None:
    t = warm_tracker(busy=16, ringing=2)
    p = Predictive()
    p.hold_wait_share = 0.5
    assert p.calls_to_place(_queue_snap(t, inbound_oldest_wait_s=11.0)) == 0
    assert p.calls_to_place(_queue_snap(t, inbound_oldest_wait_s=9.0)) > 0


def test_cli_compares_the_blended_policies_on_a_blended_scenario(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import argparse
    import json
    from pathlib import Path

    from dialerd.cli import simulate as cli

    path = Path(__file__).resolve().parents[2] / "bench" / "scenarios" / "blended-20.yaml"
    ap = argparse.ArgumentParser()
    cli.add_parser(ap.add_subparsers())
    args = ap.parse_args(
        ["simulate", "--scenario", str(path), "--agents", "5", "--hours", "0.25", "--compare",
         "--json"]
    )  # fmt: skip
    assert cli.run(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert list(doc["policies"]) == list(cli.BLENDED)
    for p in doc["policies"].values():
        b = p["blended"]
        assert b["offered"] > 0 and b["service_level"] is not None
    # a blended baseline on an outbound-only scenario is refused, not run
    ref = path.with_name("reference.yaml")
    args = ap.parse_args(["simulate", "--scenario", str(ref), "--policy", "reserve"])
    assert cli.run(args) == 2


def test_an_agent_of_two_queues_on_a_call_counts_once_as_busy() -> None:
    w = CoreHarness(campaign(dial_mode="progressive", agents=["1001"]))
    w.queues(queue("q1"), queue("q2", dids=["+442071234568"]))
    w.join("1001")
    w.arrive("in-1", queue="q2")
    w.connect("in-1", "1001")
    w.arrive("in-2", queue="q1")  # waits
    s = w.core.snapshot("c1", w.now)
    assert s.inbound_busy == 1 and s.inbound_waiting == 1.0
    assert s.inbound_sl_counted == 1 and s.inbound_sl_met == 1
    assert s.inbound_sl_target == 0.8 and s.inbound_within_s == 20.0
    w.at(12.5)
    assert w.core.snapshot("c1", w.now).inbound_oldest_wait_s == 12.5
