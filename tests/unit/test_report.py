"""The report's arithmetic on synthetic rows with hand-computed answers."""

from __future__ import annotations

from datetime import UTC, datetime

from dialerd.report import compute, to_csv, worst_window_rate
from dialerd.store.api import StoredAttempt

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC).timestamp()
DAY = 86400.0


def att(
    n: int,
    outcome: str | None,
    start: float,
    *,
    talk: float = 0.0,
    agent: str | None = None,
    campaign: str = "c1",
) -> StoredAttempt:
    live = outcome in ("answered", "abandoned", "customer_hangup")
    answered = start + 5 if live else None
    connected = start + 6 if outcome == "answered" else None
    ended = (connected + talk) if connected is not None else start + 10
    return StoredAttempt(
        id=f"a{n}",
        campaign=campaign,
        lead_id=n,
        phone="+442079460000",
        state="done" if outcome else "dialing",
        outcome=outcome,
        started_at=start,
        answered_at=answered,
        connected_at=connected,
        ended_at=ended if outcome else None,
        agent_id=agent,
        cause=None,
        detail="",
    )


def test_campaign_figures_exact() -> None:
    attempts = [
        att(1, "answered", T0, talk=120, agent="a1"),
        att(2, "answered", T0 + 60, talk=60, agent="a2"),
        att(3, "answered", T0 + 300, talk=180, agent="a1"),
        att(4, "abandoned", T0 + 400),
        att(5, "customer_hangup", T0 + 500),
        att(6, "busy", T0 + 600),
        att(7, "no_answer", T0 + 700),
        att(8, "busy", T0 + 800),
        att(9, None, T0 + 900),  # still live
        att(10, "answered", T0 + 100, talk=30, agent="b1", campaign="c2"),
    ]
    # a1 and a2 in c1 for one hour: a1 talks 300 s and wraps 60 s; a2 talks
    # 60 s, wraps 30 s, pauses 600 s
    ev = [
        ("a1", "c1", "ready", T0),
        ("a1", "c1", "talking", T0 + 6),
        ("a1", "c1", "wrap", T0 + 126),
        ("a1", "c1", "ready", T0 + 156),
        ("a1", "c1", "talking", T0 + 306),
        ("a1", "c1", "wrap", T0 + 486),
        ("a1", "c1", "ready", T0 + 516),
        ("a1", "c1", "logged_out", T0 + 3600),
        ("a2", "c1", "ready", T0),
        ("a2", "c1", "talking", T0 + 66),
        ("a2", "c1", "wrap", T0 + 126),
        ("a2", "c1", "paused", T0 + 156),
        ("a2", "c1", "ready", T0 + 756),
        ("a2", "c1", "logged_out", T0 + 3600),
    ]
    counts = {"c1": {"new": 5, "retry": 2, "done": 10, "dialing": 1}, "c2": {"done": 1}}
    r = compute(
        attempts,
        ev,
        by="campaign",
        start=T0,
        end=T0 + 7200,
        lead_counts=counts,
        tz=UTC,
    )
    c1 = next(x for x in r["rows"] if x["campaign"] == "c1")
    assert c1["dials"] == 9
    assert c1["contacts"] == 5
    assert c1["contact_rate"] == round(5 / 9, 5)
    assert c1["connected"] == 3
    assert c1["talk_min"] == 6.0  # 120 + 60 + 180 s
    assert c1["agents"] == 2
    assert c1["agent_hours"] == 2.0
    assert c1["talk_min_per_agent_hour"] == 3.0
    # handling 120+180+60 = 360 s, wrap 30+30+30 = 90 s, over 7200 s logged in
    assert c1["occupancy"] == round(450 / 7200, 5)
    assert c1["acw_s"] == 90.0
    assert c1["acw_per_call_s"] == 30.0
    assert c1["aht_s"] == 150.0  # (360 talk + 90 wrap) / 3
    assert c1["paused_s"] == 600.0
    assert c1["abandons"] == 2
    assert c1["abandon_rate_ftc"] == 0.4
    assert c1["abandon_rate_ftc_worst_30d"] == 0.4  # period shorter than 30 days
    assert c1["abandon_rate_ofcom_worst_24h"] == 0.4
    assert c1["outcomes"] == {
        "abandoned": 1,
        "answered": 3,
        "busy": 2,
        "customer_hangup": 1,
        "in_progress": 1,
        "no_answer": 1,
    }
    assert (c1["leads_exhausted"], c1["leads_remaining"], c1["leads_dialing"]) == (10, 7, 1)
    c2 = next(x for x in r["rows"] if x["campaign"] == "c2")
    assert (c2["dials"], c2["connected"], c2["agent_hours"], c2["occupancy"]) == (1, 1, 0.0, None)
    assert r["total"]["dials"] == 10
    assert r["total"]["leads_exhausted"] == 11


