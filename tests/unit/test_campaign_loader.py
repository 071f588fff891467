"""Campaign files: every error names file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialerd.campaign.loader import (
    ConfigError,
    ConfigErrors,
    load_campaign_file,
    load_campaigns_dir,
)
from dialerd.campaign.model import Campaign, DialMode
from dialerd.settings import load_settings

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
name: sales
trunk: "PJSIP/{number}@trunk-out"
caller_id:
  name: Acme
  number: "+442071234567"
agents: ["1001", "1002"]
dial_mode: ratio
safe_harbor_sound: custom/dialerd-safe-harbor
default_region: GB
retry:
  busy:
    delay_s: 600
    max_attempts: 4
"""


def write(tmp_path: Path, text: str, name: str = "sales.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def replace_line(text: str, prefix: str, new: str) -> str:
    lines = text.splitlines()
    idx = next(i for i, ln in enumerate(lines) if ln.startswith(prefix))
    lines[idx] = new
    return "\n".join(lines) + "\n"


def one_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_campaign_file(path)
    errors = info.value.flatten()
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


def test_good_file_loads(tmp_path: Path) -> None:
    c = load_campaign_file(write(tmp_path, GOOD))
    assert isinstance(c, Campaign)
    assert c.name == "sales"
    assert c.dial_mode is DialMode.RATIO
    assert c.retry.busy.max_attempts == 4
    assert c.caller_id.number == "+442071234567"


def test_example_campaign_in_config_is_valid() -> None:
    path = REPO / "config" / "campaigns" / "example-sales.yaml"
    assert load_campaign_file(path).trunk == "carrier"  # a name: the admin owns templates
    c = load_campaign_file(path, load_settings(REPO / "config" / "dialerd.yaml").site())
    assert c.trunk == "PJSIP/{number}@trunk-out"
    assert len(c.agents) >= 2
    assert c.safe_harbor_sound == "custom/dialerd-safe-harbor"
    assert c.default_region in ("GB", "US")


def test_wrong_type_names_file_line_field(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD + "max_lines: lots\n")
    e = one_error(p)
    assert (e.file, e.line, e.field) == (str(p), 14, "max_lines")
    assert str(e).startswith(f"{p}:14: max_lines: Input should be a valid integer")


def test_nested_error_message_format(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD.replace("delay_s: 600", "delay_s: -5"))
    e = one_error(p)
    assert str(e) == f"{p}:12: retry.busy.delay_s: Input should be greater than or equal to 0"


def test_union_type_errors_merge_into_one(tmp_path: Path) -> None:
    e = one_error(write(tmp_path, GOOD.replace("delay_s: 600", "delay_s: soon")))
    assert e.field == "retry.busy.delay_s"
    assert "valid integer or a valid list" in e.message


def test_error_inside_a_list(tmp_path: Path) -> None:
    text = GOOD.replace('agents: ["1001", "1002"]', 'agents:\n  - "1001"\n  - "x1"')
    e = one_error(write(tmp_path, text))
    # the validator covers the whole list: the error points at the list's key
    assert (e.line, e.field) == (6, "agents")
    assert "'x1'" in e.message
    text = GOOD.replace('agents: ["1001", "1002"]', 'agents:\n  - "1001"\n  - 1002.5')
    e = one_error(write(tmp_path, text))
    assert (e.line, e.field) == (8, "agents[1]")


def test_unknown_key(tmp_path: Path) -> None:
    e = one_error(write(tmp_path, GOOD + "retry_after: 5\n"))
    assert (e.line, e.field, e.message) == (14, "retry_after", "unknown key")
    e = one_error(write(tmp_path, GOOD.replace("  busy:", "  bussy:")))
    assert (e.line, e.field, e.message) == (11, "retry.bussy", "unknown key")


def test_trunk_with_ampersand(tmp_path: Path) -> None:
    p = write(tmp_path, replace_line(GOOD, "trunk:", 'trunk: "PJSIP/{number}@trunk-out&Local/x"'))
    e = one_error(p)
    assert (e.line, e.field) == (2, "trunk")
    assert "PJSIP/{number}@trunk-out" in e.message
    assert not e.message.startswith("Value error")


def test_missing_safe_harbor_sound_points_at_parent(tmp_path: Path) -> None:
    e = one_error(write(tmp_path, replace_line(GOOD, "safe_harbor_sound:", "")))
    assert (e.line, e.field) == (1, "safe_harbor_sound")
    assert "required" in e.message


def test_missing_nested_field_points_at_its_mapping(tmp_path: Path) -> None:
    e = one_error(write(tmp_path, replace_line(GOOD, '  number: "+44', "")))
    assert (e.line, e.field) == (3, "caller_id.number")


def test_duplicate_key(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD + "max_lines: 5\nmax_lines: 50\n")
    e = one_error(p)
    assert (e.line, e.field) == (15, "max_lines")
    assert "duplicate key (first on line 14)" in e.message


def test_duplicate_nested_key_and_other_errors_all_reported(tmp_path: Path) -> None:
    text = GOOD.replace("    max_attempts: 4", "    max_attempts: 4\n    max_attempts: 0")
    p = write(tmp_path, text + "bogus: 1\n")
    with pytest.raises(ConfigErrors) as info:
        load_campaign_file(p)
    got = {(e.line, e.field) for e in info.value.errors}
    assert got == {(14, "retry.busy.max_attempts"), (15, "bogus")}
    assert len(str(info.value).splitlines()) == 3  # dup + ge=1 on the same key + bogus


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD + "agents: [1001\n")
    e = one_error(p)
    assert e.line is not None and e.line >= 14
    assert e.field is None
    assert "YAML syntax error" in e.message
    assert str(e).startswith(f"{p}:{e.line}: YAML syntax error")


