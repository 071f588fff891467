"""The example campaigns of ``config/campaigns/``: each one valid for the real
loader and for ``dialerd check-config``, of the kind it claims to be, with
keys an agent can press, and each one dialing in the simulator through the
real core with its own settings (pacing, abandon target, dispositions).

Every file of the directory is covered, so a new example is tested as soon
as it is added.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dialerd.campaign.lint import check_campaign
from dialerd.campaign.loader import load_campaign_file, load_campaigns_dir
from dialerd.campaign.model import Campaign, DialMode, MachineAction
from dialerd.cli import main
from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.models import LeadStatus
from dialerd.rules.dispositions import find
from dialerd.settings import load_settings
from dialerd.sim.scenario import Scenario
from dialerd.sim.world import _CORE, CAMPAIGN, Result, World

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config" / "dialerd.yaml"
CAMPAIGNS = REPO / "config" / "campaigns"
#: what the shipped dialerd.yaml binds campaign files to (its trunks)
SITE = load_settings(CONFIG).site()
CONFBRIDGE = REPO / "asterisk-conf" / "confbridge.conf"
FILES = sorted(p for p in CAMPAIGNS.iterdir() if p.suffix in (".yaml", ".yml"))

#: the three kinds the examples must cover: file -> disposition codes it needs
KINDS: dict[str, set[str]] = {
    "collections.yaml": {"paid", "promise_to_pay", "dispute", "wrong_number", "do_not_call"},
    "example-sales.yaml": {"sale", "not_interested", "callback", "wrong_number", "do_not_call"},
    "survey.yaml": {"completed", "refused", "partial", "wrong_number", "do_not_call"},
}
#: the code that counts as the campaign's success (``sale: true``) per kind
SUCCESS = {"collections.yaml": "paid", "example-sales.yaml": "sale", "survey.yaml": "completed"}


def _ids(p: Path) -> str:
    return p.name


# ------------------------------------------------------------------ validity


def test_the_three_kinds_exist() -> None:
    assert set(KINDS) <= {p.name for p in FILES}


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_file_is_valid_with_no_compliance_finding(path: Path) -> None:
    c = load_campaign_file(path, SITE)
    # not even a warning: the examples are what supervisors copy
    assert check_campaign(c) == []
    assert c.enabled


def test_directory_loads_without_clash_and_agents_are_disjoint() -> None:
    campaigns, errors = load_campaigns_dir(CAMPAIGNS, SITE)
    assert [str(e) for e in errors] == []
    assert len(campaigns) == len(FILES)
    seen: dict[str, str] = {}
    for c in campaigns.values():
        assert c.agents, f"{c.name} has no agents"
        for a in c.agents:
            assert a not in seen, f"agent {a} in {seen.get(a)} and {c.name}"
            seen[a] = c.name


def test_check_config_cli_accepts_every_example(
    shipped_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", "--config", str(shipped_config)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    for path in FILES:
        c = load_campaign_file(path, SITE)
        want = f"campaign {c.name}: OK (enabled, {c.dial_mode.value}, {len(c.agents)} agents"
        assert want in out


# ------------------------------------------------------------------ content


def _menu_keys() -> set[str]:
    """Keys of the agent's DTMF menu that raise a disposition ('*' + key)."""
    text = CONFBRIDGE.read_text()
    return set(re.findall(r"^\*(\S+)\s*=\s*dialplan_exec\(dialer-dispo,", text, re.M))


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_dispositions_have_unique_keys_the_agent_menu_knows(path: Path) -> None:
    c = load_campaign_file(path, SITE)
    dispos = c.compliance.dispositions
    keys = [d.dtmf for d in dispos]
    # an agent works with a softphone only: every disposition needs a key
    assert None not in keys
    assert len(set(keys)) == len(keys), f"repeated keys: {keys}"
    menu = _menu_keys()
    assert menu, f"no disposition keys found in {CONFBRIDGE}"
    assert set(keys) <= menu, f"keys {set(keys) - menu} are not in the agent menu"
    # an opt-out is always recordable, and is final
    dnc = [d for d in dispos if d.dnc is not None]
    assert dnc and all(d.final for d in dnc)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_kind_has_its_dispositions(name: str) -> None:
    c = load_campaign_file(CAMPAIGNS / name, SITE)
    dispos = c.compliance.dispositions
    codes = {d.code for d in dispos}
    assert KINDS[name] <= codes
    success = find(dispos, code=SUCCESS[name])
    assert success is not None and success.final and success.sale
    assert [d.code for d in dispos if d.sale] == [SUCCESS[name]]
    wrong = find(dispos, code="wrong_number")
    assert wrong is not None and wrong.final and not wrong.contact
    assert any(d.callback for d in dispos)


def test_collections_is_conservative_and_leaves_a_message() -> None:
    c = load_campaign_file(CAMPAIGNS / "collections.yaml", SITE)
    assert c.abandon_target < 0.03
    assert c.amd.enabled and c.amd.on_machine is MachineAction.MESSAGE and c.amd.message_sound
    promise = find(c.compliance.dispositions, code="promise_to_pay")
    assert promise is not None and promise.callback
    # Regulation F's 7 calls in 7 days: one a day and never more than 7
    assert c.compliance.max_attempts_per_day == 1
    rules = c.retry
    assert max(getattr(rules, f).max_attempts for f in type(rules).model_fields) <= 7


