"""AMI <-> core translation, pure: dicts in, dataclasses out (and back).

The contract with ``asterisk-conf/extensions.conf``: the customer channel is
originated with ``ChannelId`` = attempt id, so its ``Uniqueid`` in every AMI
event *is* the attempt id; the dialplan's UserEvents carry ``Attempt``;
rooms are named ``agent-<id>``.

Inbound callers: the dialplan announces a caller with ``UserEvent
DialerInbound`` (``Call`` = the caller channel's ``${UNIQUEID}``, ``Queue``,
``Did``, ``Caller``); from then on that Uniqueid names the caller as an
attempt id names an outbound call, so its ``ConfbridgeJoin``, ``Hangup`` and
a failed Redirect become ``CallConnected``/``CallHungUp``/``RedirectFailed``
with ``attempt_id`` = the Uniqueid. A caller is recognised by the core's
inbound table (``DialerCore.inbound``), looked up only after the outbound
call table missed, so the outbound path costs nothing more.
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping
from functools import lru_cache
from typing import Any

import phonenumbers

from dialerd.asterisk import safety
from dialerd.campaign.model import NAME_RE
from dialerd.core import events as ev
from dialerd.core.commands import (
    AgentAck,
    AgentPrompt,
    Hangup,
    InboundFallback,
    PlaceCall,
    Redirect,
)
from dialerd.phone import PhoneError, is_e164, normalize

OUTBOUND_CONTEXT = "dialer-outbound"
BRIDGE_CONTEXT = "dialer-bridge"
#: where a caller nobody can take is sent: extension ``callback`` (the offer,
#: press 1) or ``message`` (a message, then a clean hang-up)
FALLBACK_CONTEXT = "dialer-inbound-fallback"
FALLBACK_ACTIONS = frozenset({"callback", "message"})
ROOM_PREFIX = "agent-"
#: codecs offered on the customer leg; without ``Codecs`` Originate offers
#: signed linear only, which a SIP trunk will not accept
CODECS = "ulaw,alaw"


def originate_action(call: PlaceCall) -> dict[str, str | list[str]]:
    """The Originate for a call. Raises ``UnsafeValue`` rather than build a
    frame from anything that could add a header or a second channel."""
    return {
        "Action": "Originate",
        "Channel": safety.channel(call.channel),
        "Context": OUTBOUND_CONTEXT,
        "Exten": "s",
        "Priority": "1",
        "Timeout": str(int(call.ring_timeout_s * 1000)),
        "CallerID": safety.header(call.caller_id),
        # Async must be explicit: panoramisk raises KeyError without it
        "Async": "true",
        # Asterisk refuses a second channel with this id: a duplicated
        # Originate fails instead of ringing the customer twice
        "ChannelId": safety.ident(call.attempt_id),
        "Codecs": CODECS,
        "Variable": [safety.variable(k, v) for k, v in sorted(call.variables.items())],
    }


#: what the agent hears for each prompt name the core uses (Asterisk's
#: stock English prompts; a deployment may record its own under the same
#: names in its sounds directory)
PROMPTS: dict[str, str] = {
    "login": "agent-loginok",
    "ok": "auth-thankyou",
    "ready": "beep",
    "paused": "dictate/paused",
    "goodbye": "agent-loggedoff",
    "calling": "calling",
    "connected": "beep",
    "offer": "beep&beep",
    "invalid": "invalid",
    "refused": "cannot-complete-as-dialed",
    "wrong_pin": "",  # the login dialplan asks again with agent-incorrect
    "already_on": "agent-alreadyon",
}

#: the key the daemon "presses" on an agent's channel to play a prompt
#: (confbridge.conf: D = dialplan_exec(dialer-prompt,s,1))
PROMPT_KEY = "D"


def _setvar(channel: str, name: str, value: str) -> dict[str, str | list[str]]:
    return {
        "Action": "Setvar",
        "Channel": safety.live_channel(channel),
        "Variable": name,
        "Value": safety.header(value),
    }


def ack_actions(a: AgentAck) -> list[dict[str, str | list[str]]]:
    """The answer the ``[dialer-ack]`` dialplan waits for on the agent's
    channel: the prompt first, then the verdict it polls for."""
    return [
        _setvar(a.channel, "DIALER_ACK_SOUND", PROMPTS.get(a.prompt, "")),
        _setvar(a.channel, "DIALER_ACK", "ok" if a.ok else "no"),
    ]


def prompt_actions(p: AgentPrompt) -> list[dict[str, str | list[str]]]:
    """Play a prompt to an agent in their room: set it, then fake the menu
    key that plays it. ``Async: false`` because panoramisk takes PlayDTMF's
    "DTMF successfully queued" for an async Originate and fails on it."""
    sounds = "&".join(x for x in (PROMPTS.get(p.prompt, ""), p.extra) if x)
    return [
        _setvar(p.channel, "DIALER_PROMPT", sounds),
        {
            "Action": "PlayDTMF",
            "Channel": safety.live_channel(p.channel),
            "Digit": PROMPT_KEY,
            "Duration": "80",
            "Receive": "true",
            "Async": "false",
        },
    ]


def redirect_action(r: Redirect) -> dict[str, str | list[str]]:
    return {
        "Action": "Redirect",
        "Channel": safety.live_channel(r.channel),
        "Context": BRIDGE_CONTEXT,
        "Exten": safety.ident(r.agent_id),
        "Priority": "1",
    }


def fallback_actions(f: InboundFallback) -> list[dict[str, str | list[str]]]:
    """A caller nobody can take: the fallback's sounds set on the channel
    (``DIALER_FB_OFFER``, ``_TIMEOUT``, ``_BOOKED``, ``_SOUND``), then the
    Redirect to ``[dialer-inbound-fallback]`` extension ``callback`` or
    ``message``. Every value passes the channel-variable check first, so a
    bad one raises ``UnsafeValue`` before anything is sent."""
    if f.action not in FALLBACK_ACTIONS:
        raise safety.UnsafeValue(f"unknown fallback action {f.action!r}")
    values = {
        "DIALER_FB_OFFER": f.offer_sound or "",
        "DIALER_FB_TIMEOUT": str(int(f.offer_timeout_s)),
        "DIALER_FB_BOOKED": f.booked_sound or "",
        "DIALER_FB_SOUND": f.sound,
    }
    for name, value in values.items():
        safety.variable(name, value)
    out = [_setvar(f.channel, name, value) for name, value in values.items()]
    out.append(
        {
            "Action": "Redirect",
            "Channel": safety.live_channel(f.channel),
            "Context": FALLBACK_CONTEXT,
            "Exten": f.action,
            "Priority": "1",
        }
    )
    return out


def callback_ack_actions(channel: str, ok: bool) -> list[dict[str, str | list[str]]]:
    """The answer the callback offer waits for after the caller pressed 1:
    the same shape as an agent's key ack (``DIALER_ACK`` ok|no)."""
    return ack_actions(AgentAck(channel, ok, ""))


