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
  ``reply_to`` topic, which must lie under ``<p>/reply/``, else to
  ``<p>/reply``

Every command is read as hostile (anyone the broker lets publish to
``<p>/cmd`` can send anything): parsed with bounds (:mod:`dialerd.wire`:
size, depth, finite numbers, valid strings), validated by the handler, and
answered, in a guard of its own, so no message can end the bridge. Should
the bridge fail anyway (a bug), it says ``offline``, logs it, counts it in
``dialerd_mqtt_bridge_restarts_total`` and starts again with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiomqtt
import structlog
from prometheus_client import CollectorRegistry, Counter

from dialerd.settings import MqttSettings
from dialerd.wire import WireError, loads

log = structlog.get_logger("dialerd.mqtt")

#: a command larger than this is refused unread (commands are a few fields)
MAX_COMMAND_BYTES = 8 * 1024
#: ``[`` / ``{`` nesting allowed in a command (commands are flat objects)
MAX_COMMAND_DEPTH = 8
#: a ``reply_to`` topic: at most this many bytes (UTF-8)
MAX_REPLY_TOPIC = 128
#: a ``request_id`` string: at most this many characters
MAX_REQUEST_ID = 64
#: a failed bridge restarts after this, doubling up to the max; a bridge
#: that ran this long since its last start is restarted at once again
RESTART_MIN_S = 0.5
RESTART_MAX_S = 30.0
RESTART_RESET_S = 60.0
#: seconds an ``offline`` gets to leave when the bridge stops or fails
OFFLINE_TIMEOUT_S = 1.0

Handler = Callable[[dict[str, Any]], Mapping[str, Any]]


class CommandRefused(ValueError):
    """The bridge refuses a command before its handler sees it."""


