"""The daemon's shell without Asterisk: what a run opens it closes, even
when it never got going; the figures every reader shows come from the core
alone; a failing background task is reported, not lost."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path
from typing import Any

import pytest
import structlog

from dialerd.asterisk.ami import AmiError
from dialerd.campaign.model import Campaign
from dialerd.core import events as ev
from dialerd.core import views
from dialerd.core.engine import DialerCore
from dialerd.daemon import Daemon
from dialerd.daemon.tasks import TaskSet, background
from dialerd.settings import Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _campaign() -> Campaign:
    return Campaign.model_validate(
        {
            "name": "c1",
            "trunk": "Local/{number}@sim-customers",
            "caller_id": {"name": "Acme", "number": "+442071234567"},
            "agents": ["1001", "1002"],
            "safe_harbor_sound": "custom/safe",
            "max_lines": 10,
        }
    )


def test_views_are_the_cores_figures() -> None:
    core = DialerCore(run_id="t")
    core.handle(ev.CampaignLoaded(100.0, _campaign()))
    core.handle(ev.AmiUp(100.0))
    core.handle(ev.AgentJoined(100.0, "1001", "Local/1001@a;2", "u-1001"))

    state = views.campaign_state(core, "c1", 103.0)
    assert state["campaign"] == "c1" and state["at"] == 103.0
    assert state["agents"]["logged_in"] == 1 and state["max_lines"] == 10
    assert state["dialing_blocked_by"] is None
    assert views.campaign_state(core, "c1", 103.0, "refused")["dialing_blocked_by"] == (
        "ami: refused"
    )

    (agent,) = views.agents_state(core, 103.0)
    assert agent["id"] == "1001" and agent["campaign"] == "c1"
    assert agent["time_in_state_s"] == 3.0

    st = views.status(core, 103.0, "down")
    assert st["ok"] is True and st["ami_up"] is False and st["draining"] is False
    assert [c["campaign"] for c in st["campaigns"]] == ["c1"]
    assert views.status_line(core).startswith("c1: 1 agents (")
    assert views.status_line(DialerCore(run_id="u")) == "no campaigns"


async def test_a_stop_while_waiting_for_ami_closes_what_the_run_opened(tmp_path: Path) -> None:
    metrics_port = _free_port()
    settings = Settings.model_validate(
        {
            # nothing listens there: the daemon waits for Asterisk, with backoff
            "ami": {
                "port": _free_port(),
                "username": "dialerd",
                "secret": "x",
                "connect_timeout_s": 1,
            },
            "store": {"path": str(tmp_path / "s.db")},
            "campaigns_dir": str(tmp_path),
            "control_socket": str(tmp_path / "c.sock"),
            "metrics": {"enabled": True, "port": metrics_port},
        }
    )
    hup_before = signal.getsignal(signal.SIGHUP)
    daemon = Daemon(settings)
    run = asyncio.create_task(daemon.run())
    for _ in range(100):
        if daemon.ami_down_reason != "not connected yet":
            break
        await asyncio.sleep(0.05)
    assert daemon.ami_down_reason != "not connected yet", "no AMI connect attempt seen"
    assert not daemon.started.is_set()

    daemon.request_stop()
    with pytest.raises(AmiError):  # the CLI turns this into exit status 3
        await asyncio.wait_for(run, 10)

    assert daemon.store is not None
    with pytest.raises(ValueError):  # aiosqlite: no active connection
        await daemon.store.get_lead(1)
    with socket.socket() as s:  # the metrics port is free again
        s.bind(("127.0.0.1", metrics_port))
    assert signal.getsignal(signal.SIGHUP) == hup_before
    assert not (tmp_path / "c.sock").exists()


async def test_a_failed_background_task_is_logged() -> None:
    async def boom() -> None:
        raise RuntimeError("disk on fire")

    tasks = TaskSet("store")
    with structlog.testing.capture_logs() as logs:
        tasks.spawn(boom())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    failed = [e for e in logs if e["event"] == "task.failed"]
    assert failed and failed[0]["tasks"] == "store"
    assert isinstance(failed[0]["exc_info"], RuntimeError)
    assert tasks.pending() == []


async def test_background_cancels_its_loop_and_reports_a_crash() -> None:
    seen: list[str] = []

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            seen.append("cancelled")

    async with background(forever(), "loop") as task:
        await asyncio.sleep(0)
    assert task.cancelled() and seen == ["cancelled"]

    async def crash() -> Any:
        raise RuntimeError("bug")

    with structlog.testing.capture_logs() as logs:
        async with background(crash(), "loop"):
            await asyncio.sleep(0)
    assert [e["event"] for e in logs] == ["task.failed"]
