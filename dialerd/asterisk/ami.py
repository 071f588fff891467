"""The one module that knows panoramisk: AMI connection supervision.

panoramisk 1.4 has traps a dialer cannot live with (see shared/ASTERISK.md):
it re-sends unanswered actions after a reconnect (a second call to the same
customer), reconnects forever on wrong credentials, never checks its pings,
and has no action timeout. This adapter turns those off or around:

- reconnecting is ours (exponential backoff), panoramisk's is disabled;
- nothing is ever re-sent: the awaiting-actions queue is emptied and every
  outstanding action fails with :class:`AmiConnectionLost` when the socket
  drops, so the caller records the call as interrupted instead;
- every action has a timeout; a Ping watchdog closes a half-open socket;
- the event callback only enqueues, so no exception can kill the reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from panoramisk import Manager
from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol

from dialerd.asterisk import safety

log = structlog.get_logger("dialerd.ami")

Message = Mapping[str, Any]


class AmiError(Exception):
    """AMI could not do what was asked."""


class AmiAuthError(AmiError):
    """Asterisk refused the login: retrying cannot help."""


class AmiConnectError(AmiError):
    """No AMI at that address (yet)."""


class AmiConnectionLost(AmiError):
    """The socket dropped with this action outstanding: its fate is unknown."""


class AmiUnavailable(AmiError):
    """Not connected right now."""


class _Protocol(AMIProtocol):  # type: ignore[misc]
    """panoramisk's reader, one bad frame at a time.

    panoramisk calls ``str`` methods on header values (``Event``, ``Message``)
    that become lists when a frame repeats the header (a dialplan
    ``UserEvent(X,Event: y)`` does that): the exception escaped
    ``data_received`` and asyncio dropped the connection, failing every
    outstanding action. Skip the frame instead.
    """

    def handle_message(self, message: Any) -> None:
        try:
            super().handle_message(message)
        except Exception:
            log.exception("ami.bad_frame", frame=repr(message)[:300])


class _Manager(Manager):  # type: ignore[misc]
    """panoramisk's Manager with its reconnect and re-send turned off."""

    def __init__(self, owner: AmiClient, **config: Any) -> None:
        super().__init__(**config)
        self._owner = owner

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        if f.cancelled() or f.exception() is not None:
            self._owner._connect_failed(None if f.cancelled() else f.exception())
            return
        super().connection_made(f)
        sock = self.protocol.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)

    def login(self, future: asyncio.Future[Any]) -> bool:
        ok = bool(super().login(future))
        resp = future.result()
        self._owner._login_done(ok, str(resp.get("Message", "")))
        return ok

    def connection_lost(self, exc: BaseException | None) -> None:
        self._connected = False
        pinger: Any = getattr(self, "pinger", None)
        if pinger is not None:
            pinger.cancel()
            self.pinger = None
        self.awaiting_actions.clear()  # never re-send anything
        self._owner._lost(exc)

    def ping(self) -> None:  # our watchdog pings instead
        return None

    async def send_awaiting_actions(self, *_: Any) -> None:
        self.awaiting_actions.clear()


