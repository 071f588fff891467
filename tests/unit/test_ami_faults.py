"""Fault injection against :class:`dialerd.asterisk.ami.AmiClient`.

A tiny fake AMI server (asyncio, 127.0.0.1, port 0) that does what a real
Asterisk cannot be made to do on demand: drop the socket with an Originate
outstanding, go silent without closing, send garbage, never answer an action.
Everything the client writes is recorded per connection, so the tests can
prove what was (and was NOT) sent on each connection.

Behaviour against a real Asterisk is in tests/integration/test_ami_real.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from dialerd.asterisk.ami import (
    AmiAuthError,
    AmiClient,
    AmiConnectError,
    AmiConnectionLost,
    Message,
)
from dialerd.asterisk.safety import UnsafeValue
from dialerd.sandbox.recorder import Watch
from dialerd.sandbox.wait import until

GREETING = b"Asterisk Call Manager/9.0.0\r\n"
SECRET = "s3cr3t-do-not-leak"

Frame = dict[str, Any]


def parse_frame(raw: bytes) -> Frame:
    """AMI headers; a repeated header (Variable) becomes a list."""
    out: Frame = {}
    for line in raw.decode(errors="replace").split("\r\n"):
        key, sep, value = line.partition(": ")
        if not sep:
            continue
        if key in out:
            prev = out[key]
            out[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[key] = value
    return out


def encode(headers: dict[str, str]) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n"


@dataclass
class Conn:
    """One client connection as the server sees it."""

    writer: asyncio.StreamWriter
    raw: bytearray = field(default_factory=bytearray)
    frames: list[Frame] = field(default_factory=list)
    #: half-open simulation: read everything, answer nothing, never close
    silent: bool = False

    def send(self, **headers: str) -> None:
        self.writer.write(encode(headers))

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    def drop(self) -> None:
        self.writer.close()

    def actions(self) -> list[str]:
        return [str(f.get("Action", "")).lower() for f in self.frames]


class FakeAmi:
    """Greets, accepts (or refuses) Login, answers Ping and simple actions.

    ``originate``: "silent" (never answered: outstanding until the test acts),
    "ack" (only the "successfully queued" Response, the OriginateResponse is
    still to come). ``ignore``: actions never answered at all.
    """

    def __init__(self) -> None:
        self.conns: list[Conn] = []
        self.auth_ok = True
        self.fully_booted = False
        self.originate = "silent"
        self.ignore: set[str] = set()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for c in self.conns:
            c.writer.close()
        await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 2.0)
        await self._server.wait_closed()

    @property
    def frames(self) -> list[Frame]:
        return [f for c in self.conns for f in c.frames]

    def actions(self) -> list[str]:
        return [a for c in self.conns for a in c.actions()]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Conn(writer)
        self.conns.append(conn)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.append(task)
        writer.write(GREETING)
        buf = b""
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                conn.raw += data
                buf += data
                while b"\r\n\r\n" in buf:
                    raw, buf = buf.split(b"\r\n\r\n", 1)
                    frame = parse_frame(raw)
                    conn.frames.append(frame)
                    if not conn.silent:
                        self._answer(conn, frame)
        writer.close()

    def _answer(self, conn: Conn, frame: Frame) -> None:
        action = str(frame.get("Action", "")).lower()
        aid = str(frame.get("ActionID", ""))
        if action in self.ignore:
            return
        if action == "login":
            if not self.auth_ok:
                conn.send(Response="Error", ActionID=aid, Message="Authentication failed")
                conn.drop()
                return
            conn.send(Response="Success", ActionID=aid, Message="Authentication accepted")
            if self.fully_booted:
                conn.send(Event="FullyBooted", Privilege="system,all", Status="Fully Booted")
        elif action == "ping":
            conn.send(Response="Success", ActionID=aid, Ping="Pong", Timestamp="1.0")
        elif action == "originate":
            if self.originate == "ack":
                conn.send(Response="Success", ActionID=aid, Message="Originate successfully queued")
        else:
            conn.send(Response="Success", ActionID=aid, Message=f"{action} done")


@pytest.fixture
async def server() -> AsyncIterator[FakeAmi]:
    srv = FakeAmi()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


MakeClient = Callable[..., Any]


@pytest.fixture
async def make_client(server: FakeAmi) -> AsyncIterator[MakeClient]:
    clients: list[AmiClient] = []

    def make(watch: Watch | None = None, **kw: Any) -> AmiClient:
        w = watch or Watch()
        opts: dict[str, Any] = {
            "action_timeout_s": 2.0,
            "connect_timeout_s": 2.0,
            "ping_interval_s": 60.0,
            "backoff_max_s": 0.5,
        }
        opts.update(kw)
        c = AmiClient(
            "127.0.0.1",
            server.port,
            "dialerd",
            SECRET,
            on_event=w.on_event,
            on_up=w.on_up,
            on_down=w.on_down,
            **opts,
        )
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.close()


def originate(attempt: str = "att-1") -> dict[str, str | list[str]]:
    return {
        "Action": "Originate",
        "Channel": "Local/442070001100@sim-customers",
        "Context": "dialer-outbound",
        "Exten": "s",
        "Priority": "1",
        "Async": "true",
        "ChannelId": attempt,
        "Variable": [f"DIALER_ATTEMPT={attempt}", "DIALER_CAMPAIGN=c1"],
    }


def pending(client: AmiClient) -> dict[str, Any]:
    """Actions panoramisk still holds a reply slot for on the live connection."""
    mgr: Any = client._manager
    if mgr is None or mgr.protocol is None:
        return {}
    return dict(mgr.protocol.responses)


# --------------------------------------------------------------- disconnects


@pytest.mark.parametrize(
    ("acked", "fully_booted"),
    [(False, False), (False, True), (True, True)],
    # FullyBooted after the re-login is what triggers panoramisk's re-send;
    # "queued-ack": Asterisk had answered "successfully queued", the
    # OriginateResponse was still to come
    ids=["unanswered", "unanswered-fullybooted", "queued-ack-fullybooted"],
)
async def test_originate_outstanding_at_drop_fails_and_is_never_resent(
    server: FakeAmi, make_client: MakeClient, acked: bool, fully_booted: bool
) -> None:
    server.fully_booted = fully_booted
    server.originate = "ack" if acked else "silent"
    watch = Watch()
    client = make_client(watch)
    await client.start()
    assert client.connected and watch.ups == 1

    fut = client.send(originate("att-drop"))
    await until(
        lambda: "originate" in server.conns[0].actions(), 3.0, "the originate", interval=0.01
    )
    assert not fut.done()

    t0 = time.monotonic()
    server.conns[0].drop()
    with pytest.raises(AmiConnectionLost):
        await client.wait_future(fut, 2.0)
    assert time.monotonic() - t0 < 1.0  # failed at once, did not wait for a timeout
    assert watch.downs == ["AMI connection lost"]

    # reconnects by itself (first backoff step 0.5 s) and logs in again
    await until(lambda: watch.ups == 2 and client.connected, 3.0, "reconnected", interval=0.01)
    assert len(server.conns) == 2
    # the new connection works ...
    resp = await client.action({"Action": "Ping"}, timeout=1.0)
    assert resp["Ping"] == "Pong"
    # ... give a would-be re-send (panoramisk does it on FullyBooted) a chance
    await asyncio.sleep(0.1)

    first, second = server.conns
    assert first.actions() == ["login", "originate"]
    assert second.actions() == ["login", "ping"]
    assert server.actions().count("originate") == 1
    assert [f["ChannelId"] for f in server.frames if "ChannelId" in f] == ["att-drop"]
    assert second.frames[0]["Secret"] == SECRET  # fresh Login, not a replay of old frames
    assert pending(client) == {}
    assert client._outstanding == set()


async def test_every_outstanding_action_fails_on_drop(
    server: FakeAmi, make_client: MakeClient
) -> None:
    server.ignore = {"redirect", "hangup"}
    client = make_client()
    await client.start()
    futs = [
        client.send(originate("att-a")),
        client.send(originate("att-b")),
        client.send({"Action": "Redirect", "Channel": "Local/1@x-1;1", "Context": "c"}),
        client.send({"Action": "Hangup", "Channel": "Local/1@x-1;1"}),
    ]
    await until(lambda: len(server.conns[0].frames) == 5, 3.0, "5 frames", interval=0.01)
    server.conns[0].drop()
    results = await asyncio.gather(*futs, return_exceptions=True)
    assert all(isinstance(r, AmiConnectionLost) for r in results), results
    await until(
        lambda: len(server.conns) == 2 and client.connected, 3.0, "reconnected", interval=0.01
    )
    await client.action({"Action": "Ping"}, timeout=1.0)
    assert server.conns[1].actions() == ["login", "ping"]


# ----------------------------------------------------- garbage and handlers


async def test_garbled_frames_and_raising_handler_keep_connection(
    server: FakeAmi, make_client: MakeClient
) -> None:
    seen: list[str] = []

    def on_event(msg: Message) -> None:
        seen.append(str(msg.get("Event")))
        if msg.get("Event") == "Boom":
            raise RuntimeError("handler bug")

    watch = Watch()
    watch.on_event = on_event  # type: ignore[method-assign]
    client = make_client(watch)
    await client.start()
    conn = server.conns[0]
    conn.send_raw(b"this is not an AMI frame at all\r\n\r\n")
    conn.send_raw(b"\xff\xfe\x00 binary junk: \x80\x81\r\n\r\n")
    conn.send_raw(b"Response: Success\r\nActionID: nobody-asked-for-this\r\n\r\n")
    conn.send_raw(b"Event: \r\n\r\n")
    # repeated headers that panoramisk itself calls str methods on
    conn.send_raw(b"Event: Dup\r\nEvent: Dup2\r\nUniqueid: 1\r\n\r\n")
    conn.send(Event="Boom", Uniqueid="2")
    conn.send(Event="Hangup", Uniqueid="3", Cause="16")
    resp = await client.action({"Action": "Ping"}, timeout=1.0)
    assert resp["Ping"] == "Pong"
    assert "Boom" in seen and "Hangup" in seen  # events after the bad ones still arrive
    assert len(server.conns) == 1 and client.connected and watch.downs == []


async def test_garbled_reply_to_pending_action_does_not_kill_connection(
    server: FakeAmi, make_client: MakeClient
) -> None:
    server.ignore = {"status"}
    watch = Watch()
    client = make_client(watch)
    await client.start()
    fut = client.send({"Action": "Status"})
    await until(lambda: "status" in server.conns[0].actions(), 3.0, "the status", interval=0.01)
    aid = server.conns[0].frames[-1]["ActionID"]
    # a reply whose Message header is repeated: panoramisk calls .lower() on it
    server.conns[0].send_raw(
        f"Response: Success\r\nActionID: {aid}\r\nMessage: a\r\nMessage: b\r\n\r\n".encode()
    )
    resp = await client.action({"Action": "Ping"}, timeout=1.0)
    assert resp["Ping"] == "Pong"
    assert len(server.conns) == 1 and watch.downs == []
    # the mangled reply either completed the action or left it to time out
    with contextlib.suppress(TimeoutError):
        await client.wait_future(fut, 0.2)
    await until(lambda: pending(client) == {}, 3.0, "nothing pending", interval=0.01)


# ------------------------------------------------------------------ watchdog


async def test_half_open_socket_is_detected_and_reconnected(
    server: FakeAmi, make_client: MakeClient
) -> None:
    watch = Watch()
    client = make_client(watch, ping_interval_s=0.1)
    await client.start()
    # watchdog pings
    await until(lambda: "ping" in server.conns[0].actions(), 3.0, "a ping", interval=0.01)
    server.conns[0].silent = True  # stop answering, never close (half-open)
    t0 = time.monotonic()
    await until(lambda: watch.downs != [], 5.0, "down reported", interval=0.01)
    # ping_interval 0.1 s; the Ping deadline has a 2 s floor in the adapter
    assert time.monotonic() - t0 < 3.5
    await until(lambda: watch.ups == 2 and client.connected, 3.0, "reconnected", interval=0.01)
    assert len(server.conns) == 2
    resp = await client.action({"Action": "Ping"}, timeout=1.0)
    assert resp["Ping"] == "Pong"


# ------------------------------------------------------------------- timeout


async def test_action_timeout_leaves_nothing_pending(
    server: FakeAmi, make_client: MakeClient
) -> None:
    server.ignore = {"status"}
    client = make_client()
    await client.start()
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        await client.action({"Action": "Status"}, timeout=0.2)
    assert time.monotonic() - t0 < 1.0
    assert client._outstanding == set()
    assert pending(client) == {}
    # a late reply to the abandoned action hurts nobody
    aid = server.conns[0].frames[-1]["ActionID"]
    server.conns[0].send(Response="Success", ActionID=aid, Message="late")
    assert (await client.action({"Action": "Ping"}, timeout=1.0))["Ping"] == "Pong"
    assert pending(client) == {}


async def test_wait_future_timeout_leaves_nothing_pending(
    server: FakeAmi, make_client: MakeClient
) -> None:
    client = make_client()
    await client.start()
    fut = client.send(originate("att-slow"))
    with pytest.raises(TimeoutError):
        await client.wait_future(fut, 0.2)
    assert client._outstanding == set()
    assert pending(client) == {}


# ------------------------------------------------------------ CR/LF injection


@pytest.mark.parametrize(
    "fields",
    [
        {"Channel": "Local/1@x\r\nAction: Hangup"},
        {"Channel": "Local/1@x\nAction: Hangup"},
        {"CallerID": "Bob\rEvil: 1"},
        {"Variable": ["A=1", "B=2\r\n\r\nAction: Hangup"]},
        {"X-Header\r\nAction: Hangup": "1"},
    ],
    ids=["crlf-channel", "lf-channel", "cr-callerid", "crlf-variable", "crlf-key"],
)
async def test_crlf_injection_is_refused_before_the_socket(
    server: FakeAmi, make_client: MakeClient, fields: dict[str, str | list[str]]
) -> None:
    client = make_client()
    await client.start()
    await until(lambda: len(server.conns[0].frames) == 1, 3.0, "1 frame", interval=0.01)
    before = bytes(server.conns[0].raw)
    action: dict[str, str | list[str]] = {**originate("att-inj"), **fields}
    with pytest.raises(UnsafeValue):
        client.send(action)
    # prove the socket is quiet: the next action's frame follows the Login directly
    await client.action({"Action": "Ping"}, timeout=1.0)
    conn = server.conns[0]
    assert conn.actions() == ["login", "ping"]
    after = bytes(conn.raw[len(before) :])
    assert b"Originate" not in after and b"Hangup" not in after
    assert client._outstanding == set() and pending(client) == {}


# ----------------------------------------------------------- start() failures


async def test_wrong_credentials_fail_clearly_and_do_not_retry(
    server: FakeAmi, make_client: MakeClient
) -> None:
    server.auth_ok = False
    watch = Watch()
    client = make_client(watch)
    with pytest.raises(AmiAuthError) as info:
        await client.start()
    msg = str(info.value)
    assert SECRET not in msg and SECRET not in repr(client)
    assert "dialerd" in msg and "Authentication failed" in msg
    assert not client.connected and watch.ups == 0
    # no silent reconnect loop (panoramisk's would retry every 2 s; ours
    # would after 0.5 s): nothing else reaches the server
    await asyncio.sleep(0.55)
    assert len(server.conns) == 1
    assert server.actions() == ["login"]


async def test_unreachable_port_fails_fast() -> None:
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = AmiClient(
        "127.0.0.1", port, "dialerd", SECRET, on_event=lambda _m: None, connect_timeout_s=0.5
    )
    t0 = time.monotonic()
    with pytest.raises(AmiConnectError) as info:
        await client.start()
    assert time.monotonic() - t0 < 1.0
    assert str(port) in str(info.value) and SECRET not in str(info.value)
    await client.close()


async def test_silent_server_fails_connect_within_timeout(server: FakeAmi) -> None:
    """TCP accepts but AMI never answers the Login: AmiConnectError, not a hang."""
    server.ignore = {"login"}
    client = AmiClient(
        "127.0.0.1", server.port, "dialerd", SECRET, on_event=lambda _m: None, connect_timeout_s=0.3
    )
    t0 = time.monotonic()
    with pytest.raises(AmiConnectError) as info:
        await client.start()
    assert time.monotonic() - t0 < 1.0
    assert SECRET not in str(info.value)
    await client.close()