def hangup_action(h: Hangup) -> dict[str, str | list[str]]:
    return {"Action": "Hangup", "Channel": safety.live_channel(h.channel), "Cause": str(h.cause)}


def originate_result(resp: Any) -> tuple[bool, int | None, str]:
    """(success, reason, detail) from what panoramisk's future resolved to:
    a list [Response, OriginateResponse] normally, one Response on refusal."""
    msgs = resp if isinstance(resp, list) else [resp]
    final = None
    for m in msgs:
        if str(m.get("Event", "")).lower() == "originateresponse":
            final = m
    if final is None:
        first = msgs[0] if msgs else {}
        return False, None, f"refused: {first.get('Message', 'no OriginateResponse')}"
    ok = str(final.get("Response", "")).lower() == "success"
    try:
        reason: int | None = int(final.get("Reason", ""))
    except ValueError:
        reason = None
    return ok, reason, ""


def _int(v: Any, default: int = 0) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


def to_event(
    msg: Mapping[str, Any],
    now: float,
    calls: Container[str],
    agent_by_uniqueid: Mapping[str, str],
    inbound: Container[str] = (),
) -> ev.Event | None:
    """The core event an AMI event means, or None if it means nothing to us.

    ``inbound``: the Uniqueids of the inbound callers the core holds
    (``DialerCore.inbound``), consulted only after ``calls`` missed."""
    name = str(msg.get("Event", ""))
    uid = str(msg.get("Uniqueid", ""))
    if name == "UserEvent":
        kind = msg.get("UserEvent", "")
        if kind in _INBOUND_EVENTS:
            return _inbound_user_event(kind, msg, now)
        if kind == "DialerKey":
            # an agent's key ([dialer-ack]): login, disposition digit, ready, ...
            agent = str(msg.get("Agent", "")).strip()
            key = str(msg.get("Key", "")).strip()
            if not agent or not key:
                return None
            return ev.AgentKey(
                now, agent, key, str(msg.get("Data", "")).strip(), str(msg.get("Channel", ""))
            )
        attempt = str(msg.get("Attempt", ""))
        if attempt not in calls:
            return None
        if kind == "DialerAmd":
            return ev.AmdResult(
                now,
                attempt,
                str(msg.get("Status", "")),
                str(msg.get("Cause", "")),
                str(msg.get("Action", "")),
            )
        if kind == "DialerAnswered":
            return ev.CallAnswered(now, attempt, str(msg.get("Channel", "")))
        if kind == "DialerSafeHarbor":
            return ev.SafeHarborPlayed(now, attempt)
        return None
    if name == "Hangup":
        if uid in calls:
            return ev.CallHungUp(now, uid, _int(msg.get("Cause")))
        # the ;2 half of a Local channel (OtherChannelId default X;2) carries
        # the far end's real cause
        if uid.endswith(";2") and uid[:-2] in calls:
            return ev.CallHungUp(now, uid[:-2], _int(msg.get("Cause")))
        if uid in inbound:
            return ev.CallHungUp(now, uid, _int(msg.get("Cause")))
        return None
    if name in ("ConfbridgeJoin", "ConfbridgeLeave"):
        conf = str(msg.get("Conference", ""))
        if not conf.startswith(ROOM_PREFIX):
            return None
        agent_id = conf[len(ROOM_PREFIX) :]
        if name == "ConfbridgeJoin":
            if uid in calls or uid in inbound:
                return ev.CallConnected(now, uid, agent_id)
            return ev.AgentJoined(now, agent_id, str(msg.get("Channel", "")), uid)
        if agent_by_uniqueid.get(uid) == agent_id:
            return ev.AgentLeft(now, agent_id)
    return None