def test_tab_indentation_is_a_syntax_error(tmp_path: Path) -> None:
    e = one_error(write(tmp_path, GOOD + "retry:\n\tbusy: {}\n"))
    assert e.line == 15


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("# only a comment\n", "empty"),
        ("- a\n- b\n", "mapping"),
        ("42\n", "mapping"),
    ],
)
def test_empty_or_not_a_mapping(tmp_path: Path, text: str, needle: str) -> None:
    e = one_error(write(tmp_path, text))
    assert needle in e.message
    assert e.field is None


def test_unreadable_file(tmp_path: Path) -> None:
    e = one_error(tmp_path / "missing.yaml")
    assert e.line is None
    assert "cannot read" in e.message


def test_str_without_line_or_field() -> None:
    assert str(ConfigError("a.yaml", None, None, "boom")) == "a.yaml: boom"
    assert str(ConfigError("a.yaml", 3, None, "boom")) == "a.yaml:3: boom"
    assert str(ConfigError("a.yaml", 3, "x.y", "boom")) == "a.yaml:3: x.y: boom"
    agg = ConfigErrors([ConfigError("a", 1, "x", "m1"), ConfigError("a", 2, "y", "m2")])
    assert str(agg) == "a:1: x: m1\na:2: y: m2"
    assert isinstance(agg, ConfigError)


# ------------------------------------------------------------------ directories


def campaign(name: str, agents: list[str], enabled: bool = True) -> str:
    text = replace_line(GOOD, "name:", f"name: {name}")
    text = replace_line(text, "agents:", "agents: [" + ", ".join(f'"{a}"' for a in agents) + "]")
    return text + f"enabled: {str(enabled).lower()}\n"


def test_dir_bad_file_does_not_stop_the_others(tmp_path: Path) -> None:
    write(tmp_path, campaign("a", ["1001"]), "a.yaml")
    write(tmp_path, "name: [\n", "b.yaml")
    write(tmp_path, campaign("c", ["1003"]), "c.yml")
    write(tmp_path, "not: loaded\n", "notes.txt")
    write(tmp_path, "{", ".hidden.yaml")
    campaigns, errors = load_campaigns_dir(tmp_path)
    assert sorted(campaigns) == ["a", "c"]
    assert len(errors) == 1
    assert errors[0].file == str(tmp_path / "b.yaml")


