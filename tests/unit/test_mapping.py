"""AMI <-> core translation (dialerd.asterisk.mapping) and the AMI-safety checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialerd.asterisk import mapping, safety
from dialerd.asterisk.safety import UnsafeValue
from dialerd.core import events as ev
from dialerd.core.commands import Hangup, PlaceCall, Redirect

NOW = 1000.0
LIVE = {"att-1", "att-2"}
AGENTS = {"1700000000.10": "1001"}


def place(**kw: Any) -> PlaceCall:
    base: dict[str, Any] = {
        "attempt_id": "att-1",
        "campaign": "c1",
        "lead_id": 7,
        "phone": "+442070001100",
        "channel": "Local/442070001100@sim-customers",
        "caller_id": '"Acme" <442070000000>',
        "ring_timeout_s": 25.0,
        "variables": {"DIALER_ATTEMPT": "att-1", "DIALER_CAMPAIGN": "c1"},
    }
    base.update(kw)
    return PlaceCall(**base)


# ---------------------------------------------------------------- originate


def test_originate_action_shape() -> None:
    a = mapping.originate_action(place())
    assert a == {
        "Action": "Originate",
        "Channel": "Local/442070001100@sim-customers",
        "Context": "dialer-outbound",
        "Exten": "s",
        "Priority": "1",
        "Timeout": "25000",
        "CallerID": '"Acme" <442070000000>',
        "Async": "true",
        "ChannelId": "att-1",
        "Codecs": "ulaw,alaw",
        "Variable": ["DIALER_ATTEMPT=att-1", "DIALER_CAMPAIGN=c1"],
    }


@pytest.mark.parametrize(
    "channel",
    [
        "Local/1@ctx&PJSIP/2@trunk",  # a second channel
        "PJSIP/442070001100@trunk,30,tT",  # Dial options
        "Local/1@x\r\nAction: Hangup",
        "Local/1@x\rA",
        "Local/1@x\nA",
        "Local/1 @x",
        "Local/1@x ",
        " Local/1@x",
        "Local/1@x\t",
        "Local/${SHELL(id)}@x",
        "Local/1@x/n",  # '/' in the resource: Local channel options
        "",
        "442070001100",  # no technology
    ],
)
def test_originate_refuses_unsafe_channel(channel: str) -> None:
    with pytest.raises(UnsafeValue):
        mapping.originate_action(place(channel=channel))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DIALER_CAMPAIGN", "a,b"),
        ("DIALER_CAMPAIGN", "a\r\nAction: Hangup"),
        ("DIALER_CAMPAIGN", "a\rb"),
        ("DIALER_CAMPAIGN", "a\nb"),
        ("DIALER_CAMPAIGN", "${SHELL(id)}"),
        ("DIALER_CAMPAIGN", "x" * 256),
        ("A,B", "1"),
        ("A=B", "1"),
        ("A\r\nB", "1"),
        ("lower", "1"),
        ("", "1"),
    ],
)
def test_originate_refuses_unsafe_variables(name: str, value: str) -> None:
    with pytest.raises(UnsafeValue):
        mapping.originate_action(place(variables={name: value}))


@pytest.mark.parametrize("caller_id", ["Bob\r\nAction: Hangup", "Bob\n", "Bob\x00"])
def test_originate_refuses_unsafe_caller_id(caller_id: str) -> None:
    with pytest.raises(UnsafeValue):
        mapping.originate_action(place(caller_id=caller_id))


def test_attempt_id_length_limit_is_asterisks_149() -> None:
    ok = "a" * 149
    assert mapping.originate_action(place(attempt_id=ok))["ChannelId"] == ok
    with pytest.raises(UnsafeValue):
        mapping.originate_action(place(attempt_id="a" * 150))


@pytest.mark.parametrize("attempt_id", ["", "att 1", "att,1", "att;2", "att\n1", "-att", "a/b"])
def test_attempt_id_refuses_unsafe(attempt_id: str) -> None:
    with pytest.raises(UnsafeValue):
        mapping.originate_action(place(attempt_id=attempt_id))


def test_redirect_and_hangup_actions() -> None:
    ch = "Local/442070001100@sim-customers-0000001a;1"
    assert mapping.redirect_action(Redirect("att-1", ch, "1001")) == {
        "Action": "Redirect",
        "Channel": ch,
        "Context": "dialer-bridge",
        "Exten": "1001",
        "Priority": "1",
    }
    assert mapping.hangup_action(Hangup("att-1", ch, 17)) == {
        "Action": "Hangup",
        "Channel": ch,
        "Cause": "17",
    }
    for bad in (ch + "\r\nAction: Originate", ch + " x", "nochan"):
        with pytest.raises(UnsafeValue):
            mapping.redirect_action(Redirect("att-1", bad, "1001"))
        with pytest.raises(UnsafeValue):
            mapping.hangup_action(Hangup("att-1", bad))
    with pytest.raises(UnsafeValue):
        mapping.redirect_action(Redirect("att-1", ch, "1001,1"))


# ----------------------------------------------------------------- to_event


def to_event(msg: dict[str, str]) -> ev.Event | None:
    return mapping.to_event(msg, NOW, LIVE, AGENTS)


def test_user_event_answered() -> None:
    msg = {
        "Event": "UserEvent",
        "UserEvent": "DialerAnswered",
        "Attempt": "att-1",
        "Campaign": "c1",
        "Channel": "Local/442070001100@sim-customers-0000001a;1",
        "Uniqueid": "att-1",
    }
    assert to_event(msg) == ev.CallAnswered(NOW, "att-1", msg["Channel"])


def test_user_event_safe_harbor() -> None:
    msg = {"Event": "UserEvent", "UserEvent": "DialerSafeHarbor", "Attempt": "att-2"}
    assert to_event(msg) == ev.SafeHarborPlayed(NOW, "att-2")


@pytest.mark.parametrize(
    "msg",
    [
        {"Event": "UserEvent", "UserEvent": "DialerAnswered", "Attempt": "att-unknown"},
        {"Event": "UserEvent", "UserEvent": "DialerAnswered"},
        {"Event": "UserEvent", "UserEvent": "SomethingElse", "Attempt": "att-1"},
    ],
    ids=["not-live", "no-attempt", "other-userevent"],
)
def test_user_event_ignored(msg: dict[str, str]) -> None:
    assert to_event(msg) is None


def test_confbridge_join_of_customer_is_call_connected() -> None:
    msg = {
        "Event": "ConfbridgeJoin",
        "Conference": "agent-1001",
        "Channel": "Local/442070001100@sim-customers-0000001a;1",
        "Uniqueid": "att-1",
    }
    assert to_event(msg) == ev.CallConnected(NOW, "att-1", "1001")


def test_confbridge_join_of_agent_is_agent_joined() -> None:
    msg = {
        "Event": "ConfbridgeJoin",
        "Conference": "agent-1002",
        "Channel": "PJSIP/1002-00000001",
        "Uniqueid": "1700000000.20",
    }
    assert to_event(msg) == ev.AgentJoined(NOW, "1002", "PJSIP/1002-00000001", "1700000000.20")


def test_confbridge_other_room_ignored() -> None:
    msg = {"Event": "ConfbridgeJoin", "Conference": "sales", "Uniqueid": "att-1"}
    assert to_event(msg) is None


def test_confbridge_leave() -> None:
    agent = {"Event": "ConfbridgeLeave", "Conference": "agent-1001", "Uniqueid": "1700000000.10"}
    assert to_event(agent) == ev.AgentLeft(NOW, "1001")
    # the customer leaving the room is not the agent leaving
    cust = {"Event": "ConfbridgeLeave", "Conference": "agent-1001", "Uniqueid": "att-1"}
    assert to_event(cust) is None
    # an agent's channel seen leaving someone else's room: not a logout
    other = {"Event": "ConfbridgeLeave", "Conference": "agent-1009", "Uniqueid": "1700000000.10"}
    assert to_event(other) is None


def test_hangup_of_attempt_and_of_its_local_half() -> None:
    assert to_event({"Event": "Hangup", "Uniqueid": "att-1", "Cause": "16"}) == ev.CallHungUp(
        NOW, "att-1", 16
    )
    assert to_event({"Event": "Hangup", "Uniqueid": "att-1;2", "Cause": "17"}) == ev.CallHungUp(
        NOW, "att-1", 17
    )
    # a cause Asterisk left out or garbled: 0, not an exception
    assert to_event({"Event": "Hangup", "Uniqueid": "att-2", "Cause": "x"}) == ev.CallHungUp(
        NOW, "att-2", 0
    )
    assert to_event({"Event": "Hangup", "Uniqueid": "att-9"}) is None
    assert to_event({"Event": "Hangup", "Uniqueid": "att-9;2"}) is None


def test_unrelated_events_ignored() -> None:
    assert to_event({"Event": "Newchannel", "Uniqueid": "att-1"}) is None
    assert to_event({}) is None


# ----------------------------------------------------------- agents_in_rooms


def test_agents_in_rooms_from_core_show_channels() -> None:
    channels: list[Mapping[str, Any]] = [
        {"Response": "Success", "EventList": "start", "Message": "Channels will follow"},
        {
            "Event": "CoreShowChannel",
            "Channel": "PJSIP/1001-00000001",
            "Uniqueid": "1700000000.10",
            "Application": "ConfBridge",
            "ApplicationData": "agent-1001,dialer_room,dialer_agent,dialer_agent_menu",
        },
        {  # a customer already bridged into an agent's room
            "Event": "CoreShowChannel",
            "Channel": "Local/442070001100@sim-customers-0000001a;1",
            "Uniqueid": "att-1",
            "Application": "ConfBridge",
            "ApplicationData": "agent-1001,dialer_room,dialer_customer",
        },
        {  # a customer still in the outbound context
            "Event": "CoreShowChannel",
            "Channel": "Local/442070001200@sim-customers-0000001b;1",
            "Uniqueid": "att-2",
            "Application": "Wait",
            "ApplicationData": "2",
        },
        {  # a conference that is not an agent room
            "Event": "CoreShowChannel",
            "Channel": "PJSIP/9-00000002",
            "Uniqueid": "1700000000.30",
            "Application": "ConfBridge",
            "ApplicationData": "sales,default_bridge,dialer_agent",
        },
        {
            "Event": "CoreShowChannel",
            "Channel": "PJSIP/1002-00000003",
            "Uniqueid": "1700000000.40",
            "Application": "ConfBridge",
            "ApplicationData": "agent-1002",  # too few arguments to tell
        },
        {"Event": "CoreShowChannelsComplete", "EventList": "Complete", "ListItems": "5"},
    ]
    assert mapping.agents_in_rooms(channels, NOW) == [
        ev.AgentJoined(NOW, "1001", "PJSIP/1001-00000001", "1700000000.10")
    ]
    assert mapping.agents_in_rooms([], NOW) == []


# ----------------------------------------------------------- originate_result


def test_originate_result_answered() -> None:
    resp = [
        {"Response": "Success", "Message": "Originate successfully queued"},
        {"Event": "OriginateResponse", "Response": "Success", "Reason": "4", "Uniqueid": "att-1"},
    ]
    assert mapping.originate_result(resp) == (True, 4, "")


@pytest.mark.parametrize("reason", [0, 1, 3, 5, 8])
def test_originate_result_failed(reason: int) -> None:
    resp = [
        {"Response": "Success", "Message": "Originate successfully queued"},
        {"Event": "OriginateResponse", "Response": "Failure", "Reason": str(reason)},
    ]
    assert mapping.originate_result(resp) == (False, reason, "")


def test_originate_result_lone_error_response() -> None:
    resp = {"Response": "Error", "Message": "Originate failed"}
    assert mapping.originate_result(resp) == (False, None, "refused: Originate failed")
    assert mapping.originate_result([resp]) == (False, None, "refused: Originate failed")


def test_originate_result_odd_shapes() -> None:
    assert mapping.originate_result([]) == (False, None, "refused: no OriginateResponse")
    odd = [{"Event": "OriginateResponse", "Response": "Success", "Reason": ""}]
    assert mapping.originate_result(odd) == (True, None, "")


def test_originate_result_on_panoramisk_messages() -> None:
    """What the future really resolves to: panoramisk Messages (case-insensitive)."""
    from panoramisk.message import Message

    resp = [
        Message({"Response": "Success", "Message": "Originate successfully queued"}),
        Message({"Event": "OriginateResponse", "Response": "Failure", "Reason": "5"}),
    ]
    assert mapping.originate_result(resp) == (False, 5, "")


# ------------------------------------------------------------------ safety


@given(st.text())
def test_header_never_returns_cr_or_lf(value: str) -> None:
    try:
        out = safety.header(value)
    except UnsafeValue:
        return
    assert "\r" not in out and "\n" not in out
    assert out == value  # a safe value passes unchanged


@given(st.text(), st.sampled_from(["\r", "\n", "\r\n"]), st.text())
def test_header_refuses_any_embedded_line_break(a: str, brk: str, b: str) -> None:
    with pytest.raises(UnsafeValue):
        safety.header(a + brk + b)


@given(st.text(), st.text())
def test_variable_never_returns_cr_lf_or_comma(name: str, value: str) -> None:
    try:
        out = safety.variable(name, value)
    except UnsafeValue:
        return
    assert not set(out) & {"\r", "\n", ","}
