"""Inbound queue files: the schema, its errors (file, line, field), the
checks against the loaded campaigns, the shipped example and check-config."""

from __future__ import annotations

import shutil
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from dialerd.campaign.loader import ConfigError, load_campaigns_dir
from dialerd.campaign.model import Campaign
from dialerd.campaign.queue_loader import load_queue_file, load_queues_dir
from dialerd.campaign.queues import MAX_WAIT_S, Action, Queue, served_by
from dialerd.cli import main
from dialerd.phone import PhoneError, normalize
from dialerd.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config" / "dialerd.yaml"
QUEUES = REPO / "config" / "queues"
QUEUE_FILES = sorted(p for p in QUEUES.iterdir() if p.suffix in (".yaml", ".yml"))

GOOD = """\
name: help
dids: ["+442071234567", "+44 20 7123 4568"]
campaigns: [sales]
agents: ["4001"]
priority: 5
service_level:
  percent: 80
  within_s: 20
max_wait_s: 120
callback_campaign: sales
after_max_wait:
  action: callback
  offer_sound: custom/offer
  sound: custom/bye
no_agents:
  action: message
  sound: custom/closed
hold:
  music: default
announce_sound: custom/hello
"""


def write(d: Path, text: str, name: str = "help.yaml") -> Path:
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    p.write_text(text, encoding="utf-8")
    return p


def line_of(text: str, prefix: str) -> int:
    """1-based line of the first line that starts with ``prefix``."""
    return next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith(prefix))


def replace(text: str, prefix: str, new: str) -> str:
    """``text`` with the line starting with ``prefix`` replaced (``new`` may
    hold several lines, or none)."""
    lines = text.splitlines()
    i = line_of(text, prefix) - 1
    lines[i : i + 1] = new.splitlines()
    return "\n".join(lines) + "\n"


def block(text: str, key: str, new: str) -> str:
    """``text`` with the top-level block ``key:`` (its line and the indented
    ones after it) replaced by ``new``."""
    lines = text.splitlines()
    i = line_of(text, f"{key}:") - 1
    j = i + 1
    while j < len(lines) and lines[j].startswith(" "):
        j += 1
    lines[i:j] = new.splitlines()
    return "\n".join(lines) + "\n"


def campaign(name: str, agents: list[str], enabled: bool = True) -> Campaign:
    return Campaign.model_validate(
        {
            "name": name,
            "enabled": enabled,
            "trunk": "carrier",
            "caller_id": {"number": "+442071234567"},
            "agents": agents,
            "safe_harbor_sound": "custom/sh",
        }
    )


CAMPAIGNS = {
    "sales": campaign("sales", ["1001", "1002"]),
    "collect": campaign("collect", ["4001"]),
    "old": campaign("old", ["6001"], enabled=False),
}


def errors_of(path: Path) -> list[ConfigError]:
    with pytest.raises(ConfigError) as info:
        load_queue_file(path)
    return info.value.flatten()


def one_error(path: Path) -> ConfigError:
    errors = errors_of(path)
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


# ------------------------------------------------------------------ schema


def test_good_file_loads(tmp_path: Path) -> None:
    q = load_queue_file(write(tmp_path, GOOD))
    assert isinstance(q, Queue)
    assert q.name == "help" and q.enabled
    assert q.dids == ["+442071234567", "+442071234568"]  # stored as E.164
    assert q.campaigns == ["sales"] and q.agents == ["4001"]
    assert (q.priority, q.max_wait_s) == (5, 120)
    assert (q.service_level.percent, q.service_level.within_s) == (80, 20)
    # a callback with no campaign of its own takes the queue's
    assert q.after_max_wait.action is Action.CALLBACK
    assert q.after_max_wait.callback_campaign == "sales"
    assert q.after_max_wait.offer_timeout_s == 10
    assert q.no_agents.action is Action.MESSAGE and q.no_agents.callback_campaign is None
    assert q.hold.music == "default" and q.hold.prompt is None
    assert q.announce_sound == "custom/hello"


