"""Crash, restart and reconnect safety against the real Asterisk: no lead
lost, none dialed twice, checked by an independent AMI listener."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dialerd.daemon import Daemon
from dialerd.sandbox.asterisk import AmiCredentials, AsteriskSandbox
from dialerd.sandbox.asterisk_view import asterisk_view
from dialerd.sandbox.recorder import AmiRecorder
from dialerd.sandbox.scenario import (
    Mix,
    login_agents,
    make_leads,
    seed_campaign,
    sim_campaign,
)
from dialerd.sandbox.stores import StoreBackend
from dialerd.sandbox.tcpproxy import TcpProxy
from dialerd.sandbox.wait import until
from dialerd.store import store_session

pytestmark = pytest.mark.asterisk
REPO = Path(__file__).resolve().parents[2]
MIX = Mix(answer=0.6, busy=0.15, no_answer=0.15, congestion=0.1, rejected=0, unallocated=0)


async def _setup(
    tmp: Path,
    ami: AmiCredentials,
    name: str,
    agents: list[str],
    n: int,
    start: int,
    store: StoreBackend | None = None,
    **camp: Any,
) -> Any:
    numbers = make_leads(n, MIX, seed=start, talk=(3, 6), ring=(1, 3), start_index=start)
    assert len(numbers) == n
    extra = {} if store is None else {"store": store.settings()}
    settings = await seed_campaign(
        tmp, ami, {name: sim_campaign(agents, **camp)}, {name: numbers}, **extra
    )
    return tmp / "dialerd.yaml", settings


async def _store_view(settings: Any, campaign: str) -> tuple[list[Any], list[Any]]:
    async with store_session(settings) as store:
        return await store.list_attempts(campaign), await store.list_leads(campaign)


async def _wait_done(settings: Any, campaign: str, n: int, timeout: float) -> None:
    async def done() -> bool:
        _, leads = await _store_view(settings, campaign)
        return sum(1 for ld in leads if ld.status.value == "done") == n

    await until(done, timeout, f"all {n} leads finished", interval=1.0)


async def _wait_attempts(settings: Any, campaign: str, n: int, timeout: float) -> None:
    async def enough() -> bool:
        attempts, _ = await _store_view(settings, campaign)
        return len(attempts) >= n

    await until(enough, timeout, f"{n} attempts", interval=0.3)


def _check_asterisk_view(
    recs: list[AmiRecorder], attempts: list[Any], gone_at: float | None = None
) -> None:
    """Each attempt id made at most one channel and got at most one
    OriginateResponse in Asterisk; no lead had two channels live at once.
    ``gone_at``: when Asterisk itself went away (its channels with it)."""
    view = asterisk_view(recs, attempts, () if gone_at is None else (gone_at,))
    view.assert_no_double_dials()


def _daemon_proc(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "dialerd", "run", "--config", str(cfg)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=log.open("a"),
    )


@pytest.mark.slow
async def test_sigkill_mid_campaign_then_restart(
    asterisk_sandbox: Any, tmp_path: Path, store_backend: StoreBackend
) -> None:
    """On each store backend: the write-ahead rows a killed daemon left are
    what the next one adopts or closes (PostgreSQL: a daemon process on the
    worker's private cluster)."""
    sb = asterisk_sandbox
    agents = ["2601", "2602", "2603", "2604"]
    n = 60
    cfg, settings = await _setup(
        tmp_path,
        sb.ami_user,
        "crash",
        agents,
        n,
        100,
        store_backend,
        dial_mode="ratio",
        dial_ratio=1.5,
        wrap_up_s=0.5,
    )
    h = sb.harness_user
    rec = await AmiRecorder.connect(h)
    await login_agents(rec, agents)
    log = tmp_path / "daemon.log"
    proc = _daemon_proc(cfg, log)
    try:
        await _wait_attempts(settings, "crash", 15, 60)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        attempts, _ = await _store_view(settings, "crash")
        open_at_kill = {a.id for a in attempts if a.state == "dialing"}
        assert open_at_kill, "no call was live at the kill: the test proves nothing"
        await asyncio.sleep(1.0)
        proc = _daemon_proc(cfg, log)
        await _wait_done(settings, "crash", n, 180)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.get_running_loop().run_in_executor(None, proc.wait, 60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        rec.close()
    attempts, leads = await _store_view(settings, "crash")
    assert all(ld.status.value == "done" for ld in leads), "a lead was lost"
    assert all(a.state == "done" and a.outcome for a in attempts)
    _check_asterisk_view([rec], attempts)
    by_id = {a.id: a for a in attempts}
    # calls live at the kill were adopted and ended with their real outcome
    # (or, if they had ended unseen, were closed as interrupted and retried)
    adopted = [by_id[i] for i in open_at_kill if by_id[i].outcome != "interrupted"]
    interrupted = [by_id[i] for i in open_at_kill if by_id[i].outcome == "interrupted"]
    assert adopted, "no live call was adopted after the restart"
    for a in interrupted:
        later = [b for b in attempts if b.lead_id == a.lead_id and b.started_at > a.started_at]
        assert later, "an interrupted lead was never retried"
        assert later[0].started_at >= a.ended_at + 2 - 0.01, "retried before its delay"


@pytest.mark.slow
async def test_asterisk_restart_mid_campaign(tmp_path: Path) -> None:
    agents = ["2701", "2702", "2703"]
    n = 40
    with AsteriskSandbox() as sb:
        _cfg, settings = await _setup(
            tmp_path, sb.ami_user, "astrestart", agents, n, 200, wrap_up_s=0.5
        )
        h = sb.harness_user
        rec1 = await AmiRecorder.connect(h)
        await login_agents(rec1, agents)
        daemon = Daemon(settings)
        run = asyncio.create_task(daemon.run())
        rec2 = None
        try:
            await _wait_attempts(settings, "astrestart", 8, 60)
            rec1.close()
            restarted_at = time.time()
            await asyncio.get_running_loop().run_in_executor(None, sb.restart)
            rec2 = await AmiRecorder.connect(h)
            await login_agents(rec2, agents)  # softphones log back in
            await _wait_done(settings, "astrestart", n, 180)
        finally:
            daemon.request_stop()
            assert await asyncio.wait_for(run, 60) == 0
            if rec2 is not None:
                rec2.close()
    attempts, leads = await _store_view(settings, "astrestart")
    assert all(ld.status.value == "done" for ld in leads), "a lead was lost"
    assert all(a.state == "done" and a.outcome for a in attempts)
    _check_asterisk_view([rec1, *([rec2] if rec2 else [])], attempts, gone_at=restarted_at)


@pytest.mark.slow
async def test_ami_socket_dropped_with_originates_outstanding(
    asterisk_sandbox: Any, tmp_path: Path
) -> None:
    sb = asterisk_sandbox
    proxy = TcpProxy(sb.host, sb.port)
    await proxy.start()
    via_proxy = AmiCredentials(proxy.host, proxy.port, sb.username, sb.secret)
    agents = ["2801", "2802", "2803"]
    n = 30
    _cfg, settings = await _setup(
        tmp_path,
        via_proxy,
        "drop",
        agents,
        n,
        300,
        dial_mode="ratio",
        dial_ratio=2.0,
        wrap_up_s=0.5,
    )
    h = sb.harness_user
    rec = await AmiRecorder.connect(h)
    await login_agents(rec, agents)
    daemon = Daemon(settings)
    run = asyncio.create_task(daemon.run())
    try:
        cut_while_ringing = 0
        for _ in range(3):
            await _wait_attempts(settings, "drop", 5 + 8 * cut_while_ringing, 60)
            if daemon.core.campaigns["drop"].dialing:
                cut_while_ringing += 1
            assert proxy.cut() >= 1
            await asyncio.sleep(2.5)
        assert cut_while_ringing >= 1, "never cut with an Originate outstanding"
        await _wait_done(settings, "drop", n, 180)
    finally:
        daemon.request_stop()
        assert await asyncio.wait_for(run, 60) == 0
        rec.close()
        await proxy.close()
    attempts, leads = await _store_view(settings, "drop")
    assert proxy.accepted >= 4, "the daemon did not reconnect after each cut"
    assert all(ld.status.value == "done" for ld in leads), "a lead was lost"
    assert all(a.state == "done" and a.outcome for a in attempts)
    _check_asterisk_view([rec], attempts)
