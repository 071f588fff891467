"""Abandon accounting (FTC, Ofcom, hour) and the 72-hour lock, against
brute-force recomputation over random event streams."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialerd.core.models import Outcome
from dialerd.rules.abandon import (
    DAY,
    DAYS_30,
    HOUR,
    LOCK_S,
    AbandonAccounting,
    AbandonLock,
    RollingCount,
    WindowRate,
)

T0 = 1_780_000_000.0

#: (seconds since the previous event, outcome); queries are interleaved
steps = st.lists(
    st.tuples(
        st.one_of(
            st.floats(min_value=0, max_value=120),
            st.floats(min_value=0, max_value=3 * DAY),
            st.just(0.0),
        ),
        st.sampled_from(list(Outcome)),
        st.booleans(),
    ),
    max_size=150,
)


def _brute(
    events: list[tuple[float, Outcome]], now: float, window: int, res: int
) -> tuple[int, int]:
    """(live, abandoned) with the documented bucket rule."""
    edge = math.floor(now / res) - window // res
    live = abn = 0
    for t, o in events:
        if math.floor(t / res) > edge:
            live += o.live_answer
            abn += o.abandon
    return live, abn


@settings(max_examples=60, deadline=None)
@given(steps, st.floats(min_value=0, max_value=0.5))
def test_rates_match_brute_force(seq: list[tuple[float, Outcome, bool]], fp: float) -> None:
    acc = AbandonAccounting(ofcom_fp_rate=fp)
    events: list[tuple[float, Outcome]] = []
    now = T0
    for dt, outcome, query in seq:
        now += dt
        acc.record(outcome, now)
        events.append((now, outcome))
        if not query:
            continue
        q = now = now + dt / 2  # query between events too (time never goes back)
        h = acc.hour(q)
        assert (h.live, h.abandoned) == _brute(events, q, HOUR, 1)
        f = acc.ftc_30d(q)
        assert (f.live, f.abandoned) == _brute(events, q, DAYS_30, 60)
        o = acc.ofcom_24h(q)
        assert (o.live, o.abandoned) == _brute(events, q, DAY, 10)
        edge = math.floor(q / 10) - DAY // 10
        machines = sum(1 for t, x in events if x is Outcome.MACHINE and math.floor(t / 10) > edge)
        assert o.estimated == pytest.approx(fp * machines)
        c = acc.ftc_campaign()
        assert c.live == sum(x.live_answer for _, x in events)
        assert c.abandoned == sum(x.abandon for _, x in events)
        # the bucketed windows are never shorter than the nominal ones
        exact = sum(1 for t, x in events if q - t < HOUR and x.live_answer)
        assert h.live >= exact
        b = acc.budget(0.03, q)
        assert b.allowed == min(r.budget(0.03) for r in b.rates)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=0, max_value=5000),
    st.integers(min_value=0, max_value=200),
    st.floats(min_value=0, max_value=20),
    st.sampled_from([0.01, 0.03, 0.05]),
)
def test_budget_is_the_largest_k_under_target(
    live: int, abn: int, est: float, target: float
) -> None:
    abn = min(abn, live)
    w = WindowRate("x", live, abn, est)
    k = w.budget(target)
    assert k >= 0
    if k > 0:
        assert (abn + est + k) / (live + k) <= target + 1e-9
    assert (abn + est + k + 1) / (live + k + 1) > target - 1e-9


def test_budget_basics() -> None:
    acc = AbandonAccounting()
    assert acc.budget(0.03, T0).allowed == 0  # no live answer yet: none allowed
    for i in range(100):
        acc.record(Outcome.ANSWERED, T0 + i)
    b = acc.budget(0.03, T0 + 100)
    assert b.allowed == 3  # (0 + 3) / (100 + 3) <= 3 %
    acc.record(Outcome.ABANDONED, T0 + 101)
    assert acc.budget(0.03, T0 + 101).allowed == 2
    # an hour later the hour window is empty and binds
    b = acc.budget(0.03, T0 + 2 * HOUR)
    assert b.allowed == 0 and b.binding == "hour"
    assert acc.budget(0.03, T0 + 2 * HOUR, hour=False).allowed == 2
    with pytest.raises(ValueError):
        AbandonAccounting(ofcom_fp_rate=2)
    with pytest.raises(ValueError):
        RollingCount(100, 7)


def test_ofcom_adds_the_amd_false_positive_estimate() -> None:
    acc = AbandonAccounting(ofcom_fp_rate=0.1)
    for i in range(50):
        acc.record(Outcome.ANSWERED, T0 + i)
    for i in range(20):
        acc.record(Outcome.MACHINE, T0 + 100 + i)
    acc.record(Outcome.ABANDONED, T0 + 200)
    o = acc.ofcom_24h(T0 + 300)
    assert o.live == 51 and o.abandoned == 1 and o.estimated == pytest.approx(2.0)
    assert o.rate == pytest.approx(3 / 51)
    assert acc.ftc_30d(T0 + 300).rate == pytest.approx(1 / 51)
    assert acc.ofcom_24h(T0 + 300 + DAY).live == 0


PHONES = [f"+4420794600{i:02d}" for i in range(8)]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=40 * HOUR),
            st.sampled_from(PHONES),
            st.booleans(),
        ),
        max_size=80,
    )
)
def test_72h_lock_never_lets_a_locked_number_through(
    seq: list[tuple[float, str, bool]],
) -> None:
    lock = AbandonLock()
    abandons: list[tuple[float, str]] = []
    now = T0
    for dt, phone, is_abandon in seq:
        now += dt
        if is_abandon:
            lock.abandoned(phone, now)
            abandons.append((now, phone))
        for p in PHONES:
            expected = any(n == p and now - t < LOCK_S for t, n in abandons)
            assert lock.locked(p, now) == expected
            until = lock.until(p, now)
            if expected:
                assert until == max(t for t, n in abandons if n == p) + LOCK_S
    assert len(lock) <= len(PHONES)


def test_lock_edges() -> None:
    lock = AbandonLock()
    lock.abandoned("+442079460000", T0)
    assert lock.locked("+442079460000", T0 + LOCK_S - 0.001)
    assert not lock.locked("+442079460000", T0 + LOCK_S)
    assert len(lock) == 0
