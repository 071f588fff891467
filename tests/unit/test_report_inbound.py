"""The inbound side of the report: its arithmetic on hand-made rows with
hand-computed answers, then ``dialerd report`` through main() on a real
SQLite store written through the StoreApi."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialerd.campaign.loader import load_campaigns_dir
from dialerd.cli import main
from dialerd.core.commands import PlaceCall, RecordInbound, RecordOutcome
from dialerd.core.models import InboundOutcome, Outcome
from dialerd.report_inbound import compute_inbound, queues_csv_rows, wait_bucket
from dialerd.rules.retry import decide
from dialerd.store import open_store
from dialerd.store.api import StoredAttempt, StoredInbound

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC).timestamp()
H9 = "2024-05-01T09:00:00+00:00"


def call(
    n: int,
    outcome: str,
    wait: float,
    *,
    at: float = T0,
    queue: str = "support",
    sl: int | None = 20,
    agent: str | None = None,
    talk: float = 60.0,
    fallback: str | None = None,
    did: str = "+442071234567",
) -> StoredInbound:
    answered = at + wait if outcome == "answered" else None
    return StoredInbound(
        call_id=f"c{n}",
        queue="" if outcome == "refused" else queue,
        did=did,
        caller="+447700900123",
        arrived_at=at,
        ended_at=(answered + talk) if answered is not None else at + wait,
        outcome=outcome,
        wait_s=wait,
        answered_at=answered,
        agent_id=agent if outcome == "answered" else None,
        fallback=fallback,
        callback_campaign="sales" if outcome == "callback" else None,
        cause=16,
        sl_within_s=None if outcome == "refused" else sl,
    )


def attempt(n: int, agent: str, connected: float, talk: float) -> StoredAttempt:
    return StoredAttempt(
        id=f"a{n}",
        campaign="sales",
        lead_id=n,
        phone="+442079460000",
        state="done",
        outcome="answered",
        started_at=connected - 10,
        answered_at=connected - 1,
        connected_at=connected,
        ended_at=connected + talk,
        agent_id=agent,
        cause=16,
        detail="",
    )


def test_service_level_asa_abandons_and_fallbacks_exact() -> None:
    calls = [
        call(1, "answered", 5, agent="a1"),  # inside the 20 s target
        call(2, "answered", 15, agent="a1"),  # inside
        call(3, "answered", 30, agent="a2"),  # late
        call(4, "abandoned", 8),  # gave up inside the target: not held against
        call(5, "abandoned", 25),  # after the target: held against
        call(6, "abandoned", 70),
        call(7, "fallback", 120, fallback="max_wait"),
        call(8, "callback", 0, fallback="no_agents"),
        call(9, "refused", 0, did="+442070000000"),
    ]
    r = compute_inbound(calls, [], [], start=T0, end=T0 + 3600, tz=UTC)
    hour, total = r["queues"]
    assert (hour["queue"], hour["hour"]) == ("support", H9)
    assert (total["queue"], total["hour"]) == ("support", "total")
    assert hour["offered"] == 8  # the refused call is not the queue's
    assert (hour["answered"], hour["answered_in_sl"]) == (3, 2)
    # 2 in time / (3 answered + 2 abandoned after 20 s + 2 fallbacks)
    assert hour["service_level"] == round(2 / 7, 5)
    assert hour["sl_within_s"] == [20]
    assert hour["asa_s"] == round(50 / 3, 2)
    assert (hour["abandoned"], hour["abandoned_in_sl"], hour["abandoned_after_sl"]) == (3, 1, 2)
    assert hour["abandon_wait_mean_s"] == round(103 / 3, 2)
    assert hour["abandon_wait_max_s"] == 70.0
    assert hour["abandon_wait"] == {"0-10": 1, "10-30": 1, "30-60": 0, "60+": 1}
    assert (hour["fallbacks"], hour["fallback_max_wait"], hour["fallback_no_agents"]) == (2, 1, 1)
    assert hour["callbacks"] == 1
    assert hour["sl_unknown"] == 0
    assert {k: v for k, v in total.items() if k != "hour"} == {
        k: v for k, v in hour.items() if k != "hour"
    }
    assert r["refused"] == {
        "calls": 1,
        "by_did": {"+442070000000": 1},
        "by_hour": {H9: 1},
    }


def test_only_abandons_inside_the_target_give_no_level() -> None:
    r = compute_inbound([call(1, "abandoned", 3)], [], [], start=T0, end=T0 + 60, tz=UTC)
    row = r["queues"][0]
    assert row["service_level"] is None and row["asa_s"] is None
    assert (row["offered"], row["abandoned_in_sl"], row["abandoned_after_sl"]) == (1, 1, 0)


def test_a_row_without_a_target_is_left_out_of_the_level() -> None:
    calls = [
        call(1, "answered", 5, sl=None),
        call(2, "answered", 50, sl=None),
        call(3, "answered", 5),
        call(4, "fallback", 300, sl=None, fallback="max_wait"),  # a miss whatever the target
    ]
    row = compute_inbound(calls, [], [], start=T0, end=T0 + 3600, tz=UTC)["queues"][0]
    assert row["service_level"] == 0.5  # 1 in time / (1 answered with a target + 1 fallback)
    assert row["sl_unknown"] == 2
    assert row["asa_s"] == 20.0  # every answered caller's wait counts for ASA


def test_wait_buckets_edges() -> None:
    assert [wait_bucket(w) for w in (0, 9.99, 10, 29.9, 30, 59.99, 60, 900)] == [
        "0-10",
        "0-10",
        "10-30",
        "10-30",
        "30-60",
        "30-60",
        "60+",
        "60+",
    ]


def test_hours_are_local_and_cross_midnight() -> None:
    ny = ZoneInfo("America/New_York")
    late = datetime(2024, 5, 1, 23, 30, tzinfo=ny).timestamp()  # 03:30 UTC on the 2nd
    calls = [
        call(1, "answered", 10, at=late, agent="a1"),
        call(2, "abandoned", 40, at=late + 20 * 60),  # 23:50
        call(3, "answered", 30, at=late + 45 * 60, agent="a1"),  # 00:15 the next day
        call(4, "answered", 5, at=late + 50 * 60, queue="billing", sl=30, agent="a2"),
        call(5, "refused", 0, at=late + 55 * 60),
    ]
    r = compute_inbound(calls, [], [], start=late - 3600, end=late + 7200, tz=ny)
    keys = [(x["queue"], x["hour"]) for x in r["queues"]]
    assert keys == [
        ("billing", "2024-05-02T00:00:00-04:00"),
        ("billing", "total"),
        ("support", "2024-05-01T23:00:00-04:00"),
        ("support", "2024-05-02T00:00:00-04:00"),
        ("support", "total"),
    ]
    rows = {k: x for k, x in zip(keys, r["queues"], strict=True)}
    h23 = rows[("support", "2024-05-01T23:00:00-04:00")]
    assert (h23["offered"], h23["answered"], h23["abandoned"], h23["service_level"]) == (
        2,
        1,
        1,
        0.5,
    )
    h00 = rows[("support", "2024-05-02T00:00:00-04:00")]
    assert (h00["offered"], h00["service_level"], h00["asa_s"]) == (1, 0.0, 30.0)
    sup = rows[("support", "total")]
    assert (sup["offered"], sup["service_level"], sup["asa_s"]) == (3, round(1 / 3, 5), 20.0)
    assert r["total"]["offered"] == 4
    assert r["total"]["sl_within_s"] == [20, 30]
    assert r["total"]["service_level"] == 0.5  # 2 in time / (3 answered + 1 abandoned late)
    assert r["refused"]["by_hour"] == {"2024-05-02T00:00:00-04:00": 1}


def test_agents_inbound_outbound_wrap_and_occupancy() -> None:
    end = T0 + 3600
    calls = [
        call(1, "answered", 10, at=T0 + 100, agent="a1", talk=300),
        # answered 100 s before the period ends, talks 200 s past it
        call(2, "answered", 0, at=end - 100, agent="a1", talk=300),
        call(3, "abandoned", 30, at=T0 + 200),
    ]
    attempts = [attempt(1, "a1", T0 + 1000, 600), attempt(2, "a2", T0 + 1000, 120)]
    events = [
        ("a1", "sales", "ready", T0),
        ("a1", "sales", "talking", T0 + 110),
        ("a1", "sales", "wrap", T0 + 410),
        ("a1", "sales", "ready", T0 + 470),
        ("a1", "sales", "talking", T0 + 1000),
        ("a1", "sales", "wrap", T0 + 1600),
        ("a1", "sales", "ready", T0 + 1660),
        ("a1", "sales", "talking", end - 100),
        ("a2", "sales", "ready", T0 + 1800),
        ("a2", "sales", "logged_out", T0 + 2700),
    ]
    r = compute_inbound(calls, attempts, events, start=T0, end=end, tz=UTC)
    a1, a2 = r["agents"]
    assert a1 == {
        "agent": "a1",
        "inbound_calls": 2,
        "inbound_talk_min": round(400 / 60, 3),  # 300 + 100 inside the period
        "outbound_calls": 1,
        "outbound_talk_min": 10.0,
        "wrap_min": 2.0,
        "logged_in_h": 1.0,
        "occupancy": round((400 + 600 + 120) / 3600, 5),
    }
    assert (a2["outbound_calls"], a2["outbound_talk_min"], a2["logged_in_h"]) == (1, 2.0, 0.25)
    assert a2["occupancy"] == round(120 / 900, 5)
    t = r["agents_total"]
    assert (t["agent"], t["inbound_calls"], t["outbound_calls"], t["logged_in_h"]) == (
        "total",
        2,
        2,
        1.25,
    )
    assert t["occupancy"] == round((400 + 720 + 120) / 4500, 5)


def test_no_calls_and_queue_csv_shape() -> None:
    empty = compute_inbound([], [], [], start=T0, end=T0 + 60, tz=UTC)
    assert empty["queues"] == [] and empty["agents"] == []
    assert empty["total"]["offered"] == 0 and empty["total"]["service_level"] is None
    assert empty["agents_total"]["occupancy"] is None
    r = compute_inbound(
        [call(1, "abandoned", 45), call(2, "refused", 0)], [], [], start=T0, end=T0 + 60, tz=UTC
    )
    header, rows = queues_csv_rows(r)
    assert header[:4] == ["queue", "hour", "offered", "answered"]
    assert header[-5:] == [
        "abandon_wait:0-10",
        "abandon_wait:10-30",
        "abandon_wait:30-60",
        "abandon_wait:60+",
        "refused",
    ]
    line = dict(zip(header, rows[0], strict=True))
    assert (line["queue"], line["hour"], line["abandon_wait:30-60"], line["refused"]) == (
        "support",
        H9,
        1,
        "",
    )
    assert line["sl_within_s"] == "20" and line["service_level"] == 0.0
    assert [x[:2] for x in rows] == [
        ["support", H9],
        ["support", "total"],
        ["(all)", "total"],
        ["(refused)", "total"],
    ]
    assert rows[-1][-1] == 1 and len(rows[-1]) == len(header)


_OUTCOMES = ("answered", "abandoned", "fallback", "callback", "refused")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_OUTCOMES),
            st.floats(0, 400),
            st.floats(0, 3 * 86400),
            st.sampled_from(("support", "billing")),
            st.sampled_from((None, 20, 30)),
        ),
        max_size=40,
    )
)
def test_hours_add_up_to_the_totals(rows: list[tuple[str, float, float, str, int | None]]) -> None:
    calls = [
        call(i, o, w, at=T0 + t, queue=q, sl=sl, agent="a1",
             fallback="no_agents" if i % 2 else "max_wait")
        for i, (o, w, t, q, sl) in enumerate(rows)
    ]  # fmt: skip
    r = compute_inbound(calls, [], [], start=T0, end=T0 + 4 * 86400, tz=ZoneInfo("Europe/London"))
    counts = ("offered", "answered", "answered_in_sl", "abandoned", "abandoned_in_sl",
              "fallbacks", "callbacks", "sl_unknown")  # fmt: skip
    hours = [x for x in r["queues"] if x["hour"] != "total"]
    totals = [x for x in r["queues"] if x["hour"] == "total"]
    for k in counts:
        assert sum(x[k] for x in hours) == sum(x[k] for x in totals) == r["total"][k]
    assert r["total"]["offered"] == sum(o != "refused" for o, *_ in rows)
    assert r["refused"]["calls"] == sum(o == "refused" for o, *_ in rows)
    for x in [*r["queues"], r["total"]]:
        assert x["service_level"] is None or 0.0 <= x["service_level"] <= 1.0
        assert sum(x["abandon_wait"].values()) == x["abandoned"]
        assert x["fallbacks"] == x["fallback_max_wait"] + x["fallback_no_agents"]


# ------------------------------------------------------ through the CLI

CAMP = "example-sales"


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The host's local time is New York's (the report's hours are local)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _ny(y: int, mo: int, d: int, h: int, mi: int) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=ZoneInfo("America/New_York")).timestamp()


async def _fill_store(conf: Path) -> None:
    """What the daemon would have written over one evening: two outbound
    calls (one answered by agent 1001), four inbound callers across local
    midnight, a refused call, and agent 1001's state changes."""
    camps, _ = load_campaigns_dir(conf.parent / "campaigns")
    rules = camps[CAMP].retry
    store = await open_store(conf.parent.parent / "d.sqlite3")
    t = _ny(2026, 12, 1, 23, 0)
    try:
        leads = await store.list_leads(CAMP)
        for i, (lead, outcome) in enumerate(
            zip(leads[:2], (Outcome.ANSWERED, Outcome.BUSY), strict=True)
        ):
            s = t + 60 + 10 * i
            live = outcome is Outcome.ANSWERED
            await store.begin_attempt(
                PlaceCall(f"att-{i}", CAMP, lead.id, lead.phone, "PJSIP/x", "", 20, started_at=s)
            )
            await store.finish_attempt(
                RecordOutcome(
                    f"att-{i}",
                    CAMP,
                    lead.id,
                    outcome,
                    s + 5 if not live else s + 302,
                    decide(rules, lead.id, lead.attempts, outcome, s + 5),
                    answered_at=s + 1 if live else None,
                    connected_at=s + 2 if live else None,
                    agent_id="1001" if live else None,
                    cause=16 if live else 17,
                )
            )
        base: dict[str, Any] = {
            "queue": "support",
            "did": "+442071234567",
            "caller": "+447700900123",
        }

        def rec(
            cid: str, at: float, outcome: InboundOutcome, wait: float, **kw: Any
        ) -> RecordInbound:
            end = kw.pop("ended_at", at + wait)
            return RecordInbound(
                cid, arrived_at=at, ended_at=end, outcome=outcome, wait_s=wait, **{**base, **kw}
            )

        ans = t + 600  # 23:10, answered after 12 s, 120 s of talk
        await store.record_inbound(
            rec(
                "in-1",
                ans,
                InboundOutcome.ANSWERED,
                12,
                answered_at=ans + 12,
                agent_id="1001",
                ended_at=ans + 132,
            ),
            20,
        )
        await store.record_inbound(rec("in-2", t + 1200, InboundOutcome.ABANDONED, 45), 20)
        await store.record_inbound(rec("in-3", t + 1500, InboundOutcome.ABANDONED, 7), 20)
        await store.record_inbound(
            rec(
                "in-4",
                t + 3900,
                InboundOutcome.CALLBACK,
                180,
                fallback="max_wait",
                callback_campaign=CAMP,
            ),
            20,
        )
        await store.record_inbound(
            rec("in-5", t + 4000, InboundOutcome.REFUSED, 0, queue="", did="+442070000000")
        )
        for state, dt in (
            ("ready", 0),
            ("talking", 62),
            ("wrap", 362),
            ("ready", 392),
            ("talking", 612),
            ("wrap", 732),
            ("ready", 762),
            ("logged_out", 3600),
        ):
            await store.record_agent_event("1001", CAMP, state, t + dt)
    finally:
        await store.close()