def test_survey_partial_is_a_callback() -> None:
    c = load_campaign_file(CAMPAIGNS / "survey.yaml", SITE)
    partial = find(c.compliance.dispositions, code="partial")
    assert partial is not None and partial.callback


# ------------------------------------------------------------------ simulator

#: simulated time: an hour, enough live answers for an abandon rate to mean
#: something (a few minutes hold a handful of answers)
SIM_S = 3600.0
SEED = 1


class _DispoWorld(World):
    """The simulated world, plus agents pressing the campaign's disposition
    keys in turn, a few seconds into each wrap-up, as they would in the room."""

    def __init__(self, scenario: Scenario, policy: str, keys: list[str]) -> None:
        super().__init__(scenario, policy, seed=SEED)
        self.keys = keys
        self.pressed = 0
        self.dispositions: list[cmd.RecordDisposition] = []

    def _agent_state(self, aid: str, state: str, at: float) -> None:
        super()._agent_state(aid, state, at)
        if state == "wrap" and self.keys:
            self.at(self.now + min(3.0, self.campaign.wrap_up_s / 2), _CORE, ("dispo", aid))

    def _core_happening(self, p: tuple[Any, ...]) -> None:
        if p[0] == "dispo":
            key = self.keys[self.pressed % len(self.keys)]
            self.pressed += 1
            self.do(ev.AgentKey(self.now, p[1], key))
            return
        super()._core_happening(p)

    def _command(self, c: cmd.Command) -> None:
        if isinstance(c, cmd.RecordDisposition):
            self.dispositions.append(c)
        super()._command(c)


def _scenario(path: Path, c: Campaign, dial_mode: str) -> Scenario:
    """The campaign file itself (but its name and agent ids, which are the
    simulator's) as the scenario's campaign; customers as in the reference
    scenario, with shorter talk so the hour holds enough calls."""
    raw = yaml.safe_load(path.read_text())
    over = {k: v for k, v in raw.items() if k not in ("name", "agents", "enabled")}
    over["dial_mode"] = dial_mode
    return Scenario.model_validate(
        {
            "name": c.name,
            "duration_s": SIM_S,
            "seed": SEED,
            "agents": {"count": len(c.agents), "login_spread_s": 10},
            "customers": {"answer_rate": 0.3, "busy_share": 0.05, "failed_share": 0.02},
            "talk": {"dist": "lognormal", "mean": 120, "cv": 0.8},
            "wrap_s": c.wrap_up_s,
            "ring_timeout_s": c.ring_timeout_s,
            "campaign": over,
        }
    )


def _run(path: Path, c: Campaign, dial_mode: str) -> tuple[_DispoWorld, Result]:
    keys = [d.dtmf for d in c.compliance.dispositions if d.dtmf is not None]
    w = _DispoWorld(_scenario(path, c, dial_mode), dial_mode, keys)
    return w, w.run()


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_campaign_runs_in_the_simulator(path: Path) -> None:
    c = load_campaign_file(path, SITE)
    w, r = _run(path, c, c.dial_mode.value)

    # the core ran this file's settings, not the simulator's defaults
    cfg = w.core.campaigns[CAMPAIGN].cfg
    assert cfg.dial_mode is c.dial_mode
    assert cfg.abandon_target == c.abandon_target
    assert cfg.pacing == c.pacing and cfg.retry == c.retry and cfg.compliance == c.compliance

    assert r.dials > 0 and r.answered > 0 and r.connected > 0
    assert sum(r.outcomes.values()) + w.core.campaigns[CAMPAIGN].live == r.dials
    assert r.abandon_rate <= c.abandon_target, (
        f"{c.name}: {r.abandoned}/{r.answered} abandoned, target {c.abandon_target}"
    )

    # every key the agents pressed became the campaign's disposition
    dispos = c.compliance.dispositions
    assert {d.code for d in w.dispositions} == {d.code for d in dispos}
    for rec in w.dispositions:
        d = find(dispos, code=rec.code)
        assert d is not None
        if d.final:
            assert rec.lead.status is LeadStatus.DONE
            assert rec.lead.final_reason == f"dispo_{d.code}"
        elif d.callback:
            assert rec.callback and rec.lead.status is LeadStatus.RETRY
            assert rec.lead.next_due_at == pytest.approx(rec.at + d.callback_delay_s)
        else:
            assert rec.lead.status in (LeadStatus.RETRY, LeadStatus.DONE)
        if d.dnc is not None:
            assert rec.dnc == d.dnc.value
            assert w.core.dnc.is_blocked(CAMPAIGN, rec.phone) is not None

    if c.dial_mode is DialMode.PROGRESSIVE:
        assert r.abandoned == 0  # one line per ready agent never abandons
    elif c.dial_mode is DialMode.PREDICTIVE:
        # the mode earns its keep: more talk than progressive on the same customers
        _, base = _run(path, c, DialMode.PROGRESSIVE.value)
        assert base.abandoned == 0
        assert r.talk_share > base.talk_share
        assert r.dials > base.dials
