"""The agent's day by keys, in the core (no I/O): every key answered and
recorded, pause with a reason, logout, preview offers (accept, skip,
timeout), manual dial (screened like any lead), the connect tone and screen
pop; the PIN check; the AMI actions that carry answers and prompts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dialerd.agents import AgentsFile
from dialerd.asterisk import mapping
from dialerd.asterisk.safety import UnsafeValue
from dialerd.campaign.model import Campaign
from dialerd.cli import main
from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.models import AgentStatus, Lead
from dialerd.core.testing import CoreHarness
from dialerd.daemon import Daemon
from dialerd.rules.dispositions import max_attempts_cap
from dialerd.sandbox.scenario import sim_campaign
from dialerd.settings import load_settings
from dialerd.sim.scenario import Scenario, load_scenario
from dialerd.sim.world import simulate

CH = "PJSIP/1001-00000001"
REPO = Path(__file__).resolve().parents[2]


def world(**over: Any) -> CoreHarness:
    """c1 (agents 1001 and 1002, the sandbox campaign's settings with
    ``over`` on top), screened like the daemon's, AMI up, at 20:26 UTC (any
    hour: the sandbox campaign widens the window)."""
    c = Campaign.model_validate({"name": "c1", **sim_campaign(["1001", "1002"], **over)})
    return CoreHarness(c, now=1_780_000_000.0, screen=True)


def key(
    w: CoreHarness, k: str, data: str = "", dt: float = 1.0, agent: str = "1001"
) -> cmd.AgentAck:
    """A key pressed ``dt`` s later in the room whose dialplan waits on CH."""
    return w.key(agent, k, data, channel=CH, dt=dt)


def _lead(i: int, **kw: Any) -> Lead:
    return Lead(id=i, campaign="c1", phone=f"+4420712{i:05d}", **kw)


def _login(w: CoreHarness, agent: str = "1001") -> None:
    w.do(ev.AgentJoined(w.now, agent, CH if agent == "1001" else f"PJSIP/{agent}-1", "u" + agent))


def _talk(w: CoreHarness, lead: Lead) -> cmd.PlaceCall:
    w.do(ev.LeadsLoaded(w.now, "c1", (lead,), exhausted=True))
    p: cmd.PlaceCall = w.of(cmd.PlaceCall)[-1]
    w.do(ev.CallAnswered(w.now + 1, p.attempt_id, "Local/x;1"))
    w.do(ev.CallConnected(w.now + 1.1, p.attempt_id, "1001"))
    w.now += 2
    return p


def test_connect_sends_the_redirect_first_then_the_tone_and_the_screen_pop() -> None:
    w = world(connect_announcement="custom/campaign-c1")
    _login(w)
    w.do(ev.LeadsLoaded(w.now, "c1", (_lead(1, fields={"name": "Ann"}),), exhausted=True))
    p = w.of(cmd.PlaceCall)[-1]
    out = w.do(ev.CallAnswered(w.now + 1, p.attempt_id, "Local/x;1"))
    kinds = [type(c).__name__ for c in out]
    assert kinds.index("Redirect") < kinds.index("AgentPrompt") < kinds.index("ScreenPop")
    prompt = next(c for c in out if isinstance(c, cmd.AgentPrompt))
    assert (prompt.channel, prompt.prompt, prompt.extra) == (CH, "connected", "custom/campaign-c1")
    pop = next(c for c in out if isinstance(c, cmd.ScreenPop))
    assert (pop.kind, pop.agent_id, pop.attempt_id) == ("connect", "1001", p.attempt_id)
    assert pop.lead.fields == {"name": "Ann"}


def test_disposition_key_is_confirmed_and_recorded_and_a_bad_key_is_refused() -> None:
    w = world(wrap_up_s=30)
    _login(w)
    p = _talk(w, _lead(1))
    w.do(ev.CallHungUp(w.now, p.attempt_id, 16))
    assert key(w, "9").ok is False  # key 9 means nothing in the default set
    ack = key(w, "1")
    assert ack.ok and ack.prompt == "ok"
    assert w.of(cmd.RecordDisposition)[0].code == "sale"
    assert w.status("1001") is AgentStatus.READY
    assert key(w, "1").ok is False, "the call was disposed already"
    actions = [(a.action, a.ok) for a in w.of(cmd.AgentAction)]
    assert actions == [("disposition 9", False), ("disposition 1", True), ("disposition 1", False)]


def test_pause_with_reason_now_when_idle_and_after_the_call_when_busy() -> None:
    w = world(wrap_up_s=30)
    _login(w)
    ack = key(w, "pause", "lunch")
    assert ack.prompt == "paused" and w.status("1001") is AgentStatus.PAUSED
    state = [c for c in w.of(cmd.AgentStateChanged) if c.agent_id == "1001"][-1]
    assert (state.state, state.reason) == ("paused", "lunch")
    assert w.core.snapshot("c1", w.now).agents_paused == 1
    assert key(w, "ready").prompt == "ready" and w.status("1001") is AgentStatus.READY
    p = _talk(w, _lead(1))
    assert w.status("1001") is AgentStatus.TALKING
    assert key(w, "pause", "break").ok
    assert w.status("1001") is AgentStatus.TALKING, "never paused mid-call"
    w.do(ev.CallHungUp(w.now, p.attempt_id, 16))
    assert w.status("1001") is AgentStatus.WRAP
    w.now += 31
    w.do(ev.Tick(w.now))
    assert w.status("1001") is AgentStatus.PAUSED


def test_logout_refused_on_a_call_accepted_when_idle() -> None:
    w = world()
    _login(w)
    p = _talk(w, _lead(1))
    assert key(w, "logout").ok is False
    w.do(ev.CallHungUp(w.now, p.attempt_id, 16))
    ack = key(w, "logout")
    assert ack.ok and ack.prompt == "goodbye"


def test_ready_key_ends_wrap_up_and_unknown_agent_is_refused() -> None:
    w = world(wrap_up_s=60)
    _login(w)
    p = _talk(w, _lead(1))
    w.do(ev.CallHungUp(w.now, p.attempt_id, 16))
    assert w.status("1001") is AgentStatus.WRAP
    assert key(w, "ready").ok and w.status("1001") is AgentStatus.READY
    assert key(w, "ready", agent="9999").ok is False


# ------------------------------------------------------------------ preview
def test_preview_offers_before_dialing_then_accept_dials_for_that_agent() -> None:
    w = world(dial_mode="preview", wrap_up_s=0)
    _login(w)
    w.do(ev.LeadsLoaded(w.now, "c1", (_lead(1), _lead(2)), exhausted=True))
    assert not w.of(cmd.PlaceCall), "nothing is dialed before the agent accepts"
    assert w.status("1001") is AgentStatus.PREVIEW
    offer = w.of(cmd.ScreenPop)[-1]
    assert (offer.kind, offer.lead.id) == ("offer", 1)
    assert [p.prompt for p in w.of(cmd.AgentPrompt)] == ["offer"]
    ack = key(w, "ready")
    assert ack.ok and ack.prompt == "calling"
    p = w.of(cmd.PlaceCall)[-1]
    assert p.lead_id == 1 and w.status("1001") is AgentStatus.RESERVED
    # answered: goes to this agent even though nobody is "ready"
    out = w.do(ev.CallAnswered(w.now + 3, p.attempt_id, "Local/x;1"))
    assert any(isinstance(c, cmd.Redirect) and c.agent_id == "1001" for c in out)


def test_preview_accept_while_the_campaign_is_paused_is_refused_and_released() -> None:
    w = world(dial_mode="preview")
    _login(w)
    w.do(ev.LeadsLoaded(w.now, "c1", (_lead(1),), exhausted=True))
    assert w.status("1001") is AgentStatus.PREVIEW
    w.do(ev.CampaignPause(w.now, "c1", True))
    ack = key(w, "ready")
    assert (ack.ok, ack.prompt) == (False, "refused")
    assert any(isinstance(c, cmd.ReleaseLeads) and c.lead_ids == (1,) for c in w.out)
    assert not w.of(cmd.PlaceCall) and w.status("1001") is AgentStatus.READY
    assert w.of(cmd.AgentAction)[-1].detail == "campaign paused"


def test_preview_skip_postpones_the_lead_and_offers_the_next() -> None:
    w = world(dial_mode="preview", preview={"skip_retry_s": 600})
    _login(w)
    w.do(ev.LeadsLoaded(w.now, "c1", (_lead(1), _lead(2)), exhausted=True))
    assert key(w, "skip").ok
    skip = w.of(cmd.SkipLead)[-1]
    assert (skip.lead_id, skip.reason, skip.retry_at) == (1, "preview_skipped", w.now + 600)
    assert w.of(cmd.ScreenPop)[-1].lead.id == 2 and w.status("1001") is AgentStatus.PREVIEW
    assert not w.of(cmd.PlaceCall)


def test_preview_timeout_dials_by_itself_and_a_failed_call_frees_the_agent() -> None:
    w = world(dial_mode="preview", preview={"timeout_s": 20})
    _login(w)
    w.do(ev.LeadsLoaded(w.now, "c1", (_lead(1), _lead(2)), exhausted=True))
    w.do(ev.Tick(w.now + 10))
    assert not w.of(cmd.PlaceCall)
    w.do(ev.Tick(w.now + 20))
    p = w.of(cmd.PlaceCall)[-1]
    assert p.lead_id == 1
    w.do(ev.OriginateResult(w.now + 30, p.attempt_id, False, 5))  # busy
    assert w.status("1001") is AgentStatus.PREVIEW and w.of(cmd.ScreenPop)[-1].lead.id == 2


def test_preview_offer_goes_back_when_the_agent_leaves_or_pauses() -> None:
    w = world(dial_mode="preview")
    _login(w)
    w.do(ev.LeadsLoaded(w.now, "c1", (_lead(1),), exhausted=True))
    assert key(w, "pause", "break").ok and w.status("1001") is AgentStatus.PAUSED
    assert w.of(cmd.ReleaseLeads)[-1].lead_ids == (1,)
    assert 1 not in w.core.live_leads


def test_preview_mode_never_dials_without_an_accept() -> None:
    w = world(dial_mode="preview")
    for a in ("1001", "1002"):
        _login(w, a)
    w.do(ev.LeadsLoaded(w.now, "c1", tuple(_lead(i) for i in range(1, 6)), exhausted=True))
    for t in range(50):
        w.do(ev.Tick(w.now + t))
    assert not w.of(cmd.PlaceCall)
    assert {c.lead.id for c in w.of(cmd.ScreenPop)} == {1, 2}


# -------------------------------------------------------------- manual dial
def test_manual_dial_reserves_the_agent_and_returns_to_pause_after() -> None:
    w = world()
    _login(w)
    key(w, "pause", "break")
    w.now += 1
    out = w.do(ev.ManualDial(w.now, "1001", _lead(7), CH))
    ack = next(c for c in out if isinstance(c, cmd.AgentAck))
    assert ack.ok and ack.prompt == "calling"
    p = w.of(cmd.PlaceCall)[-1]
    assert p.lead_id == 7 and p.manual and w.status("1001") is AgentStatus.RESERVED
    assert w.core.snapshot("c1", w.now).agents_paused == 0
    w.do(ev.CallAnswered(w.now + 2, p.attempt_id, "Local/x;1"))
    w.do(ev.CallConnected(w.now + 2.1, p.attempt_id, "1001"))
    w.do(ev.CallHungUp(w.now + 30, p.attempt_id, 16))
    w.do(ev.Tick(w.now + 31))
    assert w.status("1001") is AgentStatus.PAUSED, "back to the pause the agent was in"


def test_manual_dial_of_a_dnc_number_is_refused_and_released() -> None:
    w = world()
    _login(w)
    lead = _lead(8)
    w.do(ev.DncUpdated(w.now, added=((None, lead.phone, "optout"),)))
    out = w.do(ev.ManualDial(w.now + 1, "1001", lead, CH))
    ack = next(c for c in out if isinstance(c, cmd.AgentAck))
    assert (ack.ok, ack.prompt) == (False, "refused")
    assert not w.of(cmd.PlaceCall)
    assert any(isinstance(c, cmd.ReleaseLeads) and c.lead_ids == (8,) for c in out)
    assert w.status("1001") is AgentStatus.READY


def test_manual_dial_outside_calling_hours_is_refused() -> None:
    comp = {**sim_campaign([])["compliance"], "schedule": {"hours": {"daily": ["09:00-09:01"]}}}
    del comp["legal_window_override"]
    w = world(compliance=comp)
    _login(w)
    # 1_780_000_000 is 20:26 UTC: outside 09:00-09:01 London time
    out = w.do(ev.ManualDial(w.now + 1, "1001", _lead(9, timezone="Europe/London"), CH))
    ack = next(c for c in out if isinstance(c, cmd.AgentAck))
    assert ack.ok is False and not w.of(cmd.PlaceCall)
    detail = w.of(cmd.AgentAction)[-1].detail
    assert "window" in detail or "hours" in detail, detail


def test_manual_dial_on_a_call_is_refused() -> None:
    w = world()
    _login(w)
    _talk(w, _lead(1))
    placed = len(w.of(cmd.PlaceCall))
    out = w.do(ev.ManualDial(w.now, "1001", _lead(2), CH))
    assert next(c for c in out if isinstance(c, cmd.AgentAck)).ok is False
    assert len(w.of(cmd.PlaceCall)) == placed


def test_manual_dial_while_the_campaign_is_paused_is_refused_and_released() -> None:
    """A supervisor's pause stops every new dial, the agent's own too; after
    the resume the same number goes out."""
    w = world()
    _login(w)
    w.do(ev.CampaignPause(w.now, "c1", True))
    out = w.do(ev.ManualDial(w.now + 1, "1001", _lead(11), CH))
    ack = next(c for c in out if isinstance(c, cmd.AgentAck))
    assert (ack.ok, ack.prompt) == (False, "refused")
    assert "paused" in w.of(cmd.AgentAction)[-1].detail
    assert any(isinstance(c, cmd.ReleaseLeads) and c.lead_ids == (11,) for c in out)
    assert not w.of(cmd.PlaceCall) and w.status("1001") is AgentStatus.READY
    w.do(ev.CampaignPause(w.now + 2, "c1", False))
    out = w.do(ev.ManualDial(w.now + 3, "1001", _lead(11), CH))
    assert next(c for c in out if isinstance(c, cmd.AgentAck)).ok
    assert w.of(cmd.PlaceCall)[-1].lead_id == 11


# ------------------------------------------------------------------- PINs
def test_agents_file_refuses_unquoted_and_short_pins() -> None:
    with pytest.raises(ValueError, match="quote the PIN"):
        AgentsFile.model_validate({"agents": {"1001": {"pin": 123}}})
    with pytest.raises(ValueError, match="4-10 digits"):
        AgentsFile.model_validate({"agents": {"1001": {"pin": "12"}}})
    with pytest.raises(ValueError, match="2-10 digits"):
        AgentsFile.model_validate({"agents": {"ab": {"pin": "1234"}}})


# ------------------------------------------------------------------ AMI
def test_ack_and_prompt_actions() -> None:
    a = mapping.ack_actions(cmd.AgentAck(CH, True, "paused"))
    assert [(x["Variable"], x["Value"]) for x in a] == [
        ("DIALER_ACK_SOUND", "dictate/paused"),
        ("DIALER_ACK", "ok"),
    ]
    p = mapping.prompt_actions(cmd.AgentPrompt("1001", CH, "connected", "custom/c1"))
    assert p[0]["Value"] == "beep&custom/c1"
    assert p[1]["Action"] == "PlayDTMF" and p[1]["Digit"] == "D" and p[1]["Receive"] == "true"
    with pytest.raises(UnsafeValue):
        mapping.ack_actions(cmd.AgentAck("PJSIP/1\r\nAction: Originate", True, "ok"))


def test_dialer_key_user_event_maps_to_agent_key() -> None:
    e = mapping.to_event(
        {"Event": "UserEvent", "UserEvent": "DialerKey", "Agent": "1001", "Key": "pause",
         "Data": "2", "Channel": CH},
        5.0, {}, {},
    )  # fmt: skip
    assert e == ev.AgentKey(5.0, "1001", "pause", "2", CH)


# ---------------------------------------------------------- check-config
def test_check_config_names_the_agents_file_line_and_field(
    shipped_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = shipped_config
    agents = conf.parent / "agents.yaml"
    assert main(["check-config", "-c", str(conf)]) == 0
    assert "agents.yaml: OK (19 agents, 0 with a hashed PIN" in capsys.readouterr().out
    lines = agents.read_text().splitlines()
    n = next(i for i, ln in enumerate(lines) if ln.startswith('  "1002"'))
    lines[n] = '  "1002": {name: Two, pin: 12}'
    agents.write_text("\n".join(lines) + "\n")
    assert main(["check-config", "-c", str(conf)]) == 1
    err = capsys.readouterr().err
    assert f"agents.yaml:{n + 1}" in err and "agents.1002.pin" in err and "quote" in err, err
    # an agent of a campaign missing from the file is worth a warning
    del lines[n]
    agents.write_text("\n".join(lines) + "\n")
    assert main(["check-config", "-c", str(conf)]) == 0
    assert "agent 1002 is in a campaign but not in this file" in capsys.readouterr().err


def test_a_customer_callback_may_go_one_attempt_over_the_maximum() -> None:
    w = world()
    run = w.core.campaigns["c1"]
    rules = run.cfg.retry
    cap = max_attempts_cap(
        [getattr(rules, f).max_attempts for f in type(rules).model_fields],
        run.cfg.compliance.dispositions,
    )
    leads = (_lead(1, attempts=cap), _lead(2, attempts=cap, callback=True),
             _lead(3, attempts=cap + 1, callback=True))  # fmt: skip
    w.do(ev.LeadsLoaded(w.now, "c1", leads, exhausted=True))
    for a in ("1001", "1002"):
        _login(w, a)
    assert [p.lead_id for p in w.of(cmd.PlaceCall)] == [2]
    assert {(s.lead_id, s.reason) for s in w.of(cmd.SkipLead)} == {
        (1, "max_attempts"),
        (3, "max_attempts"),
    }


def test_reload_takes_the_new_agents_file_and_keeps_the_old_when_it_is_broken(
    tmp_path: Path,
) -> None:
    agents = tmp_path / "agents.yaml"
    agents.write_text('agents:\n  "1001": {name: One}\n')
    cfg = tmp_path / "dialerd.yaml"
    cfg.write_text(
        "ami: {username: dialerd, secret: x}\n"
        f"store: {{path: {tmp_path / 's.db'}}}\n"
        f"campaigns_dir: {tmp_path}\n"
        "agents_file: agents.yaml\n"
    )
    daemon = Daemon(load_settings(cfg))
    assert set(daemon.keys.agents.agents) == {"1001"}
    agents.write_text('agents:\n  "1001": {name: One}\n  "1002": {name: Two}\n')
    daemon.reload()
    assert set(daemon.keys.agents.agents) == {"1001", "1002"}
    agents.write_text('agents:\n  "1001": {pin: 33}\n')  # broken: kept as it was
    daemon.reload()
    assert set(daemon.keys.agents.agents) == {"1001", "1002"}


def test_connect_tone_can_be_off_and_the_announcement_still_plays() -> None:
    for over, want in (
        ({"connect_tone": False}, None),
        ({"connect_tone": False, "connect_announcement": "custom/c1"}, ("", "custom/c1")),
    ):
        w = world(**over)
        _login(w)
        w.do(ev.LeadsLoaded(w.now, "c1", (_lead(1),), exhausted=True))
        p = w.of(cmd.PlaceCall)[-1]
        out = w.do(ev.CallAnswered(w.now + 1, p.attempt_id, "Local/x;1"))
        prompts = [(c.prompt, c.extra) for c in out if isinstance(c, cmd.AgentPrompt)]
        assert prompts == ([] if want is None else [want])
        assert any(isinstance(c, cmd.ScreenPop) for c in out), "the screen pop stays"
    pa = mapping.prompt_actions(cmd.AgentPrompt("1001", CH, "", "custom/c1"))
    assert pa[0]["Value"] == "custom/c1"


# ------------------------------------------------------- preview simulated
def test_preview_in_the_simulator_dials_only_what_agents_accept() -> None:
    ref = load_scenario(REPO / "bench" / "scenarios" / "reference.yaml").with_agents(6)
    body = ref.model_dump()
    fast = Scenario.model_validate({**body, "duration_s": 1800})
    slow = Scenario.model_validate(
        {**body, "duration_s": 1800, "agents": {**body["agents"], "preview_think_s": 30}}
    )
    prog = simulate(fast, "progressive", seed=2)
    quick = simulate(fast, "preview", seed=2)
    thinking = simulate(slow, "preview", seed=2)
    # one call per accepted offer, for its own agent: no abandons, ever
    assert quick.abandoned == thinking.abandoned == 0
    assert (
        quick.answered > 0 and quick.connected >= quick.answered
    )  # every answer reached its agent
    # reading each lead costs talk time, the more the longer the agents read
    assert thinking.talk_share < quick.talk_share < prog.talk_share
    assert thinking.dials < quick.dials <= prog.dials
