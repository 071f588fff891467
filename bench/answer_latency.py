#!/usr/bin/env python3
"""Answer -> agent-room latency on the real Asterisk sandbox.

For every answered call: time from the dialplan's ``DialerAnswered``
UserEvent to the customer's ``ConfbridgeJoin`` in the agent's room, both as
seen by an independent AMI listener. That interval holds the whole daemon
path: AMI parse, core decision, Redirect on the wire, Asterisk's redirect
and the ConfBridge join. The legal bound is 2 s; this is what we use of it.

    python bench/answer_latency.py [--calls 220] [--agents 10] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path

from dialerd.daemon import Daemon
from dialerd.logs import configure
from dialerd.sandbox.asterisk import AsteriskSandbox
from dialerd.sandbox.recorder import AmiRecorder
from dialerd.sandbox.scenario import ANSWER, login_agents, seed_campaign, sim_campaign, sim_number
from dialerd.sandbox.wait import until


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def run(
    calls: int, n_agents: int, work: Path, sb: AsteriskSandbox, tone: bool = True, base: int = 30
) -> dict[str, float]:
    agents = [f"{base}{i:02d}" for i in range(1, n_agents + 1)]
    numbers = [sim_number(i, ANSWER, i % 2, 1) for i in range(calls)]
    body = sim_campaign(agents, wrap_up_s=0, connect_tone=tone)
    settings = await seed_campaign(work, sb.ami_user, {"latency": body}, {"latency": numbers})

    h = sb.harness_user
    rec = await AmiRecorder.connect(h)
    await login_agents(rec, agents)
    daemon = Daemon(settings)
    task = asyncio.create_task(daemon.run())

    def finished() -> bool:
        joined = {s.get("Uniqueid") for s in rec.named("ConfbridgeJoin")}
        answered = rec.named("UserEvent", UserEvent="DialerAnswered")
        done = sum(1 for s in answered if s.get("Attempt") in joined)
        print(f"\r{done}/{calls} answered calls connected", end="", file=sys.stderr)
        return done >= calls or task.done()

    # a generous bound: every call rings at most 1 s and talks 1 s
    await until(finished, 60 + 10 * calls, "every answered call connected", interval=1.0)
    print(file=sys.stderr)
    daemon.request_stop()
    await task
    rec.close()
    join_at = {s.get("Uniqueid"): s.at for s in rec.named("ConfbridgeJoin")}
    lat = [
        (join_at[s.get("Attempt")] - s.at) * 1000
        for s in rec.named("UserEvent", UserEvent="DialerAnswered")
        if s.get("Attempt") in join_at
    ]
    harbor = len(rec.named("UserEvent", UserEvent="DialerSafeHarbor"))
    return {
        "connected_calls": len(lat),
        "safe_harbor_calls": harbor,
        "median_ms": statistics.median(lat),
        "p90_ms": pct(lat, 90),
        "p99_ms": pct(lat, 99),
        "max_ms": max(lat),
    }


def _tone_rounds(calls: int, n_agents: int, rounds: int) -> int:
    """The connect tone's cost on the answer path: the same calls with the
    tone on and off, alternating, on one Asterisk (fresh agents each run)."""
    res: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    with AsteriskSandbox() as sb:
        for r in range(rounds):
            for i, tone in enumerate((True, False) if r % 2 == 0 else (False, True)):
                with tempfile.TemporaryDirectory() as tmp:
                    base = 40 + 2 * r + i
                    res[tone].append(asyncio.run(run(calls, n_agents, Path(tmp), sb, tone, base)))
    print(f"{'metric':<14}{'tone on':>10}{'tone off':>10}")
    for k in ("median_ms", "p90_ms", "p99_ms", "max_ms"):
        on = statistics.median(x[k] for x in res[True])
        off = statistics.median(x[k] for x in res[False])
        print(f"{k:<14}{on:>10.2f}{off:>10.2f}")
    print(f"(median over {rounds} runs of {calls} calls each, per setting)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=220)
    ap.add_argument("--agents", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--tone-rounds",
        type=int,
        default=0,
        help="instead: N rounds each of connect tone on and off, alternating on one "
        "Asterisk (side by side); prints the medians of both",
    )
    a = ap.parse_args()
    configure("json", "warning")  # the table is the output, not the call log
    if a.tone_rounds:
        return _tone_rounds(a.calls, a.agents, a.tone_rounds)
    with tempfile.TemporaryDirectory() as tmp, AsteriskSandbox() as sb:
        res = asyncio.run(run(a.calls, a.agents, Path(tmp), sb))
    if a.json:
        print(json.dumps(res))
    else:
        print(f"{'metric':<22}{'value':>10}")
        for k, v in res.items():
            print(f"{k:<22}{v:>10.2f}" if isinstance(v, float) else f"{k:<22}{v:>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
