"""Calling windows: the campaign's schedule intersected with the callee's
local legal window. Pure: no I/O, no clock (every function takes ``now``).

Semantics (what the property tests hold):

* An instant ``t`` (epoch seconds, UTC) is *allowed* for a number when, for
  **every** zone the number may be in (the most restrictive reading), the
  wall time of ``t`` in that zone lies inside the legal window
  :data:`LEGAL_WINDOW` (08:00-21:00, start inclusive, end exclusive), and the
  campaign's :class:`Schedule` allows it:

  - ``Schedule.timezone`` unset (the default): the schedule's days, hours and
    holidays are read in the *callee's* local time, in every zone of the
    number; hours outside 08:00-21:00 are clamped by the legal window (and
    ``check-config`` warns);
  - ``Schedule.timezone`` set (e.g. ``America/New_York``): the schedule is the
    call centre's opening hours, read once in that zone; the legal window
    still applies in every callee zone.

* Wall time is computed from the instant (``datetime.fromtimestamp(t, zone)``
  of the whole second holding ``t``),
  so every instant has exactly one local time: DST gaps and repeated hours
  need no special case in :func:`may_call`. :func:`next_allowed` finds the
  exact earliest allowed instant by testing every instant where the answer
  can change (wall-time boundaries mapped with both folds, and the zones'
  UTC-offset transitions), so it is right across DST changes too.

* A number without a known zone is **not dialable** (fail closed): use the
  lead's ``timezone`` column to make it dialable.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: the legal default in the callee's local time, minutes of the day [start, end)
LEGAL_WINDOW: tuple[int, int] = (8 * 60, 21 * 60)
#: how far ahead :func:`next_allowed` looks before giving up (None)
HORIZON_DAYS = 14

_RANGE_RE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])$")
_UNKNOWN = pn_timezone.UNKNOWN_TIMEZONE
#: UTC-offset sampling step when looking for DST transitions (no zone changes
#: its offset twice within 3 hours)
_SAMPLE_S = 3 * 3600
#: candidate instants are generated this far at a time
_CHUNK_S = 2 * 86400

MinuteRange = tuple[int, int]


def parse_range(text: str) -> MinuteRange:
    """``"09:00-20:30"`` -> minutes of the day ``(540, 1230)``, end exclusive.

    ``24:00`` is accepted as an end (midnight at the end of the day); ranges
    crossing midnight must be written as two ranges on two days.
    """
    m = _RANGE_RE.fullmatch(text.strip())
    if not m:
        raise ValueError(f"{text!r}: write a range as HH:MM-HH:MM, e.g. 09:00-20:00")
    start = int(m[1]) * 60 + int(m[2])
    end = int(m[3]) * 60 + int(m[4])
    if end > 24 * 60:
        raise ValueError(f"{text!r}: the end is after 24:00")
    if end <= start:
        raise ValueError(f"{text!r}: the end must be after the start (split ranges at midnight)")
    return start, end


def parse_days(spec: str) -> tuple[int, ...]:
    """``"mon-fri"``, ``"sat"``, ``"mon,wed,fri"``, ``"fri-mon"`` (wraps), ``"daily"``
    -> weekday numbers (Monday = 0)."""
    text = spec.strip().lower()
    if text in ("daily", "all", "*"):
        return tuple(range(7))
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            a, _, b = part.partition("-")
            if a.strip() not in DAYS or b.strip() not in DAYS:
                raise ValueError(f"{spec!r}: days are {', '.join(DAYS)} (e.g. mon-fri)")
            i, j = DAYS.index(a.strip()), DAYS.index(b.strip())
            k = i
            while True:
                out.append(k)
                if k == j:
                    break
                k = (k + 1) % 7
        elif part in DAYS:
            out.append(DAYS.index(part))
        else:
            raise ValueError(f"{spec!r}: days are {', '.join(DAYS)} (e.g. mon-fri)")
    return tuple(sorted(set(out)))


def _merge(ranges: list[MinuteRange]) -> tuple[MinuteRange, ...]:
    out: list[MinuteRange] = []
    for s, e in sorted(ranges):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return tuple(out)


@lru_cache(maxsize=1024)
def _load_zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


class Schedule(BaseModel):
    """When a campaign may call, e.g.::

        schedule:
          hours:
            mon-fri: ["09:00-12:30", "13:30-20:00"]
            sat: ["10:00-14:00"]
          holidays: [2026-12-25, 2027-01-01]
          timezone: null     # null: hours and holidays in the callee's local time

    Days not named are closed. Ranges of several keys naming the same day are
    merged. The default is the legal window on every day.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    hours: dict[str, list[str]] = Field(default_factory=lambda: {"mon-sun": ["08:00-21:00"]})
    #: local dates (in the zone the hours are read in) on which nobody is called
    holidays: list[date] = Field(default_factory=list)
    #: IANA zone the hours and holidays are read in; None: the callee's zone(s)
    timezone: str | None = None
    #: the legal window in the callee's local time. The law's 08:00-21:00 is
    #: the default; ``check-config`` refuses a wider one unless the campaign
    #: sets ``compliance.legal_window_override`` (SANDBOX/TEST ONLY: the
    #: integration tests and the demo run at any hour against simulated numbers)
    legal_window: str = "08:00-21:00"

    _weekly: tuple[tuple[MinuteRange, ...], ...] = PrivateAttr(default=())
    _holidays: frozenset[date] = PrivateAttr(default=frozenset())

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for spec, ranges in v.items():
            parse_days(spec)
            for r in ranges:
                parse_range(r)
        return v

    @field_validator("legal_window")
    @classmethod
    def _legal(cls, v: str) -> str:
        parse_range(v)
        return v

    @property
    def legal(self) -> MinuteRange:
        """``legal_window`` as minutes of the day (start, end)."""
        return parse_range(self.legal_window)

    def legal_wider_than_law(self) -> bool:
        lo, hi = self.legal
        return lo < LEGAL_WINDOW[0] or hi > LEGAL_WINDOW[1]

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v is not None and _load_zone(v) is None:
            raise ValueError(f"{v!r} is not an IANA time zone name")
        return v

    def model_post_init(self, __context: object) -> None:
        per_day: list[list[MinuteRange]] = [[] for _ in range(7)]
        for spec, ranges in self.hours.items():
            parsed = [parse_range(r) for r in ranges]
            for d in parse_days(spec):
                per_day[d].extend(parsed)
        self._weekly = tuple(_merge(r) for r in per_day)
        self._holidays = frozenset(self.holidays)

    def ranges_on(self, weekday: int) -> tuple[MinuteRange, ...]:
        """Merged ``(start, end)`` minute ranges of a weekday (Monday = 0)."""
        return self._weekly[weekday]

    def is_holiday(self, day: date) -> bool:
        return day in self._holidays

    def boundary_minutes(self) -> frozenset[int]:
        """Every minute of the day at which this schedule can open or close."""
        out = {0}
        for day in self._weekly:
            for s, e in day:
                out.add(s)
                out.add(e % (24 * 60))
        return frozenset(out)

    def looser_than_law(self) -> list[str]:
        """The ranges that reach outside the legal window (clamped when the
        hours are read in the callee's zone)."""
        lo, hi = LEGAL_WINDOW
        out: list[str] = []
        for spec, ranges in self.hours.items():
            for r in ranges:
                s, e = parse_range(r)
                if s < lo or e > hi:
                    out.append(f"{spec}: {r}")
        return out

    def never_open(self) -> bool:
        """No hour in the week is both scheduled and legal (callee-local
        reading) or no hour at all (campaign-zone reading)."""
        lo, hi = self.legal
        for day in self._weekly:
            for s, e in day:
                if self.timezone is not None or (max(s, lo) < min(e, hi)):
                    return False
        return True


