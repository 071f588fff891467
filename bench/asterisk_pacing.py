#!/usr/bin/env python3
"""Pacing on the real Asterisk: the daemon in each dial mode against the
sandbox, same agents, same lead list (same simulated customers), same time.

The simulator (bench/pacing.py) is where pacing quality is measured at
scale; this run checks that what the simulator predicts holds when the
real daemon drives a real Asterisk: real AMI latency, real ring and answer
timing, the real 2 s fail-safe.

    PYTHONPATH=. python bench/asterisk_pacing.py [--minutes 4] [--agents 12]
        [--modes progressive,predictive] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from dialerd.daemon import Daemon
from dialerd.logs import configure
from dialerd.sandbox.asterisk import AsteriskSandbox
from dialerd.sandbox.recorder import AmiRecorder
from dialerd.sandbox.scenario import (
    Mix,
    login_agents,
    make_leads,
    read_attempts,
    seed_campaign,
    sim_campaign,
)

#: answer rate 0.30, the rest mostly ring-then-fail like real lists do
MIX = Mix(answer=0.30, busy=0.15, no_answer=0.35, congestion=0.1, rejected=0.05, unallocated=0.05)


async def one(mode: str, minutes: float, n_agents: int, work: Path) -> dict[str, Any]:
    agents = [f"5{i:03d}" for i in range(n_agents)]
    numbers = make_leads(7000, MIX, seed=3, talk=(8, 40), ring=(2, 9))
    with AsteriskSandbox() as sb:
        settings = await seed_campaign(
            work,
            sb.ami_user,
            {"pace": sim_campaign(agents, dial_mode=mode, max_lines=5 * n_agents, wrap_up_s=3)},
            {"pace": numbers},
        )
        h = sb.harness_user
        rec = await AmiRecorder.connect(h)
        await login_agents(rec, agents, timeout=60)
        daemon = Daemon(settings)
        task = asyncio.create_task(daemon.run())
        t0 = time.time()
        while time.time() - t0 < minutes * 60:
            await asyncio.sleep(5)
            st = daemon.core.campaigns["pace"].stats if "pace" in daemon.core.campaigns else None
            if st is not None:
                print(
                    f"\r{mode:<12} {time.time() - t0:5.0f} s  dials {st.dials:5d}  "
                    f"answered {st.answered:4d}  abandoned {st.abandoned:3d}",
                    end="",
                    file=sys.stderr,
                )
        t_end = time.time()
        daemon.request_stop()
        await task
        print(file=sys.stderr)
        rec.close()
        attempts = await read_attempts(settings, "pace")
    # talk time inside the measured window, per agent-second logged in
    talk = 0.0
    for a in attempts:
        if a.connected_at is not None and a.ended_at is not None:
            talk += max(0.0, min(a.ended_at, t_end) - max(a.connected_at, t0))
    out = Counter(a.outcome for a in attempts)
    live = out["answered"] + out["abandoned"] + out["customer_hangup"]
    aband = out["abandoned"] + out["customer_hangup"]
    return {
        "mode": mode,
        "agents": n_agents,
        "minutes": round((t_end - t0) / 60, 2),
        "dials": len(attempts),
        "live_answered": live,
        "connected": out["answered"],
        "abandoned": aband,
        "abandon_rate": round(aband / live, 4) if live else 0.0,
        "talk_share": round(talk / (n_agents * (t_end - t0)), 4),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=4)
    ap.add_argument("--agents", type=int, default=12)
    ap.add_argument("--modes", default="progressive,predictive")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    configure("json", "warning")
    rows = []
    for mode in a.modes.split(","):
        with tempfile.TemporaryDirectory(prefix=f"dialerd-pace-{mode}-") as tmp:
            rows.append(asyncio.run(one(mode, a.minutes, a.agents, Path(tmp))))
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    cols = [
        "mode",
        "agents",
        "minutes",
        "dials",
        "live_answered",
        "connected",
        "abandoned",
        "abandon_rate",
        "talk_share",
    ]
    print("  ".join(f"{c:>13}" for c in cols))
    for r in rows:
        print("  ".join(f"{r[c]!s:>13}" for c in cols))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
