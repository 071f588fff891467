#!/usr/bin/env python3
"""Blended calling on the real Asterisk: a predictive outbound campaign and
inbound callers on the same agents, for minutes, measured from Asterisk's
own events and the daemon's store.

The simulator (bench/blended.py) is where blended pacing is compared with
its baselines at scale; this run checks that it holds when the real daemon
drives a real Asterisk: real SIP callers (sipp through the production
``trunk-out`` endpoint and ``[dialer-inbound]``, one process per caller,
Poisson arrivals, talk times drawn per caller), real AMI latency and the
real 2 s fail-safe.

    PYTHONPATH=. python bench/asterisk_blended.py [--minutes 8] [--agents 10]
        [--per-minute 2.0] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from dialerd.daemon import Daemon
from dialerd.logs import configure
from dialerd.sandbox.asterisk import AsteriskSandbox
from dialerd.sandbox.caller import SippCaller
from dialerd.sandbox.carrier import free_udp_port
from dialerd.sandbox.recorder import AmiRecorder
from dialerd.sandbox.scenario import (
    Mix,
    login_agents,
    make_leads,
    read_attempts,
    seed_campaign,
    sim_campaign,
)
from dialerd.store import store_session

MIX = Mix(answer=0.30, busy=0.15, no_answer=0.35, congestion=0.1, rejected=0.05, unallocated=0.05)
DID = "+442071230001"
WITHIN_S = 20


def _queue() -> dict[str, Any]:
    return {
        "name": "support",
        "dids": [DID],
        "campaigns": ["blend"],
        "service_level": {"percent": 80, "within_s": WITHIN_S},
        "max_wait_s": 120,
        "after_max_wait": {"action": "message", "sound": "vm-goodbye"},
        "no_agents": {"action": "message", "sound": "vm-goodbye"},
        "hold": {"music": "default"},
    }


async def _callers(
    sb: AsteriskSandbox, work: Path, per_minute: float, until: float, rng: random.Random
) -> list[SippCaller]:
    """One sipp process per caller, Poisson arrivals, each talking 10-50 s
    once answered (a caller hangs up by itself after ``hold_s`` from the
    answer, waiting included: patience is long enough for the queue)."""
    placed: list[SippCaller] = []
    running: list[asyncio.Task[Any]] = []
    n = 0
    while True:
        await asyncio.sleep(rng.expovariate(per_minute / 60.0))
        if time.time() >= until:
            break
        n += 1
        c = SippCaller(
            sb.sip_port, DID, f"+4420794{60000 + n:05d}", hold_s=rng.uniform(40, 90),
            workdir=work / f"caller-{n}",
        )  # fmt: skip
        placed.append(c)
        running.append(asyncio.create_task(c.run(300)))
    await asyncio.gather(*running, return_exceptions=True)
    return placed


async def one(minutes: float, n_agents: int, per_minute: float, work: Path) -> dict[str, Any]:
    agents = [f"5{i:03d}" for i in range(n_agents)]
    numbers = make_leads(7000, MIX, seed=3, talk=(8, 40), ring=(2, 9))
    qdir = work / "queues"
    qdir.mkdir()
    (qdir / "support.yaml").write_text(yaml.safe_dump(_queue()))
    with AsteriskSandbox(carrier_port=free_udp_port("127.0.0.2")) as sb:
        settings = await seed_campaign(
            work,
            sb.ami_user,
            {
                "blend": sim_campaign(
                    agents, dial_mode="predictive", max_lines=5 * n_agents, wrap_up_s=3
                )
            },
            {"blend": numbers},
            queues_dir=str(qdir),
            agi={"port": 0},
        )
        rec = await AmiRecorder.connect(sb.harness_user)
        await login_agents(rec, agents, timeout=60)
        daemon = Daemon(settings)
        task = asyncio.create_task(daemon.run())
        await asyncio.wait_for(daemon.started.wait(), 30)
        t0 = time.time()
        end = t0 + minutes * 60
        callers = asyncio.create_task(_callers(sb, work, per_minute, end, random.Random(11)))
        while time.time() < end:
            await asyncio.sleep(5)
            st = daemon.core.campaigns["blend"].stats
            q = daemon.core.queues["support"].stats
            print(
                f"\r{time.time() - t0:5.0f} s  dials {st.dials:5d}  answered {st.answered:4d}  "
                f"abandoned {st.abandoned:3d}  callers {q.offered:3d} answered {q.answered:3d}",
                end="",
                file=sys.stderr,
            )
        t_end = time.time()
        await callers
        daemon.request_stop()
        await task
        print(file=sys.stderr)
        rec.close()
        attempts = await read_attempts(settings, "blend")
        async with store_session(settings) as store:
            inbound = await store.inbound_calls()
        seen = rec.named("UserEvent")
        joins = {s.get("Uniqueid"): float(s.get("Timestamp")) for s in rec.named("ConfbridgeJoin")}
    # outbound answer -> room latency, from Asterisk's own clock
    lat = [
        joins[s.get("Attempt")] - float(s.get("Timestamp"))
        for s in seen
        if s.get("UserEvent") == "DialerAnswered" and s.get("Attempt") in joins
    ]
    harbors = sum(1 for s in seen if s.get("UserEvent") == "DialerSafeHarbor")
    talk = out_talk = in_talk = 0.0
    for a in attempts:
        if a.connected_at is not None and a.ended_at is not None:
            out_talk += max(0.0, min(a.ended_at, t_end) - max(a.connected_at, t0))
    for r in inbound:
        if r.answered_at is not None:
            in_talk += max(0.0, min(r.ended_at, t_end) - max(r.answered_at, t0))
    talk = out_talk + in_talk
    out = Counter(a.outcome for a in attempts)
    live = out["answered"] + out["abandoned"] + out["customer_hangup"]
    aband = out["abandoned"] + out["customer_hangup"]
    inb = Counter(r.outcome for r in inbound)
    answered = [r for r in inbound if r.outcome == "answered"]
    counted = len(answered) + sum(
        1 for r in inbound if r.outcome in ("abandoned", "fallback", "callback")
        and (r.outcome != "abandoned" or r.wait_s > WITHIN_S)
    )  # fmt: skip
    in_sl = sum(1 for r in answered if r.wait_s <= WITHIN_S)
    span = n_agents * (t_end - t0)
    return {
        "agents": n_agents,
        "minutes": round((t_end - t0) / 60, 2),
        "dials": len(attempts),
        "outbound_answered": live,
        "outbound_abandoned": aband,
        "outbound_abandon_rate": round(aband / live, 4) if live else 0.0,
        "safe_harbor_played": harbors,
        "answer_to_room_n": len(lat),
        "answer_to_room_p50_s": round(statistics.median(lat), 3) if lat else None,
        "answer_to_room_max_s": round(max(lat), 3) if lat else None,
        "callers": len(inbound),
        "callers_answered": len(answered),
        "callers_abandoned": inb["abandoned"],
        "service_level": round(in_sl / counted, 4) if counted else None,
        "asa_s": round(statistics.mean(r.wait_s for r in answered), 2) if answered else None,
        "max_wait_s": round(max((r.wait_s for r in inbound), default=0.0), 2),
        "talk_share": round(talk / span, 4),
        "inbound_talk_share": round(in_talk / span, 4),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=8)
    ap.add_argument("--agents", type=int, default=10)
    ap.add_argument("--per-minute", type=float, default=2.0, help="inbound callers a minute")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    configure("json", "warning")
    with tempfile.TemporaryDirectory(prefix="dialerd-blend-") as tmp:
        row = asyncio.run(one(a.minutes, a.agents, a.per_minute, Path(tmp)))
    if a.json:
        print(json.dumps(row, indent=2))
        return 0
    for k, v in row.items():
        print(f"{k:>24}  {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
