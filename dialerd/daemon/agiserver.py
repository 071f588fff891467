"""The daemon's FastAGI server and its table of scripts.

Asterisk runs ``AGI(agi://${DIALER_AGI}/<script>,<args>)``; the script
name picks the handler from :attr:`AgiServer.scripts`:

- ``login``: the phone login (:class:`dialerd.daemon.login.PhoneLogin`),
  when an agents file is configured;
- ``inbound``: a carrier call to a DID (``agi://.../inbound,<DID>``),
  answered by :meth:`dialerd.daemon.app.Daemon.inbound_agi` with the
  verdict of :mod:`dialerd.daemon.inbound_agi`.

A script nobody registered is logged and the session closed, which the
dialplan sees as a failed AGI (its daemon-away path).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

import structlog

from dialerd.daemon.agi import AgiSession, Handler, serve_agi
from dialerd.daemon.executor import CommandExecutor
from dialerd.daemon.shell import Shell

log = structlog.get_logger("dialerd")

#: the global the dialplan dials (host:port), set on every AMI login
ANNOUNCE_VAR = "DIALER_AGI"


class AgiServer:
    """Serves the scripts of ``scripts`` on the ``agi`` settings' address
    (a :class:`~dialerd.daemon.lifecycle.Service`)."""

    def __init__(
        self, shell: Shell, executor: CommandExecutor, scripts: Mapping[str, Handler]
    ) -> None:
        self.shell = shell
        self.executor = executor
        #: script name -> handler; may be changed until the server starts
        self.scripts: dict[str, Handler] = dict(scripts)
        self.address: str | None = None

    async def start(self, stack: contextlib.AsyncExitStack) -> None:
        s = self.shell.settings.agi
        try:
            server = await serve_agi(
                s.host, s.port, self.session, allow=s.allow, max_sessions=s.max_sessions
            )
        except OSError as exc:
            # phone logins and inbound calls are impossible, dialing is not
            log.error("agi.unavailable", host=s.host, port=s.port, error=str(exc))
            return
        port = server.sockets[0].getsockname()[1]
        self.address = s.announce or f"{s.host}:{port}"
        log.info("agi.serving", host=s.host, port=port, announce=self.address,
                 scripts=sorted(self.scripts))  # fmt: skip

        async def close() -> None:
            server.close()
            await server.wait_closed()

        stack.push_async_callback(close)
        self.announce()

    def ami_up(self) -> None:
        """Asterisk (re)connected: its globals may be fresh, say where we are."""
        self.announce()

    def announce(self) -> None:
        if self.address is not None:
            self.executor.send_actions(
                [{"Action": "Setvar", "Variable": ANNOUNCE_VAR, "Value": self.address}]
            )

    async def session(self, agi: AgiSession) -> None:
        handler = self.scripts.get(agi.script)
        if handler is None:
            log.warning("agi.unknown_script", script=agi.script)
            return
        await handler(agi)
