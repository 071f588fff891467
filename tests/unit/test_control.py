"""The control socket: a real Unix socket in tmp_path, the real client."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest
import structlog

from dialerd.control import (
    MAX_DEPTH,
    MAX_LINE,
    ControlError,
    NotRunningError,
    control_request,
    serve_control,
)


def _short_path(tmp_path: Path) -> Path:
    # AF_UNIX paths are limited to ~107 bytes; pytest's tmp_path can be longer
    p = tmp_path / "c.sock"
    if len(str(p)) < 100:
        return p
    import tempfile

    return Path(tempfile.mkdtemp(prefix="dd")) / "c.sock"


async def test_round_trip_status_and_commands(tmp_path: Path) -> None:
    path = _short_path(tmp_path)
    seen: list[dict[str, Any]] = []

    def handler(req: dict[str, Any]) -> dict[str, Any]:
        seen.append(req)
        if req.get("command") == "status":
            return {"ok": True, "campaigns": [], "agents": [], "ami_up": True, "draining": False}
        if req.get("command") == "boom":
            raise RuntimeError("handler bug")
        return {"ok": False, "error": f"unknown command {req.get('command')!r}"}

    server = await serve_control(path, handler)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        st = await asyncio.to_thread(control_request, path, {"command": "status"})
        assert st == {"ok": True, "campaigns": [], "agents": [], "ami_up": True, "draining": False}
        bad = await asyncio.to_thread(control_request, path, {"command": "nope"})
        assert bad == {"ok": False, "error": "unknown command 'nope'"}
        # a handler exception is a reply, and the server keeps serving
        boom = await asyncio.to_thread(control_request, path, {"command": "boom"})
        assert boom["ok"] is False and "handler bug" in boom["error"]
        again = await asyncio.to_thread(control_request, path, {"command": "status"})
        assert again["ok"] is True
        assert [r["command"] for r in seen] == ["status", "nope", "boom", "status"]
    finally:
        server.close()
        await server.wait_closed()


async def test_bad_json_gets_an_error_reply(tmp_path: Path) -> None:
    path = _short_path(tmp_path)
    server = await serve_control(path, lambda r: {"ok": True})
    try:
        reader, writer = await asyncio.open_unix_connection(str(path))
        writer.write(b"not json\n[1,2]\n")
        await writer.drain()
        first = await reader.readline()
        second = await reader.readline()
        writer.close()
        assert b"bad request: not JSON" in first
        assert b"a request is a JSON object" in second
    finally:
        server.close()
        await server.wait_closed()


def test_not_running_no_socket(tmp_path: Path) -> None:
    path = tmp_path / "absent.sock"
    with pytest.raises(NotRunningError) as exc:
        control_request(path, {"command": "status"})
    assert str(exc.value) == f"dialerd is not running (no socket at {path})"


def test_not_running_stale_socket(tmp_path: Path) -> None:
    path = _short_path(tmp_path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()  # the file stays, nobody listens: a daemon that died
    with pytest.raises(NotRunningError, match="dialerd is not running"):
        control_request(path, {"command": "status"})


async def test_stale_socket_is_replaced_but_a_live_one_is_not(tmp_path: Path) -> None:
    path = _short_path(tmp_path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()
    server = await serve_control(path, lambda r: {"ok": True, "n": 1})
    try:
        assert (await asyncio.to_thread(control_request, path, {"command": "x"}))["n"] == 1
        with pytest.raises(ControlError, match="already listening"):
            await serve_control(path, lambda r: {"ok": True})
    finally:
        server.close()
        await server.wait_closed()


async def test_refuses_to_delete_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "not-a-socket"
    path.write_text("precious")
    with pytest.raises(ControlError, match="not a socket"):
        await serve_control(path, lambda r: {"ok": True})
    assert path.read_text() == "precious"


async def _lines(path: Path, payload: bytes, n: int) -> list[bytes]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(payload)
        await writer.drain()
        return [await asyncio.wait_for(reader.readline(), 5) for _ in range(n)]
    finally:
        writer.close()


async def test_deep_nesting_gets_an_error_reply_and_the_connection_goes_on(
    tmp_path: Path,
) -> None:
    """Python's JSON parser recurses: 3000 brackets (6 KB) raised an
    unhandled RecursionError in the connection's task, and no reply."""
    path = _short_path(tmp_path)
    seen: list[dict[str, Any]] = []

    def handler(r: dict[str, Any]) -> dict[str, Any]:
        seen.append(r)
        return {"ok": True}

    server = await serve_control(path, handler)
    try:
        for deep in (b"[" * 3000, b'{"a":' * 1500, b"[" * 40 + b"]" * 40):
            first, second = await _lines(path, deep + b'\n{"command":"status"}\n', 2)
            assert json.loads(first) == {
                "ok": False,
                "error": f"bad request: JSON nested deeper than {MAX_DEPTH} levels",
            }
            assert json.loads(second) == {"ok": True}
        assert seen == [{"command": "status"}] * 3
    finally:
        server.close()
        await server.wait_closed()


