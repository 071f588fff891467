"""An independent AMI listener for tests and benchmarks.

It logs in as the harness user (which sees every event) and keeps each event
with the local time it arrived, so a test can check the daemon's records
against what Asterisk itself reported, not against the daemon's own view.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from panoramisk import Manager

from dialerd.asterisk.ami import Message


@dataclass(slots=True)
class Seen:
    at: float
    fields: dict[str, str]

    def get(self, key: str, default: str = "") -> str:
        return self.fields.get(key, default)


@dataclass(slots=True)
class AmiRecorder:
    host: str
    port: int
    username: str
    secret: str
    events: list[Seen] = field(default_factory=list)
    _manager: Any = None
    _waiters: list[tuple[Any, asyncio.Future[Seen]]] = field(default_factory=list)

    @classmethod
    async def connect(cls, cred: Any, timeout: float = 10.0) -> AmiRecorder:
        """A recorder logged in as ``cred`` (host, port, username, secret:
        usually a sandbox's ``harness_user``), already listening."""
        rec = cls(cred.host, cred.port, cred.username, cred.secret)
        await rec.start(timeout)
        return rec

    async def start(self, timeout: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        logged_in: asyncio.Future[bool] = loop.create_future()

        def on_login(_m: Any) -> None:
            if not logged_in.done():
                logged_in.set_result(True)

        self._manager = Manager(
            loop=loop,
            host=self.host,
            port=self.port,
            username=self.username,
            secret=self.secret,
            ping_delay=3600,
            on_login=on_login,
        )
        self._manager.register_event("*", self._on_event)
        self._manager.connect()
        await asyncio.wait_for(logged_in, timeout)

    def _on_event(self, _m: Any, msg: Any) -> None:
        seen = Seen(time.time(), {str(k): str(v) for k, v in dict(msg).items()})
        self.events.append(seen)
        for pred, fut in list(self._waiters):
            if not fut.done() and pred(seen):
                fut.set_result(seen)
                self._waiters.remove((pred, fut))

    async def wait_for(self, pred: Any, timeout: float) -> Seen:
        for s in self.events:
            if pred(s):
                return s
        fut: asyncio.Future[Seen] = asyncio.get_running_loop().create_future()
        self._waiters.append((pred, fut))
        return await asyncio.wait_for(fut, timeout)

    async def action(self, fields: dict[str, Any], timeout: float = 10.0) -> Any:
        return await asyncio.wait_for(self._manager.send_action(fields), timeout)

    def named(self, event: str, **match: str) -> list[Seen]:
        return [
            s
            for s in self.events
            if s.get("Event") == event and all(s.get(k) == v for k, v in match.items())
        ]

    def close(self) -> None:
        if self._manager is not None:
            self._manager.close()


@dataclass
class Watch:
    """What an :class:`~dialerd.asterisk.ami.AmiClient` reported through its
    callbacks (``on_event``, ``on_up``, ``on_down``), for tests of the
    client itself against a real or a scripted AMI."""

    events: list[Message] = field(default_factory=list)
    ups: int = 0
    downs: list[str] = field(default_factory=list)

    def on_event(self, msg: Message) -> None:
        self.events.append(msg)

    def on_up(self) -> None:
        self.ups += 1

    def on_down(self, why: str) -> None:
        self.downs.append(why)
