"""An agent on a real SIP phone: sipp (Debian's sip-tester) registers as
agent 7001 with digest auth, dials the login code, types a wrong PIN (and
hears the retry prompt), then the right one (asked for by the daemon over
FastAGI; its hash set in the store as ``dialerd agents set-pin`` does), sits in the room while the
daemon connects an answered customer, presses '*' '1' (disposition "sale")
as RFC 4733 DTMF, and hangs up. The disposition must land in the store on
that very attempt, and every key must be recorded.

Agents 7001-7010 are the sandbox's SIP phones (``SIP_AGENTS``).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from sipp_phone import need_sipp, run_sipp

from dialerd.agents import hash_pin
from dialerd.daemon import Daemon
from dialerd.sandbox.recorder import AmiRecorder
from dialerd.sandbox.scenario import ANSWER, running, sim_campaign, sim_number, write_config
from dialerd.settings import load_settings
from dialerd.store import store_session

pytestmark = pytest.mark.asterisk

AGENT, PIN, WRONG = "7001", "62859371", "40917365"


KEYS = {"pin_wrong": WRONG + "#", "pin_right": PIN + "#", "dispo": "*1"}


async def test_sip_agent_logs_in_with_pin_takes_a_call_and_disposes_by_dtmf(
    asterisk_sandbox: Any, tmp_path: Path
) -> None:
    sipp = need_sipp()
    sb = asterisk_sandbox
    agents_file = tmp_path / "agents.yaml"
    agents_file.write_text(yaml.safe_dump({"agents": {AGENT: {"name": "Sipp"}}}))
    # the customer answers after 1 s and talks 4 s; a long wrap-up so the
    # disposition key lands in wrap-up (it would also be kept if pressed
    # while still talking)
    body = sim_campaign([AGENT], wrap_up_s=30)
    cfg = write_config(
        tmp_path, sb.ami_user, {"csip": body}, agents_file=str(agents_file), agi={"port": 0}
    )
    settings = load_settings(cfg)
    number = sim_number(4000, ANSWER, 1, 4)
    async with store_session(settings) as store:
        await store.ensure_campaign("csip")
        await store.set_pin_hash(AGENT, hash_pin(PIN), time.time())  # dialerd agents set-pin
        assert await store.insert_leads("csip", [(number, 0, None, "{}")], time.time()) == 1

    h = sb.harness_user
    rec = await AmiRecorder.connect(h)
    daemon = Daemon(settings)
    async with running(daemon, started_s=20):
        await run_sipp(sipp, sb, "agent_register.xml", tmp_path, 20, KEYS)
        await run_sipp(sipp, sb, "agent_call.xml", tmp_path, 60, KEYS)
        # the agent's phone left: logged out
        await rec.wait_for(
            lambda s: (
                s.get("Event") == "ConfbridgeLeave"
                and s.get("Conference") == f"agent-{AGENT}"
                and s.get("Channel").startswith(f"PJSIP/{AGENT}-")
            ),
            10,
        )
        await asyncio.sleep(0.5)  # the store writes are queued behind the events
    rec.close()

    # the real SIP channel sat in the agent's room, and the customer joined it
    joins = rec.named("ConfbridgeJoin", Conference=f"agent-{AGENT}")
    assert any(j.get("Channel").startswith(f"PJSIP/{AGENT}-") for j in joins), joins
    async with store_session(settings) as store:
        attempts = await store.list_attempts("csip")
        actions = await store.agent_actions(AGENT)
    assert len(attempts) == 1, attempts
    a = attempts[0]
    assert a.phone == number and a.outcome == "answered" and a.agent_id == AGENT
    assert a.connected_at is not None
    assert any(j.get("Uniqueid") == a.id for j in joins), "customer never joined the room"
    # the disposition typed as RFC 4733 DTMF on the SIP phone, on that attempt
    assert a.disposition == "sale", a
    # every key recorded, with its verdict: the wrong PIN, the right one, '*1'
    logins = [(act, detail, ok) for (_a, _c, act, detail, ok, _t) in actions if act == "login"]
    assert logins == [("login", "wrong_pin", False), ("login", "ok", True)], actions
    dispos = [x for x in actions if x[2] == "disposition 1"]
    assert len(dispos) == 1 and dispos[0][4] is True and "sale" in dispos[0][3], actions
    # what the agent heard: the retry prompt after the wrong PIN, the connect
    # tone, the confirmation of the disposition
    log = sb.log_path.read_text(errors="replace")
    heard = [ln for ln in log.splitlines() if f"<PJSIP/{AGENT}-" in ln and "Playing" in ln]
    for prompt in ("agent-pass", "agent-incorrect", "agent-loginok", "beep", "auth-thankyou"):
        assert any(f"'{prompt}." in ln for ln in heard), (prompt, heard)
