"""`dialerd leads list | export | reset | import --map` and `report`,
through main(), on a real SQLite store in tmp_path."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path

import pytest

from dialerd.campaign.loader import load_campaigns_dir
from dialerd.cli import main
from dialerd.cli.leads import neutralise
from dialerd.core.commands import PlaceCall, RecordOutcome
from dialerd.core.models import Outcome
from dialerd.rules.retry import decide
from dialerd.store import open_store

REPO = Path(__file__).resolve().parents[2]
CAMP = "example-sales"


@pytest.fixture
def conf(shipped_config: Path) -> Path:
    return shipped_config


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def _import_example(conf: Path) -> None:
    assert (
        main(["leads", "import", CAMP, str(conf.parent / "leads-example.csv"), "-c", str(conf)])
        == 0
    )


async def _dial(conf: Path, outcomes: dict[str, Outcome], t0: float = 1_700_000_000.0) -> None:
    """Give the listed phones one finished attempt each, as the daemon would."""
    camps, _ = load_campaigns_dir(conf.parent / "campaigns")
    rules = camps[CAMP].retry
    store = await open_store(conf.parent.parent / "d.sqlite3")
    try:
        leads = {x.phone: x for x in await store.list_leads(CAMP)}
        for i, (phone, outcome) in enumerate(outcomes.items()):
            lead = leads[phone]
            t = t0 + 10 * i
            await store.begin_attempt(
                PlaceCall(f"att-{t0}-{i}", CAMP, lead.id, phone, "PJSIP/x", "", 20, started_at=t)
            )
            live = outcome is Outcome.ANSWERED
            await store.finish_attempt(
                RecordOutcome(
                    f"att-{t0}-{i}",
                    CAMP,
                    lead.id,
                    outcome,
                    t + 5,
                    decide(rules, lead.id, lead.attempts, outcome, t + 5),
                    answered_at=t + 1 if live else None,
                    connected_at=t + 1.5 if live else None,
                    agent_id="1001" if live else None,
                    cause=16 if live else 17,
                )
            )
    finally:
        await store.close()


def test_list_json_and_table(conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _import_example(conf)
    capsys.readouterr()
    assert main(["leads", "list", CAMP, "--json", "-c", str(conf)]) == 0
    leads = json.loads(capsys.readouterr().out)
    assert len(leads) >= 4
    assert leads[0]["phone"] == "+442079460001"
    assert leads[0]["fields"] == {"first_name": "Alice", "account": "AC-1001"}
    assert {x["status"] for x in leads} == {"new"}
    assert main(["leads", "list", CAMP, "--json", "--limit", "2", "-c", str(conf)]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert main(["leads", "list", CAMP, "--status", "done", "--json", "-c", str(conf)]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["leads", "list", CAMP, "-c", str(conf)]) == 0
    assert "+442079460001" in capsys.readouterr().out


def test_export_one_row_per_attempt(
    conf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _import_example(conf)
    asyncio.run(_dial(conf, {"+442079460001": Outcome.BUSY, "+442079460002": Outcome.ANSWERED}))
    # the busy lead is retried: a second attempt, answered this time
    asyncio.run(_dial(conf, {"+442079460001": Outcome.ANSWERED}, t0=1_700_000_100.0))
    out = tmp_path / "out.csv"
    capsys.readouterr()
    assert main(["leads", "export", CAMP, str(out), "-c", str(conf)]) == 0
    rows = list(csv.DictReader(out.open()))
    alice = [r for r in rows if r["phone"] == "+442079460001"]
    assert [r["outcome"] for r in alice] == ["busy", "answered"]
    assert all(r["first_name"] == "Alice" and r["account"] == "AC-1001" for r in alice)
    assert alice[1]["agent"] == "1001" and alice[1]["lead_status"] == "done"
    assert alice[0]["started_at"] < alice[1]["started_at"]
    bob = [r for r in rows if r["phone"] == "+442079460002"]
    assert len(bob) == 1 and bob[0]["outcome"] == "answered" and bob[0]["connected_at"]
    # leads never dialed are exported too, with empty attempt columns
    never = [r for r in rows if r["phone"] == "+442079460003"]
    assert len(never) == 1 and never[0]["attempt_id"] == "" and never[0]["lead_status"] == "new"
    assert "exported" in capsys.readouterr().err


def test_export_has_every_column_neutralised_and_private(
    conf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A field only leads after the first 2,000 carry is still exported;
    cells a spreadsheet would run as formulas are quoted; the file is 0600."""
    first = [["phone", "first_name"]] + [[f"02079{i:06d}", f"n{i}"] for i in range(2001)]
    later = [["phone", "email", "note"], ["02080000001", "a@example.com", '=HYPERLINK("x")']]
    for name, rows in (("a.csv", first), ("b.csv", later)):
        path = _write(tmp_path / name, rows)
        assert main(["leads", "import", CAMP, str(path), "-c", str(conf)]) == 0
    out = tmp_path / "out.csv"
    out.write_text("old")
    out.chmod(0o644)
    capsys.readouterr()
    assert main(["leads", "export", CAMP, str(out), "-c", str(conf)]) == 0
    assert out.stat().st_mode & 0o777 == 0o600
    exported = list(csv.DictReader(out.open()))
    assert len(exported) == 2002
    last = next(r for r in exported if r["phone"] == "+442080000001")
    assert last["email"] == "a@example.com"
    assert last["note"] == '\'=HYPERLINK("x")'
    assert exported[0]["first_name"] == "n0" and exported[0]["email"] == ""
    for cell in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert neutralise(cell) == "'" + cell
    assert neutralise("plain") == "plain" and neutralise(3) == 3


