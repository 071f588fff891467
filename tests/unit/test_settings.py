"""dialerd.yaml: strict, line-aware, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialerd.campaign.loader import ConfigError
from dialerd.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]

BASE = """\
ami:
  host: 127.0.0.1
  port: 5038
  username: dialerd
  secret: s3cr3t-value
store:
  path: data/dialerd.sqlite3
campaigns_dir: campaigns
log: {format: json, level: INFO}
drain_timeout_s: 60
tick_s: 0.5
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "dialerd.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def errors_of(path: Path) -> list[ConfigError]:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return info.value.flatten()


def test_loads_and_resolves_relative_paths(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, BASE))
    assert isinstance(s, Settings)
    assert s.ami.secret_value() == "s3cr3t-value"
    assert s.store.path == tmp_path / "data" / "dialerd.sqlite3"
    assert s.campaigns_dir == tmp_path / "campaigns"
    assert (s.log.format, s.log.level) == ("json", "info")
    assert (s.drain_timeout_s, s.tick_s) == (60, 0.5)
    assert s.ami.action_timeout_s == 10


def test_secret_never_in_repr(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, BASE))
    assert "s3cr3t-value" not in repr(s)
    assert "s3cr3t-value" not in str(s.ami)
    assert "s3cr3t-value" not in s.model_dump_json()


def test_secret_file_read_at_load_relative_to_settings(tmp_path: Path) -> None:
    (tmp_path / "ami.secret").write_text("from-file\n")
    p = write(tmp_path, BASE.replace("secret: s3cr3t-value", "secret_file: ami.secret"))
    s = load_settings(p)
    assert s.ami.secret_value() == "from-file"
    assert s.ami.secret_file == tmp_path / "ami.secret"


def test_secret_file_missing_names_the_field(tmp_path: Path) -> None:
    p = write(tmp_path, BASE.replace("secret: s3cr3t-value", "secret_file: nope.secret"))
    [e] = errors_of(p)
    assert (e.line, e.field) == (5, "ami.secret_file")
    assert "nope.secret" in e.message


@pytest.mark.parametrize(
    "replacement",
    ["secret: a\n  secret_file: /etc/hostname", "port: 5038", 'secret: ""'],
    ids=["both", "neither", "empty"],
)
def test_exactly_one_secret(tmp_path: Path, replacement: str) -> None:
    text = BASE.replace("secret: s3cr3t-value", replacement)
    if replacement.startswith("port"):
        text = text.replace("  port: 5038\n", "", 1)
    [e] = errors_of(write(tmp_path, text))
    assert (e.line, e.field) == (1, "ami")
    assert "exactly one of secret or secret_file" in e.message


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    [e] = errors_of(write(tmp_path, BASE + "drain_timeout: 5\n"))
    assert str(e) == f"{tmp_path / 'dialerd.yaml'}:12: drain_timeout: unknown key"


def test_bad_values_all_reported_with_lines(tmp_path: Path) -> None:
    text = BASE.replace("port: 5038", "port: 70000").replace("format: json", "format: xml")
    errors = errors_of(write(tmp_path, text))
    assert [(e.line, e.field) for e in errors] == [(3, "ami.port"), (9, "log.format")]


def test_missing_ami(tmp_path: Path) -> None:
    [e] = errors_of(write(tmp_path, "tick_s: 1\n"))
    assert (e.line, e.field) == (1, "ami")


def test_username_must_be_ami_safe(tmp_path: Path) -> None:
    [e] = errors_of(
        write(tmp_path, BASE.replace("username: dialerd", 'username: "a\\r\\nAction: x"'))
    )
    assert e.field == "ami.username"


def test_example_settings_in_config_are_valid() -> None:
    s = load_settings(REPO / "config" / "dialerd.yaml")
    assert s.campaigns_dir == REPO / "config" / "campaigns"
    assert s.ami.port == 5038


def test_trunks_are_named_templates(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, BASE + 'trunks: {carrier: "PJSIP/{number}@trunk-out"}\n'))
    assert s.site().trunks == {"carrier": "PJSIP/{number}@trunk-out"}
    [e] = errors_of(write(tmp_path, BASE + 'trunks: {carrier: "PJSIP/x@trunk-out"}\n'))
    assert e.field == "trunks" and "trunk 'carrier'" in e.message and "{number}" in e.message
    [e] = errors_of(write(tmp_path, BASE + 'trunks: {"Bad Name": "PJSIP/{number}@t"}\n'))
    assert e.field == "trunks" and "trunk name 'Bad Name'" in e.message


def test_legal_overrides_name_known_limits(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, BASE + "legal_overrides: {sales: [ring_timeout]}\n"))
    assert s.site().overrides == {"sales": frozenset({"ring_timeout"})}
    [e] = errors_of(write(tmp_path, BASE + "legal_overrides: {sales: [no_limits]}\n"))
    assert e.field is not None and e.field.startswith("legal_overrides")
