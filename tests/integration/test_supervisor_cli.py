"""The supervisors' commands against a daemon dialing the real Asterisk:
``status --once --json`` while it runs, ``campaign pause|resume|list`` over
the control socket, and ``report --json`` after a campaign whose outcomes
are known in advance (the simulated numbers encode them)."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import structlog

from dialerd.cli import main
from dialerd.control import serve_control
from dialerd.core import commands as cmd
from dialerd.daemon import Daemon
from dialerd.sandbox.recorder import AmiRecorder
from dialerd.sandbox.scenario import (
    ANSWER,
    BUSY,
    UNALLOCATED,
    login_agents,
    sim_campaign,
    sim_number,
    write_config,
)
from dialerd.sandbox.wait import until
from dialerd.settings import Settings, load_settings
from dialerd.store import store_session

pytestmark = pytest.mark.asterisk
AGENTS = ["2501", "2502", "2503"]
CAMP = "sup"


@pytest.fixture
def daemon_log(tmp_path: Path) -> Any:
    """The in-process daemon logs to a file, not to the stdout the CLI's
    output is read from; structlog's previous configuration is restored."""
    old = structlog.get_config()
    with (tmp_path / "daemon.log").open("w") as fh:
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=fh))
        try:
            yield fh
        finally:
            structlog.configure(**old)