async def test_a_line_too_long_is_refused_and_the_connection_closed(tmp_path: Path) -> None:
    path = _short_path(tmp_path)
    server = await serve_control(path, lambda r: {"ok": True})
    try:
        reader, writer = await asyncio.open_unix_connection(str(path))
        writer.write(b'{"reason": "' + b"x" * MAX_LINE + b'"}\n')
        await writer.drain()
        reply = json.loads(await asyncio.wait_for(reader.readline(), 5))
        assert reply == {"ok": False, "error": f"request too long (at most {MAX_LINE} bytes)"}
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b'{"a": NaN}', "bad request: NaN and Infinity are not numbers"),
        (b'{"a": -Infinity}', "bad request: NaN and Infinity are not numbers"),
        (b'{"a": 1e999}', "bad request: number out of range: 1e999"),
        (b'{"a": "\\ud800"}', "bad request: a string holds a lone surrogate"),
        (b'{"a": "\xff"}', "bad request: not UTF-8"),
        (b'{"a": ' + b"9" * 5000 + b"}", "bad request: integer longer than 30 digits"),
    ],
    ids=["nan", "inf", "1e999", "surrogate", "latin1", "long-int"],
)
async def test_hostile_json_values_are_refused(tmp_path: Path, raw: bytes, error: str) -> None:
    path = _short_path(tmp_path)
    server = await serve_control(path, lambda r: {"ok": True})
    try:
        (reply,) = await _lines(path, raw + b"\n", 1)
        assert json.loads(reply) == {"ok": False, "error": error}
    finally:
        server.close()
        await server.wait_closed()


async def test_a_long_pause_reason_is_refused_not_logged_not_queued(tmp_path: Path) -> None:
    """The daemon's own handler (a Supervisor) behind the real socket: a
    60 KB reason was accepted, logged and published."""
    from test_supervisor_commands import make_supervisor

    path = _short_path(tmp_path)
    sup = make_supervisor(tmp_path)
    server = await serve_control(path, sup.handle_control)

    def pause(reason: str) -> dict[str, Any]:
        return control_request(path, {"command": "pause", "campaign": "c1", "reason": reason})

    try:
        with structlog.testing.capture_logs() as logs:
            huge = await asyncio.to_thread(pause, "r" * 60_000)
            long = await asyncio.to_thread(pause, "r" * 65)
            multiline = await asyncio.to_thread(pause, "a\nb")
        assert huge == {"ok": False, "error": f"request too long (at most {MAX_LINE} bytes)"}
        reason_error = "reason must be at most 64 printable characters (no line breaks)"
        assert long == multiline == {"ok": False, "error": reason_error}
        assert sup.shell.queue.empty()
        assert "r" * 65 not in repr(logs)
        ok = await asyncio.to_thread(pause, "r" * 64)
        assert ok["ok"] is True
        st = await asyncio.to_thread(control_request, path, {"command": "status"})
        assert st["ok"] is True
    finally:
        server.close()
        await server.wait_closed()