@dataclass(frozen=True, slots=True)
class Decision:
    """A rule's verdict. ``reason`` is a stable code (``ok``, ``no_timezone``,
    ``unknown_timezone``, ``outside_legal_window``, ``outside_schedule``,
    ``holiday``, ...) to record with the attempt or the skipped lead;
    ``detail`` says where and when, for people."""

    ok: bool
    reason: str
    detail: str = ""


ALLOWED = Decision(True, "ok")


@lru_cache(maxsize=65536)
def zones_for_number(e164: str) -> tuple[str, ...]:
    """The IANA zones a number may be in, by phonenumbers' prefix data.

    Unknown prefixes fall back to the country's zones (all of them: the most
    restrictive reading). ``()`` when nothing is known or a zone cannot be
    loaded: such a number is not dialable without an explicit lead timezone.
    """
    try:
        num = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ()
    zones = tuple(pn_timezone.time_zones_for_number(num))
    if not zones or _UNKNOWN in zones:
        zones = tuple(pn_timezone.time_zones_for_geographical_number(num))
    if not zones or _UNKNOWN in zones:
        zones = tuple(pn_timezone._country_level_time_zones_for_number(num))
    if not zones or _UNKNOWN in zones:
        return ()
    if any(_load_zone(z) is None for z in zones):
        return ()  # a zone the system's tzdata does not know: fail closed
    return tuple(sorted(set(zones)))


