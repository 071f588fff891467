"""Compliance on the real Asterisk sandbox: DNC and calling windows stop a
lead before any Originate, retries keep their delays and maxima, an agent's
DTMF callback comes back to that agent, AMD tells a machine from a person.

Agents 3101-3199 (no clash with the other integration tests).
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import time
from pathlib import Path
from typing import Any, cast

import pytest

from dialerd.cli import main
from dialerd.daemon import Daemon
from dialerd.sandbox.recorder import AmiRecorder, Seen
from dialerd.sandbox.scenario import (
    ANSWER,
    BUSY,
    NO_ANSWER,
    login_agents,
    running,
    seed_campaign,
    sim_campaign,
    sim_compliance,
    sim_number,
)
from dialerd.sandbox.wait import until
from dialerd.settings import Settings
from dialerd.store import store_session
from dialerd.store.api import StoredAttempt, StoredLead
from dialerd.store.sqlite import Store

pytestmark = pytest.mark.asterisk
MACHINE, HUMAN_HELLO = 7, 8


def _csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["phone", "timezone"])
        w.writerows(rows)
    return path


async def _setup(
    tmp: Path, sb: Any, name: str, body: dict[str, Any], rows: list[tuple[str, str]]
) -> Settings:
    return await seed_campaign(
        tmp, sb.ami_user, {name: body}, {name: _csv(tmp / f"{name}.csv", rows)}
    )


async def _state(
    settings: Settings, name: str
) -> tuple[list[StoredLead], list[StoredAttempt], list[Any]]:
    async with store_session(settings) as store:
        return (
            await store.list_leads(name),
            await store.list_attempts(name),
            await store.lead_skips(name),
        )


def _zone_at(hour: int) -> str:
    """An Etc/GMT zone whose local hour is ``hour`` right now."""
    utc = time.gmtime().tm_hour
    off = (hour - utc) % 24
    if off > 12:
        off -= 24  # Etc/GMT-14 .. Etc/GMT+12; the sign is inverted (POSIX)
    return "Etc/GMT" if off == 0 else f"Etc/GMT{-off:+d}"


async def _run(settings: Settings, done: Any, timeout: float, what: str) -> Daemon:
    daemon = Daemon(settings)
    async with running(daemon):
        await until(done, timeout, what)
    return daemon


async def test_dnc_and_out_of_window_leads_are_never_originated(
    asterisk_sandbox: Any, tmp_path: Path
) -> None:
    sb = asterisk_sandbox
    agents = ["3101", "3102"]
    ok1 = sim_number(10, ANSWER, 0, 1)
    dnc_global = sim_number(11, ANSWER, 0, 1)
    dnc_campaign = sim_number(12, ANSWER, 0, 1)
    night = sim_number(13, ANSWER, 0, 1)
    day, late = _zone_at(14), _zone_at(3)
    # the real legal window (08:00-21:00 callee-local): no sandbox widening here
    comp = sim_compliance(schedule={"hours": {"daily": ["08:00-21:00"]}})
    del comp["legal_window_override"]
    body = sim_campaign(agents, compliance=comp)
    settings = await _setup(
        tmp_path,
        sb,
        "cdnc",
        body,
        [(ok1, day), (dnc_global, day), (dnc_campaign, day), (night, late)],
    )
    cfg = str(tmp_path / "dialerd.yaml")
    g = tmp_path / "dnc.txt"
    g.write_text(f"# global list\n{dnc_global}\n")
    assert await asyncio.to_thread(main, ["dnc", "import", str(g), "-c", cfg]) == 0
    add = ["dnc", "add", dnc_campaign, "--campaign", "cdnc", "-c", cfg]
    assert await asyncio.to_thread(main, add) == 0

    rec = await AmiRecorder.connect(sb.harness_user)
    await login_agents(rec, agents)

    async def settled() -> bool:
        _leads, attempts, skips = await _state(settings, "cdnc")
        return len(attempts) == 1 and attempts[0].state == "done" and len(skips) >= 3

    await _run(settings, settled, 60, "one call and three skips")
    await asyncio.sleep(0.5)
    rec.close()
    leads, attempts, skips = await _state(settings, "cdnc")
    by_phone = {ld.phone: ld for ld in leads}
    # -- Asterisk saw exactly one Originate, for the only dialable number
    assert [a.phone for a in attempts] == [ok1]
    dialed = {s.get("Exten") or s.get("Channel") for s in rec.named("OriginateResponse")}
    assert not any(
        n.lstrip("+") in str(d) for d in dialed for n in (dnc_global, dnc_campaign, night)
    )
    # -- each refusal recorded with its reason
    reasons = {lid: r for lid, _at, r, _d, _retry in skips}
    assert reasons[by_phone[dnc_global].id] == "dnc_global"
    assert reasons[by_phone[dnc_campaign].id] == "dnc_campaign"
    assert reasons[by_phone[night].id] == "outside_legal_window"
    assert by_phone[dnc_global].status.value == "done"
    assert by_phone[dnc_global].final_reason == "dnc_global"
    # the night lead waits for its morning (08:00 in its zone), not dialed
    night_lead = by_phone[night]
    assert night_lead.status.value == "new" and night_lead.next_due_at > time.time() + 3600


async def test_busy_and_no_answer_retry_after_delay_and_stop_at_max(
    asterisk_sandbox: Any, tmp_path: Path
) -> None:
    sb = asterisk_sandbox
    agents = ["3111"]
    busy, noans = sim_number(20, BUSY, 0, 0), sim_number(21, NO_ANSWER, 0, 0)
    body = sim_campaign(
        agents,
        retry={
            "busy": {"delay_s": 3, "max_attempts": 3},
            "no_answer": {"delay_s": 4, "max_attempts": 3},
        },
    )
    settings = await _setup(tmp_path, sb, "cretry", body, [(busy, ""), (noans, "")])
    rec = await AmiRecorder.connect(sb.harness_user)
    await login_agents(rec, agents)

    async def done() -> bool:
        leads, _a, _s = await _state(settings, "cretry")
        return all(ld.status.value == "done" for ld in leads)

    await _run(settings, done, 90, "both leads finished")
    rec.close()
    leads, attempts, _skips = await _state(settings, "cretry")
    for ld, outcome, delay in ((busy, "busy", 3), (noans, "no_answer", 4)):
        lead = next(x for x in leads if x.phone == ld)
        tries = sorted((a for a in attempts if a.lead_id == lead.id), key=lambda a: a.started_at)
        assert [a.outcome for a in tries] == [outcome] * 3
        for a, b in itertools.pairwise(tries):
            assert a.ended_at is not None and b.started_at >= a.ended_at + delay - 0.01
        assert lead.attempts == 3 and lead.final_reason == f"max_attempts_{outcome}"


async def _play_dtmf(rec: AmiRecorder, channel: str, digits: str) -> None:
    for d in digits:
        resp = await rec.action(
            {"Action": "PlayDTMF", "Channel": channel, "Digit": d, "Async": "false"}
        )
        assert "Success" in str(resp), resp
        await asyncio.sleep(0.4)


@pytest.mark.slow
async def test_agent_dtmf_callback_is_dialed_when_due_to_that_agent(
    asterisk_sandbox: Any, tmp_path: Path
) -> None:
    sb = asterisk_sandbox
    agents = ["3121", "3122"]
    number = sim_number(30, ANSWER, 0, 2)
    body = sim_campaign(agents, wrap_up_s=60, max_lines=1)
    settings = await _setup(tmp_path, sb, "ccb", body, [(number, "")])
    rec = await AmiRecorder.connect(sb.harness_user)
    await login_agents(rec, agents)
    daemon = Daemon(settings)
    async with running(daemon):

        async def first_done() -> bool:
            _l, attempts, _s = await _state(settings, "ccb")
            return len(attempts) == 1 and attempts[0].state == "done"

        await until(first_done, 30, "the first call")
        _l, attempts, _s = await _state(settings, "ccb")
        first = attempts[0]
        assert first.outcome == "answered" and first.agent_id in agents
        agent = first.agent_id
        join = rec.named("ConfbridgeJoin", Conference=f"agent-{agent}")
        chan = next(s.get("Channel") for s in join if s.get("Channel").startswith("Local/"))
        # '*3' = callback, then '1#' = in 1 minute (the ;1 half sends into the room)
        t0 = time.time()
        await _play_dtmf(rec, chan.replace(";2", ";1"), "*31#")

        async def disposed() -> bool:
            _leads, attempts, _s = await _state(settings, "ccb")
            return attempts[0].disposition == "callback"

        await until(disposed, 15, "the callback disposition")
        async with store_session(settings) as store:
            rows = await cast(Store, store)._fetchall(
                "SELECT status, callback_at, callback_agent FROM leads WHERE phone = ?", (number,)
            )
        status, cb_at, cb_agent = rows[0]
        assert status == "retry" and cb_agent == agent
        assert t0 + 55 <= cb_at <= time.time() + 61

        async def second_done() -> bool:
            _l, attempts, _s = await _state(settings, "ccb")
            return len(attempts) == 2 and attempts[1].state == "done"

        await until(second_done, 100, "the callback call")
        _l, attempts, _s = await _state(settings, "ccb")
        again = attempts[1]
        assert again.started_at >= cb_at - 0.01, "called back before it was due"
        assert again.outcome == "answered" and again.agent_id == agent
    rec.close()


@pytest.mark.parametrize("action", ["hangup", "message", "connect"])
async def test_amd_machine_and_person_get_the_configured_action(
    asterisk_sandbox: Any, tmp_path: Path, action: str
) -> None:
    sb = asterisk_sandbox
    agents = {"hangup": ["3131"], "message": ["3141"], "connect": ["3151"]}[action]
    base = {"hangup": 40, "message": 42, "connect": 44}[action]
    machine = sim_number(base, MACHINE, 0, 8)
    person = sim_number(base + 1, HUMAN_HELLO, 0, 3)
    amd: dict[str, Any] = {"enabled": True, "on_machine": action}
    if action == "message":
        amd["message_sound"] = "vm-goodbye"
    body = sim_campaign(
        agents, amd=amd, retry={"machine": {"delay_s": 3600, "max_attempts": 1}}, max_lines=2
    )
    name = f"camd{action[0]}"
    settings = await _setup(tmp_path, sb, name, body, [(machine, ""), (person, "")])
    rec = await AmiRecorder.connect(sb.harness_user)
    await login_agents(rec, agents)

    async def done() -> bool:
        _l, attempts, _s = await _state(settings, name)
        return len(attempts) == 2 and all(a.state == "done" for a in attempts)

    await _run(settings, done, 60, "both calls")
    rec.close()
    _l, attempts, _s = await _state(settings, name)
    by = {a.phone: a for a in attempts}
    m, p = by[machine], by[person]
    verdicts = {s.get("Attempt"): s for s in rec.named("UserEvent", UserEvent="DialerAmd")}
    assert verdicts[m.id].get("Status") == "MACHINE", (m, verdicts)
    assert verdicts.get(p.id, Seen(0.0, {})).get("Status") == "HUMAN", (
        p,
        [v.fields for v in verdicts.values()],
    )
    # the person always reaches an agent, with the verdict recorded
    assert p.outcome == "answered" and p.agent_id == agents[0] and "HUMAN" in p.detail
    hangup_at = {s.get("Uniqueid"): s.at for s in rec.named("Hangup")}
    amd_at = verdicts[m.id].at
    if action == "connect":
        assert m.outcome == "answered" and "MACHINE" in m.detail and "connected" in m.detail
    else:
        # not a live answer: never abandoned, retried by retry.machine (max 1: done)
        assert m.outcome == "machine" and "MACHINE" in m.detail and action in m.detail
        assert m.agent_id is None
        after = hangup_at[m.id] - amd_at
        if action == "hangup":
            assert after < 1.0, "a machine is hung up at once"
        else:
            # the message waits for the end of the ~5.6 s greeting, then plays
            assert after > 3.0
            assert not rec.named("UserEvent", UserEvent="DialerSafeHarbor", Attempt=m.id)
