"""`dialerd check-config` and `dialerd leads import` through main()."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dialerd.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def conf(shipped_config: Path) -> Path:
    return shipped_config


def test_shipped_config_is_valid(conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The shipped files, with the one thing an admin must change changed."""
    assert main(["check-config", "--config", str(conf)]) == 0
    out, err = capsys.readouterr()
    assert "OK" in out
    assert "campaign example-sales: OK (enabled, progressive, 3 agents" in out
    assert err == ""


def test_config_from_environment(
    conf: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DIALERD_CONFIG", str(conf))
    assert main(["check-config"]) == 0
    assert str(conf) in capsys.readouterr().out


def test_bad_campaign_exit_1_with_file_line_field(
    conf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = conf.parent / "campaigns" / "broken.yaml"
    shutil.copy(conf.parent / "campaigns" / "example-sales.yaml", bad)
    text = bad.read_text().replace("name: example-sales", "name: broken")
    bad.write_text(text.replace("max_lines: 10", "max_lines: 0").replace('"1001"', '"2001"'))
    assert main(["check-config", "-c", str(conf)]) == 1
    out, err = capsys.readouterr()
    line = next(i for i, ln in enumerate(bad.read_text().splitlines(), 1) if "max_lines" in ln)
    assert f"{bad}:{line}: max_lines: Input should be greater than or equal to 1" in err
    assert "campaign example-sales: OK" in out  # the good one still reported


def test_agent_clash_exit_1(conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = conf.parent / "campaigns" / "example-sales.yaml"
    (conf.parent / "campaigns" / "other.yaml").write_text(
        src.read_text().replace("name: example-sales", "name: other")
    )
    assert main(["check-config", "-c", str(conf)]) == 1
    err = capsys.readouterr().err
    assert "other.yaml" in err and "example-sales.yaml" in err and "agents[0]" in err


def test_bad_settings_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "dialerd.yaml"
    p.write_text("ami:\n  username: dialerd\n  secret: x\n  port: nope\n")
    assert main(["check-config", "--config", str(p)]) == 1
    assert f"{p}:4: ami.port: Input should be a valid integer" in capsys.readouterr().err


def test_missing_settings_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--config", str(tmp_path / "nope.yaml")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_leads_import(conf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = conf.parent / "leads-example.csv"
    assert main(["leads", "import", "example-sales", str(csv), "--config", str(conf)]) == 0
    assert capsys.readouterr().out.strip() == "imported 10, duplicates 0, rejected 0"
    # the same file again: every row is already in, which is not a failure
    assert main(["leads", "import", "example-sales", str(csv), "--config", str(conf)]) == 0
    assert capsys.readouterr().out.strip() == "imported 0, duplicates 10, rejected 0"
    bad = tmp_path / "bad.csv"
    bad.write_text("phone\n020 7946 0001\n123&Local/x\n")
    assert main(["leads", "import", "example-sales", str(bad), "-c", str(conf)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "imported 0, duplicates 1, rejected 1"
    assert err.startswith(f"{bad}:3: ")
    # no usable row at all: exit 1
    worse = tmp_path / "worse.csv"
    worse.write_text("phone\n123&Local/x\nABC\n")
    assert main(["leads", "import", "example-sales", str(worse), "-c", str(conf)]) == 1
    out, err = capsys.readouterr()
    assert out.strip() == "imported 0, duplicates 0, rejected 2"


def test_leads_import_unknown_campaign(conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = conf.parent / "leads-example.csv"
    assert main(["leads", "import", "nope", str(csv), "-c", str(conf)]) == 1
    assert "unknown or invalid campaign 'nope'" in capsys.readouterr().err


def test_leads_import_missing_csv(conf: Path, tmp_path: Path) -> None:
    assert main(["leads", "import", "example-sales", str(tmp_path / "x.csv"), "-c", str(conf)]) == 1


def test_run_with_missing_config_and_usage(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # `run` with a settings file that does not exist: a clear error, exit 1
    assert main(["run", "--config", str(tmp_path / "nope.yaml")]) == 1
    assert "nope.yaml" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


def test_placeholder_secret_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    shipped = REPO / "config" / "dialerd.yaml"
    assert main(["check-config", "--config", str(shipped)]) == 1
    err = capsys.readouterr().err
    assert "ami.secret is a placeholder" in err
    assert main(["run", "--config", str(shipped)]) == 1
    assert "ami.secret is a placeholder" in capsys.readouterr().err


def test_secret_files_readable_by_others_warn(
    conf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "ami.secret"
    secret.write_text("s3cr3t-for-tests-only-9f2\n")
    secret.chmod(0o644)
    text = conf.read_text().replace('secret: "s3cr3t-for-tests-only-9f2"', f"secret_file: {secret}")
    conf.write_text(text)
    (conf.parent / "agents.yaml").chmod(0o644)
    assert main(["check-config", "-c", str(conf)]) == 0  # warnings only
    err = capsys.readouterr().err
    assert f"warning: {secret} is readable by every user" in err
    assert "agents.yaml is readable by every user" in err
    secret.chmod(0o600)
    (conf.parent / "agents.yaml").chmod(0o640)
    assert main(["check-config", "-c", str(conf)]) == 0
    assert "readable" not in capsys.readouterr().err
