"""``dialerd status`` with inbound queues: the daemon's own handler (a
Supervisor over a bare shell whose core has a queue and callers) behind the
real control socket, the real CLI, its ``--json`` and its table."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from dialerd.campaign.model import Campaign
from dialerd.cli import main
from dialerd.cli.status import render_status
from dialerd.control import serve_control
from dialerd.core import events as ev
from dialerd.core.testing import queue
from dialerd.daemon.shell import Shell
from dialerd.daemon.supervisor import Supervisor
from dialerd.settings import Settings


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def blended_supervisor(clock: Clock) -> Supervisor:
    """Campaign ``c1`` (agents 1001, 1002 logged in), queue ``q1`` answered
    by its agents: in-1 answered by 1001 after 3 s, in-2 by 1002 after 25 s,
    in-3 hung up after 30 s, in-4 waiting for 12 s at ``clock``'s time."""
    settings = Settings.model_validate({"ami": {"username": "dialerd", "secret": "x"}})
    shell = Shell(settings, clock=clock)
    camp = Campaign.model_validate(
        {
            "name": "c1",
            "dial_mode": "progressive",
            "trunk": "Local/{number}@sim-customers",
            "caller_id": {"name": "Acme", "number": "+442071234567"},
            "agents": ["1001", "1002"],
            "safe_harbor_sound": "custom/safe",
            "max_lines": 10,
        }
    )
    core, t = shell.core, clock.now
    core.handle(ev.CampaignLoaded(t, camp))
    core.handle(ev.AmiUp(t))
    core.handle(ev.QueuesLoaded(t, (queue(),)))
    for aid in ("1001", "1002"):
        core.handle(ev.AgentJoined(t, aid, f"Local/{aid}@a;2", f"u-{aid}"))

    def arrive(cid: str, at: float) -> None:
        core.handle(ev.InboundArrived(at, cid, "q1", f"PJSIP/trunk-{cid}", "+442079460001",
                                      "+442071234567"))  # fmt: skip

    arrive("in-1", t)
    core.handle(ev.CallConnected(t + 3, "in-1", "1001"))
    arrive("in-2", t + 3)
    core.handle(ev.CallConnected(t + 28, "in-2", "1002"))
    arrive("in-3", t + 30)
    core.handle(ev.CallHungUp(t + 60, "in-3", 16))
    arrive("in-4", t + 60)
    clock.now = t + 72
    return Supervisor(shell)


def _short_path(tmp_path: Path) -> Path:
    p = tmp_path / "c.sock"
    if len(str(p)) < 100:
        return p
    import tempfile

    return Path(tempfile.mkdtemp(prefix="dd")) / "c.sock"


async def test_status_json_over_the_socket_carries_the_queues(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sup = blended_supervisor(Clock(1_000_000.0))
    path = _short_path(tmp_path)
    server = await serve_control(path, sup.handle_control)
    try:
        rc = await asyncio.to_thread(main, ["status", "--once", "--json", "--socket", str(path)])
    finally:
        server.close()
        await server.wait_closed()
    assert rc == 0
    st = json.loads(capsys.readouterr().out)
    (q,) = st["queues"]
    assert q["queue"] == "q1" and q["enabled"] is True
    assert (q["waiting"], q["longest_wait_s"]) == (1, 12.0)
    assert (q["offered"], q["answered"], q["answered_in_sl"]) == (4, 2, 1)
    assert (q["abandoned"], q["abandoned_short"], q["fallbacks"], q["callbacks"]) == (1, 0, 0, 0)
    assert q["service_level"] == round(1 / 3, 5) and q["asa_s"] == 14.0
    assert q["target"] == {"percent": 80, "within_s": 20}
    assert q["agents"] == {"logged_in": 2, "ready": 0, "talking": 2, "on_queue": 2}
    assert q["since_start"]["offered"] == 4
    by_id = {a["id"]: a for a in st["agents"]}
    assert by_id["1001"]["inbound_talk_s"] == 69.0 and by_id["1001"]["outbound_talk_s"] == 0.0
    assert by_id["1002"]["occupancy"] == round(44 / 72, 5)


def test_the_table_shows_a_queues_section_only_with_queues() -> None:
    sup = blended_supervisor(Clock(1_000_000.0))
    st: dict[str, Any] = sup.handle_control({"command": "status"})
    con = Console(record=True, width=240)
    con.print(render_status(st))
    text = con.export_text()
    assert "queues (counts: today " in text
    (row,) = [line for line in text.splitlines() if line.lstrip("│ ").startswith("q1")]
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[:5] == ["q1", "taking calls", "1", "0:12", "0/2"]
    assert cells[5] == "33.3% / 80%/20s"  # under its target
    assert cells[6:] == ["14.0s", "2/4", "1 (+0 short)", "0", "0"]
    assert "in/out" in text and "occ" in text

    st["queues"] = []
    con = Console(record=True, width=240)
    con.print(render_status(st))
    assert "queues" not in con.export_text()