def test_dir_agent_in_two_enabled_campaigns(tmp_path: Path) -> None:
    write(tmp_path, campaign("a", ["1001", "1002"]), "a.yaml")
    write(tmp_path, campaign("b", ["1003", "1002"]), "b.yaml")
    campaigns, errors = load_campaigns_dir(tmp_path)
    assert sorted(campaigns) == ["a"]
    [e] = errors
    assert e.file == str(tmp_path / "b.yaml")
    assert (e.line, e.field) == (6, "agents[1]")
    assert str(tmp_path / "a.yaml") in e.message
    assert "1002" in e.message


def test_dir_agent_shared_with_disabled_campaign_is_fine(tmp_path: Path) -> None:
    write(tmp_path, campaign("a", ["1001"]), "a.yaml")
    write(tmp_path, campaign("b", ["1001"], enabled=False), "b.yaml")
    campaigns, errors = load_campaigns_dir(tmp_path)
    assert errors == []
    assert sorted(campaigns) == ["a", "b"]


def test_dir_same_name_twice(tmp_path: Path) -> None:
    write(tmp_path, campaign("a", ["1001"]), "a1.yaml")
    write(tmp_path, campaign("a", ["1002"]), "a2.yaml")
    campaigns, errors = load_campaigns_dir(tmp_path)
    assert list(campaigns) == ["a"]
    assert campaigns["a"].agents == ["1001"]
    [e] = errors
    assert (e.file, e.line, e.field) == (str(tmp_path / "a2.yaml"), 1, "name")
    assert str(tmp_path / "a1.yaml") in e.message


def test_dir_flattens_aggregate_errors(tmp_path: Path) -> None:
    write(tmp_path, GOOD + "x: 1\ny: 2\n", "a.yaml")
    _, errors = load_campaigns_dir(tmp_path)
    assert [e.field for e in errors] == ["x", "y"]
    assert not any(isinstance(e, ConfigErrors) for e in errors)


def test_dir_missing(tmp_path: Path) -> None:
    campaigns, errors = load_campaigns_dir(tmp_path / "nope")
    assert campaigns == {}
    assert "not found" in errors[0].message


def test_example_config_dir_is_valid() -> None:
    campaigns, errors = load_campaigns_dir(REPO / "config" / "campaigns")
    assert errors == []
    assert "example-sales" in campaigns


@pytest.mark.parametrize("value", ["1" + "0" * 400, "100000000000000000", "[60, 1e17]"])
def test_every_delay_is_bounded(tmp_path: Path, value: str) -> None:
    """A huge delay used to pass validation and then crash the retry rules
    (OverflowError) after the call had left the core: its outcome was lost."""
    with pytest.raises(ConfigError) as info:
        load_campaign_file(write(tmp_path, GOOD.replace("delay_s: 600", f"delay_s: {value}")))
    errors = info.value.flatten()
    assert errors and all(e.line == 12 for e in errors), [str(e) for e in errors]
    assert all((e.field or "").startswith("retry.busy.delay_s") for e in errors)


def test_a_disposition_delay_is_bounded(tmp_path: Path) -> None:
    text = GOOD + (
        "compliance:\n  dispositions:\n"
        "    - {code: later, label: Later, dtmf: '2', retry: {delay_s: 100000000000000000}}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_campaign_file(write(tmp_path, text))
    fields = [e.field for e in info.value.flatten()]
    assert any((f or "").endswith("retry.delay_s") for f in fields), fields


def test_a_year_is_the_longest_delay(tmp_path: Path) -> None:
    c = load_campaign_file(write(tmp_path, GOOD.replace("delay_s: 600", "delay_s: 31622400")))
    assert c.retry.busy.delay_for(1) == 366 * 86400
