"""Calling windows: campaign schedule x the callee's local legal window."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType
from pydantic import ValidationError

from dialerd.rules.windows import (
    LEGAL_WINDOW,
    Schedule,
    local_day_start,
    may_call,
    next_allowed,
    next_local_day_start,
    parse_days,
    parse_range,
    zones_for_lead,
    zones_for_number,
)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=UTC).timestamp()


# --------------------------------------------------------------- numbers
REGIONS = ("US", "CA", "GB", "DE", "FR", "ES", "AU", "BR", "RU", "MX", "IN", "JP", "NZ", "CL")
#: US/CA area codes: one zone, two zones (701 ND, 605 SD, 308 NE, 915 TX?) and far ones
US_AREAS = ("212", "305", "312", "415", "541", "701", "605", "308", "907", "808", "406", "306")


def _numbers() -> list[str]:
    out: set[str] = set()
    for region in REGIONS:
        for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE):
            ex = phonenumbers.example_number_for_type(region, kind)
            if ex is None:
                continue
            e164 = phonenumbers.format_number(ex, phonenumbers.PhoneNumberFormat.E164)
            out.add(e164)
            # variations: the last digits changed keep the prefix (and zone)
            for tail in ("1", "57", "390"):
                v = e164[: -len(tail)] + tail
                if phonenumbers.is_valid_number(phonenumbers.parse(v, None)):
                    out.add(v)
    for area in US_AREAS:
        n = f"+1{area}2345678"
        if phonenumbers.is_valid_number(phonenumbers.parse(n, None)):
            out.add(n)
    return sorted(n for n in out if zones_for_number(n))


NUMBERS = _numbers()
MULTI_ZONE = [n for n in NUMBERS if len(zones_for_number(n)) > 1]


def test_number_pool_is_varied() -> None:
    assert len(NUMBERS) >= 30
    assert len({zones_for_number(n) for n in NUMBERS}) >= 12
    assert MULTI_ZONE, "some numbers must span several zones"


def test_zones_for_number() -> None:
    assert zones_for_number("+12125551234") == ("America/New_York",)
    assert zones_for_number("+442079460000") == ("Europe/London",)
    nd = zones_for_number("+17015551234")
    assert set(nd) == {"America/Denver", "America/North_Dakota/Center"}
    # non-geographic: the whole country (code) -- most restrictive
    tollfree = zones_for_number("+18005551234")
    assert {"America/New_York", "America/Los_Angeles", "America/Anchorage"} <= set(tollfree)
    assert zones_for_number("not a number") == ()


def test_unknown_prefix_falls_back_to_the_country() -> None:
    # an invalid NANP number: no area match, the country's zones (all of them)
    zones = zones_for_number("+11234567890")
    assert "America/New_York" in zones and "America/Los_Angeles" in zones


def test_lead_timezone_overrides_and_unknown_fails_closed() -> None:
    assert zones_for_lead("+18005551234", "America/Chicago") == ("America/Chicago",)
    assert zones_for_lead("+12125551234", None) == ("America/New_York",)
    assert zones_for_lead("+12125551234", "Mars/Olympus") == ()
    d = may_call(Schedule(), (), utc(2026, 6, 10, 16))
    assert not d.ok and d.reason == "no_timezone"
    assert next_allowed(Schedule(), (), utc(2026, 6, 10, 16)) is None


# --------------------------------------------------------------- schedule model
def test_schedule_parsing() -> None:
    assert parse_range("09:00-20:30") == (540, 1230)
    assert parse_range("18:00-24:00") == (1080, 1440)
    assert parse_days("mon-fri") == (0, 1, 2, 3, 4)
    assert parse_days("fri-mon") == (0, 4, 5, 6)
    assert parse_days("sat,sun") == (5, 6)
    assert parse_days("daily") == tuple(range(7))
    for bad in ("9-20", "20:00-09:00", "10:00-10:00", "25:00-26:00", "09:60-10:00"):
        with pytest.raises(ValueError):
            parse_range(bad)
    for bad_days in ("mon-fry", "weekend"):
        with pytest.raises(ValueError):
            parse_days(bad_days)
    with pytest.raises(ValidationError):
        Schedule(hours={"mon": ["9-5"]})
    with pytest.raises(ValidationError):
        Schedule(timezone="Nowhere/Town")
    with pytest.raises(ValidationError):
        Schedule.model_validate({"hours": {}, "bogus": 1})
    s = Schedule(hours={"mon-fri": ["09:00-12:00", "11:00-14:00"], "wed": ["16:00-18:00"]})
    assert s.ranges_on(0) == ((540, 840),)
    assert s.ranges_on(2) == ((540, 840), (960, 1080))
    assert s.ranges_on(6) == ()


def test_looser_than_law_and_never_open() -> None:
    s = Schedule(hours={"mon-fri": ["07:00-22:00"], "sat": ["10:00-12:00"]})
    assert s.looser_than_law() == ["mon-fri: 07:00-22:00"]
    assert Schedule(hours={"sun": ["21:00-23:00"]}).never_open()
    assert Schedule(hours={}).never_open()
    assert not Schedule().never_open()


# --------------------------------------------------------------- fixed cases
NY = ("America/New_York",)


@pytest.mark.parametrize(
    ("zones", "now", "expected"),
    [
        # US spring forward, Sunday 2026-03-08: 08:00 EDT = 12:00 UTC
        (NY, utc(2026, 3, 8, 6), utc(2026, 3, 8, 12)),
        # the day before, still EST: 08:00 = 13:00 UTC
        (NY, utc(2026, 3, 7, 2), utc(2026, 3, 7, 13)),
        # US fall back, Sunday 2026-11-01: 08:00 EST = 13:00 UTC
        (NY, utc(2026, 11, 1, 4), utc(2026, 11, 1, 13)),
        # after 21:00 EDT on 2026-10-31 (01:00 UTC) -> next morning, now EST
        (NY, utc(2026, 11, 1, 1), utc(2026, 11, 1, 13)),
        # Europe spring forward 2026-03-29: 08:00 BST = 07:00 UTC
        (("Europe/London",), utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 7)),
        (("Europe/Berlin",), utc(2027, 10, 31, 0), utc(2027, 10, 31, 7)),
        # Denver + Central (ND 701): opens at 08:00 Denver (14:00 UTC in June)
        (
            ("America/Denver", "America/North_Dakota/Center"),
            utc(2026, 6, 10, 3),
            utc(2026, 6, 10, 14),
        ),
        # inside the window: now
        (NY, utc(2026, 6, 10, 16, 17), utc(2026, 6, 10, 16, 17)),
    ],
)
def test_next_allowed_fixed(zones: tuple[str, ...], now: float, expected: float) -> None:
    assert next_allowed(Schedule(), zones, now) == expected
    assert may_call(Schedule(), zones, expected).ok
    assert not may_call(Schedule(), zones, expected - 1).ok or expected == now


def test_multi_zone_closes_with_the_earliest_zone() -> None:
    zones = ("America/Denver", "America/North_Dakota/Center")
    # 21:00 CDT = 02:00 UTC: Central closes while Denver is at 20:00
    assert may_call(Schedule(), zones, utc(2026, 6, 11, 1, 59)).ok
    d = may_call(Schedule(), zones, utc(2026, 6, 11, 2, 0))
    assert not d.ok and d.reason == "outside_legal_window"
    assert "North_Dakota" in d.detail
    d = may_call(Schedule(), zones, utc(2026, 6, 10, 13, 59))
    assert not d.ok and "Denver" in d.detail


def test_campaign_zone_schedule_and_callee_legal_window() -> None:
    s = Schedule(hours={"mon-fri": ["09:00-17:00"]}, timezone="America/New_York")
    la = ("America/Los_Angeles",)
    # Wed 2026-06-10: 09:00 EDT = 13:00 UTC = 06:00 PDT: not legal in LA
    assert not may_call(s, la, utc(2026, 6, 10, 13)).ok
    # 08:00 PDT = 15:00 UTC
    assert next_allowed(s, la, utc(2026, 6, 10, 13)) == utc(2026, 6, 10, 15)
    # 17:00 EDT = 21:00 UTC: the call centre closes
    d = may_call(s, la, utc(2026, 6, 10, 21))
    assert not d.ok and d.reason == "outside_schedule" and "campaign zone" in d.detail
    # Friday evening -> Monday 08:00 PDT
    assert next_allowed(s, la, utc(2026, 6, 12, 21)) == utc(2026, 6, 15, 15)


def test_holiday_in_the_callee_zone() -> None:
    s = Schedule(holidays=[date(2026, 12, 25)])
    d = may_call(s, NY, utc(2026, 12, 25, 15))
    assert not d.ok and d.reason == "holiday"
    assert next_allowed(s, NY, utc(2026, 12, 25, 15)) == utc(2026, 12, 26, 13)


def test_hours_clamped_to_the_law() -> None:
    s = Schedule(hours={"daily": ["06:00-23:00"]})
    assert not may_call(s, NY, utc(2026, 6, 10, 11, 30)).ok  # 07:30 EDT
    assert may_call(s, NY, utc(2026, 6, 10, 12)).ok  # 08:00 EDT
    assert not may_call(s, NY, utc(2026, 6, 11, 1)).ok  # 21:00 EDT


def test_never_open_gives_none() -> None:
    assert next_allowed(Schedule(hours={}), NY, utc(2026, 6, 10)) is None
    # three zones 8 h apart share no legal hour (any two would: 13 h > 12 h)
    apart = ("Etc/GMT", "Etc/GMT-8", "Etc/GMT+8")
    assert next_allowed(Schedule(), apart, utc(2026, 6, 10)) is None
    assert next_allowed(Schedule(), ("Pacific/Guam", "America/Adak"), utc(2026, 6, 10)) is not None


def test_midnight_gap_day_start() -> None:
    # Cuba springs forward at 00:00 -> 01:00 (2026-03-08): the day starts
    # at the transition, 05:00 UTC
    hv = ("America/Havana",)
    assert local_day_start(hv, utc(2026, 3, 8, 12)) == utc(2026, 3, 8, 5)
    assert next_local_day_start(hv, utc(2026, 3, 7, 12)) == utc(2026, 3, 8, 5)
    # ND: tomorrow starts in every zone at Denver's midnight
    nd = ("America/Denver", "America/North_Dakota/Center")
    assert next_local_day_start(nd, utc(2026, 6, 10, 12)) == utc(2026, 6, 11, 6)
    assert local_day_start(nd, utc(2026, 6, 10, 12)) == utc(2026, 6, 10, 5)


# --------------------------------------------------------------- properties
TRANSITIONS = [
    utc(2026, 3, 8, 7),  # US spring forward (02:00 EST)
    utc(2026, 11, 1, 6),  # US fall back (02:00 EDT)
    utc(2027, 3, 14, 7),
    utc(2027, 11, 7, 6),
    utc(2026, 3, 29, 1),  # EU
    utc(2026, 10, 25, 1),
    utc(2027, 3, 28, 1),
    utc(2027, 10, 31, 1),
    utc(2026, 4, 4, 16),  # Australia/Sydney back to AEST
    utc(2026, 10, 3, 16),  # Sydney forward
    utc(2026, 4, 5, 3),  # Chile (midnight changes)
    utc(2026, 9, 6, 4),
]

instants = st.one_of(
    st.floats(min_value=utc(2026, 1, 1), max_value=utc(2027, 12, 31)),
    st.builds(
        lambda base, off: base + off,
        st.sampled_from(TRANSITIONS),
        st.integers(min_value=-3 * 86400, max_value=3 * 86400),
    ),
)

_hhmm = st.integers(min_value=5 * 4, max_value=24 * 4).map(lambda q: q * 15)


@st.composite
def ranges(draw: st.DrawFn) -> str:
    a, b = sorted(draw(st.lists(_hhmm, min_size=2, max_size=2, unique=True)))
    return f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}"


DAY_SPECS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun", "mon-fri", "sat,sun", "daily")


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    hours = draw(
        st.dictionaries(
            st.sampled_from(DAY_SPECS), st.lists(ranges(), min_size=1, max_size=2), max_size=3
        )
    )
    holidays = draw(
        st.lists(st.dates(min_value=date(2026, 1, 1), max_value=date(2027, 12, 31)), max_size=3)
    )
    tz = draw(st.sampled_from([None, None, None, "America/New_York", "Europe/Paris"]))
    return Schedule(hours=hours, holidays=holidays, timezone=tz)


def _legal_everywhere(zones: tuple[str, ...], t: float) -> bool:
    """An independent oracle of the law: local wall time via astimezone."""
    lo, hi = LEGAL_WINDOW
    for z in zones:
        lt = datetime.fromtimestamp(math.floor(t), UTC).astimezone(ZoneInfo(z))
        m = lt.hour * 60 + lt.minute
        if not lo <= m < hi:
            return False
    return True


PROBE_S = 60
PROBE_SPAN_S = 26 * 3600


@settings(max_examples=70, deadline=None)
@given(
    schedules(),
    st.sampled_from(NUMBERS),
    instants,
    st.sampled_from([None, None, None, "America/Chicago", "Asia/Kolkata", "Australia/Sydney"]),
)
def test_next_allowed_is_allowed_and_earliest(
    s: Schedule, number: str, now: float, lead_tz: str | None
) -> None:
    zones = zones_for_lead(number, lead_tz)
    nxt = next_allowed(s, zones, now)
    if nxt is not None:
        assert nxt >= now
        d = may_call(s, zones, nxt)
        assert d.ok, d
        assert _legal_everywhere(zones, nxt)
    # no allowed instant before it on a 1-minute grid (bounded probe)
    stop = now + PROBE_SPAN_S if nxt is None else min(nxt, now + PROBE_SPAN_S)
    t = now
    while t < stop:
        assert not may_call(s, zones, t).ok, (t, nxt)
        t += PROBE_S


@settings(max_examples=150, deadline=None)
@given(schedules(), st.sampled_from(NUMBERS), instants)
def test_allowed_means_legal_and_scheduled_in_every_zone(
    s: Schedule, number: str, now: float
) -> None:
    zones = zones_for_number(number)
    d = may_call(s, zones, now)
    if not d.ok:
        return
    assert _legal_everywhere(zones, now)
    # the schedule, read where it is meant to be read
    for z in (s.timezone,) if s.timezone else zones:
        lt = datetime.fromtimestamp(math.floor(now), UTC).astimezone(ZoneInfo(z))
        assert lt.date() not in s.holidays
        m = lt.hour * 60 + lt.minute
        assert any(a <= m < b for a, b in s.ranges_on(lt.weekday()))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(MULTI_ZONE), instants, schedules())
def test_multi_zone_is_most_restrictive(number: str, now: float, s: Schedule) -> None:
    zones = zones_for_number(number)
    each = [may_call(s, (z,), now).ok for z in zones]
    assert may_call(s, zones, now).ok == all(each)
    nxt = next_allowed(s, zones, now)
    if nxt is not None:
        assert all(may_call(s, (z,), nxt).ok for z in zones)
        # no zone's own window opens later than the joint one
        for z in zones:
            single = next_allowed(s, (z,), now)
            assert single is not None and single <= nxt


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(TRANSITIONS), st.integers(min_value=-2 * 86400, max_value=2 * 86400))
def test_dst_default_window_opens_at_0800_local(base: float, off: int) -> None:
    """Around DST changes the window opens at exactly 08:00 local wall time."""
    for z in ("America/New_York", "Europe/Berlin", "Australia/Sydney", "America/Santiago"):
        nxt = next_allowed(Schedule(), (z,), base + off)
        assert nxt is not None
        lt = datetime.fromtimestamp(nxt, ZoneInfo(z))
        if nxt > base + off:
            assert (lt.hour, lt.minute, lt.second) == (8, 0, 0)
        assert nxt - (base + off) < 86400 + 3600
