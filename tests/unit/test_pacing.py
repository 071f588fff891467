"""Pacing estimators and policies: unit and property tests (no I/O, no clock)."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dialerd.pacing.estimators import TALK_EDGES, AgingBins, RingEstimator
from dialerd.pacing.policies import (
    PacingSnapshot,
    Progressive,
    Ratio,
    SoonFree,
    Vicidial,
)
from dialerd.pacing.predictive import Predictive
from dialerd.pacing.registry import make_policy
from dialerd.pacing.tracker import PacingTracker

NOW = 1.7e9


def warm_tracker(
    seed: int = 1, busy: int = 10, ringing: int = 5, answers: int = 200
) -> PacingTracker:
    """A tracker with estimator history like a running shift."""
    rng = random.Random(seed)
    t = PacingTracker(ring_timeout_s=25, wrap_s=10, connect_deadline_s=1.5)
    for _ in range(400):
        ans = rng.random() < 0.3
        t.ring_est.observe(rng.uniform(4, 18) if ans else 25.0, ans)
    for _ in range(200):
        t.talk_est.observe(rng.lognormvariate(4.95, 0.7))
    for _ in range(busy):
        t.talk_started(NOW - rng.uniform(0, 600))
    for _ in range(ringing):
        t.dial_started(NOW - rng.uniform(0, 20))
    # live answers in the last half hour: an abandon budget to spend
    for at in sorted(NOW - rng.uniform(0, 1800) for _ in range(answers)):
        t.answered(at)
    t.advance(NOW)
    return t


def snap(
    t: PacingTracker | None = None,
    *,
    logged: int = 10,
    ready: int = 0,
    talking: int = 10,
    wrap: int = 0,
    dialing: int = 0,
    waiting: int = 0,
    lines: int | None = None,
    max_lines: int = 1000,
    now: float = NOW,
) -> PacingSnapshot:
    return PacingSnapshot(
        now=now,
        agents_logged_in=logged,
        agents_ready=ready,
        agents_talking=talking,
        agents_wrap=wrap,
        calls_dialing=dialing,
        calls_waiting=waiting,
        lines_in_use=lines if lines is not None else talking + dialing + waiting,
        max_lines=max_lines,
        dial_ratio=1.0,
        tracker=t,
    )


# ------------------------------------------------------------- aging bins
def test_aging_bins_move_members_as_time_passes() -> None:
    b = AgingBins((0.0, 10.0, 100.0))
    b.add(0.0, 0.0)
    b.add(5.0, 5.0)
    assert b.cnt == [2, 0, 0]
    b.advance(12.0)
    assert b.cnt == [1, 1, 0]
    b.advance(200.0)
    assert b.cnt == [0, 0, 2]
    b.remove(5.0)
    assert b.cnt == [0, 0, 1]
    b.remove(0.0)
    assert b.cnt == [0, 0, 0]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 50), st.booleans()), min_size=1, max_size=60))
def test_aging_bins_match_a_scan(script: list[tuple[float, bool]]) -> None:
    """Bin counts always equal a direct count by age (at second resolution)."""
    edges = (0.0, 3.0, 10.0, 30.0, 100.0)
    b = AgingBins(edges)
    live: list[float] = []
    now = 0.0
    for dt, remove in script:
        now += dt
        if remove and live:
            s = live.pop(0)
            b.remove(s)
        else:
            b.add(now, now)
            live.append(now)
        b.advance(now)
        want = [0] * len(edges)
        for s in live:
            age = math.floor(now) - math.floor(s)
            # a member moves when its start second is at most now - edge
            k = max(i for i, e in enumerate(edges) if math.floor(s) <= now - e)
            want[k] += 1
            assert age >= 0
        assert b.cnt == want


# ------------------------------------------------------------- estimators
def test_ring_estimator_learns_answer_probability() -> None:
    rng = random.Random(3)
    est = RingEstimator(25, halflife=3000)
    for _ in range(3000):
        ans = rng.random() < 0.3
        est.observe(rng.uniform(4, 18) if ans else 25, ans)
    assert abs(est.p_answer() - 0.3) < 0.03
    assert abs(est.mean_answer_time() - 11.5) < 0.7


def test_ring_estimator_forgets_old_answer_rates() -> None:
    est = RingEstimator(25, halflife=200)
    for _ in range(2000):
        est.observe(10, True)
    for _ in range(2000):
        est.observe(25, False)
    assert est.p_answer() < 0.05


def test_talk_hazard_is_not_memoryless() -> None:
    """Lognormal talk: a call that lasted 10 s is less likely to end in the
    next 30 s than one that lasted 150 s; the table shows it."""
    t = warm_tracker()
    tab = t.tables()
    k = len(tab.xs) - 1
    early = TALK_EDGES.index(10)
    mid = TALK_EDGES.index(150)
    assert tab.talk_p[k][mid] > 2 * tab.talk_p[k][early]


def test_censoring_keeps_early_talk_estimates_honest() -> None:
    """Early in a shift only short calls have ended; calls still in progress
    (censored) keep the hazard of long elapsed times from being overstated."""
    t = PacingTracker(25, 10, 1.5)
    for d in (20, 30, 40, 50, 60):
        t.talk_est.observe(d)
    for _ in range(50):
        t.talk_started(NOW - 200)
    t.advance(NOW)
    with_censored = t.talk_est.hazards(t.talk.cnt, t.talk)
    without = t.talk_est.hazards([0] * len(t.talk.cnt), t.talk)
    b = TALK_EDGES.index(180)
    assert with_censored[b] < without[b]


def test_tables_probabilities_are_probabilities() -> None:
    tab = warm_tracker().tables()
    for rows in (tab.talk_p, tab.ring_q):
        for row in rows:
            assert all(0.0 <= x <= 1.0 for x in row)
    assert tab.xs == sorted(tab.xs)
    assert 0.2 < tab.p_answer < 0.4


# --------------------------------------------------------------- policies
def test_progressive_and_ratio() -> None:
    s = snap(ready=3, talking=5, dialing=1)
    assert Progressive().calls_to_place(s) == 2
    r = PacingSnapshot(NOW, 8, 3, 5, 0, 1, 0, 6, 100, 2.0)
    assert Ratio().calls_to_place(r) == 5


def test_vicidial_places_every_2_5_s_only() -> None:
    v = Vicidial()
    t = warm_tracker()
    s = snap(t, logged=10, ready=4, talking=6, dialing=0)
    first = v.calls_to_place(s)
    # the first adapt: level 1.0 x (1 + 4 ready / 10 agents) = 1.4; 14 - 6 in progress
    assert first == 8
    assert v.calls_to_place(snap(t, logged=10, ready=4, talking=6, now=NOW + 1)) == 0
    assert v.calls_to_place(snap(t, logged=10, ready=4, talking=6, now=NOW + 2.6)) == 8


def test_vicidial_level_rises_with_idle_agents_and_is_capped() -> None:
    v = Vicidial(max_level=3.0)
    t = warm_tracker()
    for i in range(400):
        v.calls_to_place(snap(t, logged=10, ready=10, talking=0, now=NOW + i))
    assert v.level == 3.0


def test_soonfree_counts_long_calls_as_soon_free() -> None:
    t = PacingTracker(25, 10, 1.5)
    for _ in range(20):
        t.talk_est.observe(60)
    t.ring_est.observe(8, True)
    t.talk_started(NOW - 500)  # far beyond 3.5 x 60 s: free soon
    t.talk_started(NOW - 5)
    t.advance(NOW)
    s = snap(t, logged=2, ready=0, talking=2)
    assert SoonFree().calls_to_place(s) == 1


def test_make_policy_modes() -> None:
    for mode in ("progressive", "ratio", "vicidial", "soonfree", "predictive", "preview"):
        assert make_policy(mode).name in (mode, "progressive")


def test_predictive_cold_start_is_progressive() -> None:
    t = PacingTracker(25, 10, 1.5)
    p = Predictive()
    s = snap(t, logged=5, ready=3, talking=2, dialing=1)
    assert p.calls_to_place(s) == 2


def test_predictive_overdials_when_agents_are_ready() -> None:
    """With ready agents and 30% answers, more than one line per ready agent."""
    t = warm_tracker(busy=0, ringing=0)
    p = Predictive()
    s = snap(t, logged=20, ready=20, talking=0)
    assert p.calls_to_place(s) > 20


def test_predictive_places_nothing_when_agents_are_covered() -> None:
    t = warm_tracker(busy=10, ringing=0)
    for _ in range(60):
        t.dial_started(NOW - 1)
    t.advance(NOW)
    p = Predictive()
    s = snap(t, logged=10, ready=0, talking=10, dialing=60)
    assert p.calls_to_place(s) == 0


policies = st.sampled_from(["progressive", "ratio", "vicidial", "soonfree", "predictive"])


@settings(max_examples=80, deadline=None)
@given(
    mode=policies,
    logged=st.integers(0, 60),
    ready_share=st.floats(0, 1),
    dialing=st.integers(0, 200),
    waiting=st.integers(0, 5),
    max_lines=st.integers(1, 400),
    busy=st.integers(0, 40),
)
def test_never_more_lines_than_allowed_and_none_without_agents(
    mode: str,
    logged: int,
    ready_share: float,
    dialing: int,
    waiting: int,
    max_lines: int,
    busy: int,
) -> None:
    t = warm_tracker(busy=busy, ringing=min(dialing, 50))
    ready = int(logged * ready_share)
    talking = logged - ready
    lines = talking + dialing + waiting
    s = snap(
        t,
        logged=logged,
        ready=ready,
        talking=talking,
        dialing=dialing,
        waiting=waiting,
        lines=lines,
        max_lines=max_lines,
    )
    n = make_policy(mode).calls_to_place(s)
    assert n >= 0
    assert n <= max(0, max_lines - lines)
    if logged == 0:
        assert n == 0
    if mode == "predictive":
        assert lines + n <= max(lines, 10 * logged)


@settings(max_examples=60, deadline=None)
@given(
    ready=st.integers(0, 30),
    talking=st.integers(0, 30),
    dialing=st.integers(0, 60),
    seed=st.integers(0, 5),
)
def test_predictive_monotone_in_ready_agents(
    ready: int, talking: int, dialing: int, seed: int
) -> None:
    """One more ready agent (all else equal) never means fewer calls."""
    t = warm_tracker(seed=seed, busy=talking, ringing=dialing)
    out = []
    for r in (ready, ready + 1):
        p = Predictive()
        logged = r + talking
        s = snap(t, logged=logged, ready=r, talking=talking, dialing=dialing)
        out.append(p.calls_to_place(s))
    assert out[1] >= out[0]


@settings(max_examples=40, deadline=None)
@given(busy=st.integers(0, 50), dialing=st.integers(0, 100), seed=st.integers(0, 5))
def test_predictive_zero_agents_zero_calls(busy: int, dialing: int, seed: int) -> None:
    t = warm_tracker(seed=seed, busy=busy, ringing=dialing)
    s = snap(t, logged=0, ready=0, talking=0, dialing=dialing)
    assert Predictive().calls_to_place(s) == 0


def test_without_an_affordable_abandon_only_calls_that_cannot_abandon() -> None:
    """The 30-day window allows no abandon yet: one call per agent free now
    or out of wrap before the earliest answer seen (4 s here), less every
    call that could still answer first; calls rung past the latest answer
    seen (18 s) claim no one."""
    t = warm_tracker(busy=0, ringing=0, answers=0)
    for _ in range(30):  # 3% of 30 answers: 0.9 abandons allowed
        t.answered(NOW - 100)
    t.wrap_started(NOW + 2.0)  # out of wrap before any new call answers
    t.wrap_started(NOW + 3.0)  # also (the answer may wait 1.4 s for it)
    t.wrap_started(NOW + 9.0)  # may be in wrap when the call answers
    t.dial_started(NOW - 22)  # rung past 18 s: will not answer
    t.dial_started(NOW - 5)  # may still answer
    t.advance(NOW)
    s = snap(t, logged=14, ready=5, talking=6, wrap=3, dialing=2)
    # 5 ready + 2 wraps - 1 live ringing call = 6 (progressive: 3)
    assert Predictive().calls_to_place(s) == 6
    # with an allowance (the same state, 200 more answers) the model
    # over-dials for the ready agents
    for _ in range(200):
        t.answered(NOW - 50)
    assert Predictive().calls_to_place(s) > 6


def test_a_tiny_abandon_target_means_no_abandon_and_more_talk_than_progressive() -> None:
    """Held to 0.001%, predictive never abandons in the simulator yet still
    beats progressive by dialing ahead for agents finishing their wrap."""
    from dialerd.sim.scenario import load_scenario
    from dialerd.sim.world import simulate

    ref = Path(__file__).resolve().parents[2] / "bench" / "scenarios" / "reference.yaml"
    sc = load_scenario(ref).with_agents(60)
    sc = sc.model_copy(update={"duration_s": 3600.0, "campaign": {"abandon_target": 1e-5}})
    pred = simulate(sc, "predictive", seed=1)
    prog = simulate(sc, "progressive", seed=1)
    assert pred.abandoned == 0 and pred.answered > 800
    assert pred.talk_share > prog.talk_share


# ------------------------------------------------- paused agents, controller


def test_snapshot_counts_paused_agents_without_scanning() -> None:
    from dialerd.core import events as ev
    from dialerd.core.testing import CoreHarness, campaign

    w = CoreHarness(campaign(agents=["1001", "1002", "1003"], retry={}))
    for aid in ("1001", "1002", "1003"):
        w.join(aid)
    core, now = w.core, w.now
    s = core.snapshot("c1", now)
    assert (s.agents_logged_in, s.agents_paused, s.agents_ready) == (3, 0, 3)
    w.do(ev.AgentPause(now + 1, "1001", True))
    w.do(ev.AgentPause(now + 1, "1002", True))
    w.do(ev.AgentPause(now + 1, "1002", True))  # twice: counted once
    s = core.snapshot("c1", now + 1)
    assert (s.agents_logged_in, s.agents_paused, s.agents_ready) == (3, 2, 1)
    w.do(ev.AgentPause(now + 2, "1001", False))
    assert core.snapshot("c1", now + 2).agents_paused == 1
    w.do(ev.AgentLeft(now + 3, "1002"))  # leaves while paused
    s = core.snapshot("c1", now + 3)
    assert (s.agents_logged_in, s.agents_paused) == (2, 0)


def test_predictive_does_not_count_paused_agents() -> None:
    t = warm_tracker(busy=0, ringing=0)
    s = snap(t, logged=20, ready=0, talking=0)
    s_paused = PacingSnapshot(**{**_fields(s), "agents_paused": 20})
    assert Predictive().calls_to_place(s_paused) == 0
    # the line cap per agent counts active agents only
    s2 = PacingSnapshot(**{**_fields(snap(t, logged=20, ready=2, talking=0)), "agents_paused": 18})
    assert Predictive().calls_to_place(s2) <= 10 * 2


def _fields(s: PacingSnapshot) -> dict[str, Any]:
    return {f: getattr(s, f) for f in PacingSnapshot.__dataclass_fields__}


def test_threshold_loop_does_not_wind_up_while_the_hour_guard_brakes() -> None:
    t = warm_tracker(busy=0, ringing=0, answers=0)
    p = Predictive()
    # a busy hour at its limit: 1000 answers, 29 abandons (2.9%)
    for i in range(1000):
        t.answered(NOW - 3000 + i)
    for i in range(29):
        t.abandoned(NOW - 2000 + i)
    s = snap(t, logged=100, ready=0, talking=100, now=NOW)
    before = p.log_theta
    theta = p._threshold(s)
    assert theta < 0.01 * math.exp(before), "the hour guard brakes"
    assert p.log_theta < before, "abandons above the set-point pull the loop down"
    # more answers while braking: the loop does not climb
    for i in range(200):
        t.answered(NOW - 10 + i * 0.01)
    lt = p.log_theta
    p._threshold(snap(t, logged=100, ready=0, talking=100, now=NOW))
    assert p.log_theta <= lt


def test_campaign_pacing_defaults_are_the_engines() -> None:
    """One source of truth: every engine parameter the campaign model has
    defaults to the engine's own default, and ``from_campaign`` passes each
    field on (set or not)."""
    import inspect

    from dialerd.campaign.model import Campaign, Pacing

    engine = inspect.signature(Predictive.__init__).parameters
    shared = [n for n in Pacing.model_fields if n in engine]
    assert set(shared) >= {
        "aim", "max_lines_per_agent", "warmup_answers", "warmup_talks",
        "gain", "future_weight", "hour_guard",
    }  # fmt: skip
    for n in shared:
        assert Pacing.model_fields[n].default == engine[n].default, n

    base = {
        "name": "c1",
        "trunk": "Local/{number}@x",
        "caller_id": {"number": "+442071234567"},
        "safe_harbor_sound": "custom/safe",
        "agents": ["1001"],
    }
    p = Predictive.from_campaign(Campaign.model_validate(base))
    d = Predictive()
    for n in shared:
        assert getattr(p, n) == getattr(d, n), n
    over = {"aim": 0.7, "gain": 0.01, "future_weight": 0.5, "max_lines_per_agent": 4.0,
            "warmup_answers": 20, "warmup_talks": 7, "hour_guard": False}  # fmt: skip
    p = Predictive.from_campaign(Campaign.model_validate({**base, "pacing": over}))
    for n, v in over.items():
        assert getattr(p, n) == v, n
