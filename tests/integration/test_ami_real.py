"""dialerd.asterisk.ami.AmiClient against a REAL Asterisk 22.

The fault-injection side (drops, garbage, half-open sockets) is in
tests/unit/test_ami_faults.py; here Asterisk itself answers: its login
refusal, its acceptance of the exact Originate the mapping builds, its refusal
of a duplicate ChannelId, and a real restart under a live client.

Tests that upset Asterisk (a refused duplicate ChannelId leaves it unable to
``core stop now``; a restart) run on their OWN sandbox, not the shared one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dialerd.asterisk import mapping
from dialerd.asterisk.ami import AmiAuthError, AmiClient, AmiConnectionLost
from dialerd.core.commands import Hangup, PlaceCall
from dialerd.sandbox.asterisk import AmiCredentials, AsteriskSandbox
from dialerd.sandbox.recorder import AmiRecorder, Seen, Watch
from dialerd.sandbox.wait import until

pytestmark = pytest.mark.asterisk

#: last four digits O R T T: answer after 1 s, talk 300 s
LONG_TALK = "442070001100"
#: ring until the Originate's own Timeout
RING_FOREVER = "442070009000"


def client_for(cred: AmiCredentials, watch: Watch, secret: str | None = None) -> AmiClient:
    return AmiClient(
        cred.host,
        cred.port,
        cred.username,
        cred.secret if secret is None else secret,
        on_event=watch.on_event,
        on_up=watch.on_up,
        on_down=watch.on_down,
        action_timeout_s=5.0,
        connect_timeout_s=5.0,
        ping_interval_s=60.0,
        backoff_max_s=1.0,
    )


def call(number: str, attempt: str, ring_timeout_s: float = 20.0) -> PlaceCall:
    return PlaceCall(
        attempt_id=attempt,
        campaign="ami-real",
        lead_id=1,
        phone="+" + number,
        channel=f"Local/{number}@sim-customers",
        caller_id='"Dialer" <442070000000>',
        ring_timeout_s=ring_timeout_s,
        variables={
            "DIALER_ATTEMPT": attempt,
            "DIALER_CAMPAIGN": "ami-real",
            "DIALER_SAFE_HARBOR": "vm-goodbye",
        },
    )


def new_attempt() -> str:
    return "att-" + uuid.uuid4().hex[:16]


@pytest.fixture
async def recorder_factory() -> AsyncIterator[Any]:
    made: list[AmiRecorder] = []

    async def make(sb: AsteriskSandbox) -> AmiRecorder:
        h = sb.harness_user
        rec = await AmiRecorder.connect(h)
        made.append(rec)
        return rec

    yield make
    for rec in made:
        rec.close()


# ------------------------------------------------------------------- login


async def test_wrong_secret_is_a_clear_auth_error(asterisk_sandbox: AsteriskSandbox) -> None:
    cred = asterisk_sandbox.ami_user
    wrong = "wrong-" + uuid.uuid4().hex
    watch = Watch()
    client = client_for(cred, watch, secret=wrong)
    t0 = time.monotonic()
    with pytest.raises(AmiAuthError) as info:
        await client.start()
    elapsed = time.monotonic() - t0
    msg = str(info.value)
    print(f"\nAmiAuthError after {elapsed * 1000:.0f} ms: {msg}")
    assert cred.username in msg and str(cred.port) in msg
    assert wrong not in msg and cred.secret not in msg
    assert "secret" in msg.lower()  # says what to check
    assert not client.connected and watch.ups == 0
    assert client._supervisor is None  # no background reconnect loop
    await client.close()


async def test_right_credentials_connect_and_originate_is_accepted(
    asterisk_sandbox: AsteriskSandbox,
) -> None:
    watch = Watch()
    client = client_for(asterisk_sandbox.ami_user, watch)
    await client.start()
    try:
        assert client.connected and watch.ups == 1
        pong = await client.action({"Action": "Ping"})
        assert pong["Response"] == "Success"

        attempt = new_attempt()
        action = mapping.originate_action(call(LONG_TALK, attempt))
        t0 = time.monotonic()
        resp = await client.wait_future(client.send(action), 15.0)
        print(f"\nOriginate answered after {time.monotonic() - t0:.2f} s")
        # the mapping's frame, unchanged, is what Asterisk accepted
        assert mapping.originate_result(resp) == (True, 4, "")
        ack, final = resp
        assert ack["Message"] == "Originate successfully queued"
        assert final["Uniqueid"] == attempt  # ChannelId took effect
        # the dialplan saw the variables: DialerAnswered carries the attempt
        await until(
            lambda: any(
                e.get("UserEvent") == "DialerAnswered" and e.get("Attempt") == attempt
                for e in watch.events
            ),
            5.0,
            "DialerAnswered of the attempt",
            interval=0.02,
        )
        hup = await client.action(mapping.hangup_action(Hangup(attempt, final["Channel"])))
        assert hup["Response"] == "Success"
        await until(
            lambda: any(
                e.get("Event") == "Hangup" and e.get("Uniqueid") == attempt for e in watch.events
            ),
            5.0,
            "the Hangup of the attempt",
            interval=0.02,
        )
    finally:
        await client.close()


# ------------------------------------------------------ duplicate ChannelId


async def test_duplicate_channel_id_is_refused_by_asterisk(
    own_sandbox: AsteriskSandbox, recorder_factory: Any
) -> None:
    rec: AmiRecorder = await recorder_factory(own_sandbox)
    watch = Watch()
    client = client_for(own_sandbox.ami_user, watch)
    await client.start()
    try:
        attempt = new_attempt()
        # ringing for up to 30 s: the ChannelId stays in use the whole time
        first = client.send(mapping.originate_action(call(RING_FOREVER, attempt, 30.0)))
        newch = await rec.wait_for(
            lambda s: s.get("Event") == "Newchannel" and s.get("Uniqueid") == attempt, 5.0
        )
        second = await client.wait_future(
            client.send(mapping.originate_action(call(RING_FOREVER, attempt, 30.0))), 10.0
        )
        ok, reason, detail = mapping.originate_result(second)
        print(f"\nduplicate ChannelId: ok={ok} reason={reason} detail={detail!r} raw={second!r}")
        assert not ok
        assert not first.done()  # the first call is still ringing, untouched
        # exactly one channel ever carried that id: the customer rang once
        assert len(rec.named("Newchannel", Uniqueid=attempt)) == 1

        await client.action(mapping.hangup_action(Hangup(attempt, newch.get("Channel"))))
        ok1, reason1, _ = mapping.originate_result(await client.wait_future(first, 5.0))
        assert not ok1 and reason1 is not None
    finally:
        await client.close()


# ------------------------------------------------------------------ restart


def originate_responses(rec: AmiRecorder, attempt: str) -> list[Seen]:
    return rec.named("OriginateResponse", Uniqueid=attempt)


def crash_and_start(sb: AsteriskSandbox) -> None:
    """Asterisk dies at once (SIGKILL of our own pid: no Shutdown event, no
    hang-ups sent), then comes back on the same port and secrets."""
    assert sb.proc is not None
    sb.proc.kill()
    sb.proc.wait(5)
    sb.start()


@pytest.mark.parametrize("how", ["restart", "crash"])
async def test_restart_reconnects_and_never_resends_originate(
    own_sandbox: AsteriskSandbox, recorder_factory: Any, how: str
) -> None:
    rec: AmiRecorder = await recorder_factory(own_sandbox)
    watch = Watch()
    client = client_for(own_sandbox.ami_user, watch)
    await client.start()
    try:
        lost = new_attempt()
        fut = client.send(mapping.originate_action(call(RING_FOREVER, lost, 30.0)))
        await rec.wait_for(
            lambda s: s.get("Event") == "Newchannel" and s.get("Uniqueid") == lost, 5.0
        )
        t_restart = time.time()
        bounce = own_sandbox.restart if how == "restart" else lambda: crash_and_start(own_sandbox)
        restart = asyncio.create_task(asyncio.to_thread(bounce))
        # the outstanding Originate never hangs: on a clean `core stop now`
        # Asterisk may still hang the ringing channel up and report it
        # (OriginateResponse Failure) before closing; on a crash the socket
        # just dies and the future fails with AmiConnectionLost
        try:
            result = await client.wait_future(fut, 10.0)
        except AmiConnectionLost:
            outcome = "AmiConnectionLost"
        else:
            ok, reason, _ = mapping.originate_result(result)
            assert not ok
            outcome = f"OriginateResponse Reason {reason}"
            assert how == "restart"
        await restart
        # the client comes back by itself (backoff <= 1 s)
        await until(
            lambda: watch.ups == 2 and client.connected, 10.0, "the client back", interval=0.02
        )
        t_back = time.time()
        print(
            f"\n{how}: in-flight Originate -> {outcome}; client back after "
            f"{t_back - t_restart:.2f} s"
        )
        assert watch.downs == ["AMI connection lost"]
        # the independent listener is back too (panoramisk retries every 2 s)
        await rec.wait_for(lambda s: s.get("Event") == "FullyBooted" and s.at > t_restart, 10.0)

        # control: a fresh call after the restart is seen by the listener
        fresh = new_attempt()
        resp = await client.wait_future(
            client.send(mapping.originate_action(call(LONG_TALK, fresh))), 15.0
        )
        assert mapping.originate_result(resp)[0]
        await rec.wait_for(
            lambda s: s.get("Event") == "OriginateResponse" and s.get("Uniqueid") == fresh, 5.0
        )
        await client.action(mapping.hangup_action(Hangup(fresh, resp[1]["Channel"])))
        # a re-sent Originate of `lost` would have made a channel with that id
        # on the new Asterisk (within ms, long before the fresh call's 1 s ring)
        assert len(rec.named("Newchannel", Uniqueid=lost)) == 1
        assert [s for s in rec.named("Newchannel", Uniqueid=lost) if s.at > t_restart] == []
        assert [s for s in originate_responses(rec, lost) if s.at > t_back] == []
        assert len(originate_responses(rec, lost)) <= 1
        assert len(originate_responses(rec, fresh)) == 1
    finally:
        await client.close()