def test_by_agent_and_by_hour_split_time_exactly() -> None:
    attempts = [
        att(1, "answered", T0 + 3500, talk=200, agent="a1"),
        att(2, "busy", T0 + 3700),
    ]
    ev = [
        ("a1", "c1", "ready", T0 + 1800),
        ("a1", "c1", "talking", T0 + 3506),
        ("a1", "c1", "wrap", T0 + 3706),
        ("a1", "c1", "ready", T0 + 3766),
        ("a1", "c1", "logged_out", T0 + 5400),
    ]
    by_agent = compute(attempts, ev, by="agent", start=T0, end=T0 + 7200, tz=UTC)
    rows = {x["agent"]: x for x in by_agent["rows"]}
    assert rows["a1"]["agent_hours"] == 1.0
    assert rows["a1"]["talk_min_per_agent_hour"] == round(200 / 60, 3)
    assert rows["a1"]["aht_s"] == 260.0
    assert rows["-"]["dials"] == 1  # the busy attempt belongs to no agent
    by_hour = compute(attempts, ev, by="hour", start=T0, end=T0 + 7200, tz=UTC)
    hours = {x["hour"]: x for x in by_hour["rows"]}
    h9, h10 = "2024-05-01T09:00:00+00:00", "2024-05-01T10:00:00+00:00"
    assert hours[h9]["agent_hours"] == 0.5
    assert hours[h10]["agent_hours"] == 0.5
    assert hours[h9]["dials"] == 1 and hours[h10]["dials"] == 1
    # 94 s of talk before 10:00, 106 s after; 60 s of wrap after
    assert hours[h9]["occupancy"] == round(94 / 1800, 5)
    assert hours[h10]["occupancy"] == round(166 / 1800, 5)
    assert by_hour["total"]["agent_hours"] == 1.0


def test_state_before_the_period_counts_from_its_start() -> None:
    ev = [("a1", "c1", "ready", T0 - 1000), ("a1", "c1", "logged_out", T0 + 900)]
    r = compute([], ev, by="campaign", start=T0, end=T0 + 3600, tz=UTC)
    assert r["total"]["agent_hours"] == 0.25


def test_worst_windows_ftc_30d_and_ofcom_24h() -> None:
    # 40 days: one answer a day, all fine, except days 10 and 10.5 (abandons)
    answers = [(T0 + d * DAY, False) for d in range(40)]
    answers += [(T0 + 10 * DAY + 3600, True), (T0 + 10 * DAY + 7200, True)]
    start, end = T0, T0 + 40 * DAY
    # Ofcom: the worst 24 h holds day 10's answer and both abandons: 2/3
    assert worst_window_rate(answers, start, end, DAY) == round(2 / 3, 5)
    # FTC: any 30-day window holds 30 or 31 daily answers + the 2 abandons
    assert worst_window_rate(answers, start, end, 30 * DAY) == round(2 / 32, 5)
    # a period shorter than the window: the whole period
    assert worst_window_rate(answers, start, start + 5 * DAY, 30 * DAY) == round(2 / 42, 5)
    assert worst_window_rate([], start, end, DAY) is None


def test_period_rates_through_compute_over_many_days() -> None:
    attempts = [att(i, "answered", T0 + i * DAY, talk=10, agent="a") for i in range(40)]
    attempts.append(att(100, "abandoned", T0 + 5 * DAY + 60))
    attempts.append(att(101, "abandoned", T0 + 5 * DAY + 120))
    r = compute(attempts, [], start=T0, end=T0 + 40 * DAY, tz=UTC)
    t = r["total"]
    assert t["abandon_rate_ftc"] == round(2 / 42, 5)
    assert t["abandon_rate_ftc_worst_30d"] == round(2 / 32, 5)
    assert t["abandon_rate_ofcom_worst_24h"] == round(2 / 3, 5)


def test_empty_and_csv() -> None:
    r = compute([], [], start=T0, end=T0 + 60, tz=UTC)
    assert r["rows"] == []
    assert r["total"]["contact_rate"] is None and r["total"]["aht_s"] is None
    r = compute([att(1, "busy", T0)], [], start=T0, end=T0 + 60, tz=UTC)
    text = to_csv(r)
    header, row, total = text.splitlines()
    assert header.startswith("campaign,dials,contacts,contact_rate")
    assert header.endswith("outcome:busy")
    assert row.startswith("c1,1,0,0.0,0,") and row.endswith(",1")
    assert total.startswith("total,1,0")
