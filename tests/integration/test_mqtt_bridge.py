"""The MQTT bridge against a real Mosquitto (private instance, free port)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiomqtt

from dialerd.mqtt.bridge import MqttBridge
from dialerd.settings import MqttSettings


async def _get(client: aiomqtt.Client, topic: str, timeout: float = 5.0) -> Any:
    async def first() -> Any:
        async for msg in client.messages:
            if msg.topic.matches(topic):
                return (
                    json.loads(msg.payload)
                    if msg.payload not in (b"online", b"offline")
                    else msg.payload
                )
        return None

    return await asyncio.wait_for(first(), timeout)


async def test_retained_state_commands_and_broker_restart(mqtt_broker: Any) -> None:
    b = mqtt_broker
    commands: list[dict[str, Any]] = []

    def on_command(cmd: dict[str, Any]) -> dict[str, Any]:
        commands.append(cmd)
        return {"ok": True, "did": cmd["command"]}

    bridge = MqttBridge(
        MqttSettings(enabled=True, host=b.host, port=b.port, topic_prefix="t"), on_command
    )
    bridge.publish("campaign/c1/state", {"dials": 1}, retain=True)  # before any broker link
    bridge.start()
    await asyncio.wait_for(bridge.connected.wait(), 10)

    async with aiomqtt.Client(b.host, b.port, identifier="sup") as sup:
        await sup.subscribe("t/campaign/+/state")
        assert await _get(sup, "t/campaign/c1/state") == {"dials": 1}
        # a supervisor command gets a reply on its reply_to topic
        await sup.subscribe("t/reply/sup")
        await sup.publish(
            "t/cmd",
            json.dumps(
                {
                    "command": "pause",
                    "campaign": "c1",
                    "reply_to": "t/reply/sup",
                    "request_id": "r1",
                }
            ),
        )
        reply = await _get(sup, "t/reply/sup")
        assert reply == {"ok": True, "did": "pause", "request_id": "r1"}
        assert commands[0]["campaign"] == "c1"
        # a garbled command is answered with an error, not a crash
        await sup.publish("t/cmd", b"{not json", qos=1)
        await sup.subscribe("t/reply")
        err = await _get(sup, "t/reply")
        assert err["ok"] is False

    # the broker goes away: publishing never blocks or raises meanwhile
    b.stop()
    for i in range(100):
        bridge.publish("events", {"n": i})
    bridge.publish("campaign/c1/state", {"dials": 2}, retain=True)
    await asyncio.sleep(0.5)
    assert not bridge.connected.is_set()
    b.start()  # same port; no persistence: retained state is gone with it
    await asyncio.wait_for(bridge.connected.wait(), 20)
    async with aiomqtt.Client(b.host, b.port, identifier="sup2") as sup:
        await sup.subscribe("t/campaign/+/state")
        assert await _get(sup, "t/campaign/c1/state") == {"dials": 2}, "state republished"
        await sup.subscribe("t/status")
        assert await _get(sup, "t/status") == b"online"
    await bridge.stop()
