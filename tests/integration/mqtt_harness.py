"""The real MQTT bridge and the real supervisor handler against a real
Mosquitto, seen by a supervisor's client: for the hostile-command tests and
the fuzz test. No Asterisk: the supervisor sits on a bare shell whose core
knows campaign ``c1`` and has agent ``1001`` logged in."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

from dialerd.campaign.model import Campaign
from dialerd.core import events as ev
from dialerd.daemon.shell import Shell
from dialerd.daemon.supervisor import Supervisor
from dialerd.mqtt.bridge import MqttBridge
from dialerd.settings import MqttSettings, Settings

PREFIX = "dd"


def make_supervisor() -> Supervisor:
    settings = Settings.model_validate({"ami": {"username": "dialerd", "secret": "x"}})
    shell = Shell(settings, clock=lambda: 100.0)
    camp = Campaign.model_validate(
        {
            "name": "c1",
            "trunk": "Local/{number}@sim-customers",
            "caller_id": {"name": "Acme", "number": "+442071234567"},
            "agents": ["1001", "1002"],
            "safe_harbor_sound": "custom/safe",
            "max_lines": 10,
        }
    )
    shell.core.handle(ev.CampaignLoaded(100.0, camp))
    shell.core.handle(ev.AmiUp(100.0))
    shell.core.handle(ev.AgentJoined(100.0, "1001", "Local/1001@a;2", "u-1001"))
    return Supervisor(shell)


@dataclass
class Msg:
    topic: str
    payload: bytes

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass
class World:
    sup: Supervisor
    bridge: MqttBridge
    client: aiomqtt.Client
    inbox: asyncio.Queue[Msg] = field(default_factory=asyncio.Queue)
    seen: list[Msg] = field(default_factory=list)
    pings: int = 0

    async def send(self, payload: bytes | str, qos: int = 1) -> None:
        await self.client.publish(f"{PREFIX}/cmd", payload, qos=qos)

    async def next(self, pred: Callable[[Msg], bool], timeout: float = 5.0) -> Msg:
        """The next message ``pred`` accepts (the others are kept in ``seen``)."""

        async def first() -> Msg:
            while True:
                m = await self.inbox.get()
                if pred(m):
                    return m

        return await asyncio.wait_for(first(), timeout)

    async def ping(self, timeout: float = 5.0) -> list[Msg]:
        """A valid command, answered: proof the bridge still works and has
        handled everything sent before it. Returns the messages received
        before its reply."""
        self.pings += 1
        rid = f"ping-{self.pings}"
        before = len(self.seen)
        cmd = {"command": "resume", "campaign": "c1", "reply_to": f"{PREFIX}/reply/sup"}
        await self.send(json.dumps({**cmd, "request_id": rid}))
        try:
            reply = await self.next(
                lambda m: m.topic == f"{PREFIX}/reply/sup" and m.json().get("request_id") == rid,
                timeout,
            )
        except TimeoutError:
            raise AssertionError("the bridge no longer answers a valid command") from None
        assert reply.json() == {
            "ok": True,
            "command": "resume",
            "campaign": "c1",
            "request_id": rid,
        }
        idx = self.seen.index(reply)
        return self.seen[before:idx]

    async def state_goes_out(self, timeout: float = 5.0) -> None:
        """A changed campaign state is published (and received)."""
        paused = not self.sup.shell.core.campaigns["c1"].paused
        self.sup.shell.core.handle(ev.CampaignPause(101.0, "c1", paused, "t"))
        self.sup.publish_state()
        try:
            await self.next(
                lambda m: m.topic == f"{PREFIX}/campaign/c1/state" and m.json()["paused"] is paused,
                timeout,
            )
        except TimeoutError:
            raise AssertionError("the bridge no longer publishes state") from None


@contextlib.asynccontextmanager
async def bridge_world(broker: Any) -> AsyncIterator[World]:
    sup = make_supervisor()
    bridge = MqttBridge(
        MqttSettings(enabled=True, host=broker.host, port=broker.port, topic_prefix=PREFIX),
        sup.command,
        client_id="dialerd-under-test",
    )
    sup.shell.mqtt = bridge
    bridge.start()
    try:
        await asyncio.wait_for(bridge.connected.wait(), 10)
        async with aiomqtt.Client(broker.host, broker.port, identifier="supervisor") as client:
            world = World(sup, bridge, client)
            for topic in ("reply/#", "agent/#", "status", "campaign/+/state"):
                await client.subscribe(f"{PREFIX}/{topic}", qos=1)

            async def collect() -> None:
                async for m in client.messages:
                    p = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
                    msg = Msg(str(m.topic), p)
                    world.seen.append(msg)
                    world.inbox.put_nowait(msg)

            collector = asyncio.create_task(collect())
            try:
                yield world
            finally:
                collector.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await collector
    finally:
        await bridge.stop()
