"""Compliance wired through: check-config, the core's last check before the
Originate, abandon accounting, dispositions, AMD variables, the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from dialerd.asterisk import mapping
from dialerd.campaign.model import Campaign
from dialerd.cli import main
from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.models import Lead, LeadStatus, Outcome
from dialerd.core.testing import CoreHarness
from dialerd.sandbox.scenario import sim_campaign
from dialerd.store import open_store
from dialerd.store.sqlite import Store

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def conf(shipped_config: Path) -> Path:
    return shipped_config


def _edit(conf: Path, old: str, new: str) -> None:
    f = conf.parent / "campaigns" / "example-sales.yaml"
    text = f.read_text()
    assert old in text
    f.write_text(text.replace(old, new))


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        ("ring_timeout_s: 25", "ring_timeout_s: 10", "ring_timeout_s", "10 s is under 15 s"),
        (
            '  safe_harbor:\n    seller: Example Sales Ltd\n    callback_number: "+442071234567"\n',
            "",
            "compliance.safe_harbor",
            "seller's name and a call-back number",
        ),
        ("abandon_target: 0.03", "abandon_target: 0.05", "abandon_target", "5.00% is above"),
    ],
)
def test_check_config_reports_each_misconfiguration(
    conf: Path,
    capsys: pytest.CaptureFixture[str],
    old: str,
    new: str,
    field: str,
    words: str,
) -> None:
    _edit(conf, old, new)
    assert main(["check-config", "-c", str(conf)]) == 1
    out, err = capsys.readouterr()
    assert f"campaign example-sales: error: {field}: " in err
    assert words in err
    assert "campaign example-sales: REFUSED" in out


def test_check_config_overrides_turn_errors_into_warnings(
    conf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Overrides are the admin's: in a campaign file they are refused (file,
    line, field named); in dialerd.yaml's legal_overrides they turn the
    errors into warnings."""
    _edit(conf, "ring_timeout_s: 25", "ring_timeout_s: 10")
    _edit(conf, "abandon_target: 0.03", "abandon_target: 0.05")
    assert main(["check-config", "-c", str(conf)]) == 1
    err = capsys.readouterr().err
    assert "error: ring_timeout_s" in err and "error: abandon_target" in err
    _edit(
        conf,
        "  agent_guaranteed: false\n",
        "  agent_guaranteed: false\n  ring_timeout_override: true\n"
        "  abandon_target_override: true\n",
    )
    assert main(["check-config", "-c", str(conf)]) == 1
    err = capsys.readouterr().err
    f = conf.parent / "campaigns" / "example-sales.yaml"
    line = next(
        i for i, ln in enumerate(f.read_text().splitlines(), 1) if "ring_timeout_override" in ln
    )
    assert f"{f}:{line}: compliance.ring_timeout_override: legal overrides are admin-owned" in err
    _edit(conf, "  ring_timeout_override: true\n  abandon_target_override: true\n", "")
    lifted = "legal_overrides: {example-sales: [ring_timeout, abandon_target]}"
    conf.write_text(conf.read_text().replace("legal_overrides: {}", lifted))
    assert main(["check-config", "-c", str(conf)]) == 0
    out, err = capsys.readouterr()
    assert "warning: ring_timeout_s" in err and "warning: abandon_target" in err
    assert "campaign example-sales: OK" in out


