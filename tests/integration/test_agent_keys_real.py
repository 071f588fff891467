"""The agent's keys on the real Asterisk sandbox, through the production
menu and dialplan: each key is a DTMF press on the agent's channel (AMI
PlayDTMF with Receive, as if from the phone), the ConfBridge menu runs
[dialer-keys], the daemon answers, the dialplan plays the answer.

Preview (offer on MQTT, skip, accept, connect with tone and screen pop),
disposition, pause with a reason, manual dial from pause (and a refused
one to a do-not-call number). Agent 2901 (no clash with other tests).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from dialerd.agents import hash_pin
from dialerd.daemon import Daemon
from dialerd.sandbox.recorder import AmiRecorder
from dialerd.sandbox.scenario import (
    ANSWER,
    read_attempts,
    running,
    sim_campaign,
    sim_number,
    write_config,
)
from dialerd.sandbox.wait import until
from dialerd.settings import load_settings
from dialerd.store import store_session

pytestmark = pytest.mark.asterisk
AGENT = "2901"


async def _press(rec: AmiRecorder, channel: str, keys: str) -> None:
    """Keys as the phone would send them (Receive: the channel hears them)."""
    for k in keys:
        resp = await rec.action(
            {
                "Action": "PlayDTMF",
                "Channel": channel,
                "Digit": k,
                "Duration": "80",
                "Receive": "true",
                "Async": "false",
            }
        )
        assert resp.get("Response") == "Success", resp
        await asyncio.sleep(0.15)


async def _pop(sub: aiomqtt.Client, kind: str, timeout: float = 10) -> dict[str, Any]:
    async def first() -> dict[str, Any]:
        async for msg in sub.messages:
            if msg.topic.matches(f"dd/agent/{AGENT}/screenpop"):
                data: dict[str, Any] = json.loads(msg.payload)
                if data["kind"] == kind:
                    return data
        raise AssertionError("subscription ended")

    return await asyncio.wait_for(first(), timeout)


async def test_preview_disposition_pause_and_manual_dial_by_keys(
    asterisk_sandbox: Any, mqtt_broker: Any, tmp_path: Path
) -> None:
    sb, b = asterisk_sandbox, mqtt_broker
    first, second = sim_number(2900, ANSWER, 1, 3), sim_number(2901, ANSWER, 1, 3)
    by_hand = sim_number(2902, ANSWER, 1, 3)  # not a lead: the agent keys it
    blocked = sim_number(2903, ANSWER, 1, 3)
    body = sim_campaign([AGENT], dial_mode="preview", wrap_up_s=60)
    cfg = write_config(
        tmp_path,
        sb.ami_user,
        {"prev": body},
        mqtt={"enabled": True, "host": b.host, "port": b.port, "topic_prefix": "dd"},
    )
    settings = load_settings(cfg)
    async with store_session(settings) as st:
        await st.ensure_campaign("prev")
        rows = [(first, 0, None, '{"name": "First"}'), (second, 0, None, '{"name": "Second"}')]
        await st.insert_leads("prev", rows, time.time() - 10)
        await st.dnc_add([blocked], None, "test", time.time())

    h = sb.harness_user
    rec = await AmiRecorder.connect(h)
    daemon = Daemon(settings)

    async def attempts() -> list[Any]:
        return await read_attempts(settings, "prev")

    async def actions() -> list[Any]:
        async with store_session(settings) as s:
            return await s.agent_actions(AGENT)

    def state() -> str:
        return daemon.core.agents[AGENT].status.value

    async with running(daemon):
        async with aiomqtt.Client(b.host, b.port, identifier="desk") as desk:
            await desk.subscribe(f"dd/agent/{AGENT}/screenpop")
            await asyncio.wait_for(daemon.started.wait(), 20)
            rec._manager.send_action(
                {
                    "Action": "Originate",
                    "Channel": f"Local/{AGENT}@sim-agents",
                    "Application": "Wait",
                    "Data": "600",
                    "Async": "true",
                }
            )
            join = await rec.wait_for(
                lambda s: (
                    s.get("Event") == "ConfbridgeJoin" and s.get("Conference") == f"agent-{AGENT}"
                ),
                15,
            )
            ch = join.get("Channel")

            # preview: an offer on the agent's screen, nothing dialed
            offer = await _pop(desk, "offer")
            assert offer["phone"] == first and offer["fields"] == {"name": "First"}
            await asyncio.sleep(1.5)
            assert await attempts() == [], "preview dials nothing before the agent accepts"
            # '**#' skips it: the next lead is offered
            await _press(rec, ch, "**#")
            offer2 = await _pop(desk, "offer")
            assert offer2["phone"] == second
            await asyncio.sleep(2.0)  # the confirmation and the offer tone play
            # '*#' accepts: dialed for this agent, connected with a screen pop
            await _press(rec, ch, "*#")
            pop = await _pop(desk, "connect", 15)
            assert pop["phone"] == second and pop["attempt_id"]
            done = await until(lambda: _ended(attempts, second), 20, "the accepted call to end")
            assert done.outcome == "answered" and done.agent_id == AGENT
            assert done.id == pop["attempt_id"]
            assert state() == "wrap"
            # '*1' in wrap-up: sale, and the agent is ready again
            await asyncio.sleep(1.0)
            await _press(rec, ch, "*1")
            await until(lambda: _disposed(attempts, second), 10, "the disposition")
            # '**2': pause for lunch (offers stop, the pending one goes back)
            await asyncio.sleep(3.0)  # the 2 s for call-back minutes, the prompt
            await _press(rec, ch, "**2")
            await until(lambda: _is(state, "paused"), 10, "the pause")
            assert daemon.core.agents[AGENT].pause_reason == "lunch"
            # '***' + number + '#' from pause: a manual call, back to pause after
            national = "0" + by_hand[3:]
            await asyncio.sleep(2.0)
            await _press(rec, ch, "***" + national + "#")
            manual = await until(lambda: _ended(attempts, by_hand), 25, "the manual call")
            assert manual.outcome == "answered" and manual.agent_id == AGENT
            await asyncio.sleep(1.0)
            await _press(rec, ch, "*#")  # end the wrap-up: the pause resumes
            await until(lambda: _is(state, "paused"), 10, "back to the pause")
            # a do-not-call number keyed by hand is refused, never dialed
            await asyncio.sleep(1.5)
            await _press(rec, ch, "***" + "0" + blocked[3:] + "#")
            await until(lambda: _action(actions, "dial", blocked, ok=False), 10, "the refusal")
            assert not [a for a in await attempts() if a.phone == blocked]
    rec.close()

    acts = [(a[2], a[4]) for a in await actions()]
    for want in [("skip", True), ("ready", True), ("disposition 1", True), ("pause", True),
                 ("dial", True), ("dial", False)]:  # fmt: skip
        assert want in acts, (want, acts)
    async with store_session(settings) as s:
        skips = await s.lead_skips("prev")
        leads = {x.phone: x for x in await s.list_leads("prev")}
    assert any(r[2] == "preview_skipped" for r in skips), skips
    assert leads[by_hand].fields == {"source": "manual"}
    # what the agent heard: the offer tone, the connect tone, confirmations
    log = sb.log_path.read_text(errors="replace")
    heard = [
        ln for ln in log.splitlines() if f"<Local/{AGENT}@sim-agents" in ln and "Playing" in ln
    ]
    for prompt in ("beep", "auth-thankyou", "dictate/paused", "calling", "cannot-complete"):
        assert any(f"'{prompt}" in ln for ln in heard), (prompt, heard[-10:])


async def _ended(attempts: Any, phone: str) -> Any:
    for a in await attempts():
        if a.phone == phone and a.state == "done":
            return a
    return None


async def _disposed(attempts: Any, phone: str) -> bool:
    return any(a.phone == phone and a.disposition == "sale" for a in await attempts())


async def _is(state: Any, want: str) -> bool:
    return bool(state() == want)


async def _action(actions: Any, action: str, phone: str, ok: bool) -> bool:
    return any(a[2] == action and phone in a[3] and a[4] is ok for a in await actions())


async def test_login_asking_for_the_agent_id_then_logout_by_key(
    asterisk_sandbox: Any, tmp_path: Path
) -> None:
    """Dialing plain ``8``: the id is asked for, then the PIN (both by the
    daemon over FastAGI); ``**0`` logs out (the channel leaves the room).
    Agent 2950."""
    sb = asterisk_sandbox
    agents = tmp_path / "agents.yaml"
    agents.write_text('agents:\n  "2950": {name: Eve}\n')
    cfg = write_config(
        tmp_path,
        sb.ami_user,
        {"plain8": sim_campaign(["2950"])},
        agents_file=str(agents),
        agi={"port": 0},
    )
    settings = load_settings(cfg)
    async with store_session(settings) as s:
        await s.set_pin_hash("2950", hash_pin("135790"), time.time())
    h = sb.harness_user
    rec = await AmiRecorder.connect(h)
    daemon = Daemon(settings)
    async with running(daemon, started_s=20):
        rec._manager.send_action(
            {
                "Action": "Originate",
                "Channel": "Local/8@dialer-agents",
                "Application": "Wait",
                "Data": "120",
                "Async": "true",
            }
        )
        new = await rec.wait_for(
            lambda s: (
                s.get("Event") == "Newchannel"
                and s.get("Channel").startswith("Local/8@dialer-agents-")
                and s.get("Channel").endswith(";2")
            ),
            10,
        )
        ch = new.get("Channel")
        await asyncio.sleep(1.0)  # Answer, then the agent-user prompt starts
        await _press(rec, ch, "2950#")
        await asyncio.sleep(0.8)  # the PIN prompt starts
        await _press(rec, ch, "135790#")
        await rec.wait_for(
            lambda s: s.get("Event") == "ConfbridgeJoin" and s.get("Conference") == "agent-2950",
            10,
        )

        async def known() -> bool:
            return "2950" in daemon.core.agents

        async def gone() -> bool:
            return "2950" not in daemon.core.agents

        await until(known, 5, "the agent known to the core")
        await asyncio.sleep(1.5)  # agent-loginok played before the room; settle
        await _press(rec, ch, "**0")
        await rec.wait_for(
            lambda s: s.get("Event") == "ConfbridgeLeave" and s.get("Conference") == "agent-2950",
            10,
        )
        await until(gone, 5, "the logout")
    rec.close()
    async with store_session(settings) as s:
        acts = [(a[2], a[3], a[4]) for a in await s.agent_actions("2950")]
    assert ("login", "ok", True) in acts and ("logout", "", True) in acts, acts
