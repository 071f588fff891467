"""Operations against real parts: supervisor commands over a real Mosquitto,
SIGHUP reload and SIGTERM drain of a daemon dialing the real Asterisk."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import yaml

from dialerd.daemon import Daemon
from dialerd.sandbox.recorder import AmiRecorder
from dialerd.sandbox.scenario import (
    ANSWER,
    login_agents,
    read_attempts,
    running,
    seed_campaign,
    sim_campaign,
    sim_number,
)
from dialerd.sandbox.wait import until

pytestmark = pytest.mark.asterisk
REPO = Path(__file__).resolve().parents[2]


async def test_mqtt_pause_stops_new_dials_within_a_second(
    asterisk_sandbox: Any, mqtt_broker: Any, tmp_path: Path
) -> None:
    sb, b = asterisk_sandbox, mqtt_broker
    agents = ["2201", "2202", "2203"]
    settings = await seed_campaign(
        tmp_path,
        sb.ami_user,
        {"mq": sim_campaign(agents, wrap_up_s=0)},
        {"mq": [sim_number(300 + i, ANSWER, 0, 1) for i in range(150)]},
        mqtt={
            "enabled": True,
            "host": b.host,
            "port": b.port,
            "topic_prefix": "dd",
            "state_interval_s": 0.2,
        },
    )
    rec = await AmiRecorder.connect(sb.harness_user)
    await login_agents(rec, agents)
    daemon = Daemon(settings)
    async with running(daemon):
        async with aiomqtt.Client(b.host, b.port, identifier="supervisor") as sup:
            await sup.subscribe("dd/campaign/mq/state")
            await sup.subscribe("dd/reply/sup")
            await until(lambda: _n_attempts(settings, 6), 30, "dialing to start")
            t_cmd = time.time()
            await sup.publish(
                "dd/cmd",
                json.dumps({"command": "pause", "campaign": "mq", "reply_to": "dd/reply/sup"}),
            )
            reply = await _next_json(sup, "dd/reply/sup")
            assert reply["ok"] is True
            await asyncio.sleep(4.0)  # calls in progress finish, none start
            started = [a.started_at for a in await read_attempts(settings, "mq")]
            assert max(started) <= t_cmd + 1.0, f"dialed {max(started) - t_cmd:.2f} s after pause"
            state = await _next_json(sup, "dd/campaign/mq/state", lambda s: s["paused"])
            assert state["dialing_blocked_by"] == "paused"
            n_paused = len(started)
            await sup.publish("dd/cmd", json.dumps({"command": "resume", "campaign": "mq"}))
            await until(lambda: _n_attempts(settings, n_paused + 3), 15, "dialing to resume")
    rec.close()


async def _n_attempts(settings: Any, n: int) -> bool:
    return len(await read_attempts(settings)) >= n


async def _next_json(client: aiomqtt.Client, topic: str, pred: Any = None) -> Any:
    async def first() -> Any:
        async for msg in client.messages:
            if msg.topic.matches(topic):
                data = json.loads(msg.payload)
                if pred is None or pred(data):
                    return data
        return None

    return await asyncio.wait_for(first(), 10)


async def test_sighup_reload_valid_broken_and_removed(
    asterisk_sandbox: Any, tmp_path: Path
) -> None:
    sb = asterisk_sandbox
    settings = await seed_campaign(
        tmp_path,
        sb.ami_user,
        {
            "keep": sim_campaign(["2301"], wrap_up_s=0),
            "gone": sim_campaign(["2302"], wrap_up_s=0),
        },
        {
            "keep": [sim_number(400 + i, ANSWER, 0, 1) for i in range(200)],
            "gone": [sim_number(600 + i, ANSWER, 0, 3) for i in range(200)],
        },
    )
    rec = await AmiRecorder.connect(sb.harness_user)
    await login_agents(rec, ["2301", "2302"])
    daemon = Daemon(settings)
    cdir = tmp_path / "campaigns"
    async with running(daemon):
        await until(lambda: _n_attempts(settings, 4), 30, "both campaigns dialing")
        # 1) a valid change: keep's wrap-up becomes 1 s (future decisions only)
        body = yaml.safe_load((cdir / "keep.yaml").read_text())
        body["wrap_up_s"] = 1.0
        (cdir / "keep.yaml").write_text(yaml.safe_dump(body))
        os.kill(os.getpid(), signal.SIGHUP)
        await until(lambda: daemon.core.campaigns["keep"].cfg.wrap_up_s == 1.0, 5, "reload")
        # 2) a broken file: rejected, the previous version keeps dialing
        (cdir / "keep.yaml").write_text("name: keep\ntrunk: [not, a, string]\n")
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.sleep(1.0)
        assert daemon.core.campaigns["keep"].active
        assert daemon.core.campaigns["keep"].cfg.wrap_up_s == 1.0
        n_keep = len(await read_attempts(settings, "keep"))
        await until(
            lambda: _count(settings, "keep", n_keep + 2), 20, "keep dialing after broken reload"
        )
        # 3) removed: stops dialing; its live calls finish normally
        (cdir / "gone.yaml").unlink()
        os.kill(os.getpid(), signal.SIGHUP)
        t_removed = time.time()
        await asyncio.sleep(5.0)
        gone = await read_attempts(settings, "gone")
        assert all(a.started_at <= t_removed + 0.5 for a in gone)
        assert all(a.state == "done" for a in gone), "a live call was dropped"
        assert not [a for a in gone if a.outcome == "interrupted"]
    rec.close()


async def _count(settings: Any, campaign: str, n: int) -> bool:
    return len(await read_attempts(settings, campaign)) >= n


async def test_sigterm_drains_live_calls_and_exits_zero(
    asterisk_sandbox: Any, tmp_path: Path
) -> None:
    sb = asterisk_sandbox
    agents = ["2401", "2402"]
    settings = await seed_campaign(
        tmp_path,
        sb.ami_user,
        {"drain": sim_campaign(agents, wrap_up_s=0)},
        {"drain": [sim_number(700 + i, ANSWER, 0, 6) for i in range(20)]},
    )
    cfg = tmp_path / "dialerd.yaml"
    rec = await AmiRecorder.connect(sb.harness_user)
    await login_agents(rec, agents)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dialerd", "run", "--config", str(cfg)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "daemon.log").open("w"),
    )
    try:
        # wait until both agents are talking to customers
        await rec.wait_for(
            lambda s: (
                s.get("Event") == "ConfbridgeJoin"
                and s.get("Conference") == "agent-2402"
                and s.get("Uniqueid") != ""
                and len(rec.named("ConfbridgeJoin")) >= 4
            ),
            30,
        )
        live = [a for a in await read_attempts(settings, "drain") if a.state == "dialing"]
        assert live, "no live call to drain"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.get_running_loop().run_in_executor(None, proc.wait, 40)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
        rec.close()
    assert rc == 0
    assert took < 30
    attempts = await read_attempts(settings, "drain")
    assert all(a.state == "done" for a in attempts), "drain left an attempt open"
    drained = {a.id: a for a in attempts if a.id in {x.id for x in live}}
    assert all(a.outcome == "answered" for a in drained.values()), "live calls were cut"
    started_after = [a for a in attempts if a.started_at > time.time() - took]
    assert not started_after, "dialed during the drain"
