"""A small FastAGI server: Asterisk's ``AGI(agi://host:port/script,args)``
connects here, sends the channel's ``agi_*`` variables, then runs the
commands this side writes, one line each, and answers each with
``200 result=...``.

Why FastAGI for the PIN (verified on Asterisk 22.10 at verbose 10 and debug
10): what ``GET DATA`` collects travels only on this socket. Asterisk logs
the ``AGI(...)`` line and ``AGI Script ... completed``, never a command or
its result (unless someone runs ``agi set debug on`` on its CLI); the
``AGIExecStart``/``AGIExecEnd`` AMI events (class ``agi``) carry the
command and ``Result: Success``, not the digits. ``Read()`` would log
``User entered '<digits>'`` at verbose 3, and any dialplan application
given the digits logs them with its arguments.

Nothing here logs what a command returned: the caller decides what may be
logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger("dialerd")

#: the environment block is a few hundred bytes; refuse a peer that floods
MAX_ENV_LINES = 100
MAX_LINE = 1024
#: what a command's words may hold (file names, variable names, values we
#: write: E.164 numbers included, hence +; never a space, quote or line break)
_WORD = re.compile(r"^[A-Za-z0-9_./&:+-]{1,200}$")
_REPLY = re.compile(r"^(\d{3})[ -](?:result=(-?[0-9*#A-Da-d]*))?\s*(.*)$")


class AgiHangup(Exception):
    """The channel hung up, or the connection ended, mid-session."""


class AgiError(Exception):
    """Asterisk refused a command (5xx) or answered something unreadable."""


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    result: str
    rest: str


@dataclass
class AgiSession:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    env: dict[str, str] = field(default_factory=dict)
    #: seconds a command may take (a prompt plus the time to type)
    timeout_s: float = 60.0

    @property
    def script(self) -> str:
        """``login`` of ``agi://host:port/login``."""
        return self.env.get("agi_network_script", "")

    @property
    def channel(self) -> str:
        return self.env.get("agi_channel", "")

    def arg(self, n: int) -> str:
        return self.env.get(f"agi_arg_{n}", "")

    async def read_env(self) -> None:
        """Read the ``agi_*`` block. A key sent twice is refused: Asterisk
        writes channel data (the caller id, the dialed number) into it raw,
        and a line break in them (a SIP URI's %0A, decoded by PJSIP) makes
        lines of the caller's own, such as a second ``agi_channel``."""
        for _ in range(MAX_ENV_LINES):
            line = await self._line()
            if not line:
                return
            key, sep, value = line.partition(":")
            if sep and key.startswith("agi_"):
                if key in self.env:
                    raise AgiError(f"AGI environment repeats {key}")
                self.env[key] = value.strip()
        raise AgiError("AGI environment too long")

    async def _line(self) -> str:
        try:
            raw = await asyncio.wait_for(self.reader.readline(), self.timeout_s)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            raise AgiHangup(str(exc)) from None
        except ValueError:  # a line over the stream's limit
            raise AgiError("AGI line too long") from None
        if not raw:
            raise AgiHangup("connection closed")
        if len(raw) > MAX_LINE:
            raise AgiError("AGI line too long")
        return raw.decode("utf-8", "replace").rstrip("\r\n")

    async def command(self, *words: str) -> Reply:
        """Run one command; its reply. Raises AgiHangup when the channel is
        gone (``result=-1`` included) and AgiError on a refusal."""
        for w in words:
            if w != '""' and not _WORD.fullmatch(w):
                raise ValueError(f"unsafe AGI word {w!r}")
        try:
            self.writer.write((" ".join(words) + "\n").encode())
            await self.writer.drain()
        except ConnectionError as exc:
            raise AgiHangup(str(exc)) from None
        while True:
            line = await self._line()
            if line == "HANGUP":  # AGISIGHUP: the command's reply still follows
                continue
            m = _REPLY.match(line)
            if m is None:
                raise AgiError(f"unreadable AGI reply to {words[0]}")
            code = int(m.group(1))
            if line[3:4] == "-":  # 520- usage text: read to its last line
                while not (await self._line()).startswith(f"{code} "):
                    pass
            if code != 200:
                raise AgiError(f"AGI {words[0]} refused ({code})")
            result = m.group(2) or ""
            if result == "-1":
                raise AgiHangup(f"{words[0]}: channel gone")
            return Reply(code, result, m.group(3))

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> str:
        """Play ``prompt`` and collect up to ``max_digits`` keys ('#' ends
        early); what was typed, possibly empty. The digits are returned,
        never logged."""
        reply = await self.command("GET", "DATA", prompt, str(timeout_ms), str(max_digits))
        return reply.result

    async def stream_file(self, name: str) -> None:
        await self.command("STREAM", "FILE", name, '""')

    async def set_variable(self, name: str, value: str) -> None:
        await self.command("SET", "VARIABLE", name, value)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


Handler = Callable[[AgiSession], Awaitable[None]]


def _allowed(peer: object, allow: Sequence[str]) -> bool:
    if not isinstance(peer, tuple) or not peer:
        return False
    try:
        addr = ipaddress.ip_address(str(peer[0]))
    except ValueError:
        return False
    for a in allow:
        with contextlib.suppress(ValueError):
            if addr in ipaddress.ip_network(a, strict=False):
                return True
    return False


async def serve_agi(
    host: str,
    port: int,
    handler: Handler,
    *,
    allow: Sequence[str],
    max_sessions: int,
    session_timeout_s: float = 120.0,
) -> asyncio.Server:
    """Serve FastAGI on ``host:port``: a peer outside ``allow`` is dropped
    at once, at most ``max_sessions`` run together (the next is dropped:
    Asterisk then takes the daemon-away path), each for at most
    ``session_timeout_s``."""
    running: set[asyncio.Task[None]] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if not _allowed(peer, allow):
            log.warning("agi.refused_peer", peer=str(peer))
            writer.close()
            return
        if len(running) >= max_sessions:
            log.warning("agi.too_many_sessions", limit=max_sessions)
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        running.add(task)
        session = AgiSession(reader, writer)
        try:
            async with asyncio.timeout(session_timeout_s):
                await session.read_env()
                await handler(session)
        except AgiHangup:
            pass
        except (AgiError, TimeoutError) as exc:
            log.warning("agi.session_failed", script=session.script, error=str(exc))
        except Exception as exc:  # a bug must not leave the call silent: logged, closed
            log.error("agi.session_error", script=session.script, error=type(exc).__name__)
        finally:
            running.discard(task)
            session.close()

    return await asyncio.start_server(on_connect, host, port, limit=MAX_LINE * 4)