def test_prompt_loop_and_own_callback_campaign(tmp_path: Path) -> None:
    text = block(GOOD, "hold", "hold:\n  prompt: custom/wait\n  every_s: 30")
    text = replace(text, "callback_campaign:", "")
    text = block(
        text,
        "no_agents",
        "no_agents:\n  action: callback\n  callback_campaign: collect\n"
        "  offer_sound: custom/o\n  sound: custom/s",
    )
    text = block(
        text,
        "after_max_wait",
        "after_max_wait:\n  action: callback\n  callback_campaign: sales\n"
        "  offer_sound: custom/o\n  offer_timeout_s: 5\n  booked_sound: custom/ok\n"
        "  sound: custom/s",
    )
    q = load_queue_file(write(tmp_path, text))
    assert q.callback_campaign is None
    assert q.no_agents.callback_campaign == "collect"
    assert q.after_max_wait.callback_campaign == "sales"
    assert q.after_max_wait.booked_sound == "custom/ok"
    assert q.after_max_wait.offer_timeout_s == 5
    assert (q.hold.prompt, q.hold.every_s, q.hold.music) == ("custom/wait", 30, None)


def _agents_only(t: str) -> str:
    return replace(t, "campaigns:", "")


def _campaigns_only(t: str) -> str:
    return replace(t, "agents:", "")


@pytest.mark.parametrize("edit", [_agents_only, _campaigns_only], ids=["agents", "campaigns"])
def test_agents_or_campaigns_alone_is_enough(tmp_path: Path, edit: object) -> None:
    assert callable(edit)
    q = load_queue_file(write(tmp_path, edit(GOOD)))
    assert q.agents or q.campaigns


