"""Results of several seeds folded into one line per policy: the figures a
pacing comparison is judged on, shared by ``dialerd simulate`` and the
benchmarks so that both report the same numbers the same way.
"""

from __future__ import annotations

from typing import Any

from dialerd.sim.world import Result


def aggregate(results: list[Result]) -> dict[str, Any]:
    """Per-policy summary over seeds: sums for counts, talk share from the
    totals, the worst hour and the worst seed's abandon rate."""
    n = len(results)
    first = results[0]
    answered = sum(r.answered for r in results)
    abandoned = sum(r.abandoned for r in results)
    talk_share = sum(r.talk_share for r in results) / n
    return {
        "policy": first.policy,
        "seeds": [r.seed for r in results],
        "talk_share": round(talk_share, 5),
        "talk_min_per_agent_hour": round(sum(r.talk_min_per_agent_hour for r in results) / n, 3),
        "physical_limit": round(first.physical_limit, 5),
        "line_limited": first.line_limited,
        "share_of_limit": round(talk_share / first.physical_limit, 5)
        if first.physical_limit > 0
        else 0.0,
        "abandon_rate": round(abandoned / answered, 5) if answered else 0.0,
        "max_seed_abandon_rate": round(max(r.abandon_rate for r in results), 5),
        "worst_hour_abandon_rate": round(max(r.worst_hour_abandon_rate for r in results), 5),
        "mean_wait_between_calls_s": round(
            sum(r.mean_wait_between_calls_s for r in results) / n, 3
        ),
        "dials": sum(r.dials for r in results),
        "answered": answered,
        "abandoned": abandoned,
        "sim_wall_s": round(sum(r.wall_s for r in results), 3),
        "events": sum(r.events for r in results),
        "per_seed": [r.as_dict() for r in results],
    } | ({"blended": blended_summary(results)} if first.blended is not None else {})


def blended_summary(results: list[Result]) -> dict[str, Any]:
    """The inbound figures over seeds: counts summed, service level and ASA
    from the sums, the worst hour of any seed and queue."""
    keys = ("offered", "answered", "answered_in_sl", "abandoned", "abandoned_short",
            "fallbacks", "callbacks")  # fmt: skip
    tot = {k: sum(r.blended[k] for r in results if r.blended) for k in keys}
    wait = sum((r.blended["asa_s"] or 0.0) * r.blended["answered"] for r in results if r.blended)
    base = tot["answered"] + tot["abandoned"] + tot["fallbacks"]
    worst = [
        r.blended["worst_hour_service_level"]
        for r in results
        if r.blended and r.blended["worst_hour_service_level"] is not None
    ]
    return {
        **tot,
        "service_level": round(tot["answered_in_sl"] / base, 5) if base else None,
        "worst_hour_service_level": min(worst) if worst else None,
        "asa_s": round(wait / tot["answered"], 3) if tot["answered"] else None,
        "inbound_abandon_rate": round((tot["abandoned"] + tot["abandoned_short"])
                                      / tot["offered"], 5) if tot["offered"] else None,
        "occupancy_mean": round(
            sum(r.blended["occupancy_mean"] for r in results if r.blended) / len(results), 4
        ),
    }  # fmt: skip