# ------------------------------------------------------------------ inbound
#: the dialplan's inbound UserEvents (``DialerInboundTimeout`` is only
#: information: the dialplan gave up on the caller itself, its hang-up follows)
INBOUND_ARRIVED = "DialerInbound"
INBOUND_CALLBACK = "DialerCallback"
INBOUND_TIMEOUT = "DialerInboundTimeout"
_INBOUND_EVENTS = frozenset({INBOUND_ARRIVED, INBOUND_CALLBACK})
#: an Asterisk Uniqueid (``1700000000.42``) or a ChannelId we chose
_CALL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,148}$")


def _field(msg: Mapping[str, Any], key: str) -> str | None:
    """A UserEvent field, stripped; None when it holds a control character
    (CR/LF above all: it must never reach a log line, a store row or AMI)."""
    raw = msg.get(key, "")
    value = raw if isinstance(raw, str) else str(raw)
    if safety.has_control(value):
        return None
    return value.strip()


@lru_cache(maxsize=1024)
def _region_of(did: str) -> str | None:
    """The country of the dialed number: a caller id written without its
    country code (``02079460001``) is read as a number of that country."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(did, None))
    except phonenumbers.NumberParseException:
        return None


def caller_number(raw: str, did: str) -> str:
    """The caller's number in E.164, or "" when it is withheld (empty,
    ``anonymous``, ``Restricted``...) or not a valid number: nobody to
    call back."""
    text = raw.strip()
    if not text or not any(ch.isdigit() for ch in text):
        return ""
    try:
        return normalize(text, _region_of(did) if did else None)
    except PhoneError:
        return ""


def _inbound_user_event(kind: str, msg: Mapping[str, Any], now: float) -> ev.Event | None:
    """``DialerInbound`` / ``DialerCallback``, every field checked: a call id
    or channel that is not one Asterisk would make, a queue name outside the
    schema's, a DID that is not E.164, or a control character anywhere, and
    the event is dropped (the dialplan's own timeout then ends the call)."""
    call = _field(msg, "Call")
    channel = _field(msg, "Channel")
    if not call or not _CALL_ID.fullmatch(call) or channel is None:
        return None
    if channel and not safety.is_live_channel(channel):
        return None
    if kind == INBOUND_CALLBACK:
        return ev.CallbackRequested(now, call, channel)
    queue, did, caller = _field(msg, "Queue"), _field(msg, "Did"), _field(msg, "Caller")
    if queue is None or not NAME_RE.fullmatch(queue) or not channel:
        return None
    if did is None or caller is None or not is_e164(did):
        return None
    return ev.InboundArrived(now, call, queue, channel, caller_number(caller, did), did)


def inbound_timeout(msg: Mapping[str, Any]) -> tuple[str, str] | None:
    """(call id, queue) of a ``DialerInboundTimeout`` UserEvent, fields
    checked as above; None for anything else."""
    if msg.get("Event") != "UserEvent" or msg.get("UserEvent") != INBOUND_TIMEOUT:
        return None
    call, queue = _field(msg, "Call"), _field(msg, "Queue")
    if not call or not _CALL_ID.fullmatch(call) or queue is None or not NAME_RE.fullmatch(queue):
        return None
    return call, queue


def agents_in_rooms(channels: list[Mapping[str, Any]], now: float) -> list[ev.AgentJoined]:
    """Agents already sitting in their rooms, from ``CoreShowChannels``.

    ConfbridgeJoin is only seen live; agents who logged in before the daemon
    connected (start-up, restart, AMI reconnect) are found here instead: a
    channel running ``ConfBridge(agent-<id>,...,dialer_agent...)``.
    """
    out = []
    for ch in channels:
        if str(ch.get("Event", "")) != "CoreShowChannel":
            continue
        if str(ch.get("Application", "")).lower() != "confbridge":
            continue
        args = str(ch.get("ApplicationData", "")).split(",")
        if len(args) < 3 or not args[0].startswith(ROOM_PREFIX) or args[2] != "dialer_agent":
            continue
        out.append(
            ev.AgentJoined(
                now,
                args[0][len(ROOM_PREFIX) :],
                str(ch.get("Channel", "")),
                str(ch.get("Uniqueid", "")),
            )
        )
    return out


def live_calls(channels: list[Mapping[str, Any]], is_attempt: Any) -> list[ev.LiveCall]:
    """Customer channels of ours among ``CoreShowChannels`` results.

    ``is_attempt(uniqueid)`` says whether a Uniqueid is one of our attempt
    ids (the ``ChannelId`` we originated with)."""
    out = []
    for ch in channels:
        if str(ch.get("Event", "")) != "CoreShowChannel":
            continue
        uid = str(ch.get("Uniqueid", ""))
        if not is_attempt(uid):
            continue
        app = str(ch.get("Application", "")).lower()
        args = str(ch.get("ApplicationData", "")).split(",")
        if app == "confbridge" and args[0].startswith(ROOM_PREFIX):
            where, agent = "room", args[0][len(ROOM_PREFIX) :]
        elif str(ch.get("ChannelStateDesc", "")) == "Up":
            where, agent = "outbound", None  # answered, not (yet) in a room
        else:
            where, agent = "ringing", None
        out.append(ev.LiveCall(uid, str(ch.get("Channel", "")), where, agent))
    return out


class UnclaimedHangups:
    """Hangups of channels the core did not know when they came.

    A Resync is built from a ``CoreShowChannels`` snapshot, then the store is
    read, and only then is it queued for the core. A call that was live in the
    snapshot but hung up meanwhile has its Hangup handled *before* the Resync
    that adopts it: the core drops it (an unknown attempt id) and the adopted
    call would wait forever, its lead stuck in "dialing". So the shell keeps
    unclaimed Hangups for a while and replays those that came after the
    snapshot for calls the Resync adopted."""

    KEEP_S = 120.0
    MAX = 5000

    def __init__(self) -> None:
        self._seen: dict[str, tuple[float, int]] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, msg: Mapping[str, Any], now: float) -> None:
        """Note an AMI event ``to_event`` found no meaning in."""
        if str(msg.get("Event", "")) != "Hangup":
            return
        uid = str(msg.get("Uniqueid", ""))
        if uid.endswith(";2"):
            uid = uid[:-2]  # the far end's half of a Local channel
        if not uid:
            return
        cause = _int(msg.get("Cause"))
        prev = self._seen.get(uid)
        if prev is not None and not cause:
            cause = prev[1]  # keep the half that carries a cause
        self._seen[uid] = (now, cause)
        if len(self._seen) > self.MAX:
            self._seen = {k: v for k, v in self._seen.items() if now - v[0] <= self.KEEP_S}

    def claim(self, snapshot_at: float, calls: Container[str], now: float) -> list[ev.CallHungUp]:
        """Hangups seen since ``snapshot_at`` of calls now in ``calls``."""
        out = [
            ev.CallHungUp(now, uid, cause)
            for uid, (at, cause) in self._seen.items()
            if at >= snapshot_at and uid in calls
        ]
        for e in out:
            del self._seen[e.attempt_id]
        return out
