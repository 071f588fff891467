"""The test helpers the package ships (dialerd.sandbox): ``until`` and the
Asterisk-view checker, on made-up inputs (no Asterisk needed)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import pytest

from dialerd.sandbox import asterisk_view, until
from dialerd.sandbox.recorder import Seen

# ------------------------------------------------------------------ until


async def test_until_returns_the_truthy_value_of_a_sync_predicate() -> None:
    calls = []

    def pred() -> list[int]:
        calls.append(1)
        return [1] if len(calls) >= 3 else []

    assert await until(pred, 2.0, "three calls", interval=0.001) == [1]
    assert len(calls) == 3


async def test_until_awaits_an_async_predicate() -> None:
    n = 0

    async def pred() -> str | None:
        nonlocal n
        n += 1
        return "ready" if n == 2 else None

    assert await until(pred, 2.0, "ready", interval=0.001) == "ready"


async def test_until_times_out_naming_what_and_the_last_value() -> None:
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match=r"waiting for the moon \(last value: 0\)"):
        await until(lambda: 0, 0.2, "the moon", interval=0.05)
    assert 0.2 <= time.monotonic() - t0 < 1.0


async def test_until_what_may_be_computed_at_the_deadline() -> None:
    state = {"n": 1}
    with pytest.raises(AssertionError, match=re.escape("counts {'n': 2}")):
        state["n"] = 2
        await until(lambda: False, 0.05, lambda: f"counts {state}", interval=0.01)


# ------------------------------------------------------------ asterisk_view


@dataclass(frozen=True)
class Att:
    id: str
    lead_id: int
    phone: str = ""


def ev(at: float, event: str, uid: str) -> Seen:
    return Seen(at, {"Event": event, "Uniqueid": uid})


def call(uid: str, t0: float, t1: float | None) -> list[Seen]:
    out = [ev(t0, "Newchannel", uid), ev(t0 + 0.5, "OriginateResponse", uid)]
    if t1 is not None:
        out.append(ev(t1, "Hangup", uid))
    return out


def test_clean_calls_pass() -> None:
    events = [*call("a1", 0, 10), *call("a2", 10, 20), *call("b1", 1, 5)]
    view = asterisk_view([events], [Att("a1", 1), Att("a2", 1), Att("b1", 2)])
    view.assert_no_double_dials()
    assert view.double_dials == 0 and view.unmatched_hangups == []
    assert view.spans["a2"] == (10, 20)
    # events of channels that are not attempts (agents, ;2 halves) are ignored
    assert asterisk_view([[ev(0, "Newchannel", "x;2")]], []).double_dials == 0


def test_two_channels_or_two_originates_of_one_attempt() -> None:
    twice = [*call("a1", 0, 5), ev(6, "Newchannel", "a1")]
    view = asterisk_view([twice], [Att("a1", 1)])
    assert view.double_channels == ["a1"]
    with pytest.raises(AssertionError, match="two channels"):
        view.assert_no_double_dials()
    resent = [*call("a1", 0, 5), ev(6, "OriginateResponse", "a1")]
    view = asterisk_view([resent], [Att("a1", 1)])
    assert view.originated_twice == ["a1"] and view.double_dials == 1
    with pytest.raises(AssertionError, match="sent twice"):
        view.assert_no_double_dials()


def test_overlap_with_any_earlier_call_of_the_lead_or_number() -> None:
    # a2 starts after a1 ended but while a0 (long) still lives
    events = [*call("a0", 0, 100), *call("a1", 1, 2), *call("a2", 3, 4)]
    view = asterisk_view([events], [Att("a0", 1), Att("a1", 1), Att("a2", 1)])
    assert {(o.first, o.second) for o in view.overlaps} == {("a0", "a1"), ("a0", "a2")}
    with pytest.raises(AssertionError, match="two live calls"):
        view.assert_no_double_dials()
    # two leads of one number: caught by the number
    same = [*call("c1", 0, 10), *call("d1", 5, 15)]
    view = asterisk_view([same], [Att("c1", 1, "+442071230000"), Att("d1", 2, "+442071230000")])
    assert [o.key for o in view.overlaps] == ["number +442071230000"]
    assert view.originates_per_number["+442071230000"] == 2


def test_asterisk_going_away_ends_its_channels() -> None:
    events = [*call("a1", 0, None), *call("a2", 20, 30), *call("a3", 40, None)]
    view = asterisk_view([events], [Att("a1", 1), Att("a2", 1), Att("a3", 3)], gone_at=[15])
    view.assert_no_double_dials()
    assert view.spans["a1"] == (0, 15)
    # a3 started after the restart and never hung up: live forever, reported
    assert view.unmatched_hangups == ["a3"] and view.spans["a3"][1] == float("inf")
    # without the restart, a1 would still be live when a2 starts
    assert asterisk_view([events], [Att("a1", 1), Att("a2", 1)]).double_dials == 1
