"""A loopback TCP relay that can cut its connections on demand.

Put between the daemon and the real Asterisk it drops the AMI socket at a
chosen moment (Originates outstanding, mid-event) without touching either
end: the fault a flaky network or a firewall gives, which Asterisk itself
cannot be told to produce.
"""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.host = "127.0.0.1"
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self.cuts = 0
        self.accepted = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            ur, uw = await asyncio.open_connection(*self.target)
        except OSError:
            w.close()
            return
        pair = (w, uw)
        self._pairs.add(pair)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(r, uw), pipe(ur, w), return_exceptions=True)
        self._pairs.discard(pair)

    def cut(self) -> int:
        """Abort every relayed connection now (both sides see a reset)."""
        n = 0
        for a, b in list(self._pairs):
            for wr in (a, b):
                wr.transport.abort()
            n += 1
        self._pairs.clear()
        self.cuts += 1
        return n

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
