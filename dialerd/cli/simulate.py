"""``dialerd simulate``: a supervisor's what-if, answered by running the real
core in virtual time over a scenario, so that a pacing policy is judged on
what production would do before it dials anyone. The world itself is
:mod:`dialerd.sim`; this is the command line, the progress bar and the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dialerd.sim.scenario import Scenario, load_scenario
from dialerd.sim.summary import aggregate
from dialerd.sim.world import Result, simulate

#: ``--help``'s description (the usage a supervisor sees first)
DESCRIPTION = """\
``dialerd simulate``: run a scenario through the real core.

    dialerd simulate --scenario bench/scenarios/reference.yaml --policy predictive
    dialerd simulate --scenario FILE --compare --seeds 3 --json

A progress bar goes to stderr, the table to stdout; ``--json`` prints one
JSON object instead of the table.

A blended scenario (one with ``inbound`` queues) compares ``predictive``
with the blended baselines ``vicidial-blended`` (VICIdial's dial level with
inbound calls counted and inbound_queue_no_dial) and ``reserve`` (agents
kept for inbound by Erlang C, the rest predictive), and adds the inbound
figures: service level, its worst hour, ASA, inbound abandons.
"""

POLICIES = ("progressive", "ratio", "vicidial", "soonfree", "predictive")
#: the policies ``--compare`` runs on a blended scenario
BLENDED = ("predictive", "vicidial-blended", "reserve")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="run a pacing scenario in the simulator (the real core, virtual time)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--scenario", required=True, help="scenario YAML (see docs/pacing.md)")
    # preview is not in --compare: its agents choose each call (the scenario's
    # agents.preview_think_s), so it answers a different question
    p.add_argument("--policy", default="predictive", choices=(*POLICIES, "preview", *BLENDED[1:]))
    p.add_argument("--compare", action="store_true", help="run every policy on the same seeds")
    p.add_argument("--seed", type=int, default=None, help="first seed (default: the scenario's)")
    p.add_argument("--seeds", type=int, default=1, help="how many consecutive seeds")
    p.add_argument("--agents", type=int, default=None, help="override the number of agents")
    p.add_argument("--hours", type=float, default=None, help="override the shift length")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _scenario(args: argparse.Namespace) -> Scenario:
    sc = load_scenario(args.scenario)
    if args.agents is not None:
        sc = sc.with_agents(args.agents)
    if args.hours is not None:
        sc = sc.model_copy(update={"duration_s": args.hours * 3600.0})
    return sc


def run(args: argparse.Namespace) -> int:
    try:
        sc = _scenario(args)
    except Exception as exc:  # a bad file: say why, no traceback
        print(f"dialerd simulate: {exc}", file=sys.stderr)
        return 2
    if args.policy in BLENDED[1:] and sc.inbound is None:
        print(f"dialerd simulate: {args.policy} needs a scenario with inbound queues",
              file=sys.stderr)  # fmt: skip
        return 2
    every = BLENDED if sc.inbound is not None else POLICIES
    policies = list(every) if args.compare else [args.policy]
    first_seed = sc.seed if args.seed is None else args.seed
    seeds = [first_seed + i for i in range(max(1, args.seeds))]
    err = Console(stderr=True)
    out: dict[str, list[Result]] = {p: [] for p in policies}
    t0 = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as prog:
        total = len(policies) * len(seeds)
        task = prog.add_task(f"{sc.name}", total=float(total))
        done = 0
        for seed in seeds:
            for pol in policies:
                prog.update(task, description=f"{sc.name} {pol} seed {seed}")

                def tick(frac: float, base: int = done) -> None:
                    prog.update(task, completed=base + frac)

                out[pol].append(simulate(sc, pol, seed, progress=tick))
                done += 1
                prog.update(task, completed=float(done))
    wall = time.perf_counter() - t0
    summary = {p: aggregate(rs) for p, rs in out.items()}
    sim_hours = sc.duration_s / 3600.0 * len(seeds) * len(policies)
    doc = {
        "scenario": sc.name,
        "agents": sc.agents.count,
        "hours": sc.duration_s / 3600.0,
        "seeds": seeds,
        "physical_limit": summary[policies[0]]["physical_limit"],
        "line_limited": summary[policies[0]]["line_limited"],
        "policies": summary,
        "wall_s": round(wall, 3),
        "speed_sim_hours_per_wall_s": round(sim_hours / wall, 3) if wall > 0 else None,
    }
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    con = Console()
    if not con.is_terminal:
        con = Console(width=140 if sc.inbound is None else 190)
    lim = doc["physical_limit"]
    title = (
        f"{sc.name}: {sc.agents.count} agents, {sc.duration_s / 3600:.1f} h, seeds {seeds}; "
        f"physical limit {lim:.1%}" + (" (line-limited)" if doc["line_limited"] else "")
    )
    table = Table(title=title)
    cols = [
        "policy", "talk share", "% of limit", "talk min/agent-h", "abandon",
        "worst hour", "wait/call s", "dials", "answered", "abandoned",
    ]  # fmt: skip
    if sc.inbound is not None:
        cols += ["inbound SL", "worst hour SL", "ASA s", "in abandons", "fallbacks"]
    for col in cols:
        table.add_column(col, justify="right" if col != "policy" else "left")
    for p, s in summary.items():
        row = [
            p,
            f"{s['talk_share']:.1%}",
            f"{s['share_of_limit']:.1%}",
            f"{s['talk_min_per_agent_hour']:.1f}",
            f"{s['abandon_rate']:.2%}",
            f"{s['worst_hour_abandon_rate']:.2%}",
            f"{s['mean_wait_between_calls_s']:.1f}",
            str(s["dials"]),
            str(s["answered"]),
            str(s["abandoned"]),
        ]
        b = s.get("blended")
        if b is not None:
            row += [
                _pct(b["service_level"]),
                _pct(b["worst_hour_service_level"]),
                "-" if b["asa_s"] is None else f"{b['asa_s']:.1f}",
                str(b["abandoned"] + b["abandoned_short"]),
                str(b["fallbacks"]),
            ]
        table.add_row(*row)
    con.print(table)
    con.print(
        f"simulated {sim_hours:.1f} shift-hours in {wall:.1f} s "
        f"({doc['speed_sim_hours_per_wall_s']} simulated hours per second)"
    )
    return 0


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"
