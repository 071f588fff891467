"""MQTT: retained live state, an event stream, supervisor commands.

The broker is optional to dialing: publishing goes through a bounded queue
drained by a task of its own, so the AMI path never waits on the network;
while the broker is away events queue (oldest dropped first) and the latest
retained state of every topic is kept and republished on reconnect.

Topics (``<p>`` is ``mqtt.topic_prefix``):

- ``<p>/status`` retained ``online`` / ``offline`` (the Will message)
- ``<p>/campaign/<name>/state`` retained JSON campaign figures
- ``<p>/agent/<id>/state`` retained JSON agent state
- ``<p>/events`` JSON event stream (not retained)
- ``<p>/cmd`` JSON supervisor commands in; the reply goes to the command's
  ``reply_to`` topic, else ``<p>/reply``
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Callable
from typing import Any

import aiomqtt
import structlog

from dialerd.settings import MqttSettings

log = structlog.get_logger("dialerd.mqtt")


class MqttBridge:
    def __init__(
        self,
        settings: MqttSettings,
        on_command: Callable[[dict[str, Any]], dict[str, Any]],
        client_id: str = "dialerd",
    ) -> None:
        self.s = settings
        self.prefix = settings.topic_prefix
        self._on_command = on_command
        self._client_id = client_id
        self._queue: asyncio.Queue[tuple[str, bytes, bool]] = asyncio.Queue(settings.queue_size)
        self._retained: dict[str, bytes] = {}
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.dropped = 0

    # ------------------------------------------------------------- publish
    def publish(self, topic: str, payload: Any, retain: bool = False) -> None:
        """Never blocks and never raises: dialing must not depend on MQTT."""
        full = f"{self.prefix}/{topic}"
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        if retain:
            if self._retained.get(full) == data:
                return
            self._retained[full] = data
        try:
            self._queue.put_nowait((full, data, retain))
        except asyncio.QueueFull:
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
            self.dropped += 1
            self._queue.put_nowait((full, data, retain))

    def event(self, kind: str, **fields: Any) -> None:
        self.publish("events", {"event": kind, **fields})

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="mqtt")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _client(self) -> aiomqtt.Client:
        tls = None
        if self.s.tls:
            tls = ssl.create_default_context(cafile=str(self.s.ca_file) if self.s.ca_file else None)
            if self.s.cert_file:
                tls.load_cert_chain(
                    str(self.s.cert_file), str(self.s.key_file) if self.s.key_file else None
                )
        return aiomqtt.Client(
            self.s.host,
            self.s.port,
            username=self.s.username,
            password=self.s.password.get_secret_value() if self.s.password else None,
            identifier=self._client_id,
            will=aiomqtt.Will(f"{self.prefix}/status", b"offline", qos=1, retain=True),
            tls_context=tls,
            keepalive=15,
        )

    async def _run(self) -> None:
        delay = 0.5
        while True:
            try:
                async with self._client() as client:
                    delay = 0.5
                    await client.publish(f"{self.prefix}/status", b"online", qos=1, retain=True)
                    for topic, data in list(self._retained.items()):
                        await client.publish(topic, data, qos=0, retain=True)
                    await client.subscribe(f"{self.prefix}/cmd", qos=1)
                    self.connected.set()
                    log.info("mqtt.up", host=self.s.host, port=self.s.port)
                    sender = asyncio.create_task(self._send(client))
                    try:
                        async for msg in client.messages:
                            await self._command(client, msg.payload)
                    finally:
                        sender.cancel()
                        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                            await sender
            except aiomqtt.MqttError as exc:
                if self.connected.is_set():
                    log.warning("mqtt.down", error=str(exc))
                self.connected.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 15.0)

    async def _send(self, client: aiomqtt.Client) -> None:
        while True:
            topic, data, retain = await self._queue.get()
            try:
                await client.publish(topic, data, qos=0, retain=retain)
            except aiomqtt.MqttError:
                if not retain:  # retained state is republished on reconnect anyway
                    with contextlib.suppress(asyncio.QueueFull):
                        self._queue.put_nowait((topic, data, retain))
                raise

    async def _command(self, client: aiomqtt.Client, payload: Any) -> None:
        reply_to = f"{self.prefix}/reply"
        try:
            cmd = json.loads(payload)
            if not isinstance(cmd, dict):
                raise ValueError("a command is a JSON object")
            rt = cmd.get("reply_to")
            if isinstance(rt, str) and rt and "#" not in rt and "+" not in rt:
                reply_to = rt
            result = self._on_command(cmd)
        except (ValueError, KeyError, TypeError) as exc:
            result = {"ok": False, "error": str(exc)}
        if isinstance(payload, bytes | str):
            with contextlib.suppress(Exception):
                result.setdefault("request_id", json.loads(payload).get("request_id"))
        await client.publish(reply_to, json.dumps(result).encode(), qos=1)