#: (what to change, the field the error must name, words of its message);
#: the line is the one of the field's key, or of its enclosing key when the
#: field is missing
BAD: list[tuple[str, str, str, str, str]] = [
    # (id, prefix of the line to replace, new text, field, message part)
    ("name", "name:", "name: Help Desk", "name", "1-48 of a-z"),
    ("did-invalid", "dids:", 'dids: ["+442071234567", "+1 555"]', "dids[1]", "not a"),
    ("did-letters", "dids:", 'dids: ["+44207123456x"]', "dids[0]", "characters"),
    ("did-no-country", "dids:", 'dids: ["020 7123 4567"]', "dids[0]", "with its country code"),
    ("dids-empty", "dids:", "dids: []", "dids", "at least 1"),
    ("did-twice", "dids:", 'dids: ["+442071234567", "+44 20 7123 4567"]', "dids", "more than once"),
    ("agent-id", "agents:", 'agents: ["40x1"]', "agents[0]", "2-10 digits"),
    ("agent-twice", "agents:", 'agents: ["4001", "4001"]', "agents", "more than once"),
    ("campaign-name", "campaigns:", "campaigns: [Sales!]", "campaigns[0]", "campaign name"),
    ("priority-high", "priority:", "priority: 101", "priority", "less than or equal to 100"),
    ("priority-type", "priority:", "priority: high", "priority", "valid integer"),
    ("percent-zero", "  percent:", "  percent: 0", "service_level.percent", "greater than 0"),
    ("percent-high", "  percent:", "  percent: 101", "service_level.percent", "100"),
    ("within-huge", "  within_s:", "  within_s: 99999999", "service_level.within_s", "3600"),
    ("max-wait-short", "max_wait_s:", "max_wait_s: 2", "max_wait_s", "greater than or equal to 5"),
    ("max-wait-huge", "max_wait_s:", f"max_wait_s: {10**400}", "max_wait_s", "3600"),
    ("max-wait-under-sl", "max_wait_s:", "max_wait_s: 15", "max_wait_s", "within_s (20 s)"),
    ("action", "  action: callback", "  action: voicemail", "after_max_wait.action", "callback"),
    ("offer-missing", "  offer_sound:", "", "after_max_wait.offer_sound", "press 1"),
    ("offer-timeout", "  offer_sound:", "  offer_sound: x\n  offer_timeout_s: 0",
     "after_max_wait.offer_timeout_s", "greater than or equal to 1"),
    ("sound-escape", "  sound: custom/bye", "  sound: ../../etc/passwd",
     "after_max_wait.sound", "sound path"),
    ("sound-options", "  sound: custom/closed", "  sound: custom/x,skip",
     "no_agents.sound", "sound path"),
    ("message-with-offer", "  sound: custom/closed", "  sound: custom/c\n  offer_sound: custom/o",
     "no_agents.offer_sound", "only with action: callback"),
    ("message-with-campaign", "  sound: custom/closed", "  sound: c\n  callback_campaign: sales",
     "no_agents.callback_campaign", "only with action: callback"),
    ("message-with-timeout", "  sound: custom/closed", "  sound: c\n  offer_timeout_s: 5",
     "no_agents.offer_timeout_s", "only with action: callback"),
    ("callback-campaign-name", "callback_campaign:", "callback_campaign: Sales Team",
     "callback_campaign", "campaign name"),
    ("music-class", "  music:", "  music: my class", "hold.music", "music-on-hold class"),
    ("hold-both", "  music:", "  music: default\n  prompt: custom/w\n  every_s: 30",
     "hold.prompt", "not both"),
    ("prompt-no-every", "  music:", "  prompt: custom/w", "hold.every_s", "needs every_s"),
    ("every-short", "  music:", "  prompt: custom/w\n  every_s: 1", "hold.every_s", "5"),
    ("every-without-prompt", "  music:", "  music: default\n  every_s: 30",
     "hold.every_s", "only with prompt"),
    ("announce", "announce_sound:", "announce_sound: 'x y'", "announce_sound", "sound path"),
    ("unknown-key", "priority:", "priority: 5\nprioritty: 6", "prioritty", "unknown key"),
    ("unknown-nested", "  within_s:", "  within_s: 20\n  within: 30",
     "service_level.within", "unknown key"),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_field_names_file_line_and_field(
    tmp_path: Path, case: tuple[str, str, str, str, str]
) -> None:
    _id, prefix, new, fld, words = case
    text = replace(GOOD, prefix, new)
    p = write(tmp_path, text)
    e = one_error(p)
    assert (e.file, e.field) == (str(p), fld), str(e)
    assert words in e.message, str(e)
    # the line of the key the error names; a missing key: the key holding it
    *parents, last = fld.replace("[", ".[").split(".")
    key = last if not last.startswith("[") else parents.pop()
    want = [i for i, ln in enumerate(text.splitlines(), 1) if ln.strip().startswith(f"{key}:")]
    if last.startswith("["):  # a list item written inline: the list's line
        assert e.line == want[0], str(e)
    elif want:
        assert e.line in want, str(e)
    else:
        assert e.line == line_of(text, f"{parents[-1]}:"), str(e)


def test_missing_required_keys_each_named(tmp_path: Path) -> None:
    p = write(tmp_path, "name: help\n")
    fields = {e.field for e in errors_of(p)}
    assert {
        "dids",
        "service_level",
        "max_wait_s",
        "after_max_wait",
        "no_agents",
        "hold",
    } <= fields


def test_neither_agents_nor_campaigns(tmp_path: Path) -> None:
    text = replace(replace(GOOD, "agents:", ""), "campaigns:", "")
    e = one_error(write(tmp_path, text))
    assert e.field == "campaigns" and "needs agents, campaigns" in e.message


def test_empty_hold(tmp_path: Path) -> None:
    text = block(GOOD, "hold", "hold: {}")
    e = one_error(write(tmp_path, text))
    assert (e.line, e.field) == (line_of(text, "hold:"), "hold")
    assert "music" in e.message and "prompt" in e.message


def test_callback_with_no_callback_campaign_anywhere(tmp_path: Path) -> None:
    text = replace(GOOD, "callback_campaign:", "")
    e = one_error(write(tmp_path, text))
    assert (e.line, e.field) == (line_of(text, "after_max_wait:"), "after_max_wait")
    assert "needs callback_campaign" in e.message


def test_no_agents_callback_with_no_callback_campaign(tmp_path: Path) -> None:
    text = replace(GOOD, "callback_campaign:", "")
    text = replace(text, "  action: callback", "  action: message")
    text = replace(text, "  offer_sound:", "")
    text = block(text, "no_agents", "no_agents:\n  action: callback\n  offer_sound: o\n  sound: s")
    e = one_error(write(tmp_path, text))
    assert (e.line, e.field) == (line_of(text, "no_agents:"), "no_agents")


def test_every_error_of_a_file_at_once(tmp_path: Path) -> None:
    text = replace(GOOD, "priority:", "priority: -1")
    text = replace(text, "max_wait_s:", "max_wait_s: 0")
    text = replace(text, "  music:", "  music: 'bad class'")
    fields = [e.field for e in errors_of(write(tmp_path, text))]
    assert fields == ["priority", "max_wait_s", "hold.music"]


def test_duplicate_key_is_reported(tmp_path: Path) -> None:
    text = GOOD + "max_wait_s: 300\n"
    e = one_error(write(tmp_path, text))
    assert (e.line, e.field) == (len(text.splitlines()), "max_wait_s")
    assert "duplicate key" in e.message


# ------------------------------------------------------------------ DIDs, by property


@settings(max_examples=300, deadline=None)
@given(raw=st.text(alphabet="+0123456789 ()-.x", min_size=0, max_size=20))
def test_a_did_is_accepted_exactly_when_it_normalizes(raw: str) -> None:
    # a DID is written with its country code, so it starts with "+"
    # (normalize alone also reads ".+9522..." past the dot)
    try:
        want: str | None = normalize(raw, None) if raw.strip().startswith("+") else None
    except PhoneError:
        want = None
    data = {
        "name": "q",
        "dids": [raw],
        "agents": ["1001"],
        "service_level": {"percent": 80, "within_s": 20},
        "max_wait_s": 60,
        "after_max_wait": {"action": "message", "sound": "s"},
        "no_agents": {"action": "message", "sound": "s"},
        "hold": {"music": "default"},
    }
    if want is None:
        with pytest.raises(ValidationError) as info:
            Queue.model_validate(data)
        assert [e["loc"] for e in info.value.errors()] == [("dids", 0)]
    else:
        assert Queue.model_validate(data).dids == [want]


_REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
_FORMATS = [
    phonenumbers.PhoneNumberFormat.E164,
    phonenumbers.PhoneNumberFormat.INTERNATIONAL,
]


@settings(max_examples=200, deadline=None)
@given(region=st.sampled_from(_REGIONS), fmt=st.sampled_from(_FORMATS))
def test_any_countrys_number_is_stored_as_e164(region: str, fmt: int) -> None:
    example = phonenumbers.example_number(region)
    if example is None:
        return
    raw = phonenumbers.format_number(example, fmt)
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    data = {
        "name": "q",
        "dids": [raw],
        "agents": ["1001"],
        "service_level": {"percent": 80, "within_s": 20},
        "max_wait_s": 60,
        "after_max_wait": {"action": "message", "sound": "s"},
        "no_agents": {"action": "message", "sound": "s"},
        "hold": {"music": "default"},
    }
    assert Queue.model_validate(data).dids == [e164]


# ------------------------------------------------------------------ cross-checks


def test_directory_loads_and_absent_directory_is_no_queues(tmp_path: Path) -> None:
    assert load_queues_dir(tmp_path / "nope", CAMPAIGNS).queues == {}
    assert load_queues_dir(tmp_path / "nope", CAMPAIGNS).errors == []
    write(tmp_path / "q", GOOD)
    got = load_queues_dir(tmp_path / "q", CAMPAIGNS)
    assert list(got.queues) == ["help"] and got.errors == [] and got.warnings == []
    assert got.sources["help"] == tmp_path / "q" / "help.yaml"


def test_queues_dir_that_is_a_file(tmp_path: Path) -> None:
    f = write(tmp_path, "x", "queues")
    got = load_queues_dir(f, CAMPAIGNS)
    assert [e.file for e in got.errors] == [str(f)] and "not a directory" in got.errors[0].message


def test_a_bad_file_does_not_stop_the_others(tmp_path: Path) -> None:
    d = tmp_path / "q"
    write(d, GOOD)
    text = replace(replace(GOOD, "name:", "name: other"), "max_wait_s:", "max_wait_s: x")
    bad = write(d, text, "b.yaml")
    write(d, "name: [\n", "c.yaml")
    write(d, "not: valid\n", ".hidden.yaml")  # editor droppings are skipped
    got = load_queues_dir(d, CAMPAIGNS)
    assert list(got.queues) == ["help"]
    assert {(e.file, e.field) for e in got.errors} == {
        (str(bad), "max_wait_s"),
        (str(d / "c.yaml"), None),
    }


def test_did_in_two_enabled_queues(tmp_path: Path) -> None:
    d = tmp_path / "q"
    first = write(d, GOOD, "a.yaml")
    text = replace(GOOD, "name:", "name: other")
    text = replace(text, "dids:", 'dids:\n  - "+442079460124"\n  - "+44 20 7123 4568"')
    second = write(d, text, "b.yaml")
    got = load_queues_dir(d, CAMPAIGNS)
    assert list(got.queues) == ["help"]  # the later file is refused whole
    [e] = got.errors
    assert (e.file, e.line, e.field) == (str(second), line_of(text, '  - "+44 20'), "dids[1]")
    assert "+442071234568" in e.message and "'help'" in e.message and str(first) in e.message


def test_did_shared_with_a_disabled_queue_is_fine(tmp_path: Path) -> None:
    d = tmp_path / "q"
    write(d, GOOD, "a.yaml")
    write(d, replace(GOOD, "name:", "name: night\nenabled: false"), "b.yaml")
    got = load_queues_dir(d, CAMPAIGNS)
    assert sorted(got.queues) == ["help", "night"] and got.errors == []
    assert not got.queues["night"].enabled


def test_same_queue_name_twice(tmp_path: Path) -> None:
    d = tmp_path / "q"
    write(d, GOOD, "a.yaml")
    second = write(d, replace(GOOD, "dids:", 'dids: ["+442079460124"]'), "b.yaml")
    [e] = load_queues_dir(d, CAMPAIGNS).errors
    assert (e.file, e.line, e.field) == (str(second), 1, "name")
    assert "already defined" in e.message


def test_unknown_agent_and_campaign(tmp_path: Path) -> None:
    text = replace(GOOD, "agents:", 'agents: ["4001", "9999"]')
    text = replace(text, "campaigns:", "campaigns:\n  - sales\n  - nosuch")
    p = write(tmp_path / "q", text)
    got = load_queues_dir(tmp_path / "q", CAMPAIGNS)
    assert got.queues == {}
    found = {(e.file, e.line, e.field) for e in got.errors}
    assert found == {
        (str(p), line_of(text, "  - nosuch"), "campaigns[1]"),
        (str(p), line_of(text, "agents:"), "agents[1]"),
    }
    msgs = " ".join(e.message for e in got.errors)
    assert "agent 9999 is in no loaded campaign" in msgs
    assert "no campaign named 'nosuch'" in msgs and "collect, old, sales" in msgs


def test_disabled_campaign_and_its_agent_are_warnings(tmp_path: Path) -> None:
    text = replace(GOOD, "agents:", 'agents: ["6001"]')
    text = replace(text, "campaigns:", "campaigns: [sales, old]")
    p = write(tmp_path / "q", text)
    got = load_queues_dir(tmp_path / "q", CAMPAIGNS)
    assert got.errors == [] and list(got.queues) == ["help"]
    assert {(e.file, e.line, e.field) for e in got.warnings} == {
        (str(p), line_of(text, "agents:"), "agents[0]"),
        (str(p), line_of(text, "campaigns:"), "campaigns[1]"),
    }
    # a disabled campaign's agents do not answer; the queue's own still count
    assert served_by(got.queues["help"], CAMPAIGNS) == {"1001", "1002", "6001"}


def test_callback_campaign_unknown_at_the_key_written(tmp_path: Path) -> None:
    text = replace(GOOD, "callback_campaign:", "callback_campaign: nosuch")
    p = write(tmp_path / "q", text)
    got = load_queues_dir(tmp_path / "q", CAMPAIGNS)
    [e] = got.errors  # used by one fallback, said once
    where = (str(p), line_of(text, "callback_campaign:"), "callback_campaign")
    assert (e.file, e.line, e.field) == where
    assert "no outbound campaign named 'nosuch'" in e.message and got.queues == {}


def test_callback_campaign_of_the_action_itself(tmp_path: Path) -> None:
    text = replace(GOOD, "  action: callback", "  action: callback\n  callback_campaign: gone")
    p = write(tmp_path / "q", text)
    [e] = load_queues_dir(tmp_path / "q", CAMPAIGNS).errors
    assert (e.file, e.line, e.field) == (
        str(p),
        line_of(text, "  callback_campaign: gone"),
        "after_max_wait.callback_campaign",
    )


def test_callback_campaign_that_is_a_queue(tmp_path: Path) -> None:
    d = tmp_path / "q"
    write(d, GOOD, "a.yaml")
    text = replace(GOOD, "name:", "name: other")
    text = replace(text, "dids:", 'dids: ["+442079460124"]')
    text = replace(text, "callback_campaign:", "callback_campaign: help")
    write(d, text, "b.yaml")
    [e] = load_queues_dir(d, CAMPAIGNS).errors
    assert e.field == "callback_campaign" and "'help' is an inbound queue" in e.message


def test_callback_campaign_disabled_is_a_warning(tmp_path: Path) -> None:
    text = replace(GOOD, "callback_campaign:", "callback_campaign: old")
    text = block(text, "no_agents", "no_agents:\n  action: callback\n  offer_sound: o\n  sound: s")
    write(tmp_path / "q", text)
    got = load_queues_dir(tmp_path / "q", CAMPAIGNS)
    assert got.errors == [] and list(got.queues) == ["help"]
    [w] = got.warnings  # both fallbacks use the queue's key: said once
    assert (w.line, w.field) == (line_of(text, "callback_campaign:"), "callback_campaign")
    assert "disabled" in w.message


def test_served_by_counts_each_agent_once() -> None:
    q = Queue.model_validate(
        {
            "name": "q",
            "dids": ["+442071234567"],
            "agents": ["1001", "4001"],
            "campaigns": ["sales", "collect"],
            "service_level": {"percent": 90, "within_s": 10},
            "max_wait_s": 60,
            "after_max_wait": {"action": "message", "sound": "s"},
            "no_agents": {"action": "message", "sound": "s"},
            "hold": {"music": "default"},
        }
    )
    assert served_by(q, CAMPAIGNS) == {"1001", "1002", "4001"}
    assert served_by(q, {}) == {"1001", "4001"}


# ------------------------------------------------------------------ shipped example


def test_every_shipped_queue_is_valid_against_the_shipped_campaigns() -> None:
    settings_ = load_settings(CONFIG)
    assert settings_.queues_dir == QUEUES  # dialerd.yaml names the directory
    assert QUEUE_FILES, "no example queue"
    campaigns, errors = load_campaigns_dir(settings_.campaigns_dir, settings_.site())
    assert errors == []
    got = load_queues_dir(settings_.queues_dir, campaigns)
    assert [str(e) for e in got.errors + got.warnings] == []
    assert sorted(got.sources.values()) == QUEUE_FILES
    agents_file = settings_.agents_file
    assert agents_file is not None
    known = agents_file.read_text()
    for q in got.queues.values():
        assert q.enabled
        for a in served_by(q, campaigns):
            assert f'"{a}":' in known, f"agent {a} of queue {q.name} is not in agents.yaml"


def test_support_example_shows_every_key() -> None:
    q = load_queue_file(QUEUES / "support.yaml")
    assert q.name == "support"
    lines = (QUEUES / "support.yaml").read_text().splitlines()
    written = {ln.split(":")[0] for ln in lines if ln and ln[0] not in "# " and ":" in ln}
    top = set(Queue.model_fields)
    assert top <= written, f"keys not shown: {top - written}"
    assert q.after_max_wait.action is Action.CALLBACK and q.after_max_wait.booked_sound
    assert q.max_wait_s >= q.service_level.within_s and q.max_wait_s <= MAX_WAIT_S


# ------------------------------------------------------------------ check-config


def test_check_config_prints_each_queue(
    shipped_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", "--config", str(shipped_config)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "queue support: OK (2 DIDs, 4 agents, SL 80%/20 s)" in out
    assert "validated only" not in out  # the daemon routes them


def test_check_config_bad_queue_exit_1_with_file_line_field(
    shipped_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    qdir = shipped_config.parent / "queues"
    bad = qdir / "broken.yaml"
    text = (qdir / "support.yaml").read_text()
    text = text.replace("name: support", "name: broken").replace("priority: 10", "priority: 1000")
    bad.write_text(text)
    assert main(["check-config", "-c", str(shipped_config)]) == 1
    out, err = capsys.readouterr()
    assert f"{bad}:{line_of(text, 'priority:')}: priority: Input should be less than" in err
    assert "queue support: OK" in out  # the good one still reported
    assert "queue broken" not in out


def test_check_config_cross_check_exit_1(
    shipped_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    support = shipped_config.parent / "queues" / "support.yaml"
    text = support.read_text().replace("callback_campaign: example-sales", "callback_campaign: x")
    support.write_text(text)
    assert main(["check-config", "-c", str(shipped_config)]) == 1
    err = capsys.readouterr().err
    want = f"{support}:{line_of(text, 'callback_campaign:')}: callback_campaign: no outbound"
    assert want in err


def test_check_config_warning_exit_0(
    shipped_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sales = shipped_config.parent / "campaigns" / "example-sales.yaml"
    sales.write_text(sales.read_text().replace("enabled: true", "enabled: false"))
    assert main(["check-config", "-c", str(shipped_config)]) == 0
    out, err = capsys.readouterr()
    support = shipped_config.parent / "queues" / "support.yaml"
    assert f"{support}:" in err and "campaigns[0]: warning: campaign 'example-sales'" in err
    # the disabled campaign's agents no longer count: agent 4001 alone answers
    assert "queue support: OK (2 DIDs, 1 agents, SL 80%/20 s)" in out


def test_check_config_without_queues_dir(
    shipped_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.rmtree(shipped_config.parent / "queues")
    assert main(["check-config", "-c", str(shipped_config)]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "queue " not in out


# ------------------------------------------------------------------ settings


def test_queues_dir_resolves_and_defaults(tmp_path: Path) -> None:
    base = "ami:\n  username: dialerd\n  secret: x\n"
    p = tmp_path / "dialerd.yaml"
    p.write_text(base)
    assert load_settings(p).queues_dir == Path("/etc/dialerd/queues")
    p.write_text(base + "queues_dir: q\n")
    assert load_settings(p).queues_dir == tmp_path / "q"


def test_queues_dir_must_not_be_campaigns_dir(tmp_path: Path) -> None:
    p = tmp_path / "dialerd.yaml"
    p.write_text("ami:\n  username: dialerd\n  secret: x\ncampaigns_dir: c\nqueues_dir: ./c\n")
    with pytest.raises(ConfigError) as info:
        load_settings(p)
    [e] = info.value.flatten()
    assert (e.line, e.field) == (5, "queues_dir") and "campaigns_dir" in e.message
