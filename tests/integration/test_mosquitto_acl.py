"""The shipped Mosquitto example (``config/mosquitto/``) on a real Mosquitto:
its settings and its ACL as shipped, a password file made by
``mosquitto_passwd``, free loopback ports, and the real bridge as the
daemon. Only what names this machine is changed: the file paths, and the
listeners' ports (loopback)."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import structlog

from dialerd.mqtt.bridge import MqttBridge
from dialerd.settings import MqttSettings

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "config" / "mosquitto"
PASSWORDS = {"dialerd": "d-pw-1", "supervisor": "s-pw-2", "1001": "a-pw-3", "1002": "a-pw-4"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}:
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _passwd_file(path: Path) -> None:
    exe = shutil.which("mosquitto_passwd")
    if exe is None:
        _unavailable("mosquitto_passwd is not installed")
    assert exe is not None
    for i, (user, pw) in enumerate(PASSWORDS.items()):
        flags = ["-c", "-b"] if i == 0 else ["-b"]
        subprocess.run([exe, *flags, str(path), user, pw], check=True, capture_output=True)
    path.chmod(0o600)


def _tls_pair(d: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA)."""
    exe = shutil.which("openssl")
    if exe is None:
        _unavailable("openssl is not installed")
    assert exe is not None
    crt, key = d / "broker.crt", d / "broker.key"
    subprocess.run(
        [
            *(exe, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(crt), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return crt, key


def shipped_config(d: Path, tls_port: int) -> str:
    """``dialerd.conf`` as shipped, with its paths pointed into ``d`` and its
    listeners on loopback ports: the plain one is the harness's own, the TLS
    one moves to ``tls_port``. Started as root, Mosquitto would switch to
    its own user, who cannot read the test's files: it stays the test's."""
    crt, key = _tls_pair(d)
    _passwd_file(d / "dialerd.passwd")
    shutil.copy(SHIPPED / "dialerd.acl", d / "dialerd.acl")
    out = []
    for line in (SHIPPED / "dialerd.conf").read_text().splitlines():
        word = line.split()[0] if line.strip() and not line.startswith("#") else ""
        if word == "password_file":
            line = f"password_file {d / 'dialerd.passwd'}"
        elif word == "acl_file":
            line = f"acl_file {d / 'dialerd.acl'}"
        elif word == "certfile":
            line = f"certfile {crt}"
        elif word == "keyfile":
            line = f"keyfile {key}"
        elif line.startswith("listener 1883"):
            line = "# (the plain listener is the harness's, on a free loopback port)"
        elif word == "listener":
            line = f"listener {tls_port} 127.0.0.1"
        out.append(line)
    out.append(f"user {getpass.getuser()}")
    return "\n".join(out) + "\n"


@pytest.fixture
def acl_broker(tmp_path: Path) -> Iterator[Any]:
    from dialerd.sandbox.broker import BrokerError, MosquittoBroker

    if not shutil.which("mosquitto") and not Path("/usr/sbin/mosquitto").exists():
        _unavailable("mosquitto is not installed")
    tls_port = _free_port()
    broker = MosquittoBroker(config=shipped_config(tmp_path, tls_port))
    broker.tls_port = tls_port  # type: ignore[attr-defined]
    broker.ca_file = tmp_path / "broker.crt"  # type: ignore[attr-defined]
    try:
        broker.start()
    except BrokerError as exc:
        pytest.fail(f"the shipped Mosquitto config does not start: {exc}", pytrace=False)
    try:
        yield broker
    finally:
        broker.close()


def test_the_shipped_config_is_what_the_test_checks() -> None:
    conf = (SHIPPED / "dialerd.conf").read_text()
    assert re.search(r"^allow_anonymous false$", conf, re.M)
    assert re.search(r"^per_listener_settings false$", conf, re.M)
    assert re.search(r"^listener 1883 127\.0\.0\.1$", conf, re.M), "plain MQTT on loopback only"
    assert re.search(r"^password_file ", conf, re.M) and re.search(r"^acl_file ", conf, re.M)


class Inbox:
    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.got: list[tuple[str, bytes]] = []
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        async for m in self.client.messages:
            assert isinstance(m.payload, bytes)
            self.got.append((str(m.topic), m.payload))

    def topics(self) -> set[str]:
        return {t for t, _ in self.got}

    async def wait_for(self, topic: str, timeout: float = 5.0) -> bytes:
        for _ in range(int(timeout / 0.05)):
            for t, p in self.got:
                if t == topic:
                    return p
            await asyncio.sleep(0.05)
        raise AssertionError(f"nothing on {topic}; got {sorted(self.topics())}")

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await self._task


@contextlib.asynccontextmanager
async def user(broker: Any, name: str, *subscriptions: str) -> AsyncIterator[Inbox]:
    async with aiomqtt.Client(
        broker.host, broker.port, username=name, password=PASSWORDS[name], identifier=f"t-{name}"
    ) as c:
        for s in subscriptions:
            await c.subscribe(s, qos=1)
        inbox = Inbox(c)
        try:
            yield inbox
        finally:
            await inbox.close()


async def test_who_may_do_what(acl_broker: Any) -> None:
    b = acl_broker
    commands: list[dict[str, Any]] = []

    def on_command(c: dict[str, Any]) -> dict[str, Any]:
        commands.append(c)
        return {"ok": True, "command": c.get("command")}

    # nobody gets in without a password, or with a wrong one
    for name, pw in ((None, None), ("supervisor", "wrong")):
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(b.host, b.port, username=name, password=pw, identifier="x"):
                pass

    # the daemon: the real bridge, as user dialerd
    bridge = MqttBridge(
        MqttSettings(
            enabled=True,
            host=b.host,
            port=b.port,
            username="dialerd",
            password=PASSWORDS["dialerd"],  # type: ignore[arg-type]
        ),
        on_command,
        client_id="dialerd-acl",
    )
    bridge.publish("agent/1001/state", {"agent": "1001", "state": "ready"}, retain=True)
    bridge.publish("agent/1002/state", {"agent": "1002", "state": "ready"}, retain=True)
    bridge.publish("campaign/c1/state", {"campaign": "c1"}, retain=True)
    bridge.publish("queue/q1/state", {"queue": "q1"}, retain=True)
    bridge.start()
    try:
        await asyncio.wait_for(bridge.connected.wait(), 10)
        async with (
            user(b, "1001", "dialerd/#", "dialerd/agent/1002/#", "dialerd/agent/1001/#") as a1,
            user(b, "supervisor", "dialerd/#") as sup,
        ):
            # what the daemon publishes, each reader sees its share of
            bridge.publish("agent/1001/screenpop", {"phone": "+441"})
            bridge.publish("agent/1002/screenpop", {"phone": "+442"})
            await a1.wait_for("dialerd/agent/1001/screenpop")
            await a1.wait_for("dialerd/agent/1001/state")
            await sup.wait_for("dialerd/agent/1002/screenpop")
            await sup.wait_for("dialerd/campaign/c1/state")
            await sup.wait_for("dialerd/queue/q1/state")
            assert await sup.wait_for("dialerd/status") == b"online"

            # an agent may not command: its publish is dropped by the broker
            await a1.client.publish(
                "dialerd/cmd", json.dumps({"command": "agent_logout", "agent": "1002"}), qos=1
            )
            # nor forge a screen pop or state, for itself or another agent
            await a1.client.publish("dialerd/agent/1002/screenpop", b'{"phone": "evil"}', qos=1)
            await a1.client.publish("dialerd/agent/1001/state", b'{"state": "evil"}', qos=1)
            # a supervisor commands, and reads the reply under dialerd/reply/
            await sup.client.publish(
                "dialerd/cmd",
                json.dumps({"command": "pause", "reply_to": "dialerd/reply/sup", "request_id": 1}),
                qos=1,
            )
            reply = json.loads(await sup.wait_for("dialerd/reply/sup"))
            assert reply == {"ok": True, "command": "pause", "request_id": 1}
            # ... but may not forge what the daemon publishes either
            await sup.client.publish("dialerd/agent/1001/screenpop", b'{"phone": "evil"}', qos=1)
            await sup.client.publish("dialerd/status", b"offline", qos=1, retain=True)
            await asyncio.sleep(0.5)

            assert [c["command"] for c in commands] == ["pause"], "only the supervisor's command"
            assert not any(t.startswith("dialerd/agent/1002") for t in a1.topics()), a1.topics()
            assert a1.topics() == {
                "dialerd/agent/1001/state",
                "dialerd/agent/1001/screenpop",
                "dialerd/status",  # an agent's screen may show whether the dialer is up
            }
            assert b"evil" not in b"".join(p for _, p in a1.got + sup.got)
            assert [p for t, p in sup.got if t == "dialerd/status"] == [b"online"]

        # the daemon's retained state is still its own
        async with user(b, "supervisor", "dialerd/status", "dialerd/agent/1001/state") as sup2:
            assert await sup2.wait_for("dialerd/status") == b"online"
            state = json.loads(await sup2.wait_for("dialerd/agent/1001/state"))
            assert state == {"agent": "1001", "state": "ready"}
    finally:
        await bridge.stop()


async def test_tls_listener_with_the_daemons_tls_settings(acl_broker: Any) -> None:
    b = acl_broker
    settings = MqttSettings(
        enabled=True,
        host="127.0.0.1",
        port=b.tls_port,
        username="dialerd",
        password=PASSWORDS["dialerd"],  # type: ignore[arg-type]
        tls=True,
        ca_file=b.ca_file,
    )
    bridge = MqttBridge(settings, lambda c: {"ok": True}, client_id="dialerd-tls")
    bridge.start()
    try:
        await asyncio.wait_for(bridge.connected.wait(), 10)
        async with user(b, "supervisor", "dialerd/status") as sup:
            assert await sup.wait_for("dialerd/status") == b"online"
    finally:
        await bridge.stop()
    # plain MQTT to the TLS port gets nowhere
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(
            "127.0.0.1",
            b.tls_port,
            username="supervisor",
            password=PASSWORDS["supervisor"],
            identifier="plain",
            timeout=3,
        ):
            pass


async def test_an_agent_cannot_kick_the_daemon_off_with_its_client_id(acl_broker: Any) -> None:
    """The daemon's client id was ``dialerd-<run id>``, and the run id is
    the start of every attempt id an agent's screen pop shows. Mosquitto
    lets any user take over any client id: an agent connecting with the
    daemon's id disconnected the daemon, again and again. The bridge now
    adds a random part of its own to the id it is given."""
    b = acl_broker
    run_id = "0123456789ab"
    bridge = MqttBridge(
        MqttSettings(
            enabled=True,
            host=b.host,
            port=b.port,
            username="dialerd",
            password=PASSWORDS["dialerd"],  # type: ignore[arg-type]
        ),
        lambda c: {"ok": True},
        client_id=f"dialerd-{run_id}",
    )
    bridge.start()
    try:
        await asyncio.wait_for(bridge.connected.wait(), 10)
        with structlog.testing.capture_logs() as logs:
            for _ in range(3):
                async with aiomqtt.Client(
                    b.host,
                    b.port,
                    username="1001",
                    password=PASSWORDS["1001"],
                    identifier=f"dialerd-{run_id}",
                ):
                    await asyncio.sleep(0.2)
                    assert bridge.connected.is_set(), "the daemon was kicked off"
        assert [e for e in logs if e["event"] == "mqtt.down"] == []
    finally:
        await bridge.stop()


async def test_a_packet_over_the_size_limit_is_dropped_with_its_sender(acl_broker: Any) -> None:
    b = acl_broker
    commands: list[dict[str, Any]] = []

    def on_command(c: dict[str, Any]) -> dict[str, Any]:
        commands.append(c)
        return {"ok": True}

    bridge = MqttBridge(
        MqttSettings(
            enabled=True,
            host=b.host,
            port=b.port,
            username="dialerd",
            password=PASSWORDS["dialerd"],  # type: ignore[arg-type]
        ),
        on_command,
        client_id="dialerd-size",
    )
    bridge.start()
    try:
        await asyncio.wait_for(bridge.connected.wait(), 10)
        big = json.dumps({"command": "pause", "reason": "x" * 100_000})
        # the broker resets the connection: the client either says so, or
        # waits in vain for the acknowledgement
        with pytest.raises((aiomqtt.MqttError, TimeoutError)):
            async with aiomqtt.Client(
                b.host,
                b.port,
                username="supervisor",
                password=PASSWORDS["supervisor"],
                identifier="big",
            ) as sup:
                await asyncio.wait_for(sup.publish("dialerd/cmd", big, qos=1), 2)
                await asyncio.wait_for(sup.publish("dialerd/cmd", b"{}", qos=1), 2)
        await asyncio.sleep(0.3)
        assert commands == []
        assert bridge.connected.is_set()
    finally:
        await bridge.stop()
