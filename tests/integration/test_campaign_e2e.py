"""A whole campaign through the real Asterisk sandbox, checked against what
Asterisk itself reported (an independent AMI listener), not the daemon's view."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from dialerd.campaign.loader import load_campaign_file
from dialerd.core.models import Outcome
from dialerd.daemon import Daemon
from dialerd.rules.retry import decide
from dialerd.sandbox.recorder import AmiRecorder
from dialerd.sandbox.scenario import (
    ANSWER,
    BUSY,
    CONGESTION,
    NO_ANSWER,
    REJECTED,
    UNALLOCATED,
    decode,
    login_agents,
    make_leads,
    running,
    seed_campaign,
    sim_campaign,
)
from dialerd.sandbox.wait import until
from dialerd.settings import Settings
from dialerd.store import store_session

pytestmark = pytest.mark.asterisk

EXPECTED_FIRST: dict[int, set[str]] = {
    ANSWER: {"answered", "abandoned", "customer_hangup"},
    BUSY: {"busy"},
    NO_ANSWER: {"no_answer"},
    CONGESTION: {"congestion"},
    REJECTED: {"failed", "congestion"},
    UNALLOCATED: {"failed"},
}


async def _wait_all_done(settings: Settings, campaign: str, total: int, timeout: float) -> None:
    counts: dict[str, int] = {}

    async def done() -> bool:
        nonlocal counts
        async with store_session(settings) as store:
            counts = await store.lead_counts(campaign)
        return counts.get("done", 0) == total

    await until(done, timeout, lambda: f"the campaign to finish: {counts}", interval=1.0)


@pytest.mark.slow
async def test_campaign_of_200_leads_end_to_end(asterisk_sandbox: Any, tmp_path: Path) -> None:
    sb = asterisk_sandbox
    agents = [f"20{i:02d}" for i in range(1, 7)]  # 6 agents
    numbers = make_leads(210, seed=11, talk=(2, 5), ring=(0, 1), start_index=100)
    assert len(numbers) == 210
    settings = await seed_campaign(
        tmp_path,
        sb.ami_user,
        # ratio 3 lines per ready agent: some answered calls find no agent,
        # so both the redirect path and the safe-harbor path are exercised
        {"e2e": sim_campaign(agents, dial_mode="ratio", dial_ratio=3.0)},
        {"e2e": numbers},  # every one imported, none rejected
    )
    campaign = load_campaign_file(tmp_path / "campaigns" / "e2e.yaml")

    h = sb.harness_user
    rec = await AmiRecorder.connect(h)
    await login_agents(rec, agents)
    daemon = Daemon(settings)
    with capture_logs() as logs:
        async with running(daemon):
            await _wait_all_done(settings, "e2e", 210, timeout=240)
    await asyncio.sleep(0.5)
    rec.close()

    async with store_session(settings) as store:
        attempts = await store.list_attempts("e2e")
        leads = {ld.id: ld for ld in await store.list_leads("e2e")}

    # -- every attempt ended, with exactly one outcome
    assert attempts and all(a.state == "done" and a.outcome for a in attempts)
    ids = [a.id for a in attempts]
    assert len(ids) == len(set(ids))

    # -- the sandbox campaign runs under the admin's legal_window override
    #    (dialerd.yaml, never the campaign file): every call is logged as such
    assert daemon.campaigns["e2e"].overrides == ("legal_window",)
    overridden = {e["attempt_id"] for e in logs if e["event"] == "call.override"}
    assert overridden == set(ids)

    # -- the attempt log agrees with Asterisk: one OriginateResponse and one
    #    Hangup per attempt, and nothing Asterisk dialed that the log lacks
    orig = Counter(s.get("Uniqueid") for s in rec.named("OriginateResponse"))
    hang = Counter(s.get("Uniqueid") for s in rec.named("Hangup"))
    dialer_orig = {u for u in orig if u.startswith(daemon.run_id)}
    assert dialer_orig == set(ids), "attempt log and OriginateResponses differ"
    assert all(orig[i] == 1 for i in ids), "an attempt was originated twice"
    assert all(hang[i] == 1 for i in ids), "an attempt was hung up more or less than once"
    by_id = {a.id: a for a in attempts}
    for s in rec.named("OriginateResponse"):
        a = by_id[s.get("Uniqueid")]
        answered = a.outcome in ("answered", "abandoned", "customer_hangup")
        assert (s.get("Response") == "Success") == answered, (a, s.fields)

    # -- no lead was ever in two live calls at once (Asterisk's own timing)
    first_seen: dict[str, float] = {}
    for s in rec.events:
        u = s.get("Uniqueid")
        if u in by_id and u not in first_seen:
            first_seen[u] = s.at
    hang_at = {s.get("Uniqueid"): s.at for s in rec.named("Hangup") if s.get("Uniqueid") in by_id}
    per_lead: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for a in attempts:
        per_lead[a.lead_id].append((first_seen[a.id], hang_at[a.id]))
    for spans in per_lead.values():
        spans.sort()
        for (_s1, e1), (s2, _e2) in pairwise(spans):
            assert s2 >= e1, "a lead was in two live calls at once"

    # -- every answered call reached an agent room or the safe-harbor message
    #    within 2 s of the answer (Asterisk's event times)
    answered_at = {
        s.get("Attempt"): s.at for s in rec.named("UserEvent", UserEvent="DialerAnswered")
    }
    joined = {s.get("Uniqueid"): s.at for s in rec.named("ConfbridgeJoin")}
    harbor = {s.get("Attempt"): s.at for s in rec.named("UserEvent", UserEvent="DialerSafeHarbor")}
    connected = abandoned = 0
    for aid, t in answered_at.items():
        if aid not in by_id:
            continue
        if aid in joined:
            connected += 1
            assert joined[aid] - t < 2.0
            assert by_id[aid].outcome == "answered"
        elif aid in harbor:
            assert harbor[aid] - t < 2.6
            abandoned += 1
            assert by_id[aid].outcome == "abandoned"
        else:  # the customer hung up inside the window, before any agent
            assert hang_at[aid] - t < 2.0, f"answered call {aid}: no agent, no message"
            assert by_id[aid].outcome == "customer_hangup"
    assert connected >= 50 and abandoned >= 1, (connected, abandoned)

    # -- every lead ends where the retry rules put it, given its outcomes
    outcomes_by_lead: dict[int, list[Any]] = defaultdict(list)
    for a in sorted(attempts, key=lambda a: a.started_at):
        outcomes_by_lead[a.lead_id].append(a)
    assert set(outcomes_by_lead) == set(leads), "a lead was never dialed"
    for lid, lead in leads.items():
        tries = outcomes_by_lead[lid]
        kind = decode(lead.phone)[0]
        assert tries[0].outcome in EXPECTED_FIRST[kind], (lead.phone, tries[0].outcome)
        upd = None
        for i, a in enumerate(tries):
            upd = decide(campaign.retry, lid, i, Outcome(a.outcome), a.ended_at)
            if i < len(tries) - 1:
                assert upd.status.value == "retry", "dialed again after a final outcome"
                assert upd.next_due_at is not None
                assert tries[i + 1].started_at >= upd.next_due_at - 0.01, "retried too early"
        assert upd is not None
        assert lead.status.value == "done" == upd.status.value
        assert lead.attempts == len(tries) == upd.attempts
        assert lead.final_reason == upd.final_reason
