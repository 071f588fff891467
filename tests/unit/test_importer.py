"""CSV import: bad rows reported by line and skipped, the rest go in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialerd.phone import PhoneError, normalize
from dialerd.store import importer
from dialerd.store.api import StoreApi
from dialerd.store.importer import RowError, import_csv

REPO = Path(__file__).resolve().parents[2]
C = "sales"


def csv_file(tmp_path: Path, text: str, name: str = "leads.csv", bom: bool = False) -> Path:
    p = tmp_path / name
    p.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return p


async def test_good_rows_imported_with_fields(store: StoreApi, tmp_path: Path) -> None:
    p = csv_file(
        tmp_path,
        "phone,priority,timezone,name,account\n"
        "020 7946 0001,5,Europe/London,Zoë,A1\n"
        "+1 212 555 0142,,America/New_York,Bob,\n",
    )
    report = await import_csv(store, C, p, "GB", now=100.0)
    assert (report.imported, report.duplicates, report.errors) == (2, 0, [])
    a, b = await store.list_leads(C)
    assert (a.phone, a.priority, a.timezone, a.fields) == (
        "+442079460001",
        5,
        "Europe/London",
        {"name": "Zoë", "account": "A1"},
    )
    assert (b.phone, b.priority, b.fields) == ("+12125550142", 0, {"name": "Bob", "account": ""})
    assert (a.status.value, a.next_due_at, a.held, a.attempts) == ("new", 100.0, False, 0)


async def test_bad_rows_reported_with_line_numbers(store: StoreApi, tmp_path: Path) -> None:
    p = csv_file(
        tmp_path,
        "phone,note\n"  # line 1
        "020 7946 0001,ok\n"  # 2
        '"020 7946\r\n0002",crlf inside\n'  # 3-4
        '"+442079460003\n",trailing newline is stripped by normalize\n'  # 5-6
        "5551234&Local/x@ctx,channel injection\n"  # 7
        "020 PHONE 0004,letters\n"  # 8
        ",empty\n"  # 9
        "   ,blank\n"  # 10
        "12,too short\n"  # 11
        "020 7946 0005,ok\n"  # 12
        "020 7946 0006\n"  # 13: missing a column
        "020 7946 0007,x,extra\n",  # 14
    )
    report = await import_csv(store, C, p, "GB")
    assert report.imported == 3
    lines = {e.line: e.reason for e in report.errors}
    assert sorted(lines) == [3, 7, 8, 9, 10, 11, 13, 14]
    assert "cannot have" in lines[3] and "\\r\\n" in lines[3]
    assert "cannot have" in lines[7]
    assert "empty" in lines[9] and "empty" in lines[10]
    assert "columns" in lines[13] and "columns" in lines[14]
    assert report.rejected == 8
    stored = {x.phone for x in await store.list_leads(C)}
    assert stored == {"+442079460001", "+442079460003", "+442079460005"}
    assert all(re.fullmatch(r"\+[1-9][0-9]{6,14}", s) for s in stored)


async def test_priority_and_timezone_validated(store: StoreApi, tmp_path: Path) -> None:
    p = csv_file(
        tmp_path,
        "Phone,Priority,TimeZone\n"  # header names are case-insensitive
        "02079460001,high,\n"
        "02079460002,99999999,\n"
        "02079460003,1,Mars/Olympus\n"
        "02079460004,1,../../etc/passwd\n"
        "02079460005,-3,Europe/Paris\n",
    )
    report = await import_csv(store, C, p, "GB")
    assert report.imported == 1
    assert [e.line for e in report.errors] == [2, 3, 4, 5]
    assert "whole number" in report.errors[0].reason
    assert "IANA" in report.errors[2].reason
    [lead] = await store.list_leads(C)
    assert (lead.priority, lead.timezone, lead.fields) == (-3, "Europe/Paris", {})


async def test_duplicates_in_file_and_in_store(store: StoreApi, tmp_path: Path) -> None:
    first = csv_file(tmp_path, "phone\n02079460001\n02079460002\n", "a.csv")
    assert (await import_csv(store, C, first, "GB")).imported == 2
    second = csv_file(
        tmp_path, "phone\n+442079460001\n020 7946 0003\n(020) 7946 0003\n02079460004\n", "b.csv"
    )
    report = await import_csv(store, C, second, "GB")
    assert (report.imported, report.duplicates, report.rejected) == (2, 2, 0)
    assert await store.lead_counts(C) == {"new": 4}


async def test_same_phone_in_two_campaigns_is_not_a_duplicate(
    store: StoreApi, tmp_path: Path
) -> None:
    p = csv_file(tmp_path, "phone\n02079460001\n")
    assert (await import_csv(store, "a", p, "GB")).imported == 1
    assert (await import_csv(store, "b", p, "GB")).imported == 1


async def test_utf8_bom_header(store: StoreApi, tmp_path: Path) -> None:
    p = csv_file(tmp_path, "phone,city\r\n02079460001,Zürich\r\n", bom=True)
    report = await import_csv(store, C, p, "GB")
    assert (report.imported, report.errors) == (1, [])
    [lead] = await store.list_leads(C)
    assert lead.fields == {"city": "Zürich"}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("number,name\n02079460001,x\n", "no 'phone' column"),
        ("", "empty"),
        ("phone,Phone\n1,2\n", "twice"),
    ],
)
async def test_bad_header_imports_nothing(
    store: StoreApi, tmp_path: Path, text: str, needle: str
) -> None:
    report = await import_csv(store, C, csv_file(tmp_path, text), "GB")
    assert report.imported == 0
    [err] = report.errors
    assert err.line == 1 and needle in err.reason
    assert await store.lead_counts(C) == {}


async def test_not_utf8_row_is_reported_on_its_own_line(store: StoreApi, tmp_path: Path) -> None:
    p = tmp_path / "latin1.csv"
    p.write_bytes(b"phone,city\n02079460001,ok\n02079460002,Z\xfcrich\n")
    report = await import_csv(store, C, p, "GB")
    assert report.errors and "unreadable" in report.errors[-1].reason
    assert [e.line for e in report.errors] == [3]
    assert "0xfc" in report.errors[0].reason and "'city'" in report.errors[0].reason
    assert report.imported == 1


async def test_a_bad_byte_far_down_names_its_line_and_loses_no_row(
    store: StoreApi, tmp_path: Path
) -> None:
    """The decoder reads ahead: a latin-1 byte on line 1001 was reported on
    line 513 and the valid rows between were not imported."""
    rows = [f"0207946{i:04d},row{i}".encode() for i in range(2, 1501)]
    rows[1001 - 2] = b"02079469999,Z\xfcrich"
    p = tmp_path / "far.csv"
    p.write_bytes(b"phone,city\n" + b"\n".join(rows) + b"\n")
    report = await import_csv(store, C, p, "GB")
    assert [(e.line, e.reason.split(":")[0]) for e in report.errors] == [(1001, "unreadable")]
    assert report.imported == 1498


async def test_rows_and_headers_are_capped(store: StoreApi, tmp_path: Path) -> None:
    huge = "0207946" + "1" * (importer.MAX_LINE_CHARS + 10)
    text = f"phone,city\n02079460001,a\n{huge},b\n02079460002,c\n"
    report = await import_csv(store, C, csv_file(tmp_path, text), "GB")
    assert [e.line for e in report.errors] == [3]
    assert "longer than" in report.errors[0].reason
    assert report.imported == 2
    wide = ",".join(["phone"] + [f"c{i}" for i in range(importer.MAX_COLUMNS)])
    report = await import_csv(store, C, csv_file(tmp_path, wide + "\n", "wide.csv"), "GB")
    assert report.imported == 0 and report.errors[0].line == 1
    assert "columns" in report.errors[0].reason


async def test_many_batches(
    store: StoreApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "BATCH_ROWS", 7)
    lines = ["phone"] + [f"0207946{i:04d}" for i in range(50)] + ["bad", "02079460000"]
    report = await import_csv(store, C, csv_file(tmp_path, "\n".join(lines) + "\n"), "GB")
    assert (report.imported, report.duplicates) == (50, 1)
    assert report.errors == [RowError(52, "'bad' holds characters a phone number cannot have")]


async def test_campaign_model_supplies_region(store: StoreApi, tmp_path: Path) -> None:
    from dialerd.campaign.loader import load_campaign_file

    camp = load_campaign_file(REPO / "config" / "campaigns" / "example-sales.yaml")
    report = await import_csv(store, camp, REPO / "config" / "leads-example.csv")
    assert (report.imported, report.rejected, report.duplicates) == (10, 0, 0)
    with pytest.raises(ValueError, match="default_region"):
        await import_csv(store, "x", REPO / "config" / "leads-example.csv")


async def test_missing_file_raises(store: StoreApi, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await import_csv(store, C, tmp_path / "nope.csv", "GB")


@given(st.text(max_size=40), st.sampled_from(["GB", "US", "DE", "FR", None]))
def test_normalize_only_ever_returns_e164(raw: str, region: str | None) -> None:
    try:
        out = normalize(raw, region)
    except PhoneError:
        return
    assert re.fullmatch(r"\+[1-9][0-9]{6,14}", out)


@given(st.from_regex(r"[0-9+()\-. &/@,\r\n]{3,25}", fullmatch=True))
def test_normalize_on_number_like_input(raw: str) -> None:
    try:
        out = normalize(raw, "GB")
    except PhoneError:
        return
    assert re.fullmatch(r"\+[1-9][0-9]{6,14}", out)
    assert not set(raw.strip()) & set("&/@,\r\n")