def zones_for_lead(e164: str, timezone: str | None = None) -> tuple[str, ...]:
    """An explicit lead ``timezone`` overrides the number's zones."""
    if timezone:
        return (timezone,) if _load_zone(timezone) is not None else ()
    return zones_for_number(e164)


def _wall(t: float, zi: ZoneInfo) -> datetime:
    """Wall time of the whole second holding ``t``. Every boundary is a whole
    second, so this decides exactly as the real instant would, without
    ``fromtimestamp`` rounding 07:59:59.9999998 up to 08:00."""
    return datetime.fromtimestamp(math.floor(t), zi)


def _sod(lt: datetime) -> int:
    return lt.hour * 3600 + lt.minute * 60 + lt.second


def _schedule_check(schedule: Schedule, lt: datetime, where: str) -> Decision | None:
    if schedule.is_holiday(lt.date()):
        return Decision(False, "holiday", f"{lt.date().isoformat()} in {where}")
    sod = _sod(lt)
    if not any(s * 60 <= sod < e * 60 for s, e in schedule.ranges_on(lt.weekday())):
        return Decision(False, "outside_schedule", f"{where} local {lt:%a %Y-%m-%d %H:%M}")
    return None


def _zone_check(schedule: Schedule, name: str, zi: ZoneInfo, t: float) -> Decision | None:
    """The legal window (and a callee-local schedule) in one callee zone."""
    lo, hi = schedule.legal
    lt = _wall(t, zi)
    sod = _sod(lt)
    if not lo * 60 <= sod < hi * 60:
        return Decision(False, "outside_legal_window", f"{name} local {lt:%a %Y-%m-%d %H:%M}")
    if schedule.timezone is None:
        return _schedule_check(schedule, lt, name)
    return None


def may_call(schedule: Schedule, zones: tuple[str, ...], now_utc: float) -> Decision:
    """Whether a number in ``zones`` may be called at ``now_utc`` (epoch s)."""
    if not zones:
        return Decision(False, "no_timezone", "the number's time zone is unknown")
    if schedule.timezone is not None:
        cz = _load_zone(schedule.timezone)
        if cz is None:  # validated on load; belt and braces
            return Decision(False, "unknown_timezone", schedule.timezone)
        refused = _schedule_check(
            schedule, _wall(now_utc, cz), f"campaign zone {schedule.timezone}"
        )
        if refused is not None:
            return refused
    for name in zones:
        zi = _load_zone(name)
        if zi is None:
            return Decision(False, "unknown_timezone", name)
        refused = _zone_check(schedule, name, zi, now_utc)
        if refused is not None:
            return refused
    return ALLOWED


def _offset(zi: ZoneInfo, t: float) -> float:
    off = datetime.fromtimestamp(t, zi).utcoffset()
    return 0.0 if off is None else off.total_seconds()


def _transitions(zi: ZoneInfo, start: float, end: float) -> list[float]:
    """UTC-offset changes of ``zi`` in ``(start, end]``, to the second."""
    out: list[float] = []
    t0 = math.floor(start)
    prev = _offset(zi, t0)
    t = t0
    while t < end:
        nxt = min(t + _SAMPLE_S, math.ceil(end))
        cur = _offset(zi, nxt)
        if cur != prev:
            lo, hi = t, nxt  # offset(lo) == prev, offset(hi) == cur
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _offset(zi, mid) == prev:
                    lo = mid
                else:
                    hi = mid
            out.append(float(hi))
            prev = cur
        t = nxt
    return out


def _wall_candidates(zi: ZoneInfo, minutes: frozenset[int], start: float, end: float) -> set[float]:
    """Instants in ``(start, end]`` where the wall time in ``zi`` may reach one
    of ``minutes`` (both folds: ambiguous and nonexistent times give two)."""
    out: set[float] = set()
    first = datetime.fromtimestamp(start, zi).date() - timedelta(days=1)
    last = datetime.fromtimestamp(end, zi).date() + timedelta(days=1)
    d = first
    while d <= last:
        for m in minutes:
            for fold in (0, 1):
                t = datetime(
                    d.year, d.month, d.day, m // 60, m % 60, tzinfo=zi, fold=fold
                ).timestamp()
                if start < t <= end:
                    out.add(t)
        d += timedelta(days=1)
    return out


