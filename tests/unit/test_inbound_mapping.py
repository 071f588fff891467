"""Inbound callers over AMI (dialerd.asterisk.mapping): the dialplan's
UserEvents become core events with every field checked, a caller's own
channel events are recognised by the core's inbound table, and the
fallback's and the callback answer's AMI actions are built safely."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialerd.asterisk import mapping
from dialerd.asterisk.safety import UnsafeValue
from dialerd.core import events as ev
from dialerd.core.commands import InboundFallback, Redirect

NOW = 1000.0
LIVE = {"att-1"}
AGENTS = {"1700000000.10": "1001"}
INBOUND = {"1700000050.77"}
CHANNEL = "PJSIP/carrier-00000042"


def to_event(msg: dict[str, Any]) -> ev.Event | None:
    return mapping.to_event(msg, NOW, LIVE, AGENTS, INBOUND)


def arrived(**over: str) -> dict[str, str]:
    msg = {
        "Event": "UserEvent",
        "UserEvent": "DialerInbound",
        "Call": "1700000050.77",
        "Queue": "support",
        "Did": "+442071234567",
        "Caller": "+442079460001",
        "Channel": CHANNEL,
        "Uniqueid": "1700000050.77",
    }
    msg.update(over)
    return msg


# ------------------------------------------------------------- DialerInbound


def test_dialer_inbound_is_inbound_arrived() -> None:
    assert to_event(arrived()) == ev.InboundArrived(
        NOW, "1700000050.77", "support", CHANNEL, "+442079460001", "+442071234567"
    )


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+442079460001", "+442079460001"),
        # a national number is read in the DID's country
        ("02079460001", "+442079460001"),
        ("  +44 20 7946 0001 ", "+442079460001"),
        # withheld, anonymous or not a number: nobody to call back
        ("", ""),
        ("anonymous", ""),
        ("Restricted", ""),
        ("12", ""),
        ("+999999", ""),
        ("5551234&Local/x", ""),
    ],
)
def test_caller_is_e164_or_empty(raw: str, e164: str) -> None:
    e = to_event(arrived(Caller=raw))
    assert isinstance(e, ev.InboundArrived)
    assert e.caller == e164


def test_caller_of_a_us_did_is_read_as_a_us_number() -> None:
    e = to_event(arrived(Did="+12125550100", Caller="(212) 555-0123"))
    assert isinstance(e, ev.InboundArrived) and e.caller == "+12125550123"


@pytest.mark.parametrize(
    "over",
    [
        {"Call": ""},
        {"Call": "1700000050.77\r\nAction: Hangup"},
        {"Call": "../etc"},
        {"Call": "x" * 200},
        {"Queue": ""},
        {"Queue": "Support"},  # names are lower case
        {"Queue": "sup port"},
        {"Queue": "support\nEvent: Hangup"},
        {"Queue": "q" * 49},
        {"Did": ""},
        {"Did": "02071234567"},  # not E.164
        {"Did": "+44207123\r4567"},
        {"Caller": "+442079460001\r\nAction: Originate"},
        {"Channel": ""},
        {"Channel": "PJSIP/carrier-1\r\nAction: Hangup"},
        {"Channel": "PJSIP/a&PJSIP/b"},
        {"Channel": "no-technology"},
    ],
    ids=lambda o: next(iter(o)) + ":" + repr(next(iter(o.values())))[:20],
)
def test_dialer_inbound_with_a_bad_field_is_dropped(over: dict[str, str]) -> None:
    assert to_event(arrived(**over)) is None


@given(st.text(max_size=40))
def test_no_field_value_crashes_the_mapping_or_leaks_a_control_character(text: str) -> None:
    for key in ("Call", "Queue", "Did", "Caller", "Channel"):
        e = to_event(arrived(**{key: text}))
        if e is None:
            continue
        assert isinstance(e, ev.InboundArrived)
        for value in (e.call_id, e.queue, e.channel, e.caller, e.did):
            assert "\r" not in value and "\n" not in value and "\x00" not in value


def test_dialer_inbound_needs_no_known_call() -> None:
    # a new caller is, by definition, not in any table yet
    msg = arrived(Call="1700000099.1", Uniqueid="1700000099.1")
    e = to_event(msg)
    assert isinstance(e, ev.InboundArrived) and e.call_id == "1700000099.1"


# ------------------------------------------------------------ DialerCallback


def test_dialer_callback_is_callback_requested() -> None:
    msg = {
        "Event": "UserEvent",
        "UserEvent": "DialerCallback",
        "Call": "1700000050.77",
        "Queue": "support",
        "Caller": "+442079460001",
        "Channel": CHANNEL,
    }
    assert to_event(msg) == ev.CallbackRequested(NOW, "1700000050.77", CHANNEL)


@pytest.mark.parametrize(
    "over",
    [{"Call": ""}, {"Call": "1.2\r\nX: y"}, {"Channel": "PJSIP/a\nAction: Hangup"}],
)
def test_dialer_callback_with_a_bad_field_is_dropped(over: dict[str, str]) -> None:
    msg = {"Event": "UserEvent", "UserEvent": "DialerCallback", "Call": "1.2", "Channel": CHANNEL}
    msg.update(over)
    assert to_event(msg) is None


def test_dialer_callback_without_a_channel_still_reaches_the_core() -> None:
    # the core answers on the channel it holds for the caller
    msg = {"Event": "UserEvent", "UserEvent": "DialerCallback", "Call": "1.2"}
    assert to_event(msg) == ev.CallbackRequested(NOW, "1.2", "")


# ------------------------------------------------------- DialerInboundTimeout


def test_dialer_inbound_timeout_is_information_only() -> None:
    msg = {"Event": "UserEvent", "UserEvent": "DialerInboundTimeout", "Call": "1.2", "Queue": "q1"}
    assert to_event(msg) is None
    assert mapping.inbound_timeout(msg) == ("1.2", "q1")
    assert mapping.inbound_timeout({**msg, "Queue": "q1\r\nX: y"}) is None
    assert mapping.inbound_timeout(arrived()) is None


# ------------------------------------------------- the caller's own channel


def test_a_callers_join_into_an_agent_room_is_call_connected_not_an_agent() -> None:
    msg = {
        "Event": "ConfbridgeJoin",
        "Conference": "agent-1001",
        "Channel": CHANNEL,
        "Uniqueid": "1700000050.77",
    }
    assert to_event(msg) == ev.CallConnected(NOW, "1700000050.77", "1001")
    # without the inbound table it would have been taken for an agent
    assert isinstance(mapping.to_event(msg, NOW, LIVE, AGENTS), ev.AgentJoined)


def test_a_callers_hangup_and_room_leave() -> None:
    hup = {"Event": "Hangup", "Uniqueid": "1700000050.77", "Cause": "16"}
    assert to_event(hup) == ev.CallHungUp(NOW, "1700000050.77", 16)
    leave = {"Event": "ConfbridgeLeave", "Conference": "agent-1001", "Uniqueid": "1700000050.77"}
    assert to_event(leave) is None
    # unknown callers mean nothing
    assert to_event({"Event": "Hangup", "Uniqueid": "1700000050.78"}) is None


def test_outbound_calls_are_still_matched_first() -> None:
    assert to_event({"Event": "Hangup", "Uniqueid": "att-1", "Cause": "17"}) == ev.CallHungUp(
        NOW, "att-1", 17
    )


def test_a_callers_redirect_is_the_outbound_redirect() -> None:
    a = mapping.redirect_action(Redirect("1700000050.77", CHANNEL, "1001"))
    assert a == {
        "Action": "Redirect",
        "Channel": CHANNEL,
        "Context": "dialer-bridge",
        "Exten": "1001",
        "Priority": "1",
    }


# ------------------------------------------------------------------ actions


def fallback(**over: Any) -> InboundFallback:
    base: dict[str, Any] = {
        "call_id": "1700000050.77",
        "channel": CHANNEL,
        "queue": "support",
        "reason": "max_wait",
        "action": "callback",
        "offer_sound": "custom/offer",
        "offer_timeout_s": 10,
        "booked_sound": "custom/booked",
        "sound": "custom/bye",
    }
    base.update(over)
    return InboundFallback(**base)


def test_fallback_sets_the_four_variables_then_redirects() -> None:
    acts = mapping.fallback_actions(fallback())
    assert [(a["Action"], a.get("Variable"), a.get("Value")) for a in acts[:4]] == [
        ("Setvar", "DIALER_FB_OFFER", "custom/offer"),
        ("Setvar", "DIALER_FB_TIMEOUT", "10"),
        ("Setvar", "DIALER_FB_BOOKED", "custom/booked"),
        ("Setvar", "DIALER_FB_SOUND", "custom/bye"),
    ]
    assert all(a["Channel"] == CHANNEL for a in acts)
    assert acts[4] == {
        "Action": "Redirect",
        "Channel": CHANNEL,
        "Context": "dialer-inbound-fallback",
        "Exten": "callback",
        "Priority": "1",
    }


def test_message_fallback_has_empty_offer_values() -> None:
    acts = mapping.fallback_actions(
        fallback(action="message", offer_sound=None, booked_sound=None, sound="custom/closed")
    )
    values = {a["Variable"]: a["Value"] for a in acts if a["Action"] == "Setvar"}
    assert values["DIALER_FB_OFFER"] == "" and values["DIALER_FB_BOOKED"] == ""
    assert values["DIALER_FB_SOUND"] == "custom/closed"
    assert acts[-1]["Exten"] == "message"


@pytest.mark.parametrize(
    "over",
    [
        {"action": "voicemail"},
        {"action": "message\r\nAction: Originate"},
        {"sound": "custom/bye\r\nAction: Hangup"},
        {"sound": "custom/bye,skip"},
        {"offer_sound": "x&$(SHELL(id))"},
        {"channel": "PJSIP/a\r\nAction: Hangup"},
        {"channel": "PJSIP/a&PJSIP/b"},
    ],
)
def test_fallback_refuses_unsafe_values(over: dict[str, Any]) -> None:
    with pytest.raises(UnsafeValue):
        mapping.fallback_actions(fallback(**over))


def test_callback_answer_is_the_ack_shape() -> None:
    ok = mapping.callback_ack_actions(CHANNEL, True)
    assert [(a["Variable"], a["Value"]) for a in ok] == [
        ("DIALER_ACK_SOUND", ""),
        ("DIALER_ACK", "ok"),
    ]
    assert mapping.callback_ack_actions(CHANNEL, False)[-1]["Value"] == "no"
    with pytest.raises(UnsafeValue):
        mapping.callback_ack_actions("PJSIP/a\nX", True)
