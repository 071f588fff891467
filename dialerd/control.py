"""The daemon's local control socket: live state and supervisor commands
for ``dialerd status`` and ``dialerd campaign pause|resume``.

A Unix socket speaking newline-delimited JSON, one request object per line
and one reply object per line, each request answered by a handler the
server is given (the daemon passes its own: ``{"command": "status"}`` for
the live figures, anything else a supervisor command). This module knows
nothing of the daemon, so the CLI's client side imports no daemon code and
the server can be tested with any handler.

Access is the file's: mode 0660, so the daemon's user and group only. Even
so a request is read as hostile: a line longer than :data:`MAX_LINE` is
refused (and the connection closed), and a line is parsed by
:func:`dialerd.wire.loads` (depth, numbers and strings bounded); each
refusal is an error reply, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from dialerd.wire import WireError, loads

DEFAULT_SOCKET = "/run/dialerd/control.sock"
#: a request line longer than this is refused (and the connection closed);
#: a request is a handful of short fields
MAX_LINE = 8 * 1024
#: ``[`` / ``{`` nesting allowed in a request (requests are flat objects)
MAX_DEPTH = 8

Handler = Callable[[dict[str, Any]], dict[str, Any]]


log = structlog.get_logger("dialerd.control")


class ControlError(RuntimeError):
    """The daemon cannot be reached, or it answered with garbage."""


class NotRunningError(ControlError):
    pass


# ------------------------------------------------------------------ server


def _remove_stale(path: Path) -> None:
    """A socket file left by a dead daemon is removed; anything that is not a
    socket is left alone (a misconfigured path must not delete a file)."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ControlError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(0.5)
        probe.connect(str(path))
    except OSError:
        path.unlink(missing_ok=True)  # nobody listening: stale
        return
    finally:
        probe.close()
    raise ControlError(f"{path}: another dialerd is already listening")


async def serve_control(path: str | Path, handler: Handler) -> asyncio.AbstractServer:
    """Listen on ``path``; each request line is answered with ``handler(obj)``.

    The handler runs on the event loop (it must not block); an exception
    inside it becomes ``{"ok": false, "error": ...}`` and never ends the
    server."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(p)

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    msg = f"request too long (at most {MAX_LINE} bytes)"
                    writer.write(_dump({"ok": False, "error": msg}))
                    await writer.drain()
                    break
                if not line:
                    break
                if not line.strip():
                    continue
                writer.write(_dump(_answer(line, handler)))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    old_umask = os.umask(0o117)  # the socket is created 0660, never wider
    try:
        server = await asyncio.start_unix_server(client, path=str(p), limit=MAX_LINE)
    finally:
        os.umask(old_umask)
    os.chmod(p, 0o660)
    return server


def _answer(line: bytes, handler: Handler) -> dict[str, Any]:
    try:
        obj = loads(line, max_bytes=MAX_LINE, max_depth=MAX_DEPTH)
    except WireError as exc:
        return {"ok": False, "error": f"bad request: {exc}"}
    if not isinstance(obj, dict):
        return {"ok": False, "error": "a request is a JSON object"}
    try:
        return handler(obj)
    except Exception as exc:  # the socket outlives a bad request
        log.exception("control.handler_failed")
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}


def _dump(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, separators=(",", ":"), default=str) + "\n").encode()


# ------------------------------------------------------------------ client


def control_request(path: str | Path, obj: dict[str, Any], timeout: float = 5) -> dict[str, Any]:
    """One request, one reply (blocking). Raises :class:`NotRunningError`
    when nothing listens on ``path``, :class:`ControlError` on a bad reply."""
    p = Path(path)
    if not p.exists():
        raise NotRunningError(f"dialerd is not running (no socket at {p})")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(str(p))
        except (ConnectionRefusedError, FileNotFoundError):
            raise NotRunningError(
                f"dialerd is not running (nothing listens on {p}; stale socket)"
            ) from None
        except PermissionError:
            raise ControlError(
                f"{p}: permission denied (run as the dialerd user or its group)"
            ) from None
        sock.sendall(_dump(obj))
        buf = b""
        while not buf.endswith(b"\n"):
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                raise ControlError(f"dialerd did not answer within {timeout} s") from None
            if not chunk:
                break
            buf += chunk
    finally:
        sock.close()
    if not buf.strip():
        raise ControlError("dialerd closed the control connection without answering")
    try:
        reply = json.loads(buf)
    except ValueError as exc:
        raise ControlError(f"bad reply from dialerd: {exc}") from None
    if not isinstance(reply, dict):
        raise ControlError("bad reply from dialerd: not an object")
    return reply
