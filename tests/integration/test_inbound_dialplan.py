"""The inbound call path on a real Asterisk, with a real SIP caller.

A sipp UAC on the carrier's address (:class:`dialerd.sandbox.caller.SippCaller`)
calls DIDs through the production ``trunk-out`` endpoint into the shipped
``[dialer-inbound]``; the test plays the daemon's part itself: it serves
FastAGI with the daemon's own handler (:func:`serve_inbound`) on a free
port, announces it with an AMI ``Setvar`` of the global ``DIALER_AGI`` (as
dialerd does at each AMI login), listens to AMI with an independent
recorder, and sends the Redirects and Setvars the daemon would.

Every check reads two witnesses: Asterisk (AMI events, its own timestamps;
its log at verbose 3 for which sounds played) and the caller (sipp's final
SIP status, who sent BYE, how long the call lasted).

Each test runs its own Asterisk (sub-second boot) on fresh ports.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sipp_phone import need_sipp, run_sipp

from dialerd.asterisk.mapping import fallback_actions as _fallback_actions
from dialerd.campaign.queues import Fallback, Queue
from dialerd.core.commands import InboundFallback
from dialerd.daemon.agi import AgiSession, serve_agi
from dialerd.daemon.inbound_agi import (
    InboundVerdict,
    queues_by_did,
    serve_inbound,
)
from dialerd.sandbox.asterisk import AsteriskSandbox, free_port
from dialerd.sandbox.caller import CallReport, SippCaller
from dialerd.sandbox.recorder import AmiRecorder, Seen
from dialerd.sandbox.scenario import login_agents

pytestmark = pytest.mark.asterisk

DID = "+442071234567"
UNKNOWN_DID = "+442071230000"
CALLER = "+447700900123"
AGENT = "3301"


def fallback_actions(channel: str, fb: Fallback) -> list[dict[str, Any]]:
    """The daemon's own actions for a queue's fallback (what its executor
    sends for the core's ``InboundFallback``)."""
    return _fallback_actions(
        InboundFallback("test", channel, "support", "max_wait", fb.action.value,
                        fb.offer_sound, fb.offer_timeout_s, fb.booked_sound, fb.sound)
    )  # fmt: skip


def _queue(**over: Any) -> Queue:
    body: dict[str, Any] = {
        "name": "support",
        "dids": [DID],
        "agents": [AGENT],
        "service_level": {"percent": 80, "within_s": 5},
        "max_wait_s": 30,
        "after_max_wait": {"action": "message", "sound": "vm-goodbye"},
        "no_agents": {"action": "message", "sound": "vm-goodbye"},
        "hold": {"music": "default"},
        "announce_sound": "beep",
    }
    body.update(over)
    return Queue.model_validate(body)


@dataclass
class Rig:
    """A private Asterisk, the recorder, and the daemon's FastAGI part."""

    sb: AsteriskSandbox
    rec: AmiRecorder
    tmp: Path
    queues: dict[str, Queue] = field(default_factory=dict)
    verdicts: list[InboundVerdict] = field(default_factory=list)
    server: asyncio.Server | None = None
    callers: int = 0

    async def serve(self, *queues: Queue) -> None:
        """Serve FastAGI like the daemon and announce it (DIALER_AGI)."""
        self.queues = queues_by_did(queues)

        async def handler(agi: AgiSession) -> None:
            assert agi.script == "inbound", agi.script
            self.verdicts.append(await serve_inbound(agi, self.queues))

        self.server = await serve_agi(
            "127.0.0.1", 0, handler, allow=["127.0.0.1/32"], max_sessions=8
        )
        port = self.server.sockets[0].getsockname()[1]
        await self.setvar("DIALER_AGI", f"127.0.0.1:{port}")

    async def setvar(self, name: str, value: str, channel: str | None = None) -> None:
        """AMI Setvar: a global without ``channel``, as dialerd sets DIALER_AGI."""
        act = {"Action": "Setvar", "Variable": name, "Value": value}
        if channel is not None:
            act["Channel"] = channel
        reply = await self.rec.action(act)
        assert reply.get("Response") == "Success", reply

    def caller(self, did: str = DID, caller: str = CALLER, **kw: Any) -> SippCaller:
        """A sipp caller with a directory of its own (its log is its report)."""
        self.callers += 1
        workdir = self.tmp / f"caller-{self.callers}"
        return SippCaller(self.sb.sip_port, did, caller, workdir=workdir, **kw)

    async def inbound_event(self, timeout: float = 10.0) -> Seen:
        return await self.rec.wait_for(
            lambda s: s.get("Event") == "UserEvent" and s.get("UserEvent") == "DialerInbound",
            timeout,
        )

    async def hangup_of(self, channel: str, timeout: float = 15.0) -> Seen:
        return await self.rec.wait_for(
            lambda s: s.get("Event") == "Hangup" and s.get("Channel") == channel, timeout
        )

    async def executed(self, channel: str, last: str = "Hangup(") -> list[tuple[float, str]]:
        """(log time, ``App(args)``) of each dialplan step the channel ran,
        from Asterisk's log at verbose 3 (the only witness of which sound
        played: Playback raises no AMI event). Asterisk's logger writes
        from a thread of its own, behind the AMI events under load: the log
        is read again until a step starting with ``last`` is in it (2 s)."""
        deadline = time.monotonic() + 2.0
        while True:
            steps = self._steps(channel)
            if any(a.startswith(last) for _t, a in steps) or time.monotonic() > deadline:
                return steps
            await asyncio.sleep(0.05)

    def _steps(self, channel: str) -> list[tuple[float, str]]:
        out: list[tuple[float, str]] = []
        pat = re.compile(
            r"^\[(\S+ \S+)\] VERBOSE.*Executing \[[^\]]*\] (\w+)\(\"" + re.escape(channel)
            + r"\", \"(.*)\"\) in new stack"
        )  # fmt: skip
        for line in self.sb.log_path.read_text(errors="replace").splitlines():
            m = pat.match(line)
            if m:
                t = time.mktime(time.strptime(m.group(1)[:19], "%Y-%m-%d %H:%M:%S"))
                out.append((t + float("0" + m.group(1)[19:]), f"{m.group(2)}({m.group(3)})"))
        return out


@pytest.fixture
async def rig(trunk_sandbox: AsteriskSandbox, tmp_path: Path) -> AsyncIterator[Rig]:
    """The private trunk sandbox (conftest: its trunk-out takes the sipp
    caller's calls from 127.0.0.2; no UAS is needed, nothing here dials
    out), at verbose 3 so its log says what played, and a recorder on it."""
    sb = trunk_sandbox
    sb.cli("core set verbose 3")
    rec = await AmiRecorder.connect(sb.harness_user)
    r = Rig(sb, rec, tmp_path)
    try:
        yield r
    finally:
        rec.close()
        if r.server is not None:
            r.server.close()


def _one(reports: list[CallReport]) -> CallReport:
    assert len(reports) == 1, reports
    return reports[0]


def _no_sip_errors(c: SippCaller) -> None:
    """sipp logs each ``ontimeout`` jump (its 0.1 s hold clock); anything
    else (an unexpected message, an aborted call) is a SIP-level failure."""
    text = c.errors().lower()
    for bad in ("unexpected", "aborting", "aborted"):
        assert bad not in text, f"the caller saw {bad!r}:\n{c.errors()[-3000:]}"


def _ts(s: Seen) -> float:
    return float(s.get("Timestamp"))


# ---------------------------------------------------------------- refused


async def test_an_unknown_did_is_refused_with_cause_21(rig: Rig) -> None:
    """A number of no queue, letters, and no number at all: refused before
    any answer (no charge to the caller), cause 21, which PJSIP sends as 403;
    no DialerInbound event, and only the real number reached the daemon."""
    await rig.serve(_queue())
    callers = [rig.caller(UNKNOWN_DID), rig.caller("support"), rig.caller("s")]
    t0 = time.monotonic()
    reports = await asyncio.gather(*(c.run(15) for c in callers))
    took = time.monotonic() - t0
    for c, r in zip(callers, reports, strict=True):
        rep = _one(r)
        assert rep.status == 403 and rep.ended and rep.duration_s is None, (c.did, rep)
        _no_sip_errors(c)
    await asyncio.sleep(0.3)
    hangups = rig.rec.named("Hangup")
    assert len(hangups) == 3 and {h.get("Cause") for h in hangups} == {"21"}, hangups
    # (a channel hung up at its first step reports Exten "s" in its Hangup
    # event: its snapshot predates the dialplan; the log says where it ran)
    log = rig.sb.log_path.read_text(errors="replace")
    for exten in ("support", "s"):
        assert f"Executing [{exten}@dialer-inbound:1] Hangup(" in log, exten
    assert not rig.rec.named("Newstate", ChannelStateDesc="Up"), "a refused call was answered"
    assert not rig.rec.named("UserEvent")
    assert [(v.ack, v.did) for v in rig.verdicts] == [("no", UNKNOWN_DID)]
    print(f"\n3 refused calls in {took:.2f} s; setup {[_one(r).setup_s for r in reports]}")


async def test_daemon_down_says_service_unavailable_then_cause_21(rig: Rig) -> None:
    """No FastAGI server where DIALER_AGI points: the caller is answered,
    hears ss-noservice, and is hung up on with cause 21, never in silence."""
    await rig.setvar("DIALER_AGI", f"127.0.0.1:{free_port()}")
    c = rig.caller(hold_s=20)
    rep = _one(await c.run(25))
    assert rep.status == 200 and rep.bye_from_asterisk and not rep.bye_from_caller, rep
    assert rep.duration_s is not None and rep.duration_s > 2.0, "the message was cut short"
    (h,) = rig.rec.named("Hangup")
    assert h.get("Cause") == "21", h.fields
    apps = [a for _t, a in await rig.executed(h.get("Channel"))]
    assert "Playback(ss-noservice)" in apps and not any(a.startswith("UserEvent") for a in apps)
    _no_sip_errors(c)
    print(f"\ndaemon down: answered, ss-noservice, BYE after {rep.duration_s:.2f} s, cause 21")


# ------------------------------------------------------- a queue's caller


async def test_a_known_did_is_announced_held_on_music_and_bridged_to_an_agent(
    rig: Rig,
) -> None:
    """DialerInbound with the queue, DID and caller; the announcement, then
    music on hold (class default: its files are in the sandbox); the test's
    Redirect puts the caller in the agent's room (ConfbridgeJoin), where it
    stays until the caller hangs up (cause 16)."""
    await rig.serve(_queue())
    await login_agents(rig.rec, [AGENT])
    c = rig.caller(hold_s=6)
    await c.start()
    ev = await rig.inbound_event()
    chan = ev.get("Channel")
    assert (ev.get("Queue"), ev.get("Did"), ev.get("Caller")) == ("support", DID, CALLER)
    assert ev.get("Call") == ev.get("Uniqueid")
    moh = await rig.rec.wait_for(
        lambda s: s.get("Event") == "MusicOnHoldStart" and s.get("Channel") == chan, 5
    )
    assert moh.get("Class") == "default"
    await asyncio.sleep(1.0)  # the caller holds
    assert not rig.rec.named("MusicOnHoldStop", Channel=chan), "the music stopped by itself"
    # a Redirect to the priority label `hold` puts a caller back on hold
    # (same deadline, no second DialerInbound): the daemon's undo
    reply = await rig.rec.action(
        {
            "Action": "Redirect",
            "Channel": chan,
            "Context": "dialer-inbound",
            "Exten": DID,
            "Priority": "hold",
        }
    )
    assert reply.get("Response") == "Success", reply
    await rig.rec.wait_for(
        lambda s: (
            s.get("Event") == "MusicOnHoldStart" and s.get("Channel") == chan and s is not moh
        ),
        5,
    )
    assert len(rig.rec.named("UserEvent", UserEvent="DialerInbound")) == 1
    reply = await rig.rec.action(
        {
            "Action": "Redirect",
            "Channel": chan,
            "Context": "dialer-bridge",
            "Exten": AGENT,
            "Priority": "1",
        }
    )
    assert reply.get("Response") == "Success", reply
    join = await rig.rec.wait_for(
        lambda s: s.get("Event") == "ConfbridgeJoin" and s.get("Channel") == chan, 5
    )
    assert join.get("Conference") == f"agent-{AGENT}"
    rep = _one(await c.wait(20))
    h = await rig.hangup_of(chan)
    assert rep.status == 200 and rep.bye_from_caller and not rep.bye_from_asterisk, rep
    assert h.get("Cause") == "16", h.fields
    assert rig.rec.named("ConfbridgeLeave", Channel=chan)
    assert not rig.rec.named("UserEvent", UserEvent="DialerInboundTimeout")
    apps = [a for _t, a in await rig.executed(chan, last="ConfBridge(")]
    assert apps.index("Playback(beep)") < next(
        i for i, a in enumerate(apps) if a.startswith("MusicOnHold(default,")
    )
    _no_sip_errors(c)
    mohstart = _ts(moh) - _ts(ev)
    print(
        f"\nDialerInbound -> music {mohstart:.3f} s; Redirect -> ConfbridgeJoin "
        f"{_ts(join) - _ts(rig.rec.named('MusicOnHoldStop', Channel=chan)[-1]):.3f} s"
    )


async def test_several_callers_at_once_each_held_then_each_sent_a_message(rig: Rig) -> None:
    """Five calls from one sipp caller, 0.1 s apart: five DialerInbound
    events with five distinct calls, five callers on music, then the
    daemon's fallback for all at once; every caller is hung up on (16)."""
    q = _queue(announce_sound=None)
    await rig.serve(q)
    c = rig.caller(calls=5, rate=10, hold_s=20)
    await c.start()
    await rig.rec.wait_for(lambda s: len(rig.rec.named("MusicOnHoldStart")) >= 5, 10)
    events = rig.rec.named("UserEvent", UserEvent="DialerInbound")
    chans = sorted({e.get("Channel") for e in events})
    assert len(events) == 5 == len(chans) == len({e.get("Call") for e in events})
    t0 = time.monotonic()
    await asyncio.gather(*(_send(rig, fallback_actions(ch, q.no_agents)) for ch in chans))
    reports = await c.wait(15)
    took = time.monotonic() - t0
    assert len(reports) == 5 and all(
        r.status == 200 and r.bye_from_asterisk and r.ended for r in reports
    ), reports
    await asyncio.sleep(0.3)
    assert sorted(h.get("Channel") for h in rig.rec.named("Hangup")) == chans
    assert {h.get("Cause") for h in rig.rec.named("Hangup")} == {"16"}
    _no_sip_errors(c)
    print(f"\n5 callers held, then all sent the message: ended in {took:.2f} s")


async def test_hostile_caller_ids_cannot_forge_event_headers(rig: Rig) -> None:
    """PJSIP decodes %-escapes of the From user: ``%2B44%2CQueue%3A%20evil``
    is the caller id ``+44,Queue: evil``, which a raw UserEvent would split
    into a second Queue header (verified on 22.10, the forged one won); a
    ``%0A`` would add lines to the AGI environment. The dialplan keeps + and
    digits only: the event has its four headers, the queue is the real one."""
    await rig.serve(_queue())
    hostile = {
        "%2B44%2CQueue%3A%20evil": "+44",
        "%2B4420%0Aagi_channel%3A%20x": "+4420",
        "anonymous": "",
        "+44%7C7700900123": "+447700900123",
    }
    callers = [rig.caller(caller=raw, hold_s=1.0) for raw in hostile]
    reports = await asyncio.gather(*(c.run(15) for c in callers))
    await asyncio.sleep(0.3)
    events = rig.rec.named("UserEvent", UserEvent="DialerInbound")
    assert len(events) == len(hostile) == len(rig.verdicts)
    keys = {
        "Call", "Queue", "Did", "Caller", "UserEvent", "Event", "Privilege", "Timestamp",
        "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context",
        "Exten", "Priority", "Uniqueid", "Linkedid", "content",
    }  # fmt: skip
    got = sorted(e.get("Caller") for e in events)
    assert got == sorted(hostile.values()), got
    for e in events:
        assert set(e.fields) <= keys, e.fields
        assert e.get("Queue") == "support" and e.get("Did") == DID
        assert re.fullmatch(r"\+?[0-9]*", e.get("CallerIDNum").replace("<unknown>", "")), e.fields
    for r in reports:
        assert _one(r).status == 200
    print(f"\ncaller ids as sent -> as the daemon reads them: {hostile}")


async def test_the_backstop_ends_a_forgotten_caller_with_a_prompt_loop_hold(rig: Rig) -> None:
    """Nobody acts on the caller: at DIALER_MAX_WAIT + DIALER_INBOUND_BACKSTOP
    (here 5 + 1 s; 30 s in production) the dialplan raises
    DialerInboundTimeout, plays ss-noservice and hangs up (16). The hold is
    a prompt loop (every 5 s, start to start): it played at 0 and 5 s."""
    await rig.serve(
        _queue(
            max_wait_s=5,
            hold={"prompt": "beep", "every_s": 5},
            announce_sound=None,
        )
    )
    await rig.setvar("DIALER_INBOUND_BACKSTOP", "1")
    c = rig.caller(hold_s=30)
    await c.start()
    ev = await rig.inbound_event()
    chan = ev.get("Channel")
    timeout_ev = await rig.rec.wait_for(
        lambda s: s.get("UserEvent") == "DialerInboundTimeout" and s.get("Channel") == chan, 12
    )
    h = await rig.hangup_of(chan)
    rep = _one(await c.wait(15))
    waited = _ts(timeout_ev) - _ts(ev)
    # whole seconds of ${EPOCH}: the deadline is 6 s after an event at x.y s
    assert 5.0 <= waited <= 7.0, waited
    assert timeout_ev.get("Queue") == "support" and timeout_ev.get("Call") == ev.get("Uniqueid")
    assert h.get("Cause") == "16", h.fields
    assert rep.status == 200 and rep.bye_from_asterisk and not rep.bye_from_caller, rep
    steps = await rig.executed(chan)
    beeps = [t for t, a in steps if a == "Playback(beep)"]
    assert len(beeps) == 2 and 4.8 <= beeps[1] - beeps[0] <= 5.2, beeps
    assert "Playback(ss-noservice)" in [a for _t, a in steps]
    assert not any(a.startswith("MusicOnHold") for _t, a in steps)
    _no_sip_errors(c)
    print(
        f"\nbackstop at {waited:.3f} s after DialerInbound (max wait 5 + 1); prompts "
        f"{beeps[1] - beeps[0]:.3f} s apart; caller's call {rep.duration_s:.2f} s"
    )


# ---------------------------------------------------------------- fallback


async def _held(rig: Rig, c: SippCaller) -> str:
    """Start the caller and wait until it holds; its channel."""
    await c.start()
    ev = await rig.inbound_event()
    await rig.rec.wait_for(
        lambda s: s.get("Event") == "MusicOnHoldStart" and s.get("Channel") == ev.get("Channel"),
        5,
    )
    return ev.get("Channel")


async def _send(rig: Rig, actions: list[dict[str, str]]) -> None:
    for act in actions:
        reply = await rig.rec.action(act)
        assert reply.get("Response") == "Success", (act, reply)


async def test_fallback_message_then_a_clean_hangup(rig: Rig) -> None:
    """The daemon's fallback (no agent, or the wait is over) with action
    message: its sound, then Hangup(16) from Asterisk."""
    q = _queue(no_agents={"action": "message", "sound": "vm-goodbye"})
    await rig.serve(q)
    c = rig.caller(hold_s=20)
    chan = await _held(rig, c)
    await _send(rig, fallback_actions(chan, q.no_agents))
    h = await rig.hangup_of(chan)
    rep = _one(await c.wait(10))
    assert h.get("Cause") == "16" and rep.bye_from_asterisk and not rep.bye_from_caller
    apps = [a for _t, a in await rig.executed(chan)]
    assert apps[-2:] == ["Playback(vm-goodbye)", "Hangup(16)"], apps
    _no_sip_errors(c)


def _callback_queue(timeout_s: int = 3) -> Queue:
    return _queue(
        callback_campaign="sales",
        after_max_wait={
            "action": "callback",
            "offer_sound": "vm-press",
            "offer_timeout_s": timeout_s,
            "booked_sound": "auth-thankyou",
            "sound": "vm-goodbye",
        },
    )


async def test_fallback_callback_pressed_1_is_booked(rig: Rig) -> None:
    """The callback offer; the caller presses 1 (RFC 4733 from sipp): the
    dialplan raises DialerCallback (Call, Queue, Caller), the daemon's part
    answers DIALER_ACK=ok, the booked sound plays, then the goodbye and
    Hangup(16)."""
    q = _callback_queue()
    await rig.serve(q)
    c = rig.caller(hold_s=20, keys="1", keys_after_s=2.5)
    chan = await _held(rig, c)
    await _send(rig, fallback_actions(chan, q.after_max_wait))
    cb = await rig.rec.wait_for(
        lambda s: s.get("UserEvent") == "DialerCallback" and s.get("Channel") == chan, 8
    )
    assert (cb.get("Queue"), cb.get("Caller"), cb.get("Call")) == (
        "support",
        CALLER,
        cb.get("Uniqueid"),
    )
    await rig.setvar("DIALER_ACK", "ok", channel=chan)
    h = await rig.hangup_of(chan)
    rep = _one(await c.wait(10))
    assert rep.pressed and rep.bye_from_asterisk and h.get("Cause") == "16", rep
    apps = [a for _t, a in await rig.executed(chan)]
    assert apps[-3:] == ["Playback(auth-thankyou)", "Playback(vm-goodbye)", "Hangup(16)"], apps
    assert any(a.startswith("Read(DIALER_FB_KEY,vm-press,1,,1,3)") for a in apps), apps
    _no_sip_errors(c)


async def test_fallback_callback_without_a_key_says_goodbye(rig: Rig) -> None:
    """No key within DIALER_FB_TIMEOUT: no DialerCallback, no booked sound,
    the goodbye, Hangup(16)."""
    q = _callback_queue(timeout_s=2)
    await rig.serve(q)
    c = rig.caller(hold_s=20)
    chan = await _held(rig, c)
    t0 = time.monotonic()
    await _send(rig, fallback_actions(chan, q.after_max_wait))
    h = await rig.hangup_of(chan)
    took = time.monotonic() - t0
    rep = _one(await c.wait(10))
    assert h.get("Cause") == "16" and rep.bye_from_asterisk and not rep.pressed
    assert not rig.rec.named("UserEvent", UserEvent="DialerCallback")
    apps = [a for _t, a in await rig.executed(chan)]
    assert "Playback(auth-thankyou)" not in apps
    assert apps[-2:] == ["Playback(vm-goodbye)", "Hangup(16)"], apps
    assert took >= 2.0, took  # the offer's timeout was waited
    _no_sip_errors(c)
    print(f"\nno key: offer, {q.after_max_wait.offer_timeout_s} s wait, goodbye in {took:.2f} s")


async def test_fallback_callback_pressed_with_the_daemon_silent_still_ends_cleanly(
    rig: Rig,
) -> None:
    """1 pressed but no DIALER_ACK within 3 s (the daemon died between the
    offer and the key): no booked sound, the goodbye, Hangup(16)."""
    q = _callback_queue()
    await rig.serve(q)
    c = rig.caller(hold_s=20, keys="1", keys_after_s=2.5)
    chan = await _held(rig, c)
    await _send(rig, fallback_actions(chan, q.after_max_wait))
    cb = await rig.rec.wait_for(
        lambda s: s.get("UserEvent") == "DialerCallback" and s.get("Channel") == chan, 8
    )
    h = await rig.hangup_of(chan)
    rep = _one(await c.wait(10))
    assert h.get("Cause") == "16" and rep.pressed and rep.bye_from_asterisk
    steps = await rig.executed(chan)
    apps = [a for _t, a in steps]
    assert "Playback(auth-thankyou)" not in apps and apps[-2:] == [
        "Playback(vm-goodbye)",
        "Hangup(16)",
    ]
    goodbye_at = next(t for t, a in steps if a == "Playback(vm-goodbye)")
    assert 2.8 <= goodbye_at - _ts(cb) <= 3.8, goodbye_at - _ts(cb)
    _no_sip_errors(c)


async def test_the_carrier_and_the_agents_phones_are_told_apart(rig: Rig) -> None:
    """PJSIP identifies by source address first. With the carrier on
    127.0.0.2 (identify/match of trunk-out), an agent phone on 127.0.0.1
    still registers as itself (digest auth, its own endpoint), the carrier's
    INVITE is trunk-out's (it reaches [dialer-inbound]), and the same INVITE
    from 127.0.0.1 is nobody's: challenged, no channel, no AGI."""
    sipp = need_sipp()
    await rig.serve(_queue())
    await run_sipp(sipp, rig.sb, "agent_register.xml", rig.tmp, 20, {}, agent="7001")
    contacts = rig.sb.cli("pjsip show contacts")
    assert re.search(r"7001/sip:7001@127\.0\.0\.1:\d+", contacts), contacts
    assert "trunk-out" in rig.sb.cli("pjsip show identifies")
    carrier = rig.caller(hold_s=0.5)
    stranger = rig.caller(host="127.0.0.1", hold_s=0.5)
    got = await asyncio.gather(carrier.run(15), stranger.run(15))
    assert _one(got[0]).status == 200
    assert _one(got[1]).status in (401, 403), got[1]
    (ev,) = rig.rec.named("UserEvent", UserEvent="DialerInbound")
    assert (
        ev.get("Channel").startswith("PJSIP/trunk-out-") and ev.get("Context") == "dialer-inbound"
    )
    assert len(rig.verdicts) == 1 and len(rig.rec.named("Hangup")) == 1
    _no_sip_errors(carrier)
