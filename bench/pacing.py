"""Pacing benchmark: a grid of scenarios x policies through the real core.

    python bench/pacing.py                 # the grid, 3 seeds, a table
    python bench/pacing.py --json out.json # the same, also written as JSON
    python bench/pacing.py --only a20,a100 --seeds 1
    python bench/pacing.py --micro         # one pacing decision, 1000 agents / 5000 calls

Each scenario is the reference scenario (bench/scenarios/reference.yaml:
answer rate 0.30, talk lognormal mean 180 s CV 0.8, answer after 4-18 s,
ring timeout 25 s, wrap 10 s) with one or two things changed. Every policy
runs on the same seeds (common random numbers). The table shows, per
scenario and policy: talk share as % of the physical limit, abandon % over
all seeds, the worst seed's abandon %, and the worst rolling hour. Then,
wherever a baseline abandoned less than predictive, predictive runs again
with its abandon target set to that baseline's rate, and a second table
says whether it still has the higher talk share at an equal or lower
abandon rate.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dialerd.sim.scenario import Scenario, load_scenario  # noqa: E402
from dialerd.sim.summary import aggregate  # noqa: E402
from dialerd.sim.world import Result, simulate  # noqa: E402

REF = ROOT / "bench" / "scenarios" / "reference.yaml"
POLICIES = ("progressive", "vicidial", "soonfree", "predictive")
H = 3600.0


def grid() -> dict[str, Scenario]:
    ref = load_scenario(REF)

    def v(name: str, agents: int, hours: float, **over: Any) -> Scenario:
        sc = ref.with_agents(agents).model_copy(update={"name": name, "duration_s": hours * H})
        if "customers" in over:
            over["customers"] = sc.customers.model_copy(update=over["customers"])
        if "talk" in over:
            over["talk"] = sc.talk.model_copy(update=over["talk"])
        return Scenario.model_validate({**sc.model_dump(), **over, "name": name})

    day = [(0.0, 0.35), (2 * H, 0.35), (4 * H, 0.12), (6 * H, 0.30), (8 * H, 0.30)]
    g = [
        v("a5", 5, 8),
        v("a20", 20, 8),
        v("a100", 100, 8),
        v("a500", 500, 2),
        v("ans10-a20", 20, 4, customers={"answer_rate": 0.10}),
        v("ans60-a20", 20, 4, customers={"answer_rate": 0.60}),
        v("ans10-a100", 100, 3, customers={"answer_rate": 0.10}),
        v("talk60-a20", 20, 4, talk={"mean": 60}),
        v("talk600-a20", 20, 8, talk={"mean": 600}),
        v("wrap5-a20", 20, 4, wrap_s=5),
        v("wrap30-a20", 20, 4, wrap_s=30),
        v("wrap30-a5", 5, 8, wrap_s=30),
        v("dayshift-a20", 20, 8, customers={"answer_rate_schedule": day}),
        v("dayshift-a100", 100, 8, customers={"answer_rate_schedule": day}),
        v("lines140-a100", 100, 4, lines=140),
    ]
    return {s.name: s for s in g}


def _one(job: tuple[Scenario, str, int]) -> Result:
    sc, pol, seed = job
    return simulate(sc, pol, seed)


#: the smallest abandon target a matched run is given (a baseline that
#: abandoned nothing cannot be matched exactly by a target above zero)
MATCH_FLOOR = 1e-5


def matched_jobs(
    doc: dict[str, Any], scenarios: dict[str, Scenario], seeds: list[int]
) -> list[tuple[str, str, float, tuple[Scenario, str, int]]]:
    """Predictive held to each baseline's abandon rate where the baseline
    abandoned less than predictive at its default target: the same seeds,
    the campaign's ``abandon_target`` set to the baseline's measured rate.
    This is the issue's "beats it at an equal or lower abandon rate"."""
    out = []
    for name, s in doc["scenarios"].items():
        pred = s["policies"]["predictive"]["abandon_rate"]
        for base in ("vicidial", "soonfree"):
            rate = s["policies"][base]["abandon_rate"]
            if rate >= pred:
                continue
            target = max(rate, MATCH_FLOOR)
            sc = scenarios[name]
            sc = sc.model_copy(update={"campaign": {**sc.campaign, "abandon_target": target}})
            out += [(name, base, target, (sc, "predictive", seed)) for seed in seeds]
    return out


