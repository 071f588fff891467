"""The legal guard lives in the dialplan: with the daemon SIGKILLed right
after an answer, Asterisk alone plays the safe-harbor message within 2 s."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dialerd.sandbox.recorder import AmiRecorder
from dialerd.sandbox.scenario import (
    ANSWER,
    login_agents,
    seed_campaign,
    sim_campaign,
    sim_number,
)

pytestmark = pytest.mark.asterisk
REPO = Path(__file__).resolve().parents[2]


def _is_answer(s: Any) -> bool:
    return bool(s.get("Event") == "UserEvent" and s.get("UserEvent") == "DialerAnswered")


async def test_safe_harbor_plays_with_daemon_killed(asterisk_sandbox: Any, tmp_path: Path) -> None:
    sb = asterisk_sandbox
    agent = "2101"
    # two lines for one agent: the first customer answers at once and talks,
    # the second answers 3 s later and finds no agent free
    numbers = [sim_number(900, ANSWER, 0, 30), sim_number(901, ANSWER, 3, 20)]
    await seed_campaign(
        tmp_path,
        sb.ami_user,
        {"failsafe": sim_campaign([agent], dial_mode="ratio", dial_ratio=2.0, max_lines=2)},
        {"failsafe": numbers},
    )
    cfg = tmp_path / "dialerd.yaml"

    h = sb.harness_user
    rec = await AmiRecorder.connect(h)
    await login_agents(rec, [agent])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dialerd", "run", "--config", str(cfg)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "daemon.log").open("w"),
    )
    try:
        first = await rec.wait_for(_is_answer, 20)
        second = await rec.wait_for(lambda s: _is_answer(s) and s is not first, 20)
        os.kill(proc.pid, signal.SIGKILL)  # the daemon dies right after the answer
        killed_at = asyncio.get_running_loop().time()
        attempt = second.get("Attempt")
        harbor = await rec.wait_for(
            lambda s: s.get("UserEvent") == "DialerSafeHarbor" and s.get("Attempt") == attempt, 5
        )
        hangup = await rec.wait_for(
            lambda s: s.get("Event") == "Hangup" and s.get("Uniqueid") == attempt, 10
        )
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        rec.close()
    assert proc.returncode == -signal.SIGKILL
    assert asyncio.get_running_loop().time() - killed_at < 15
    delay = harbor.at - second.at
    assert 1.9 <= delay <= 2.6, f"safe-harbor message {delay:.3f} s after the answer"
    # the message (vm-goodbye) is played, then the dialplan hangs up
    assert 0.3 < hangup.at - harbor.at < 8.0
    # the first customer, connected before the kill, is still with the agent
    joins = rec.named("ConfbridgeJoin", Uniqueid=first.get("Attempt"))
    assert joins and joins[0].get("Conference") == f"agent-{agent}"
