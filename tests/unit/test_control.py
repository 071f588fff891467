"""The control socket: a real Unix socket in tmp_path, the real client."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from dialerd.control import (
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
        assert b"bad JSON" in first
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