class AmiClient:
    """A supervised AMI session. Events go to ``on_event``; call ``start``."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        on_event: Callable[[Message], None],
        on_up: Callable[[], None] | None = None,
        on_down: Callable[[str], None] | None = None,
        action_timeout_s: float = 10.0,
        connect_timeout_s: float = 10.0,
        ping_interval_s: float = 10.0,
        backoff_max_s: float = 30.0,
    ) -> None:
        self.host, self.port, self.username = host, port, username
        self._secret = secret
        self._on_event = on_event
        self._on_up = on_up or (lambda: None)
        self._on_down = on_down or (lambda _r: None)
        self.action_timeout_s = action_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.ping_interval_s = ping_interval_s
        self.backoff_max_s = backoff_max_s
        self.connected = False
        self._manager: _Manager | None = None
        self._login_result: asyncio.Future[tuple[bool, str]] | None = None
        self._outstanding: set[asyncio.Future[Any]] = set()
        self._closing = False
        self._supervisor: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._lost_event = asyncio.Event()

    def __repr__(self) -> str:  # never show the secret
        return f"AmiClient({self.username}@{self.host}:{self.port})"

    # ----------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Connect and log in once (raising a clear error), then keep the
        session up in the background, reconnecting with backoff."""
        await self._connect_once()
        self._supervisor = asyncio.create_task(self._supervise(), name="ami-supervisor")

    async def close(self) -> None:
        self._closing = True
        for t in (self._supervisor, self._watchdog):
            if t is not None:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        if self._manager is not None:
            self._manager.close()
        self._fail_outstanding("AMI client closed")
        self.connected = False

    async def _connect_once(self) -> None:
        loop = asyncio.get_running_loop()
        self._login_result = loop.create_future()
        self._lost_event.clear()
        self._manager = _Manager(
            self,
            loop=loop,
            host=self.host,
            port=self.port,
            username=self.username,
            secret=self._secret,
            events="on",
            ping_delay=3600,
            protocol_factory=_Protocol,
            forgetable_actions=("ping", "login", "originate", "redirect", "hangup"),
        )
        self._manager.register_event("*", self._dispatch)
        self._manager.connect()
        try:
            ok, message = await asyncio.wait_for(
                asyncio.shield(self._login_result), self.connect_timeout_s
            )
        except TimeoutError:
            self._manager.close()
            raise AmiConnectError(
                f"AMI at {self.host}:{self.port}: no login answer within "
                f"{self.connect_timeout_s:.0f} s"
            ) from None
        if not ok:
            self._manager.close()
            if message.startswith("connect:"):
                raise AmiConnectError(f"cannot reach AMI at {self.host}:{self.port}: {message[8:]}")
            raise AmiAuthError(
                f"AMI at {self.host}:{self.port} refused user {self.username!r}: "
                f"{message or 'authentication failed'} (check username/secret in dialerd.yaml "
                "and manager.conf)"
            )
        self.connected = True
        self._watchdog = asyncio.create_task(self._ping_loop(), name="ami-watchdog")
        log.info("ami.up", host=self.host, port=self.port, user=self.username)
        self._on_up()

    async def _supervise(self) -> None:
        delay = 0.5
        while not self._closing:
            await self._lost_event.wait()
            if self._closing:
                return
            if self._watchdog is not None:
                self._watchdog.cancel()
            while not self._closing:
                await asyncio.sleep(delay)
                try:
                    await self._connect_once()
                except AmiAuthError as exc:
                    log.error("ami.auth_failed", error=str(exc))
                    delay = min(delay * 2, self.backoff_max_s)
                except (AmiConnectError, OSError) as exc:
                    log.warning("ami.reconnect_failed", error=str(exc), retry_in_s=delay)
                    delay = min(delay * 2, self.backoff_max_s)
                else:
                    delay = 0.5
                    break

    async def _ping_loop(self) -> None:
        """panoramisk never checks its pings: a half-open socket would hang
        every call in 'dialing'. A Ping with a deadline catches it."""
        while True:
            await asyncio.sleep(self.ping_interval_s)
            try:
                await self.action({"Action": "Ping"}, timeout=max(2.0, self.ping_interval_s / 2))
            except (AmiError, TimeoutError):
                log.warning("ami.ping_timeout")
                if self._manager is not None and self._manager.protocol is not None:
                    self._manager.protocol.transport.abort()
                return

    # ------------------------------------------------------- manager hooks
    def _connect_failed(self, exc: BaseException | None) -> None:
        if self._login_result is not None and not self._login_result.done():
            self._login_result.set_result((False, f"connect:{exc}"))

    def _login_done(self, ok: bool, message: str) -> None:
        if self._login_result is not None and not self._login_result.done():
            self._login_result.set_result((ok, message))

    def _lost(self, exc: BaseException | None) -> None:
        was_up = self.connected
        self.connected = False
        self._fail_outstanding("AMI connection lost")
        if self._login_result is not None and not self._login_result.done():
            self._login_result.set_result((False, f"connect:connection closed ({exc})"))
        if was_up:
            log.warning("ami.down", error=str(exc) if exc else "closed")
            self._on_down("AMI connection lost")
            self._lost_event.set()

    def _fail_outstanding(self, why: str) -> None:
        for fut in list(self._outstanding):
            if not fut.done():
                fut.set_exception(AmiConnectionLost(why))
        self._outstanding.clear()

    def _dispatch(self, _manager: Any, message: Any) -> None:
        try:
            self._on_event(message)
        except Exception:  # never let a handler kill panoramisk's reader
            log.exception("ami.event_handler_failed")

    # ------------------------------------------------------------- actions
    def send(self, fields: Mapping[str, str | list[str]]) -> asyncio.Future[Any]:
        """Write one action now (no await between decision and socket) and
        return its future. Every value is checked: no CR/LF reaches AMI."""
        if not self.connected or self._manager is None:
            raise AmiUnavailable("AMI is not connected")
        clean: dict[str, str | list[str]] = {}
        for k, v in fields.items():
            safety.header(k)
            clean[k] = [safety.header(x) for x in v] if isinstance(v, list) else safety.header(v)
        act = Action(clean)
        protocol = self._manager.protocol
        fut: asyncio.Future[Any] = self._manager.send_action(act)
        self._outstanding.add(fut)
        fut.add_done_callback(self._outstanding.discard)
        # panoramisk drops its reply slot only when the final reply arrives: an
        # action given up on (timeout cancels the future) stayed there forever
        fut.add_done_callback(lambda _f: _forget(protocol, act))
        return fut

    async def action(
        self, fields: Mapping[str, str | list[str]], timeout: float | None = None
    ) -> Any:
        fut = self.send(fields)
        return await asyncio.wait_for(fut, timeout or self.action_timeout_s)

    async def wait_future(self, fut: asyncio.Future[Any], timeout: float) -> Any:
        return await asyncio.wait_for(fut, timeout)


def _forget(protocol: Any, act: Any) -> None:
    responses: dict[str, Any] = getattr(protocol, "responses", None) or {}
    for key in {act.id, act.action_id}:
        if responses.get(key) is act:
            del responses[key]
