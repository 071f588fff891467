"""The simulator: the real core in a virtual world (short shifts, fast)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dialerd.cli import simulate as cli
from dialerd.sim.scenario import Scenario, load_scenario
from dialerd.sim.world import EPOCH, World, simulate, worst_hour_rate

ROOT = Path(__file__).resolve().parents[2]
REF = ROOT / "bench" / "scenarios" / "reference.yaml"


def short(agents: int = 5, minutes: float = 20, **over: Any) -> Scenario:
    sc = load_scenario(REF).with_agents(agents)
    return Scenario.model_validate({**sc.model_dump(), "duration_s": minutes * 60, **over})


def test_every_example_scenario_is_valid() -> None:
    files = sorted((ROOT / "bench" / "scenarios").glob("*.yaml"))
    assert files
    for f in files:
        load_scenario(f)


def test_same_seed_same_result_and_progressive_never_abandons() -> None:
    a = simulate(short(), "progressive", seed=3)
    b = simulate(short(), "progressive", seed=3)
    assert a.as_dict() | {"wall_s": 0} == b.as_dict() | {"wall_s": 0}
    assert a.abandoned == 0
    assert a.dials > 0 and a.answered > 0
    assert 0 < a.talk_share < a.physical_limit


def test_every_outcome_recorded_once_and_counts_add_up() -> None:
    w = World(short(agents=8, minutes=30), "predictive", seed=2)
    r = w.run()
    core_run = w.core.campaigns["sim"]
    recorded = sum(r.outcomes.values())
    assert recorded + core_run.live == r.dials
    assert r.answered >= r.abandoned
    assert r.outcomes.get("abandoned", 0) + r.outcomes.get("customer_hangup", 0) == r.abandoned


def test_fail_safe_plays_when_no_agent_is_free() -> None:
    """Ratio 5 with one agent: answered calls beyond the first are abandoned
    by the dialplan's fail-safe, and the core counts them."""
    sc = short(
        agents=2,
        minutes=20,
        campaign={"dial_ratio": 5.0},
        customers={"answer_rate": 0.9, "time_to_answer": {"dist": "uniform", "low": 4, "high": 6}},
    )
    r = simulate(sc, "ratio", seed=1)
    assert r.abandoned > 0
    assert r.outcomes["abandoned"] == r.abandoned


def test_line_limit_is_respected_and_reported() -> None:
    sc = short(agents=20, minutes=15, lines=12)
    w = World(sc, "predictive", seed=1)
    peak = 0
    orig = w._place

    def place(c: Any) -> None:
        nonlocal peak
        orig(c)
        peak = max(peak, w.trunk_in_use)

    w._place = place  # type: ignore[method-assign]
    r = w.run()
    assert peak <= 12
    assert r.line_limited
    assert r.physical_limit < short(agents=20).physical_limit()[0]


def test_breaks_log_agents_out_and_back() -> None:
    sc = short(4, 30)
    sc = sc.model_copy(
        update={"agents": sc.agents.model_copy(update={"breaks": 1, "break_s": 120})}
    )
    r = simulate(sc, "progressive", seed=1)
    assert r.talk_share > 0


def test_answer_rate_schedule() -> None:
    sc = short(
        agents=5,
        minutes=30,
        customers={"answer_rate": 0.3, "answer_rate_schedule": [[0, 0.5], [1800, 0.1]]},
    )
    assert sc.customers.rate_at(900) == pytest.approx(0.3)
    r = simulate(sc, "progressive", seed=1)
    assert r.answered > 0


def test_worst_hour_rate() -> None:
    ans = [(EPOCH + i * 10.0, False) for i in range(720)]  # 2 hours
    ans += [(EPOCH + 5000.0 + i, True) for i in range(10)]
    w = worst_hour_rate(ans, EPOCH, EPOCH + 7200)
    assert w == pytest.approx(10 / (360 + 10), rel=0.05)


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers()
    cli.add_parser(sub)
    args = ap.parse_args(
        ["simulate", "--scenario", str(REF), "--agents", "3", "--hours", "0.2", "--compare",
         "--json"]
    )  # fmt: skip
    assert cli.run(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["policies"]) == set(cli.POLICIES)
    for p in doc["policies"].values():
        for key in (
            "talk_share", "talk_min_per_agent_hour", "physical_limit", "abandon_rate",
            "worst_hour_abandon_rate", "mean_wait_between_calls_s", "dials", "answered",
            "abandoned",
        ):  # fmt: skip
            assert key in p


def test_cli_bad_scenario(tmp_path: Path) -> None:
    import argparse

    bad = tmp_path / "bad.yaml"
    bad.write_text("agents: {count: 3}\nbogus: 1\n")
    ap = argparse.ArgumentParser()
    cli.add_parser(ap.add_subparsers())
    args = ap.parse_args(["simulate", "--scenario", str(bad)])
    assert cli.run(args) == 2


def test_policy_factory_runs_the_policy_it_builds() -> None:
    """The frontier bench swaps in policies that are not dial modes; the
    world must run that object, not the mode's, and name the result as asked."""
    from dialerd.campaign.model import Campaign
    from dialerd.pacing.policies import PacingSnapshot, Policy
    from dialerd.pacing.predictive import Predictive

    class Never:
        name = "never"

        def calls_to_place(self, s: PacingSnapshot) -> int:
            return 0

    def never(c: Campaign) -> Policy:
        return Never()

    r = simulate(short(minutes=5), "predictive", seed=1, policy_factory=never)
    assert r.policy == "predictive" and r.dials == 0 and r.talk_share == 0

    built: list[Predictive] = []

    def fixed(c: Campaign) -> Policy:
        p = Predictive(gain=0.0, theta0=0.02, hour_guard=False, days30_guard=False)
        built.append(p)
        return p

    w = World(short(agents=10, minutes=40), "predictive", seed=1, policy_factory=fixed)
    r = w.run()
    assert w.core.campaigns["sim"].policy is built[0]
    # no loop and no guard: the threshold is the one given, after any abandons
    assert r.abandoned > 0 and built[0].theta == pytest.approx(0.02)
    # the shipped engine's loop moves it
    w2 = World(short(agents=10, minutes=40), "predictive", seed=1)
    w2.run()
    shipped = w2.core.campaigns["sim"].policy
    assert isinstance(shipped, Predictive) and shipped.theta != pytest.approx(0.02)
