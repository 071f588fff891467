"""Do-not-call lists and the DNC file parser."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialerd.campaign.model import Compliance
from dialerd.rules.abandon import AbandonLock
from dialerd.rules.dnc import DncList, LineError, parse_dnc
from dialerd.rules.screening import screen_lead

NUMS = [f"+1212555{i:04d}" for i in range(100, 140)] + [f"+44207946{i:04d}" for i in range(20)]


def test_global_and_campaign_lists() -> None:
    d = DncList()
    assert d.add("+12125550100")
    assert not d.add("+12125550100")
    assert d.add("+12125550101", campaign="a", source="optout")
    assert d.is_blocked("a", "+12125550100") == "dnc_global:manual"
    assert d.is_blocked("b", "+12125550100") == "dnc_global:manual"
    assert d.is_blocked("a", "+12125550101") == "dnc_campaign:optout"
    assert d.is_blocked("b", "+12125550101") is None
    assert d.is_blocked("a", "+12125550199") is None
    assert len(d) == 2
    assert d.numbers("a") == frozenset({"+12125550101"})
    assert d.remove("+12125550101", "a") and d.is_blocked("a", "+12125550101") is None
    with pytest.raises(ValueError):
        d.add("212 555 0100")


def test_parse_text_one_per_line() -> None:
    text = "# our list\n+1 212 555 0100\n\n(212) 555-0101\nnot a number\n2125550100\n5551&Local/x\n"
    r = parse_dnc(text, "US")
    assert r.numbers == ["+12125550100", "+12125550101"]
    assert r.duplicates == 1
    assert [e.line for e in r.errors] == [5, 7]


def test_parse_csv_with_phone_column() -> None:
    text = (
        "\ufeffname,Phone,note\n"
        'Ann,"+44 20 7946 0018",x\n'
        "Bob,,y\n"
        "\n"
        "Cy,020 7946 0019,z\n"
        "Di,12,w\n"
        "Ed\n"
    )
    r = parse_dnc(text, "GB")
    assert r.numbers == ["+442079460018", "+442079460019"]
    assert r.errors[0] == LineError(3, "phone is empty")
    assert [e.line for e in r.errors] == [3, 6, 7]


def test_parse_lines_iterable_and_empty() -> None:
    assert parse_dnc(["+12125550100\r\n", "+12125550101\n"], "US").numbers == [
        "+12125550100",
        "+12125550101",
    ]
    assert parse_dnc("", "US").numbers == []
    assert parse_dnc("# only a comment\n", "US").numbers == []


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.sampled_from(NUMS), min_size=1, max_size=40),
    st.sets(st.sampled_from(NUMS), max_size=20),
    st.dictionaries(st.sampled_from(["a", "b"]), st.sets(st.sampled_from(NUMS), max_size=10)),
    st.sampled_from(["a", "b", "c"]),
)
def test_hopper_never_returns_a_dnc_number(
    leads: list[str], global_dnc: set[str], per_campaign: dict[str, set[str]], campaign: str
) -> None:
    dnc = DncList()
    dnc.add_many(global_dnc)
    for c, nums in per_campaign.items():
        dnc.add_many(nums, c, "disposition")
    comp = Compliance(schedule={"hours": {"daily": ["00:00-24:00"]}})  # type: ignore[arg-type]
    now = 1781100000.0  # 2026-06-10 14:00 UTC: 10:00 New York, 15:00 London
    hopper = []
    for phone in leads:
        s = screen_lead(
            campaign=campaign,
            phone=phone,
            timezone=None,
            attempts=0,
            attempts_today=0,
            now=now,
            compliance=comp,
            dnc=dnc,
            lock=AbandonLock(),
            max_total=3,
        )
        if s.ok:
            hopper.append(phone)
        elif s.reason.startswith("dnc"):
            assert s.retry_at is None
    blocked = global_dnc | per_campaign.get(campaign, set())
    assert not set(hopper) & blocked
    assert set(hopper) == set(leads) - blocked
