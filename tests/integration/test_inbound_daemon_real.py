"""Inbound callers through a real Asterisk and a real daemon, checked
against what Asterisk itself reported (an independent AMI listener) and
the store.

These tests reach the daemon with the sandbox-only ``[sim-inbound]``
caller (extensions_sim.conf, a Local channel), which raises the production
``DialerInbound`` UserEvent and holds: quick to start many of, no SIP. The
real SIP caller through the carrier trunk, the callback key included, is
``test_blended_real`` and ``test_inbound_dialplan``.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from dialerd.daemon import Daemon
from dialerd.sandbox.asterisk import AsteriskSandbox
from dialerd.sandbox.recorder import AmiRecorder, Seen
from dialerd.sandbox.scenario import (
    ANSWER,
    login_agents,
    running,
    seed_campaign,
    sim_campaign,
    sim_number,
)
from dialerd.sandbox.wait import until
from dialerd.settings import Settings
from dialerd.store import store_session
from dialerd.store.api import StoredInbound

pytestmark = pytest.mark.asterisk

DID = "+442071230001"


def queue_file(workdir: Path, campaign: str, **over: Any) -> Path:
    body: dict[str, Any] = {
        "name": "support",
        "dids": [DID],
        "campaigns": [campaign],
        "service_level": {"percent": 80, "within_s": 20},
        "max_wait_s": 90,
        "after_max_wait": {"action": "message", "sound": "vm-goodbye"},
        "no_agents": {"action": "message", "sound": "vm-goodbye"},
        "hold": {"music": "default"},
    }
    body.update(over)
    qdir = workdir / "queues"
    qdir.mkdir(exist_ok=True)
    path = qdir / "support.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return qdir


def call_in(rec: AmiRecorder, caller_digits: str) -> str:
    """A caller to DID (queue ``support``); returns its Uniqueid."""
    uid = f"inb-{secrets.token_hex(4)}"
    rec._manager.send_action(
        {
            "Action": "Originate",
            "Channel": "Local/hold@sim-inbound-far",
            "Context": "sim-inbound",
            "Exten": caller_digits,
            "Priority": "1",
            "ChannelId": uid,
            "Variable": ["SIM_QUEUE=support", f"SIM_DID={DID}"],
            "Async": "true",
        }
    )
    return uid


async def inbound_rows(settings: Settings) -> list[StoredInbound]:
    async with store_session(settings) as store:
        return await store.inbound_calls()


async def wait_row(settings: Settings, uid: str, timeout: float = 15.0) -> StoredInbound:
    found: list[StoredInbound] = []

    async def written() -> bool:
        found[:] = [r for r in await inbound_rows(settings) if r.call_id == uid]
        return bool(found)

    await until(written, timeout, lambda: f"the inbound_calls row of {uid}", interval=0.3)
    return found[0]


def joined(uid: str) -> Any:
    def pred(s: Seen) -> bool:
        return s.get("Event") == "ConfbridgeJoin" and s.get("Uniqueid") == uid

    return pred


async def test_a_caller_reaches_an_agent_while_the_campaign_dials_outbound(
    asterisk_sandbox: AsteriskSandbox, tmp_path: Path
) -> None:
    sb = asterisk_sandbox
    agents = ["3101", "3102"]
    # short answered calls, so agents are busy with outbound calls and free often
    numbers = [sim_number(900 + i, ANSWER, 0, 3) for i in range(40)]
    settings = await seed_campaign(
        tmp_path,
        sb.ami_user,
        {"blend": sim_campaign(agents, dial_mode="progressive", wrap_up_s=0.5)},
        {"blend": numbers},
        queues_dir=str(queue_file(tmp_path, "blend")),
        agi={"port": 0},
    )
    rec = await AmiRecorder.connect(sb.harness_user)
    try:
        await login_agents(rec, agents)
        daemon = Daemon(settings)
        async with running(daemon, started_s=30):
            # outbound first: the campaign is dialing when the caller comes
            await rec.wait_for(
                lambda s: (
                    s.get("Event") == "OriginateResponse"
                    and s.get("Uniqueid").startswith(daemon.run_id)
                ),
                20,
            )
            uid = call_in(rec, "442079460123")
            join = await rec.wait_for(joined(uid), 30)
            room = join.get("Conference")
            assert room in {f"agent-{a}" for a in agents}
            # the caller talks a moment, then hangs up
            await asyncio.sleep(1.0)
            await rec.action({"Action": "Hangup", "Channel": join.get("Channel")})
            row = await wait_row(settings, uid)
            # dialing went on around the caller
            await until(
                lambda: len(rec.named("OriginateResponse")) >= 3,
                20,
                "three outbound calls",
                interval=0.3,
            )
    finally:
        rec.close()
    assert row.outcome == "answered" and row.queue == "support" and row.did == DID
    assert row.caller == "+442079460123"
    assert row.agent_id == room.removeprefix("agent-")
    assert row.sl_within_s == 20 and row.answered_at is not None
    assert 0 <= row.wait_s < 30
    # the caller's announcement came from Asterisk with its own Uniqueid
    (ann,) = [s for s in rec.named("UserEvent") if s.get("UserEvent") == "DialerInbound"
              and s.get("Call") == uid]  # fmt: skip
    assert ann.get("Queue") == "support"
    # and it was in the room once, never counted as an agent login
    assert len([s for s in rec.named("ConfbridgeJoin") if s.get("Uniqueid") == uid]) == 1
    async with store_session(settings) as store:
        attempts = await store.list_attempts("blend")
    assert attempts, "the campaign placed no outbound call"


async def test_a_caller_to_a_queue_with_no_agent_logged_in_gets_the_message_and_is_recorded(
    own_sandbox: AsteriskSandbox, tmp_path: Path
) -> None:
    sb = own_sandbox
    settings = await seed_campaign(
        tmp_path,
        sb.ami_user,
        {"blend": sim_campaign(["3201"])},
        queues_dir=str(queue_file(tmp_path, "blend")),
        agi={"port": 0},
    )
    rec = await AmiRecorder.connect(sb.harness_user)
    try:
        daemon = Daemon(settings)
        async with running(daemon, started_s=30):
            await until(lambda: "support" in daemon.core.queues, 10, "the queue loaded")
            uid = call_in(rec, "442079460124")
            hup = await rec.wait_for(
                lambda s: s.get("Event") == "Hangup" and s.get("Uniqueid") == uid, 30
            )
            row = await wait_row(settings, uid)
    finally:
        rec.close()
    assert hup.get("Cause") == "16"
    assert (row.outcome, row.fallback, row.agent_id, row.answered_at) == (
        "fallback",
        "no_agents",
        None,
        None,
    )
    assert row.caller == "+442079460124" and row.sl_within_s == 20
    # never in a room
    assert not [s for s in rec.named("ConfbridgeJoin") if s.get("Uniqueid") == uid]
