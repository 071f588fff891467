"""The live state of inbound queues (``views.queue_state``) and the agents'
inbound/outbound time, driven on a ``CoreHarness`` caller by caller:
arrival, waiting, answer, abandon (inside and past the target), fallback,
callback; today's figures start again at local midnight."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from dialerd.core import events as ev
from dialerd.core import views
from dialerd.core.models import Lead
from dialerd.core.testing import CoreHarness, campaign, leads, queue


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The host's local time is UTC in these tests ("today" is local)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _blended(**q: object) -> CoreHarness:
    w = CoreHarness(campaign(dial_mode="progressive"))
    w.queues(queue(**q))  # type: ignore[arg-type]
    return w


def _state(w: CoreHarness) -> dict[str, Any]:
    return views.queue_state(w.core, "q1", w.now)


def test_every_figure_follows_the_callers() -> None:
    w = _blended()
    s = _state(w)
    assert s["waiting"] == 0 and s["longest_wait_s"] == 0.0 and s["offered"] == 0
    assert s["service_level"] is None and s["asa_s"] is None
    assert s["target"] == {"percent": 80, "within_s": 20} and s["enabled"] is True
    assert s["agents"] == {"logged_in": 0, "ready": 0, "talking": 0, "on_queue": 0}

    # no agent logged in: the no-agents fallback at once
    w.arrive("in-0")
    s = _state(w)
    assert (s["offered"], s["fallbacks"], s["waiting"]) == (1, 1, 0)
    w.at(4)
    w.hang_up("in-0")  # the message ended: counted once, as a fallback
    assert _state(w)["fallbacks"] == 1 and _state(w)["abandoned"] == 0

    w.join("1001")
    w.join("1002")
    s = _state(w)
    assert s["agents"] == {"logged_in": 2, "ready": 2, "talking": 0, "on_queue": 0}

    # answered in 2 s (inside the 20 s target), and in 30 s (past it)
    w.arrive("in-1")
    w.at(2)
    w.connect("in-1", "1001")
    w.arrive("in-2")
    w.at(30)
    w.connect("in-2", "1002")
    s = _state(w)
    assert (s["answered"], s["answered_in_sl"]) == (2, 1)
    assert s["asa_s"] == 16.0 and s["service_level"] == 0.33333  # 1 of in-0, in-1, in-2
    assert s["agents"] == {"logged_in": 2, "ready": 0, "talking": 2, "on_queue": 2}

    # both agents busy: two callers wait; the longest wait is the oldest's
    w.arrive("in-3")
    w.at(5)
    w.arrive("in-4")
    s = _state(w)
    assert s["waiting"] == 2 and s["longest_wait_s"] == 5.0
    w.at(3)
    assert _state(w)["longest_wait_s"] == 8.0  # grows with the clock, no event needed

    # in-4 hangs up after 3 s (inside the target: counted apart), in-3
    # after 33 s (past it: held against the level)
    w.hang_up("in-4")
    w.at(25)
    w.hang_up("in-3")
    s = _state(w)
    assert (s["abandoned"], s["abandoned_short"], s["waiting"]) == (1, 1, 0)
    assert s["longest_wait_s"] == 0.0 and s["longest_wait_today_s"] == 33.0
    assert s["service_level"] == 0.25  # in_sl 1 / (answered 2 + abandoned 1 + fallbacks 1)

    # in-5 waits past max_wait_s (60): the callback offer; 1 pressed
    w.arrive("in-5")
    w.tick(61)
    w.do(ev.CallbackRequested(w.now, "in-5", "PJSIP/trunk-in-5"))
    w.at(5)
    w.hang_up("in-5")
    s = _state(w)
    assert (s["offered"], s["fallbacks"], s["callbacks"]) == (6, 2, 1)
    assert s["longest_wait_today_s"] == 61.0
    assert s["service_level"] == 0.2
    assert s["arrivals_per_min"] > 0
    assert s["since_start"]["offered"] == 6 and s["since_start"]["callbacks"] == 1

    # the whole status carries it; a disabled queue says so
    assert [q["queue"] for q in views.status(w.core, w.now)["queues"]] == ["q1"]
    w.queues(queue(enabled=False))
    assert _state(w)["enabled"] is False


def test_today_starts_again_at_local_midnight() -> None:
    before = datetime(2026, 12, 3, 23, 59, tzinfo=UTC).timestamp()
    w = CoreHarness(campaign(dial_mode="progressive"), now=before)
    w.queues(queue())
    w.join("1001")
    w.arrive("in-1")
    w.at(1)
    w.connect("in-1", "1001")
    s = _state(w)
    assert (s["day"], s["offered"], s["answered"]) == ("2026-12-03", 1, 1)
    w.at(120)  # 00:01 the next day: no event yet, the view already says 0
    s = _state(w)
    assert (s["day"], s["offered"], s["answered"], s["asa_s"]) == ("2026-12-04", 0, 0, None)
    assert s["since_start"]["offered"] == 1
    w.arrive("in-2")  # waits: 1001 is still talking
    s = _state(w)
    assert (s["day"], s["offered"], s["waiting"]) == ("2026-12-04", 1, 1)
    assert s["since_start"]["offered"] == 2
    assert w.core.queues["q1"].today.offered == 1


def test_an_agent_s_inbound_and_outbound_time_and_occupancy() -> None:
    w = CoreHarness(campaign(dial_mode="progressive", wrap_up_s=10))
    w.queues(queue())
    w.join("1001")

    def me() -> dict[str, Any]:
        (a,) = views.agents_state(w.core, w.now)
        return a

    # an inbound call: 40 s of talk (counted while it goes on), 10 s wrap
    w.arrive("in-1")
    w.connect("in-1", "1001")
    w.at(15)
    a = me()
    assert (a["inbound_talk_s"], a["outbound_talk_s"], a["wrap_s"]) == (15.0, 0.0, 0.0)
    w.at(25)
    w.hang_up("in-1")
    w.at(4)
    a = me()
    assert (a["inbound_calls"], a["inbound_talk_s"], a["wrap_s"]) == (1, 40.0, 4.0)
    w.tick(6)  # wrap-up over at 10 s
    a = me()
    assert a["wrap_s"] == 10.0 and a["logged_in_s"] == 50.0 and a["occupancy"] == 1.0

    # an outbound call: 20 s of talk, then its 10 s wrap-up; 10 s idle
    w.at(10)
    w.load(leads(1), exhausted=True)
    (p,) = w.placed()
    w.at(5)
    w.answer(p.attempt_id)
    w.connect(p.attempt_id, "1001")
    w.at(20)
    w.hang_up(p.attempt_id)
    w.tick(10)
    a = me()
    assert (a["outbound_calls"], a["outbound_talk_s"], a["inbound_talk_s"]) == (1, 20.0, 40.0)
    assert (a["calls"], a["talk_s"], a["wrap_s"]) == (2, 60.0, 20.0)
    assert a["logged_in_s"] == 95.0
    assert a["occupancy"] == round(80.0 / 95.0, 5)


def test_a_wrap_up_ended_by_a_manual_dial_counts_in_wrap_time() -> None:
    w = CoreHarness(campaign(dial_mode="progressive", wrap_up_s=60))
    w.queues(queue())
    w.join("1001")
    w.arrive("in-1")
    w.connect("in-1", "1001")
    w.at(30)
    w.hang_up("in-1")
    w.at(7)  # 7 s into the 60 s wrap-up, the agent dials a number
    w.do(ev.ManualDial(w.now, "1001", Lead(9, "c1", "+442071200009"), "Local/1001@a;2"))
    (a,) = views.agents_state(w.core, w.now)
    assert a["state"] == "reserved" and a["wrap_s"] == 7.0
    assert a["occupancy"] == 1.0  # 30 s talk + 7 s wrap in 37 s logged in
