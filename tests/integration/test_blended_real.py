"""Blended calling end to end on a real Asterisk: a predictive outbound
campaign dials simulated customers while real SIP callers (sipp as the
carrier's UAC, through the production ``trunk-out`` endpoint and
``[dialer-inbound]``) call the DIDs of two queues answered by the same
agents, and the daemon routes both.

What is checked, from Asterisk's own AMI events (an independent listener)
and from the store:

- every caller to the staffed queue reaches an agent's room or is offered
  the callback after its maximum wait; each has exactly one row;
- a caller to a queue with nobody logged in is offered the callback,
  presses 1 (RFC 4733 from sipp), and the callback lead this makes is
  dialed by the outbound campaign once due;
- an unknown DID is refused (SIP 403, cause 21) and recorded;
- no answered outbound call missed the 2 s rule because an inbound caller
  took its agent: for every safe-harbor message Asterisk played, no
  inbound caller joined a room while that customer waited.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from dialerd.daemon import Daemon
from dialerd.sandbox.asterisk import AsteriskSandbox
from dialerd.sandbox.caller import SippCaller
from dialerd.sandbox.recorder import AmiRecorder, Seen
from dialerd.sandbox.scenario import (
    ANSWER,
    login_agents,
    running,
    seed_campaign,
    sim_campaign,
    sim_number,
)
from dialerd.sandbox.wait import until
from dialerd.store import store_session

pytestmark = pytest.mark.asterisk

DID = "+442071230001"
DID_CLOSED = "+442071230002"
UNKNOWN_DID = "+442071239999"
AGENTS = ["3101", "3102", "3103", "3104"]
#: the callback caller's number is a simulated customer who answers, so the
#: callback lead it makes can be dialed like any other
CALLBACK_CALLER = sim_number(7100, ANSWER, 1, 3)
CALLERS = 6


def _queue(name: str, did: str, campaign: str, **over: Any) -> dict[str, Any]:
    offer = {
        "action": "callback",
        "offer_sound": "beep",
        "offer_timeout_s": 6,
        "booked_sound": "beep",
        "sound": "vm-goodbye",
    }
    body: dict[str, Any] = {
        "name": name,
        "dids": [did],
        "campaigns": [campaign],
        "service_level": {"percent": 80, "within_s": 10},
        "max_wait_s": 20,
        "callback_campaign": "blend",
        "after_max_wait": offer,
        "no_agents": offer,
        "hold": {"music": "default"},
    }
    body.update(over)
    return body


def _user(name: str, **fields: str) -> Any:
    def pred(s: Seen) -> bool:
        return (
            s.get("Event") == "UserEvent"
            and s.get("UserEvent") == name
            and all(s.get(k) == v for k, v in fields.items())
        )

    return pred


async def test_inbound_callers_and_a_predictive_campaign_share_the_agents(
    trunk_sandbox: AsteriskSandbox, tmp_path: Path
) -> None:
    sb = trunk_sandbox
    qdir = tmp_path / "queues"
    qdir.mkdir()
    (qdir / "support.yaml").write_text(yaml.safe_dump(_queue("support", DID, "blend")))
    (qdir / "closed.yaml").write_text(yaml.safe_dump(_queue("closed", DID_CLOSED, "later")))
    numbers = [sim_number(100 + i, ANSWER, 1 + i % 3, 4 + i % 7) for i in range(400)]
    settings = await seed_campaign(
        tmp_path,
        sb.ami_user,
        {
            "blend": sim_campaign(AGENTS, dial_mode="predictive", max_lines=12, wrap_up_s=1),
            # its agent never logs in: the "closed" queue has nobody
            "later": sim_campaign(["3199"]),
        },
        {"blend": numbers},
        queues_dir=str(qdir),
        agi={"port": 0},
    )
    rec = await AmiRecorder.connect(sb.harness_user)
    try:
        await login_agents(rec, AGENTS)
        daemon = Daemon(settings)
        async with running(daemon, started_s=30):
            assert {"support", "closed"} <= set(daemon.core.queues), "a queue file was refused"
            # the campaign is dialing (and its pacing has seen answers)
            await until(
                lambda: len(rec.named("OriginateResponse")) >= 10, 60, "ten outbound calls",
                interval=0.3,
            )  # fmt: skip
            staffed = SippCaller(
                sb.sip_port, DID, "+442079460123", calls=CALLERS, rate=0.3, hold_s=5,
                workdir=tmp_path / "staffed",
            )  # fmt: skip
            closed = SippCaller(
                sb.sip_port, DID_CLOSED, CALLBACK_CALLER, keys="1", keys_after_s=2.5,
                hold_s=20, workdir=tmp_path / "closed",
            )  # fmt: skip
            unknown = SippCaller(sb.sip_port, UNKNOWN_DID, "+442079460999",
                                 workdir=tmp_path / "unknown")  # fmt: skip
            reports = await asyncio.gather(staffed.run(120), closed.run(60), unknown.run(30))

            # the callback lead is due at once (the sandbox's window is the
            # whole day): the campaign dials it
            seen: list[str] = []

            async def dialed_back() -> bool:
                async with store_session(settings) as store:
                    tried = await store.list_attempts("blend")
                    mine = [ld for ld in await store.list_leads("blend")
                            if ld.phone == CALLBACK_CALLER]  # fmt: skip
                    closed_rows = [r for r in await store.inbound_calls() if r.queue == "closed"]
                seen[:] = [f"lead {mine}; call {closed_rows}"]
                return any(a.phone == CALLBACK_CALLER for a in tried)

            await until(dialed_back, 60, lambda: f"the callback lead dialed ({seen})",
                        interval=0.5)  # fmt: skip
        async with store_session(settings) as store:
            rows = {r.call_id: r for r in await store.inbound_calls()}
            leads = [ld for ld in await store.list_leads("blend") if ld.phone == CALLBACK_CALLER]
    finally:
        rec.close()

    staffed_reports, closed_reports, unknown_reports = reports
    # --- the staffed queue: each caller reached an agent or the offer
    announced = [s for s in rec.named("UserEvent") if s.get("UserEvent") == "DialerInbound"]
    support = [s.get("Call") for s in announced if s.get("Queue") == "support"]
    assert len(support) == CALLERS and len(staffed_reports) == CALLERS
    joins = {s.get("Uniqueid"): s for s in rec.named("ConfbridgeJoin")}
    answered = 0
    for uid in support:
        row = rows[uid]
        if row.outcome == "answered":
            answered += 1
            assert joins[uid].get("Conference") == f"agent-{row.agent_id}"
            assert row.agent_id in AGENTS and row.caller == "+442079460123"
        else:
            assert (row.outcome, row.fallback) in (
                ("callback", "max_wait"),
                ("fallback", "max_wait"),
            )
            assert uid not in joins
    assert answered >= 1, [rows[u] for u in support]

    # --- the closed queue: offered at once, 1 pressed, the lead dialed back
    (closed_uid,) = [s.get("Call") for s in announced if s.get("Queue") == "closed"]
    assert rec.named("UserEvent") and any(_user("DialerCallback", Call=closed_uid)(s)
                                          for s in rec.named("UserEvent"))  # fmt: skip
    row = rows[closed_uid]
    assert (row.outcome, row.fallback, row.callback_campaign) == ("callback", "no_agents", "blend")
    (lead,) = leads
    assert lead.fields.get("source") == "inbound" and lead.attempts >= 1
    assert closed_reports[0].pressed and closed_reports[0].bye_from_asterisk

    # --- the unknown DID: refused before any answer, and recorded
    (u,) = unknown_reports
    assert u.status == 403
    refused = [r for r in rows.values() if r.outcome == "refused"]
    assert [r.did for r in refused] == [UNKNOWN_DID]

    # --- the 2 s rule: no customer heard the safe-harbor message while an
    # inbound caller was being put in a room (Asterisk's own timestamps)
    caller_joins = sorted(float(joins[u].get("Timestamp")) for u in support if u in joins)
    answers = {
        s.get("Attempt"): float(s.get("Timestamp"))
        for s in rec.named("UserEvent")
        if s.get("UserEvent") == "DialerAnswered"
    }
    harbors = [s for s in rec.named("UserEvent") if s.get("UserEvent") == "DialerSafeHarbor"]
    taken = [
        h.get("Attempt")
        for h in harbors
        if any(answers.get(h.get("Attempt"), 1e18) <= t <= float(h.get("Timestamp"))
               for t in caller_joins)
    ]  # fmt: skip
    assert taken == [], f"{len(taken)} answered outbound calls lost their agent to a caller"
    connected = [a for a in answers if any(j.get("Uniqueid") == a for j in joins.values())]
    print(
        f"\noutbound answered {len(answers)}, connected {len(connected)}, "
        f"safe-harbor {len(harbors)}; callers {len(support)}, answered {answered}"
    )