class MqttBridge:
    def __init__(
        self,
        settings: MqttSettings,
        on_command: Handler,
        client_id: str = "dialerd",
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.s = settings
        self.prefix = settings.topic_prefix
        self._on_command = on_command
        # Mosquitto lets any user connect with any client id, which
        # disconnects the client holding it; the id the daemon passes names
        # its run, and the run id is in every attempt id a screen pop shows.
        # A random part makes the id one no other user knows.
        self.client_id = f"{client_id}-{secrets.token_hex(8)}"
        self._queue: asyncio.Queue[tuple[str, bytes, bool]] = asyncio.Queue(settings.queue_size)
        self._retained: dict[str, bytes] = {}
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.dropped = 0
        #: how often the bridge failed and was restarted
        self.restarts = 0
        #: the daemon's metrics registry (a private one when it has none)
        self.registry = registry if registry is not None else CollectorRegistry()
        self._restarts_metric = Counter(
            "dialerd_mqtt_bridge_restarts",
            "MQTT bridge failures, each followed by a restart",
            registry=self.registry,
        )
        self._commands_metric = Counter(
            "dialerd_mqtt_commands",
            "Supervisor commands received over MQTT, by result",
            ["result"],
            registry=self.registry,
        )

    @property
    def reply_prefix(self) -> str:
        return f"{self.prefix}/reply"

    # ------------------------------------------------------------- publish
    def publish(self, topic: str, payload: Any, retain: bool = False) -> None:
        """Never blocks and never raises: dialing must not depend on MQTT."""
        full = f"{self.prefix}/{topic}"
        try:
            data = (
                payload
                if isinstance(payload, bytes)
                else json.dumps(payload, allow_nan=False, default=str).encode()
            )
        except ValueError:  # NaN in a figure, a cycle: dropped, and said so
            log.error("mqtt.unpublishable", topic=full)
            return
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
        """Cancel the bridge and wait for it; never raises (shutting down
        must go on to close the store)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # we are being cancelled too: pass it on
        except Exception:
            log.exception("mqtt.failed_at_stop")

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
            identifier=self.client_id,
            will=aiomqtt.Will(f"{self.prefix}/status", b"offline", qos=1, retain=True),
            tls_context=tls,
            keepalive=15,
        )

    async def _run(self) -> None:
        """The supervisor of the bridge: a failure that is not the broker
        going away (those are retried inside :meth:`_connect_loop`) is
        logged, counted, and the bridge starts again after a backoff."""
        delay = RESTART_MIN_S
        while True:
            started = time.monotonic()
            try:
                await self._connect_loop()
            except Exception:
                self.connected.clear()
                if time.monotonic() - started >= RESTART_RESET_S:
                    delay = RESTART_MIN_S
                self.restarts += 1
                self._restarts_metric.inc()
                log.exception("mqtt.bridge_failed", restarts=self.restarts, restart_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESTART_MAX_S)

    async def _connect_loop(self) -> None:
        """Connect, serve, and reconnect with backoff while the broker is
        away. Returns never; raises what is not an MQTT error."""
        delay = 0.5
        while True:
            try:
                async with self._client() as client:
                    delay = 0.5
                    await self._session(client)
            except aiomqtt.MqttError as exc:
                if self.connected.is_set():
                    log.warning("mqtt.down", error=str(exc))
                self.connected.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 15.0)

    async def _session(self, client: aiomqtt.Client) -> None:
        await client.publish(f"{self.prefix}/status", b"online", qos=1, retain=True)
        for topic, data in list(self._retained.items()):
            await client.publish(topic, data, qos=0, retain=True)
        await client.subscribe(f"{self.prefix}/cmd", qos=1)
        self.connected.set()
        log.info("mqtt.up", host=self.s.host, port=self.s.port)
        sender = asyncio.create_task(self._send(client), name="mqtt-send")
        receiver = asyncio.create_task(self._receive(client), name="mqtt-receive")
        try:
            # either ending ends the session: a sender that died silently
            # would leave commands answered but no state ever sent again
            done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                t.result()
            raise aiomqtt.MqttError("the broker closed the message stream")
        except aiomqtt.MqttError:
            raise
        except BaseException:
            # stopping or failing: say so while the link is still up (a
            # clean disconnect sends no Will)
            self.connected.clear()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    client.publish(f"{self.prefix}/status", b"offline", qos=1, retain=True),
                    OFFLINE_TIMEOUT_S,
                )
            raise
        finally:
            for t in (sender, receiver):
                t.cancel()
            await asyncio.gather(sender, receiver, return_exceptions=True)

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for msg in client.messages:
            await self._command(client, msg.payload)

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

    # ------------------------------------------------------------- commands

    def reply_topic(self, value: Any) -> str:
        """Where a command's reply goes: its ``reply_to`` when that is a
        topic under ``<prefix>/reply/`` (so a reply can never be published
        onto state, screen pops, ``cmd`` or another tree), else refused."""
        if value is None:
            return self.reply_prefix
        ok = (
            isinstance(value, str)
            and value.startswith(self.reply_prefix + "/")
            and len(value) > len(self.reply_prefix) + 1
            and value.isprintable()
            and "+" not in value
            and "#" not in value
        )
        if ok:
            try:
                ok = len(value.encode("utf-8")) <= MAX_REPLY_TOPIC
            except UnicodeEncodeError:
                ok = False
        if not ok:
            raise CommandRefused(
                f"reply_to must be a topic under {self.reply_prefix}/ "
                f"(at most {MAX_REPLY_TOPIC} bytes, no wildcards)"
            )
        return str(value)

    @staticmethod
    def _request_id(value: Any) -> str | int | None:
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        if isinstance(value, str) and len(value) <= MAX_REQUEST_ID and value.isprintable():
            return value
        raise CommandRefused(
            f"request_id must be an integer or at most {MAX_REQUEST_ID} printable characters"
        )

    def answer(self, payload: Any) -> tuple[str, dict[str, Any]]:
        """One command in, ``(reply topic, reply)`` out. Never raises: a
        refused command, and even a failing handler, is an error reply."""
        topic = self.reply_prefix
        request_id: str | int | None = None
        try:
            if not isinstance(payload, bytes | bytearray):
                raise CommandRefused("a command is a JSON object")
            cmd = loads(payload, max_bytes=MAX_COMMAND_BYTES, max_depth=MAX_COMMAND_DEPTH)
            if not isinstance(cmd, dict):
                raise CommandRefused("a command is a JSON object")
            request_id = self._request_id(cmd.get("request_id"))
            topic = self.reply_topic(cmd.get("reply_to"))
            result = dict(self._on_command(cmd))
            outcome = "ok" if result.get("ok") is True else "refused"
        except (WireError, CommandRefused) as exc:
            result = {"ok": False, "error": str(exc)}
            outcome = "refused"
        except Exception as exc:  # a handler bug: the bridge goes on
            log.exception("mqtt.command_failed")
            result = {"ok": False, "error": f"internal error ({type(exc).__name__})"}
            outcome = "failed"
        self._commands_metric.labels(outcome).inc()
        if request_id is not None:
            result["request_id"] = request_id
        return topic, result

    async def _command(self, client: aiomqtt.Client, payload: Any) -> None:
        topic, result = self.answer(payload)
        try:
            data = json.dumps(result, default=str).encode()  # ASCII: always sendable
        except ValueError:  # a handler's reply that is no JSON (NaN, a cycle)
            log.exception("mqtt.reply_unserialisable")
            data = b'{"ok": false, "error": "internal error (reply)"}'
        await client.publish(topic, data, qos=1)