async def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``main(argv)`` in a thread (it runs its own event loop and blocks on
    the socket), with what it printed."""
    capsys.readouterr()
    rc = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


async def _status(capsys: pytest.CaptureFixture[str], sock: str) -> dict[str, Any]:
    rc, out, err = await _cli(capsys, "status", "--once", "--json", "--socket", sock)
    assert rc == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


async def _lead_counts(settings: Settings) -> dict[str, int]:
    async with store_session(settings) as store:
        return await store.lead_counts(CAMP)


async def test_status_pause_resume_and_report_on_a_known_campaign(
    asterisk_sandbox: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], daemon_log: Any
) -> None:
    sb = asterisk_sandbox
    sock = str(Path(tempfile.mkdtemp(prefix="ddsup")) / "control.sock")  # AF_UNIX: short path
    retry = {
        o: {"delay_s": 1, "max_attempts": 1}
        for o in (
            "busy",
            "no_answer",
            "congestion",
            "failed",
            "abandoned",
            "customer_hangup",
            "interrupted",
        )
    }
    extra: dict[str, Any] = {}
    wired = "control_socket" in Settings.model_fields
    if wired:
        extra["control_socket"] = sock
    cfg = write_config(
        tmp_path,
        sb.ami_user,
        {CAMP: sim_campaign(AGENTS, wrap_up_s=0.5, retry=retry)},
        **extra,
    )
    settings = load_settings(cfg)
    numbers = (
        [sim_number(800 + i, ANSWER, 0, 1) for i in range(10)]
        + [sim_number(820 + i, BUSY, 0, 0) for i in range(5)]
        + [sim_number(840 + i, UNALLOCATED, 0, 0) for i in range(5)]
    )
    csv_path = tmp_path / "leads.csv"
    csv_path.write_text("Telephone,Name\n" + "".join(f"{n},N{i}\n" for i, n in enumerate(numbers)))
    rc, out, err = await _cli(
        capsys, "leads", "import", CAMP, str(csv_path), "--map", "phone=Telephone", "-c", str(cfg)
    )
    assert (rc, out.strip()) == (0, "imported 20, duplicates 0, rejected 0"), err

    # not running yet: a clear error, exit 1
    rc, _, err = await _cli(capsys, "status", "--once", "--json", "--socket", sock)
    assert rc == 1 and f"dialerd is not running (no socket at {sock})" in err

    h = sb.harness_user
    rec = await AmiRecorder.connect(h)
    await login_agents(rec, AGENTS)
    agent_events: list[cmd.AgentStateChanged] = []

    def on_command(c: cmd.Command) -> None:
        if isinstance(c, cmd.AgentStateChanged):
            agent_events.append(c)

    daemon = Daemon(settings, on_command=on_command)
    # until the daemon serves its own socket (control_socket setting), the
    # test serves the very handler the daemon will
    server = None if wired else await serve_control(sock, daemon.handle_control)
    run = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.started.wait(), 30)
        # --- status while dialing
        last: dict[str, Any] = {}

        async def dialing() -> tuple[dict[str, Any], Any, list[Any]] | None:
            nonlocal last
            st = last = await _status(capsys, sock)
            c = st["campaigns"][0] if st["campaigns"] else None
            # the session's Asterisk holds other tests' agents too (no campaign)
            ours = [a for a in st["agents"] if a["campaign"] == CAMP]
            if c is not None and c["dials"] >= 1 and len(ours) == 3:
                return st, c, ours
            return None

        st, c, ours = await until(dialing, 30, lambda: f"dialing: {last}", interval=0.2)
        assert st["ok"] is True and st["ami_up"] is True and st["draining"] is False
        assert c["campaign"] == CAMP and c["dial_mode"] == "progressive"
        assert c["agents"]["logged_in"] == 3 and c["max_lines"] == 20
        assert {a["id"] for a in ours} == set(AGENTS)
        assert all(a["campaign"] is None for a in st["agents"] if a not in ours)
        for a in ours:
            assert a["campaign"] == CAMP
            assert a["state"] in {"ready", "reserved", "talking", "wrap"}
            assert a["time_in_state_s"] >= 0 and a["calls"] >= 0
        rc, out, _ = await _cli(capsys, "status", "--once", "--socket", sock)
        assert rc == 0 and "2501" in out and CAMP in out

        # --- pause, list, resume through the control socket
        rc, out, err = await _cli(
            capsys, "campaign", "pause", CAMP, "--reason", "briefing", "--socket", sock
        )
        assert (rc, out.strip()) == (0, f"{CAMP}: paused"), err
        await asyncio.sleep(0.3)
        st = await _status(capsys, sock)
        assert st["campaigns"][0]["paused"] is True
        assert st["campaigns"][0]["dialing_blocked_by"] == "paused"
        rc, out, _ = await _cli(capsys, "campaign", "list", "--socket", sock, "-c", str(cfg))
        assert rc == 0 and f"{CAMP}: enabled, progressive, 3 agents, paused" in out
        rc, _, err = await _cli(capsys, "campaign", "pause", "nope", "--socket", sock)
        assert rc == 1 and "unknown campaign 'nope'" in err
        rc, out, _ = await _cli(capsys, "campaign", "resume", CAMP, "--socket", sock)
        assert (rc, out.strip()) == (0, f"{CAMP}: resumed")

        # --- run to completion: every lead done (max_attempts 1 everywhere)
        async def all_done() -> bool:
            return (await _lead_counts(settings)).get("done", 0) >= 20

        await until(all_done, 90, "every lead done", interval=0.3)
        await asyncio.sleep(1.0)  # the last wrap-up ends
        final = await _status(capsys, sock)
    finally:
        daemon.request_stop()
        assert await asyncio.wait_for(run, 60) == 0
        if server is not None:
            server.close()
            await server.wait_closed()
        rec.close()

    fc = final["campaigns"][0]
    assert (fc["dials"], fc["answered"], fc["connected"], fc["abandoned"]) == (20, 10, 10, 0)
    assert fc["outcomes"] == {"answered": 10, "busy": 5, "failed": 5}
    assert sum(a["calls"] for a in final["agents"]) == 10

    # the daemon will write these itself (AgentStateChanged -> record_agent_event)
    async with store_session(settings) as store:
        if not await store.agent_events():
            for e in agent_events:
                await store.record_agent_event(e.agent_id, e.campaign, e.state, e.at)

    rc, out, err = await _cli(
        capsys, "report", "--campaign", CAMP, "--format", "json", "-c", str(cfg)
    )
    assert rc == 0, err
    rep = json.loads(out)
    (row,) = rep["rows"]
    assert row["campaign"] == CAMP
    assert (row["dials"], row["contacts"], row["connected"], row["abandons"]) == (20, 10, 10, 0)
    assert row["contact_rate"] == 0.5
    assert row["outcomes"] == {"answered": 10, "busy": 5, "failed": 5}
    # the simulated agents key no disposition: every connected call is "none"
    assert row["dispositions"] == {"none": 10}
    assert row["abandon_rate_ftc"] == 0.0
    assert row["abandon_rate_ofcom_worst_24h"] == 0.0
    assert (row["leads_exhausted"], row["leads_remaining"], row["leads_total"]) == (20, 0, 20)
    # 10 calls of about 1 s of talk each (the simulated customer hangs up)
    assert 10 / 60 * 0.8 <= row["talk_min"] <= 10 / 60 * 3
    assert row["agents"] == 3 and row["agent_hours"] > 0
    assert 0 < row["occupancy"] <= 1
    assert row["acw_per_call_s"] == pytest.approx(0.5, abs=0.35)
    assert row["aht_s"] == pytest.approx((row["talk_min"] * 60 + row["acw_s"]) / 10, abs=0.01)
    rc, out, _ = await _cli(capsys, "report", "--by", "agent", "--format", "json", "-c", str(cfg))
    by_agent = {r["agent"]: r for r in json.loads(out)["rows"]}
    assert sum(by_agent[a]["connected"] for a in AGENTS if a in by_agent) == 10
    assert by_agent["-"]["dials"] == 10  # busy + unallocated: no agent
    # the export: one row per attempt, custom field kept
    rc, _, _ = await _cli(capsys, "leads", "export", CAMP, str(tmp_path / "x.csv"), "-c", str(cfg))
    lines = (tmp_path / "x.csv").read_text().splitlines()
    assert rc == 0 and len(lines) == 21 and lines[0].endswith(",Name")