def test_report_inbound_through_the_cli_on_a_real_store(
    shipped_config: Path, new_york: None, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = shipped_config
    leads_csv = str(conf.parent / "leads-example.csv")
    assert main(["leads", "import", CAMP, leads_csv, "-c", str(conf)]) == 0
    asyncio.run(_fill_store(conf))
    period = ["--from", "2026-12-01T22:00", "--to", "2026-12-02T02:00", "-c", str(conf)]
    capsys.readouterr()

    assert main(["report", "--format", "json", *period]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total"]["dials"] == 2  # the outbound part is unchanged
    inbound = data["inbound"]
    keys = [(r["queue"], r["hour"]) for r in inbound["queues"]]
    assert keys == [
        ("support", "2026-12-01T23:00:00-05:00"),
        ("support", "2026-12-02T00:00:00-05:00"),
        ("support", "total"),
    ]
    h23, h00, tot = inbound["queues"]
    assert (h23["offered"], h23["answered"], h23["asa_s"]) == (3, 1, 12.0)
    assert (h23["abandoned_after_sl"], h23["abandoned_in_sl"], h23["service_level"]) == (1, 1, 0.5)
    assert h23["abandon_wait"] == {"0-10": 1, "10-30": 0, "30-60": 1, "60+": 0}
    assert (h00["offered"], h00["fallback_max_wait"], h00["callbacks"]) == (1, 1, 1)
    assert (tot["offered"], tot["service_level"]) == (4, round(1 / 3, 5))
    assert inbound["refused"]["calls"] == 1
    (agent,) = inbound["agents"]
    assert agent["agent"] == "1001"
    assert (agent["inbound_calls"], agent["inbound_talk_min"]) == (1, 2.0)
    assert (agent["outbound_calls"], agent["outbound_talk_min"]) == (1, 5.0)
    assert (agent["wrap_min"], agent["logged_in_h"]) == (1.0, 1.0)
    assert agent["occupancy"] == round((120 + 300 + 60) / 3600, 5)

    assert main(["report", *period]) == 0
    out = capsys.readouterr().out
    assert "inbound 2026-12-01T22:00:00-05:00 .. 2026-12-02T02:00:00-05:00" in out
    assert "refused (unknown DID): 1 (+442070000000 1)" in out
    assert "50.0%" in out and "1 (1/0)" in out

    assert main(["report", "--format", "csv", "--part", "queues", *period]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["queue"], r["hour"], r["offered"]) for r in rows] == [
        ("support", "2026-12-01T23:00:00-05:00", "3"),
        ("support", "2026-12-02T00:00:00-05:00", "1"),
        ("support", "total", "4"),
        ("(all)", "total", "4"),
        ("(refused)", "total", ""),
    ]
    assert rows[-1]["refused"] == "1"
    assert main(["report", "--format", "csv", "--part", "agents", *period]) == 0
    agents = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["agent"], r["inbound_calls"], r["outbound_calls"]) for r in agents] == [
        ("1001", "1", "1"),
        ("total", "1", "1"),
    ]
    # the outbound CSV is what it was; CSV holds one part; inbound is not per campaign
    assert main(["report", "--format", "csv", *period]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("campaign,dials,contacts")
    assert main(["report", "--format", "csv", "--part", "all", *period]) == 2
    assert main(["report", "--campaign", CAMP, "--part", "queues", *period]) == 2
    assert main(["report", "--campaign", CAMP, "--format", "json", *period]) == 0
    assert json.loads(capsys.readouterr().out)["inbound"] is None
    # a period without inbound calls: the default table is the outbound one alone
    quiet = ["--from", "2026-11-01", "--to", "2026-11-02", "-c", str(conf)]
    assert main(["report", *quiet]) == 0
    out = capsys.readouterr().out
    assert "by campaign" in out and "inbound" not in out and "refused" not in out
    assert main(["report", "--part", "queues", *quiet]) == 0
    assert "refused (unknown DID): 0" in capsys.readouterr().out