def run_grid(names: list[str] | None, seeds: list[int], jobs: int) -> dict[str, Any]:
    scenarios = grid()
    if names:
        scenarios = {n: scenarios[n] for n in names}
    work = [(sc, pol, seed) for sc in scenarios.values() for pol in POLICIES for seed in seeds]
    t0 = time.perf_counter()
    results: list[Result] = []
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as ex:
            for i, r in enumerate(ex.map(_one, work)):
                results.append(r)
                print(f"\r{i + 1}/{len(work)} runs", end="", file=sys.stderr, flush=True)
    else:
        for i, job in enumerate(work):
            results.append(_one(job))
            print(f"\r{i + 1}/{len(work)} runs", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    out: dict[str, Any] = {"seeds": seeds, "scenarios": {}}
    for name, sc in scenarios.items():
        per = {
            pol: aggregate([r for r in results if r.scenario == name and r.policy == pol])
            for pol in POLICIES
        }
        lim, limited = sc.physical_limit()
        out["scenarios"][name] = {
            "agents": sc.agents.count,
            "hours": sc.duration_s / H,
            "physical_limit": round(lim, 5),
            "line_limited": limited,
            "policies": per,
        }
    mj = matched_jobs(out, scenarios, seeds)
    with ProcessPoolExecutor(max(jobs, 1)) as ex:
        mres = list(ex.map(_one, [j for *_, j in mj]))
    for name, base in dict.fromkeys((n, b) for n, b, _, _ in mj):
        runs = [r for (n, b, _, _), r in zip(mj, mres, strict=True) if (n, b) == (name, base)]
        target = next(t for n, b, t, _ in mj if (n, b) == (name, base))
        agg = aggregate(runs)
        agg["abandon_target"] = target
        out["scenarios"][name].setdefault("matched", {})[base] = agg
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out


def print_table(doc: dict[str, Any]) -> None:
    cols = " | ".join(f"{p:^24}" for p in POLICIES)
    print(
        f"seeds {doc['seeds']}; per policy: % of physical limit / abandon % "
        f"(worst seed) / worst-hour abandon %"
    )
    print(f"| {'scenario':<15} | {'limit':>6} | {cols} |")
    print("|" + "-" * 17 + "|" + "-" * 8 + ("|" + "-" * 26) * len(POLICIES) + "|")
    for name, s in doc["scenarios"].items():
        cells = []
        for p in POLICIES:
            r = s["policies"][p]
            share, ab = r["share_of_limit"] * 100, r["abandon_rate"] * 100
            worst_seed, hour = r["max_seed_abandon_rate"] * 100, r["worst_hour_abandon_rate"] * 100
            cells.append(f"{share:5.1f} / {ab:4.2f} ({worst_seed:4.2f}) / {hour:4.2f}")
        lim = f"{s['physical_limit'] * 100:5.1f}" + ("L" if s["line_limited"] else " ")
        print(f"| {name:<15} | {lim:>6} | " + " | ".join(f"{c:^24}" for c in cells) + " |")
    print(f"(L: the line limit caps the physical limit; wall time {doc['wall_s']} s)")
    print(
        "\npredictive held to a baseline's abandon rate (abandon_target = the baseline's rate,"
        f" at least {MATCH_FLOOR:g}), where the baseline abandoned less:"
    )
    heads = (
        "scenario",
        "baseline",
        "baseline: % / abandon %",
        "predictive: % / abandon %",
        "beats",
    )
    print(
        "| "
        + " | ".join(f"{h:<{w - 2}}" for h, w in zip(heads, (17, 10, 25, 27, 7), strict=True))
        + " |"
    )
    print("|" + "|".join("-" * w for w in (17, 10, 25, 27, 7)) + "|")
    for name, s in doc["scenarios"].items():
        for base, m in s.get("matched", {}).items():
            b = s["policies"][base]
            bs, ba = b["share_of_limit"], b["abandon_rate"]
            ms, ma = m["share_of_limit"], m["abandon_rate"]
            wins = ms > bs and ma <= ba
            print(
                f"| {name:<15} | {base:<8} | {bs * 100:12.1f} / {ba * 100:<8.3f} "
                f"| {ms * 100:13.1f} / {ma * 100:<9.3f} | {'yes' if wins else 'NO':<5} |"
            )


def micro(n_agents: int = 1000, n_calls: int = 5000, reps: int = 2000) -> dict[str, float]:
    """One predictive decision with 1000 agents and 5000 calls in flight,
    the core's counters and tracker as a long shift leaves them. Between
    decisions time moves 0.2 s (a Tick) and one call or agent changes."""
    import random

    from dialerd.campaign.model import Campaign
    from dialerd.core import events as ev
    from dialerd.core.engine import DialerCore
    from dialerd.core.models import Lead

    rng = random.Random(5)
    agents = [str(100000 + i) for i in range(n_agents)]
    camp = Campaign.model_validate(
        {
            "name": "m",
            "trunk": "Local/{number}@x",
            "caller_id": {"number": "+442071234567"},
            "agents": agents,
            "safe_harbor_sound": "custom/s",
            "dial_mode": "progressive",
            "max_lines": 20000,
            "pacing": {"max_lines_per_agent": 20},
        }
    )
    core = DialerCore(run_id="m")
    now = 1.7e9
    core.handle(ev.CampaignLoaded(now, camp))
    run = core.campaigns["m"]
    t = run.trk
    # estimator history: 5000 ring outcomes, 2000 talks
    for _ in range(5000):
        ans = rng.random() < 0.3
        t.ring_est.observe(rng.uniform(4, 18) if ans else 25.0, ans)
    for _ in range(2000):
        t.talk_est.observe(rng.lognormvariate(4.95, 0.7))
    # 1000 agents busy for various times, 5000 calls ringing
    for _ in range(n_agents):
        t.talk.add(now - rng.uniform(0, 900), now - 1000)
    starts = sorted(now - rng.uniform(0, 25) for _ in range(n_calls))
    for s in starts:
        t.ring.add(s, s)
    for _ in range(300):
        t.rates.answered(now - rng.uniform(0, 3000))
    from dialerd.pacing.predictive import Predictive

    pol = Predictive()
    run.policy = pol
    # a synthetic state, written straight into the counters (the core
    # itself moves them only through dialerd.core.state)
    run._talking = n_agents
    run.agents = set(agents)
    run._dialing = n_calls
    run._live = n_calls + n_agents
    del Lead
    times: list[float] = []
    for i in range(reps):
        now += 0.2
        # one change between decisions, as on a real event
        if i % 2:
            t.ring.add(now, now)
        else:
            t.ring.remove(starts[i % len(starts)])
        t0 = time.perf_counter()
        snap = core.snapshot("m", now)
        pol.calls_to_place(snap)
        times.append(time.perf_counter() - t0)
        pol._last_state = None  # measure a real decision every time
    times.sort()
    return {
        "median_us": round(statistics.median(times) * 1e6, 1),
        "p90_us": round(times[int(0.9 * len(times))] * 1e6, 1),
        "agents": n_agents,
        "calls": n_calls,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write the results to this file")
    ap.add_argument("--micro", action="store_true", help="only the decision micro-benchmark")
    args = ap.parse_args()
    if args.micro:
        m = micro()
        print(
            f"one predictive decision, {m['agents']} agents / {m['calls']} calls in flight: "
            f"median {m['median_us']} us, p90 {m['p90_us']} us"
        )
        return 0
    names = [n for n in args.only.split(",") if n] or None
    doc = run_grid(names, list(range(1, args.seeds + 1)), args.jobs)
    doc["micro"] = micro()
    print_table(doc)
    print(
        f"micro-benchmark: one decision at 1000 agents / 5000 calls: "
        f"median {doc['micro']['median_us']} us"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
