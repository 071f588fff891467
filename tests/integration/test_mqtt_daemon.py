"""The whole daemon (real Asterisk, real Mosquitto) under hostile supervisor
commands (issue 12): the commands that used to kill the MQTT bridge for
good (after which no state, screen pop or reply went out, ``status`` never
turned offline, and the run ended with the bridge's exception) are answered
with errors; a bridge that fails anyway restarts; and the run still ends
with status 0, the control socket removed, the store closed and ``offline``
retained."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from dialerd.control import control_request
from dialerd.daemon import Daemon
from dialerd.sandbox.scenario import sim_campaign, write_config
from dialerd.settings import load_settings

pytestmark = pytest.mark.asterisk

KILLERS = [
    b'{"command": "set_dial_level", "campaign": "mq", "max_level": 1' + b"0" * 400 + b"}",
    b'{"command": "resume", "campaign": "mq", "reply_to": "dd/reply/\\ud800"}',
    b"[" * 100_000,
    b'{"command": "pause", "campaign": "mq", "reply_to": "dd/agent/2301/screenpop"}',
]


async def _next(client: aiomqtt.Client, topic: str, timeout: float = 10.0) -> bytes:
    async def first() -> bytes:
        async for m in client.messages:
            if m.topic.matches(topic):
                assert isinstance(m.payload, bytes)
                return m.payload
        raise AssertionError("message stream ended")

    try:
        return await asyncio.wait_for(first(), timeout)
    except TimeoutError:
        raise AssertionError(f"nothing on {topic} within {timeout} s") from None


async def test_hostile_commands_a_bridge_failure_and_a_clean_stop(
    asterisk_sandbox: Any, mqtt_broker: Any, tmp_path: Path
) -> None:
    sb, b = asterisk_sandbox, mqtt_broker
    sock = Path(tempfile_dir()) / "c.sock"
    cfg = write_config(
        tmp_path,
        sb.ami_user,
        {"mq": sim_campaign(["2301"])},
        mqtt={
            "enabled": True,
            "host": b.host,
            "port": b.port,
            "topic_prefix": "dd",
            "state_interval_s": 0.2,
        },
        metrics={"enabled": True, "port": _free_port()},
        control_socket=str(sock),
    )
    daemon = Daemon(load_settings(cfg))
    run = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.started.wait(), 30)
        assert daemon.mqtt is not None
        await asyncio.wait_for(daemon.mqtt.connected.wait(), 10)
        async with aiomqtt.Client(b.host, b.port, identifier="supervisor") as sup:
            await sup.subscribe("dd/reply/#", qos=1)
            await sup.subscribe("dd/agent/#", qos=1)
            for payload in KILLERS:
                await sup.publish("dd/cmd", payload, qos=1)
                reply = json.loads(await _next(sup, "dd/reply/#"))
                assert reply["ok"] is False, reply
            # a failure outside the command guard: the bridge restarts
            daemon.mqtt._queue.put_nowait(("dd/events", object(), False))  # type: ignore[arg-type]
            for _ in range(100):
                if daemon.mqtt.restarts:
                    break
                await asyncio.sleep(0.1)
            assert daemon.mqtt.restarts == 1
            await asyncio.wait_for(daemon.mqtt.connected.wait(), 10)
            await sup.publish(
                "dd/cmd",
                json.dumps({"command": "pause", "campaign": "mq", "reply_to": "dd/reply/s"}),
                qos=1,
            )
            assert json.loads(await _next(sup, "dd/reply/s"))["ok"] is True
            await sup.subscribe("dd/campaign/mq/state")
            for _ in range(20):  # the state goes out, and shows the pause
                if json.loads(await _next(sup, "dd/campaign/mq/state"))["paused"]:
                    break
            else:
                raise AssertionError("the pause never showed in the published state")
            # the control socket answers, also to what it used to choke on
            st = await asyncio.to_thread(control_request, sock, {"command": "status"})
            assert st["ok"] is True
            assert daemon.metrics is not None
            restarts = daemon.metrics.registry.get_sample_value(
                "dialerd_mqtt_bridge_restarts_total"
            )
            assert restarts == 1
    finally:
        daemon.request_stop()
        rc = await asyncio.wait_for(run, 60)
    assert rc == 0
    assert not sock.exists(), "the control socket was left behind"
    assert daemon.store is not None
    with pytest.raises(ValueError):  # aiosqlite: no active connection
        await daemon.store.get_lead(1)
    async with aiomqtt.Client(b.host, b.port, identifier="after") as c:
        await c.subscribe("dd/status")
        assert await _next(c, "dd/status", 5) == b"offline"


def tempfile_dir() -> str:
    # AF_UNIX paths are limited to ~107 bytes; pytest's tmp_path can be longer
    import tempfile

    return tempfile.mkdtemp(prefix="dd")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