def test_a_campaign_names_an_admin_trunk(conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A channel template in a campaign file could run any dialplan context
    with the daemon's originate right: only dialerd.yaml's trunks are used."""
    f = conf.parent / "campaigns" / "example-sales.yaml"
    _edit(conf, "trunk: carrier", 'trunk: "Local/{number}@some-admin-context"')
    assert main(["check-config", "-c", str(conf)]) == 1
    err = capsys.readouterr().err
    line = next(i for i, ln in enumerate(f.read_text().splitlines(), 1) if ln.startswith("trunk"))
    assert f"{f}:{line}: trunk: a channel template is admin-owned" in err
    _edit(conf, 'trunk: "Local/{number}@some-admin-context"', "trunk: nosuch")
    assert main(["check-config", "-c", str(conf)]) == 1
    assert "no trunk named 'nosuch' in dialerd.yaml (carrier)" in capsys.readouterr().err
    _edit(conf, "trunk: nosuch", "trunk: carrier")
    assert main(["check-config", "-c", str(conf)]) == 0
    assert "trunk PJSIP/{number}@trunk-out" in capsys.readouterr().out


def test_widened_legal_window_needs_the_sandbox_override(
    conf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(conf, "    timezone: null\n", '    timezone: null\n    legal_window: "07:00-22:00"\n')
    assert main(["check-config", "-c", str(conf)]) == 1
    assert "error: compliance.schedule.legal_window" in capsys.readouterr().err


def world(**over: Any) -> CoreHarness:
    """c1 (agents 1001 and 1002, the sandbox campaign's settings with
    ``over`` on top), screened like the daemon's, AMI up, at 20:26 UTC (any
    hour: the sandbox campaign widens the window)."""
    c = Campaign.model_validate({"name": "c1", **sim_campaign(["1001", "1002"], **over)})
    return CoreHarness(c, now=1_780_000_000.0, screen=True)


def _lead(i: int, **kw: Any) -> Lead:
    return Lead(id=i, campaign="c1", phone=f"+4420712{i:05d}", **kw)


def test_dnc_added_after_the_hopper_is_refused_before_the_originate() -> None:
    w = world()
    w.do(ev.LeadsLoaded(w.now, "c1", (_lead(1), _lead(2)), exhausted=True))
    w.do(ev.DncUpdated(w.now, added=((None, "+442071200001", "optout"),)))
    w.do(ev.AgentJoined(w.now, "1001", "Local/1001@a;2", "u1"))
    w.do(ev.AgentJoined(w.now, "1002", "Local/1002@a;2", "u2"))
    placed = w.of(cmd.PlaceCall)
    assert [p.lead_id for p in placed] == [2]
    skip = w.of(cmd.SkipLead)[0]
    assert (skip.lead_id, skip.reason, skip.retry_at) == (1, "dnc_global", None)


def test_abandoned_number_is_locked_72_hours_unless_agent_guaranteed() -> None:
    comp = {**sim_campaign([])["compliance"], "agent_guaranteed": False}
    w = world(compliance=comp)
    w.do(ev.HistoryLoaded(w.now, (("c1", "+442071200001", "abandoned", w.now - 3600),)))
    w.do(ev.LeadsLoaded(w.now, "c1", (_lead(1),), exhausted=True))
    w.do(ev.AgentJoined(w.now, "1001", "Local/1001@a;2", "u1"))
    assert not w.of(cmd.PlaceCall)
    skip = w.of(cmd.SkipLead)[0]
    assert skip.reason == "abandon_lock"
    assert skip.retry_at == pytest.approx(w.now - 3600 + 72 * 3600)


def test_outside_the_legal_window_is_skipped_to_the_morning() -> None:
    comp = {**sim_campaign([])["compliance"], "schedule": {}}
    del comp["legal_window_override"]
    w = world(compliance=comp)
    w.now = 1_780_000_000.0 - (1_780_000_000 % 86400) + 2 * 3600  # 02:00 UTC
    w.do(ev.LeadsLoaded(w.now, "c1", (_lead(1, timezone="Etc/UTC"),), exhausted=True))
    w.do(ev.AgentJoined(w.now, "1001", "Local/1001@a;2", "u1"))
    skip = w.of(cmd.SkipLead)[0]
    assert skip.reason == "outside_legal_window"
    assert skip.retry_at == w.now + 6 * 3600


def _answered_call(w: CoreHarness, lead: Lead) -> cmd.PlaceCall:
    w.do(ev.LeadsLoaded(w.now, "c1", (lead,), exhausted=True))
    w.do(ev.AgentJoined(w.now, "1001", "Local/1001@a;2", "u1"))
    p: cmd.PlaceCall = w.of(cmd.PlaceCall)[-1]
    w.do(ev.OriginateResult(w.now, p.attempt_id, True, 4))
    w.do(ev.CallAnswered(w.now + 1, p.attempt_id, "Local/x;1"))
    w.do(ev.CallConnected(w.now + 1.1, p.attempt_id, "1001"))
    return p


def test_disposition_key_in_wrap_up_schedules_a_personal_callback() -> None:
    w = world(wrap_up_s=30)
    p = _answered_call(w, _lead(1))
    w.do(ev.CallHungUp(w.now + 20, p.attempt_id, 16))
    w.do(ev.AgentKey(w.now + 25, "1001", "3", "90"))
    d = w.of(cmd.RecordDisposition)[0]
    assert d.code == "callback" and d.callback and d.attempt_id == p.attempt_id
    assert d.lead.status is LeadStatus.RETRY and d.lead.next_due_at == w.now + 25 + 90 * 60
    assert d.callback_agent == "1001" and d.callback_until == d.lead.next_due_at + 900
    assert w.core.agents["1001"].status.value == "ready", "the disposition ends the wrap-up"


def test_dnc_disposition_adds_the_number_at_once() -> None:
    w = world(wrap_up_s=30)
    p = _answered_call(w, _lead(1))
    w.do(ev.AgentKey(w.now + 5, "1001", "5"))  # pressed while talking: kept
    assert not w.of(cmd.RecordDisposition)
    w.do(ev.CallHungUp(w.now + 20, p.attempt_id, 16))
    d = w.of(cmd.RecordDisposition)[0]
    assert d.dnc == "campaign" and d.lead.status is LeadStatus.DONE
    assert w.core.dnc.is_blocked("c1", p.phone) == "dnc_campaign:disposition:do_not_call"


def test_wrap_done_key_ends_the_wrap_up() -> None:
    w = world(wrap_up_s=30)
    p = _answered_call(w, _lead(1))
    w.do(ev.CallHungUp(w.now + 20, p.attempt_id, 16))
    assert w.core.agents["1001"].status.value == "wrap"
    w.do(ev.AgentKey(w.now + 21, "1001", "ready"))
    assert w.core.agents["1001"].status.value == "ready"


def test_callback_goes_to_its_agent_and_waits_for_it_in_grace() -> None:
    w = world()
    lead = _lead(1, callback_agent="1002", callback_until=w.now + 600)
    w.do(ev.LeadsLoaded(w.now, "c1", (lead,), exhausted=True))
    w.do(ev.AgentJoined(w.now, "1001", "Local/1001@a;2", "u1"))
    assert not w.of(cmd.PlaceCall)
    assert w.of(cmd.SkipLead)[0].reason == "callback_agent_busy"
    w.do(ev.AgentJoined(w.now, "1002", "Local/1002@a;2", "u2"))
    w.do(ev.LeadsLoaded(w.now + 10, "c1", (lead,), exhausted=True))
    p = w.of(cmd.PlaceCall)[0]
    w.do(ev.OriginateResult(w.now + 11, p.attempt_id, True, 4))
    w.do(ev.CallAnswered(w.now + 12, p.attempt_id, "Local/x;1"))
    assert w.of(cmd.Redirect)[0].agent_id == "1002"


def test_amd_machine_outcome_is_not_a_live_answer_and_variables_are_sent() -> None:
    w = world(amd={"enabled": True, "on_machine": "hangup"})
    w.do(ev.LeadsLoaded(w.now, "c1", (_lead(1),), exhausted=True))
    w.do(ev.AgentJoined(w.now, "1001", "Local/1001@a;2", "u1"))
    p = w.of(cmd.PlaceCall)[0]
    assert p.variables["DIALER_AMD"] == "2500:1500:800:5000:100:50:2:256:5000"
    assert p.variables["DIALER_AMD_ACTION"] == "hangup"
    w.do(ev.OriginateResult(w.now, p.attempt_id, True, 4))
    amd = mapping.to_event(
        {
            "Event": "UserEvent",
            "UserEvent": "DialerAmd",
            "Attempt": p.attempt_id,
            "Status": "MACHINE",
            "Cause": "LONGGREETING-1500-1500",
            "Action": "hangup",
        },
        w.now + 2,
        w.core.calls,
        {},
    )
    assert isinstance(amd, ev.AmdResult)
    w.do(amd)
    w.do(ev.CallHungUp(w.now + 2.1, p.attempt_id, 16))
    rec = w.of(cmd.RecordOutcome)[0]
    assert rec.outcome is Outcome.MACHINE and "MACHINE" in rec.detail
    run = w.core.campaigns["c1"]
    assert run.abandons.live_total == 0 and run.abandons.machines_total == 1


def test_disposition_user_event_maps_to_the_core_event() -> None:
    e = mapping.to_event(
        {
            "Event": "UserEvent",
            "UserEvent": "DialerKey",
            "Agent": "1001",
            "Key": "3",
            "Data": "15",
            "Channel": "PJSIP/1001-00000001",
        },
        5.0,
        {},
        {},
    )
    assert e == ev.AgentKey(5.0, "1001", "3", "15", "PJSIP/1001-00000001")


async def test_store_dnc_skips_callbacks_first(tmp_path: Path) -> None:
    store = cast(Store, await open_store(tmp_path / "s.sqlite3"))  # explain(): SQLite
    try:
        await store.ensure_campaign("c1")
        rows = [(f"+4420712{i:05d}", 5 if i == 1 else 0, None, "{}") for i in (1, 2, 3)]
        await store.insert_leads("c1", rows, 100.0)
        assert await store.dnc_add(["+442071200002"], None, "import") == 1
        assert await store.dnc_add(["+442071200002"], "c1", "manual") == 1
        assert await store.dnc_entries() == [
            (None, "+442071200002", "import"),
            ("c1", "+442071200002", "manual"),
        ]
        assert await store.set_callback(3, 150.0, "1001", 900.0)
        leads = await store.fetch_due_leads("c1", 200.0, 2)
        assert [ld.id for ld in leads] == [3, 1], "a due callback comes before priority"
        assert leads[0].callback_agent == "1001"
        await store.skip_lead(cmd.SkipLead("c1", 1, "outside_legal_window", "x", 200.0, 500.0))
        await store.skip_lead(cmd.SkipLead("c1", 3, "dnc_global", "y", 200.0, None))
        one = await store.get_lead(1)
        three = await store.get_lead(3)
        assert one is not None and one.next_due_at == 500.0 and not one.held
        assert three is not None and three.status is LeadStatus.DONE
        assert [s[2] for s in await store.lead_skips("c1")] == [
            "outside_legal_window",
            "dnc_global",
        ]
        plan = await store.explain(
            "SELECT id FROM leads WHERE campaign = ? AND held = 0 AND status = 'retry' "
            "AND callback_at IS NOT NULL AND callback_at <= ? ORDER BY callback_at LIMIT ?",
            ("c1", 1.0, 1),
        )
        assert any("leads_callbacks" in p for p in plan), plan
    finally:
        await store.close()


def test_spent_abandon_budget_stops_over_dialing() -> None:
    w = world(dial_mode="ratio", dial_ratio=3.0)
    past = tuple(
        ("c1", f"+4420799{i:05d}", "abandoned" if i == 0 else "answered", w.now - 600)
        for i in range(10)
    )
    w.do(ev.HistoryLoaded(w.now, past))  # 10% abandoned over 30 days: no budget
    w.do(ev.LeadsLoaded(w.now, "c1", tuple(_lead(i) for i in range(1, 10)), exhausted=True))
    w.do(ev.AgentJoined(w.now, "1001", "Local/1001@a;2", "u1"))
    assert len(w.of(cmd.PlaceCall)) == 1, "one call for the one free agent, no over-dial"
    run = w.core.campaigns["c1"]
    assert run.abandons.ftc_30d(w.now).rate == pytest.approx(0.1)


def test_budget_left_allows_the_ratio() -> None:
    w = world(dial_mode="ratio", dial_ratio=3.0)
    w.do(ev.LeadsLoaded(w.now, "c1", tuple(_lead(i) for i in range(1, 10)), exhausted=True))
    w.do(ev.AgentJoined(w.now, "1001", "Local/1001@a;2", "u1"))
    assert len(w.of(cmd.PlaceCall)) == 3
