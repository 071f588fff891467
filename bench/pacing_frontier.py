"""Pacing frontier: how much talk share each abandon rate buys, per agent count.

    python bench/pacing_frontier.py                # 5, 20, 100 agents, seeds 1-2
    python bench/pacing_frontier.py --agents 20 --seeds 4 --jobs 2 --json out.json

The grid in bench/pacing.py shows each policy at its own operating point.
This answers a different question: for the reference scenario, what talk
share (as % of the physical limit) is reachable at a given abandon rate, and
by what? Three families run on the same seeds (common random numbers):

- ``engine``: dialerd's predictive engine as shipped (loop, hour and 30-day
  guards), one point;
- ``model``: the engine's model alone with a fixed marginal-risk threshold
  theta (no loop, no guards), swept over theta: the model's frontier, with
  none of the cost of holding the rolling hour;
- ``crude``: the issue's reference, a crude expected-balance lookahead with
  one fixed gain: for each horizon point, free agents by then minus answers
  of the calls already ringing, less a fixed margin, divided by a new call's
  chance of answering by then; place the smallest over the horizon points,
  never fewer than progressive. Swept over the margin.

The summary interpolates each family's talk share at 1%, 2% and 3%
abandons (linear between the swept points; a dash where the sweep does not
reach that rate).

``--sensitivity`` instead runs the engine as shipped at 20 agents with one
source of randomness of the reference scenario switched off or changed at
a time, to show which of them costs the talk share.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from operator import mul
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dialerd.campaign.model import Campaign  # noqa: E402
from dialerd.pacing.policies import PacingSnapshot, Policy  # noqa: E402
from dialerd.pacing.predictive import Predictive  # noqa: E402
from dialerd.pacing.tracker import HORIZON_POINTS  # noqa: E402
from dialerd.sim.scenario import Dist, load_scenario  # noqa: E402
from dialerd.sim.summary import aggregate  # noqa: E402
from dialerd.sim.world import Result, simulate  # noqa: E402

REF = ROOT / "bench" / "scenarios" / "reference.yaml"
HOUR = "worst_hour_abandon_rate"
HOURS = {5: 8.0, 20: 8.0, 100: 4.0}
THETAS = (0.002, 0.004, 0.008, 0.016, 0.032, 0.064)
#: crude margins (agents) per agent count, chosen to span about 0.5-6% abandons
MARGINS = {
    5: (1.25, 1.5, 1.75, 2.0, 2.5),
    20: (2.25, 2.5, 2.75, 3.0, 3.5),
    100: (5.0, 6.0, 7.0, 8.0, 9.0),
}


def _u(low: float, high: float) -> Dist:
    return Dist(dist="uniform", low=low, high=high)


class CrudeLookahead:
    """The expected-balance lookahead the issue quotes as its reference."""

    name = "crude"

    def __init__(self, margin: float, gain: float = 1.0) -> None:
        self.margin = margin
        self.gain = gain

    def calls_to_place(self, s: PacingSnapshot) -> int:
        t = s.tracker
        progressive = s.agents_ready - s.calls_dialing - s.calls_waiting
        agents = s.agents_logged_in - s.agents_paused
        cap = s.max_lines - s.lines_in_use
        if agents <= 0 or cap <= 0:
            return 0
        if t is None or t.ring_est.n_ans < 10 or t.talk_est.n_obs < 5:
            return max(0, min(progressive, cap))
        tab = t.tables()
        p = max(tab.p_answer, 1e-3)
        d = max(t.connect_deadline_s - 0.1, 0.0)
        k_n = HORIZON_POINTS
        best = math.inf
        for k in range(k_n):
            wraps = bisect.bisect_right(t.wrap_ends, s.now + tab.xs[k] + d)
            freed = sum(map(mul, t.talk.cnt, tab.talk_p[k]))
            ringing = sum(map(mul, t.ring.cnt, tab.ring_q[k]))
            balance = s.agents_ready - s.calls_waiting + wraps + freed - ringing
            best = min(best, (balance - self.margin) / (p * (k + 0.5) / k_n))
        n = math.floor(self.gain * best)
        return max(0, min(max(n, progressive), cap))


def _fixed_theta(theta: float, c: Campaign) -> Policy:
    return Predictive(
        gain=0.0, theta0=theta, hour_guard=False, days30_guard=False,
        max_lines_per_agent=c.pacing.max_lines_per_agent,
    )  # fmt: skip


def _crude(margin: float, c: Campaign) -> Policy:
    return CrudeLookahead(margin)


def _one(job: tuple[int, str, float, int]) -> tuple[int, str, float, Result]:
    agents, family, knob, seed = job
    sc = load_scenario(REF).with_agents(agents)
    sc = sc.model_copy(update={"duration_s": HOURS.get(agents, 4.0) * 3600.0})
    if family == "engine":
        r = simulate(sc, "predictive", seed)
    elif family == "model":
        r = simulate(sc, "predictive", seed, policy_factory=partial(_fixed_theta, knob))
    else:
        r = simulate(sc, "predictive", seed, policy_factory=partial(_crude, knob))
    return agents, family, knob, r


#: scenario changes for --sensitivity: (label, customers, talk, campaign)
SENSITIVITY: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    ("reference", {}, {}, {}),
    ("talk time nearly fixed (CV 0.05)", {}, {"cv": 0.05}, {}),
    ("time to answer U(10.5, 11.5) s", {"time_to_answer": _u(10.5, 11.5)}, {}, {}),
    ("both", {"time_to_answer": _u(10.5, 11.5)}, {"cv": 0.05}, {}),
    ("time to answer U(3.5, 4.5) s", {"time_to_answer": _u(3.5, 4.5)}, {}, {}),
    ("answer rate 0.95", {"answer_rate": 0.95}, {}, {}),
    ("connect deadline 1.9 s", {}, {}, {"connect_deadline_s": 1.9}),
]


def _sens(job: tuple[int, int, int]) -> tuple[int, Result]:
    i, agents, seed = job
    _label, cust, talk, camp = SENSITIVITY[i]
    sc = load_scenario(REF).with_agents(agents)
    sc = sc.model_copy(
        update={
            "duration_s": 8 * 3600.0,
            "customers": sc.customers.model_copy(update=cust),
            "talk": sc.talk.model_copy(update=talk),
            "campaign": camp,
        }
    )
    return i, simulate(sc, "predictive", seed)


def sensitivity(seeds: list[int], jobs: int, agents: int = 20) -> None:
    work = [(i, agents, s) for i in range(len(SENSITIVITY)) for s in seeds]
    with ProcessPoolExecutor(max(jobs, 1)) as ex:
        done = list(ex.map(_sens, work))
    print(f"engine as shipped, {agents} agents, 8 h, seeds {seeds}")
    print("| change to the reference scenario | % of limit | abandon % | worst hour % |")
    print("|---|---:|---:|---:|")
    for i, (label, *_rest) in enumerate(SENSITIVITY):
        agg = aggregate([r for j, r in done if j == i])
        share, ab, hour = (agg[k] * 100 for k in ("share_of_limit", "abandon_rate", HOUR))
        print(f"| {label} | {share:.2f} | {ab:.2f} | {hour:.2f} |")


def at_rate(points: list[tuple[float, float]], rate: float) -> float | None:
    """Talk share at ``rate`` abandons, linear between swept (abandon, share)
    points sorted by abandon rate; None outside the swept range."""
    pts = sorted(points)
    for (a0, s0), (a1, s1) in itertools.pairwise(pts):
        if a0 <= rate <= a1:
            return s0 if a1 == a0 else s0 + (s1 - s0) * (rate - a0) / (a1 - a0)
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--agents", default="5,20,100")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", default=None)
    ap.add_argument(
        "--sensitivity", action="store_true", help="sources of randomness, one at a time"
    )
    args = ap.parse_args()
    if args.sensitivity:
        sensitivity(list(range(1, args.seeds + 1)), args.jobs)
        return 0
    sizes = [int(a) for a in args.agents.split(",")]
    seeds = list(range(1, args.seeds + 1))
    work: list[tuple[int, str, float, int]] = []
    for n in sizes:
        knobs = [("engine", 0.0)] + [("model", th) for th in THETAS]
        knobs += [("crude", m) for m in MARGINS.get(n, MARGINS[100])]
        work += [(n, fam, k, s) for fam, k in knobs for s in seeds]
    t0 = time.perf_counter()
    done: list[tuple[int, str, float, Result]] = []
    with ProcessPoolExecutor(max(args.jobs, 1)) as ex:
        for i, out in enumerate(ex.map(_one, work)):
            done.append(out)
            print(f"\r{i + 1}/{len(work)} runs", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    rows: list[dict[str, Any]] = []
    keys = sorted({(n, f, k) for n, f, k, _ in done}, key=lambda x: (x[0], x[1], x[2]))
    for n, fam, knob in keys:
        agg = aggregate([r for m, f, k, r in done if (m, f, k) == (n, fam, knob)])
        rows.append({
            "agents": n, "family": fam, "knob": knob,
            "share_of_limit": agg["share_of_limit"], "abandon_rate": agg["abandon_rate"],
            "worst_hour_abandon_rate": agg["worst_hour_abandon_rate"],
        })  # fmt: skip
    wall = time.perf_counter() - t0
    print(f"reference scenario, seeds {seeds}, hours {HOURS}; wall {wall:.0f} s")
    print("| agents | family | knob   | % of limit | abandon % | worst hour % |")
    print("|-------:|--------|-------:|-----------:|----------:|-------------:|")
    for r in rows:
        knob = "-" if r["family"] == "engine" else f"{r['knob']:g}"
        share, ab, hour = (r[k] * 100 for k in ("share_of_limit", "abandon_rate", HOUR))
        print(
            f"| {r['agents']:>6} | {r['family']:<6} | {knob:>6} | {share:10.2f} "
            f"| {ab:9.2f} | {hour:12.2f} |"
        )
    print("\ntalk share (% of limit) at a given abandon rate, interpolated:")
    print("| agents | family | at 1% | at 2% | at 3% |")
    print("|-------:|--------|------:|------:|------:|")
    summary: list[dict[str, Any]] = []
    for n in sizes:
        for fam in ("model", "crude"):
            pts = [(r["abandon_rate"], r["share_of_limit"]) for r in rows
                   if r["agents"] == n and r["family"] == fam]  # fmt: skip
            vals = [at_rate(pts, x) for x in (0.01, 0.02, 0.03)]
            at = dict(zip(("1%", "2%", "3%"), vals, strict=True))
            summary.append({"agents": n, "family": fam, "at": at})
            cells = " | ".join("-" if v is None else f"{v * 100:.1f}" for v in vals)
            print(f"| {n:>6} | {fam:<6} | {cells} |")
    if args.json:
        doc = {"seeds": seeds, "rows": rows, "summary": summary}
        Path(args.json).write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