class _Candidates:
    """The instants where one zone's verdict may change, generated lazily in
    chunks of :data:`_CHUNK_S` up to the horizon."""

    def __init__(self, zi: ZoneInfo, minutes: frozenset[int], start: float, end: float) -> None:
        self._zi = zi
        self._minutes = minutes
        self._covered = start
        self._end = end
        self._items: list[float] = []

    def after(self, t: float) -> float | None:
        """The first candidate strictly after ``t``; None past the horizon."""
        while True:
            k = bisect.bisect_right(self._items, t)
            if k < len(self._items):
                return self._items[k]
            if self._covered >= self._end:
                return None
            lo, hi = self._covered, min(self._covered + _CHUNK_S, self._end)
            new = _wall_candidates(self._zi, self._minutes, lo, hi)
            new.update(_transitions(self._zi, lo, hi))
            self._items.extend(sorted(new))
            self._covered = hi


def next_allowed(
    schedule: Schedule,
    zones: tuple[str, ...],
    now_utc: float,
    horizon_days: int = HORIZON_DAYS,
) -> float | None:
    """The earliest instant ``>= now_utc`` at which :func:`may_call` allows a
    call, or None when there is none within ``horizon_days`` (or no zone).

    Exact: each constraint (the campaign-zone schedule, each callee zone's
    legal window and local schedule) can only change its verdict at its own
    candidate instants (range boundaries and midnight in that zone's wall
    time, mapped with both folds, and the zone's UTC-offset changes). So when
    a constraint refuses at ``t``, nothing before its next candidate can be
    allowed: jump there and check again, until every constraint agrees.
    """
    if not zones:
        return None
    end = now_utc + horizon_days * 86400
    checks: list[tuple[Callable[[float], Decision | None], _Candidates]] = []
    llo, lhi = schedule.legal
    legal = frozenset({llo, lhi % (24 * 60), 0})
    if schedule.timezone is not None:
        cz = _load_zone(schedule.timezone)
        if cz is None:
            return None
        where = f"campaign zone {schedule.timezone}"

        def campaign_check(t: float, cz: ZoneInfo = cz) -> Decision | None:
            return _schedule_check(schedule, _wall(t, cz), where)

        checks.append((campaign_check, _Candidates(cz, schedule.boundary_minutes(), now_utc, end)))
        zone_minutes = legal
    else:
        zone_minutes = legal | schedule.boundary_minutes()
    for name in zones:
        zi = _load_zone(name)
        if zi is None:
            return None

        def zone_check(t: float, name: str = name, zi: ZoneInfo = zi) -> Decision | None:
            return _zone_check(schedule, name, zi, t)

        checks.append((zone_check, _Candidates(zi, zone_minutes, now_utc, end)))
    t = now_utc
    agreed = 0  # constraints in a row that allow t
    i = 0
    while agreed < len(checks):
        check, cands = checks[i]
        if check(t) is None:
            agreed += 1
        else:
            nxt = cands.after(t)
            if nxt is None:
                return None
            t = nxt
            agreed = 1 if check(t) is None else 0
            if agreed == 0:
                continue  # same constraint, next candidate
        i = (i + 1) % len(checks)
    return t


def local_day_start(zones: tuple[str, ...], now_utc: float) -> float:
    """The earliest start of "today" among ``zones`` (to count a lead's
    attempts of the day conservatively); ``now_utc - 86400`` without zones."""
    starts: list[float] = []
    for name in zones:
        zi = _load_zone(name)
        if zi is None:
            continue
        d = _wall(now_utc, zi).date()
        starts.append(_first_instant_of(d, zi))
    return min(starts) if starts else now_utc - 86400


def next_local_day_start(zones: tuple[str, ...], now_utc: float) -> float:
    """The latest start of "tomorrow" among ``zones``: from then on it is a
    new day in every zone. ``now_utc + 86400`` without zones."""
    starts: list[float] = []
    for name in zones:
        zi = _load_zone(name)
        if zi is None:
            continue
        d = _wall(now_utc, zi).date() + timedelta(days=1)
        starts.append(_first_instant_of(d, zi))
    return max(starts) if starts else now_utc + 86400


def _first_instant_of(d: date, zi: ZoneInfo) -> float:
    """The first instant whose wall date in ``zi`` is ``d`` (midnight, or the
    end of a DST gap that swallows midnight)."""
    t0 = datetime.combine(d, time(0), tzinfo=zi).replace(fold=0).timestamp()
    t1 = datetime.combine(d, time(0), tzinfo=zi).replace(fold=1).timestamp()
    for t in sorted({t0, t1}):
        if datetime.fromtimestamp(t, zi).date() == d:
            return t
    # midnight does not exist: the day starts at the transition
    for t in _transitions(zi, min(t0, t1) - 1, max(t0, t1)):
        return t
    return min(t0, t1)
