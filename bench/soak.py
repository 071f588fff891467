#!/usr/bin/env python3
"""Soak: many simulated agents on the real Asterisk sandbox for many
minutes, with every operational fault injected, checked for lost leads and
double dials from Asterisk's own events (an independent AMI listener).

Faults, each at least once, in rotation: SIGKILL of the daemon and restart;
SIGTERM drain and restart; Asterisk restart (agents log back in); the AMI
socket cut by a TCP relay with Originates outstanding; the MQTT broker
stopped and started; SIGHUP reload with a changed campaign; a supervisor
pause and resume over MQTT.

    PYTHONPATH=. python bench/soak.py [--minutes 10] [--agents 50] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import yaml

from dialerd.sandbox.asterisk import AmiCredentials, AsteriskSandbox
from dialerd.sandbox.asterisk_view import asterisk_view
from dialerd.sandbox.broker import MosquittoBroker
from dialerd.sandbox.recorder import AmiRecorder
from dialerd.sandbox.scenario import Mix, login_agents, make_leads, seed_campaign, sim_campaign
from dialerd.sandbox.tcpproxy import TcpProxy

REPO = Path(__file__).resolve().parents[1]
MIX = Mix(answer=0.5, busy=0.15, no_answer=0.15, congestion=0.1, rejected=0.05, unallocated=0.05)


@dataclass(frozen=True)
class Row:
    id: Any
    lead_id: int
    state: str
    outcome: str | None
    status: str
    phone: str = ""


def read_store(path: Path) -> tuple[list[Row], list[Row]]:
    con = sqlite3.connect(path)
    try:
        attempts = [
            Row(r[0], r[1], r[2], r[3], "", r[4])
            for r in con.execute("SELECT id, lead_id, state, outcome, phone FROM attempts")
        ]
        leads = [
            Row(r[0], r[0], "", None, r[1]) for r in con.execute("SELECT id, status FROM leads")
        ]
    finally:
        con.close()
    return attempts, leads


class Soak:
    def __init__(self, work: Path, minutes: float, n_agents: int) -> None:
        self.work, self.minutes, self.n_agents = work, minutes, n_agents
        self.agents = [f"4{i:03d}" for i in range(n_agents)]
        self.faults: Counter[str] = Counter()
        self.recs: list[AmiRecorder] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = work / "daemon.log"

    # ------------------------------------------------------------ plumbing
    def start_daemon(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dialerd", "run", "--config", str(self.cfg)],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("a"),
        )

    async def stop_daemon(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.proc.wait, 150)

    async def recorder(self) -> AmiRecorder:
        h = self.sb.harness_user
        rec = await AmiRecorder.connect(h)
        self.recs.append(rec)
        return rec

    async def mqtt_cmd(self, obj: dict[str, Any]) -> None:
        async with aiomqtt.Client(self.broker.host, self.broker.port, identifier="soak") as c:
            await c.publish("soak/cmd", json.dumps(obj), qos=1)

    # --------------------------------------------------------------- faults
    async def f_sigkill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        await asyncio.sleep(1)
        self.start_daemon()

    async def f_sigterm(self) -> None:
        rc = await self.stop_daemon(signal.SIGTERM)
        assert rc == 0, f"drain exit code {rc}"
        self.start_daemon()

    async def f_asterisk_restart(self) -> None:
        self.recs[-1].close()
        await asyncio.get_running_loop().run_in_executor(None, self.sb.restart)
        self.gone_at.append(time.time())
        rec = await self.recorder()
        await login_agents(rec, self.agents, timeout=60)

    async def f_ami_cut(self) -> None:
        self.proxy.cut()

    async def f_broker(self) -> None:
        self.broker.stop()
        await asyncio.sleep(3)
        self.broker.start()

    async def f_reload(self) -> None:
        p = self.work / "campaigns" / "soak.yaml"
        body = yaml.safe_load(p.read_text())
        body["wrap_up_s"] = 1.0 if body["wrap_up_s"] != 1.0 else 2.0
        p.write_text(yaml.safe_dump(body))
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    async def f_pause(self) -> None:
        await self.mqtt_cmd({"command": "pause", "campaign": "soak"})
        await asyncio.sleep(3)
        await self.mqtt_cmd({"command": "resume", "campaign": "soak"})

    # ------------------------------------------------------------------ run
    async def run(self) -> dict[str, Any]:
        with AsteriskSandbox(boot_timeout=60) as sb:
            self.sb = sb
            self.gone_at: list[float] = []
            self.broker = MosquittoBroker()
            self.broker.start()
            self.proxy = TcpProxy(sb.host, sb.port)
            await self.proxy.start()
            ami = AmiCredentials(self.proxy.host, self.proxy.port, sb.username, sb.secret)
            camp = sim_campaign(
                self.agents, dial_mode="ratio", dial_ratio=1.4, max_lines=200, wrap_up_s=2.0
            )
            n_leads = 7900
            numbers = make_leads(n_leads, MIX, seed=5, talk=(3, 15), ring=(1, 5))
            settings = await seed_campaign(
                self.work,
                ami,
                {"soak": camp},
                {"soak": numbers},
                mqtt={
                    "enabled": True,
                    "host": self.broker.host,
                    "port": self.broker.port,
                    "topic_prefix": "soak",
                },
                drain_timeout_s=60,
            )
            self.cfg = self.work / "dialerd.yaml"
            rec = await self.recorder()
            await login_agents(rec, self.agents, timeout=60)
            self.start_daemon()
            faults = [
                self.f_ami_cut,
                self.f_broker,
                self.f_reload,
                self.f_pause,
                self.f_sigkill,
                self.f_asterisk_restart,
                self.f_sigterm,
            ]
            t0 = time.monotonic()
            end = t0 + self.minutes * 60
            gap = (self.minutes * 60 - 60) / (len(faults) + 1)
            i = 0
            while time.monotonic() < end:
                await asyncio.sleep(min(gap, max(0.0, end - time.monotonic())))
                if time.monotonic() >= end - 30:
                    break
                f = faults[i % len(faults)]
                i += 1
                print(f"[{time.monotonic() - t0:6.0f} s] fault: {f.__name__[2:]}", file=sys.stderr)
                await f()
                self.faults[f.__name__[2:]] += 1
            rc = await self.stop_daemon(signal.SIGTERM)
            elapsed = time.monotonic() - t0
            await asyncio.sleep(1)
            for r in self.recs:
                r.close()
            await self.proxy.close()
            self.broker.close()
            # read the store with plain sqlite3: the checker does not trust
            # (or depend on) the daemon's own store code
            attempts, leads = read_store(Path(settings.store.path))
        return self.verdict(attempts, leads, elapsed, rc)

    def verdict(
        self, attempts: list[Any], leads: list[Any], elapsed: float, rc: int
    ) -> dict[str, Any]:
        # what Asterisk itself saw, by the same checker as the recovery tests
        view = asterisk_view(self.recs, attempts, self.gone_at)
        outcomes = Counter(a.outcome for a in attempts)
        lost = sum(1 for ld in leads if ld.status == "dialing")
        open_attempts = sum(1 for a in attempts if a.state != "done")
        live_answered = sum(outcomes[o] for o in ("answered", "abandoned", "customer_hangup"))
        return {
            "minutes": round(elapsed / 60, 1),
            "agents": self.n_agents,
            "calls_placed": len(attempts),
            "answered": live_answered,
            "connected": outcomes["answered"],
            "abandoned": outcomes["abandoned"] + outcomes["customer_hangup"],
            "interrupted": outcomes["interrupted"],
            "faults_injected": dict(self.faults),
            "final_drain_exit_code": rc,
            "leads_lost": lost + open_attempts,
            "double_dials": view.double_dials,
            "asterisk_view": view.figures(),
            "max_originates_per_number": max(view.originates_per_number.values(), default=0),
            "outcomes": dict(outcomes),
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--agents", type=int, default=50)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dialerd-soak-") as tmp:
        res = asyncio.run(Soak(Path(tmp), a.minutes, a.agents).run())
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"{'figure':<24}value")
        for k, v in res.items():
            print(f"{k:<24}{v}")
    return 0 if res["leads_lost"] == 0 and res["double_dials"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