def test_reset_recycles_done_leads_only(conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _import_example(conf)
    asyncio.run(
        _dial(
            conf,
            {
                "+442079460001": Outcome.ANSWERED,
                "+442079460002": Outcome.FAILED,  # max_attempts 1: done
                "+442079460003": Outcome.BUSY,  # retry
            },
        )
    )
    capsys.readouterr()

    async def by_phone() -> dict[str, tuple[str, int]]:
        store = await open_store(conf.parent.parent / "d.sqlite3")
        try:
            return {x.phone: (x.status.value, x.attempts) for x in await store.list_leads(CAMP)}
        finally:
            await store.close()

    before = asyncio.run(by_phone())
    assert before["+442079460001"] == ("done", 1)
    assert before["+442079460002"] == ("done", 1)
    assert before["+442079460003"] == ("retry", 1)
    # only the ones finished for one reason
    assert main(["leads", "reset", CAMP, "--reason", "max_attempts_failed", "-c", str(conf)]) == 0
    assert "reset 1 leads" in capsys.readouterr().out
    after = asyncio.run(by_phone())
    assert after["+442079460002"] == ("new", 0)
    assert after["+442079460001"] == ("done", 1)
    assert after["+442079460003"] == ("retry", 1)
    # all done leads
    assert main(["leads", "reset", CAMP, "-c", str(conf)]) == 0
    assert "reset 1 leads" in capsys.readouterr().out
    assert asyncio.run(by_phone())["+442079460001"] == ("new", 0)
    # dialing leads are refused
    with pytest.raises(SystemExit):  # argparse: not a valid choice
        main(["leads", "reset", CAMP, "--status", "dialing", "-c", str(conf)])


def test_reset_never_touches_a_live_call(conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _import_example(conf)

    async def start_call() -> int:
        store = await open_store(conf.parent.parent / "d.sqlite3")
        try:
            lead = (await store.list_leads(CAMP))[0]
            await store.begin_attempt(PlaceCall("live", CAMP, lead.id, lead.phone, "x", "", 20))
            n, _ = await store.reset_leads(CAMP, ("done", "retry", "new"))
            got = await store.get_lead(lead.id)
            assert got is not None and got.status.value == "dialing"
            return n
        finally:
            await store.close()

    assert asyncio.run(start_call()) >= 3  # the others, never the dialing one


def test_import_with_column_mapping(
    conf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = _write(
        tmp_path / "crm.csv",
        [
            ["Telephone", "TZ", "Name", "Prio"],
            ["020 7946 0101", "Europe/London", "Ann", "3"],
            ["020 7946 0102", "Mars/Olympus", "Ben", "1"],
            ["020 7946 0101", "", "Ann again", "1"],  # duplicate within the campaign
        ],
    )
    args = ["leads", "import", CAMP, str(f), "--map", "phone=Telephone", "--map", "timezone=TZ"]
    assert main([*args, "--map", "priority=Prio", "--map", "name=Name", "-c", str(conf)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "imported 1, duplicates 1, rejected 1"
    assert "crm.csv:3: timezone 'Mars/Olympus' is not an IANA time zone name" in err
    assert main(["leads", "list", CAMP, "--json", "-c", str(conf)]) == 0
    (lead,) = json.loads(capsys.readouterr().out)
    assert lead["phone"] == "+442079460101"
    assert lead["timezone"] == "Europe/London"
    assert lead["priority"] == 3
    assert lead["fields"] == {"name": "Ann"}


def test_import_mapping_errors(
    conf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = _write(tmp_path / "crm.csv", [["Telephone", "phone"], ["020 7946 0101", "x"]])
    assert main(["leads", "import", CAMP, str(f), "--map", "phone=Mobile", "-c", str(conf)]) == 1
    assert "no column 'Mobile'" in capsys.readouterr().err
    assert main(["leads", "import", CAMP, str(f), "--map", "phone=Telephone", "-c", str(conf)]) == 1
    assert "appears twice" in capsys.readouterr().err
    assert main(["leads", "import", CAMP, str(f), "--map", "phone", "-c", str(conf)]) == 2
    assert "FIELD=COLUMN" in capsys.readouterr().err


def test_import_progress_bar_on_stderr(
    conf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [["phone"]] + [[f"+44113496{i:04d}"] for i in range(3000)]
    f = _write(tmp_path / "big.csv", rows)
    assert main(["leads", "import", CAMP, str(f), "--progress", "-c", str(conf)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "imported 3000, duplicates 0, rejected 0"
    assert "importing big.csv" in err


def test_report_json_and_csv_from_the_store(conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _import_example(conf)
    asyncio.run(
        _dial(
            conf,
            {
                "+442079460001": Outcome.ANSWERED,
                "+442079460002": Outcome.BUSY,
                "+442079460003": Outcome.ABANDONED,
            },
        )
    )
    capsys.readouterr()
    assert main(["report", "--format", "json", "-c", str(conf)]) == 0
    data = json.loads(capsys.readouterr().out)
    (row,) = data["rows"]
    assert row["campaign"] == CAMP
    assert (row["dials"], row["contacts"], row["connected"], row["abandons"]) == (3, 2, 1, 1)
    assert row["abandon_rate_ftc"] == 0.5
    assert row["talk_min"] == round(3.5 / 60, 3)
    assert row["outcomes"] == {"abandoned": 1, "answered": 1, "busy": 1}
    assert row["leads_exhausted"] == 1  # the answered one
    assert row["leads_remaining"] == row["leads_total"] - 1
    assert main(["report", "--format", "csv", "--by", "hour", "-c", str(conf)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("hour,dials,contacts")
    assert lines[-1].startswith("total,3,2")
    assert main(["report", "--by", "agent", "-c", str(conf)]) == 0
    assert "1001" in capsys.readouterr().out
    assert (
        main(
            ["report", "--from", "2023-11-14T22:00:00+00:00", "--to", "2023-11-14", "-c", str(conf)]
        )
        == 2
    )


def test_campaign_list_without_daemon_and_pause_error(
    conf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sock = tmp_path / "none.sock"
    assert main(["campaign", "list", "--socket", str(sock), "-c", str(conf)]) == 0
    assert "example-sales: enabled, progressive, 3 agents, daemon not running" in (
        capsys.readouterr().out
    )
    assert main(["campaign", "pause", CAMP, "--socket", str(sock), "-c", str(conf)]) == 1
    assert f"dialerd is not running (no socket at {sock})" in capsys.readouterr().err
    assert main(["status", "--once", "--json", "--socket", str(sock)]) == 1
    assert "dialerd is not running" in capsys.readouterr().err


def test_import_through_the_parse_pool_same_result(
    conf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Big files are parsed by a process pool: same leads, same rejected
    lines (in order) as the in-process path."""
    from dialerd.store import importer

    monkeypatch.setattr(importer, "POOL_MIN_BYTES", 0)
    monkeypatch.setattr(importer, "PARSE_WORKERS", 2)
    monkeypatch.setattr(importer, "BATCH_ROWS", 50)
    rows = [["phone", "timezone", "name"]]
    for i in range(300):
        phone = f"+44113496{i:04d}"
        if i % 97 == 5:
            phone = "12&Local/x"
        rows.append([phone, "Nowhere/Else" if i == 150 else "", f"n{i}"])
    rows.append(["+441134960001", "", "dup"])
    f = _write(tmp_path / "pool.csv", rows)
    assert main(["leads", "import", CAMP, str(f), "-c", str(conf)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "imported 295, duplicates 1, rejected 5"
    lines = [int(x.split(":")[1]) for x in err.splitlines() if x.startswith(str(f))]
    assert lines == [7, 104, 152, 201, 298]
