"""``dialerd report``: figures over a period, per campaign, agent or hour.

Pure computation over rows read from the store (:func:`compute`), plus a
thin async loader (:func:`load_report`) and the output formats. Without a
campaign, the loader adds the inbound part (per queue and hour, and agents
on inbound and outbound calls), defined in :mod:`dialerd.report_inbound`.
Definitions of the outbound figures (every rate is ``null`` when its
denominator is 0):

- **dials**: attempts started in the period.
- **contacts**: live answers: outcome ``answered``, ``abandoned`` or
  ``customer_hangup`` (a person picked up). **contact rate** = contacts / dials.
- **connected**: attempts connected to an agent (``answered``).
- **talk**: connected_at to ended_at of connected attempts.
- **agent time** (from the ``agent_events`` state history, clipped exactly to
  the period or hour): logged in = every state but ``logged_out``; handling =
  ``reserved`` + ``talking``; after-call work (ACW) = ``wrap``.
- **talk minutes per agent-hour** = talk minutes / logged-in hours.
- **occupancy** = (handling + wrap) / logged-in time.
- **AHT** (average handle time) = (talk + wrap) / connected.
- **abandons** = ``abandoned`` + ``customer_hangup`` (the conservative
  reading: a customer who hung up inside the 2 s window was not reached in
  time either). Both rates are abandons / contacts, timed by the answer:
  **FTC** over the period and over the worst rolling 30-day window inside it
  (the whole period when it is shorter); **Ofcom** over the worst rolling
  24-hour window (the whole period when shorter).
- **leads exhausted** = status ``done``; **remaining** = ``new`` + ``retry``
  (current counts, not period-bound; per campaign only).

Outcomes are counted from the attempt's outcome column (``in_progress``
for a live attempt); **dispositions** from its disposition column (the code
the agent keyed: sale, callback, ...; ``none`` for a connected call the
agent never disposed).
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Literal

from dialerd.report_inbound import compute_inbound
from dialerd.report_time import AgentEvent, agent_intervals, hour_key, hour_spans
from dialerd.store.api import StoreApi, StoredAttempt

GroupBy = Literal["campaign", "agent", "hour"]

LIVE_OUTCOMES = frozenset({"answered", "abandoned", "customer_hangup"})
ABANDON_OUTCOMES = frozenset({"abandoned", "customer_hangup"})
HANDLING_STATES = frozenset({"reserved", "talking"})
FTC_WINDOW_S = 30 * 86400.0
OFCOM_WINDOW_S = 86400.0
NO_AGENT = "-"


@dataclass(slots=True)
class _Acc:
    dials: int = 0
    contacts: int = 0
    connected: int = 0
    abandons: int = 0
    talk_s: float = 0.0
    logged_in_s: float = 0.0
    handling_s: float = 0.0
    wrap_s: float = 0.0
    paused_s: float = 0.0
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    dispositions: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    #: (answer time, is an abandon) for the windowed abandon rates
    answers: list[tuple[float, bool]] = field(default_factory=list)
    agents: set[str] = field(default_factory=set)

    def add_attempt(self, a: StoredAttempt) -> None:
        self.dials += 1
        outcome = a.outcome if a.state == "done" and a.outcome else "in_progress"
        self.outcomes[outcome] += 1
        if outcome in LIVE_OUTCOMES:
            self.contacts += 1
            ab = outcome in ABANDON_OUTCOMES
            self.abandons += ab
            self.answers.append((a.answered_at or a.started_at, ab))
        if a.disposition:
            self.dispositions[a.disposition] += 1
        elif outcome == "answered":
            self.dispositions["none"] += 1
        if outcome == "answered":
            self.connected += 1
            if a.connected_at is not None and a.ended_at is not None:
                self.talk_s += max(0.0, a.ended_at - a.connected_at)

    def add_agent_time(self, agent: str, state: str, seconds: float) -> None:
        if seconds <= 0 or state == "logged_out":
            return
        self.agents.add(agent)
        self.logged_in_s += seconds
        if state in HANDLING_STATES:
            self.handling_s += seconds
        elif state == "wrap":
            self.wrap_s += seconds
        elif state == "paused":
            self.paused_s += seconds


def _ratio(a: float, b: float, digits: int = 5) -> float | None:
    return round(a / b, digits) if b else None


def worst_window_rate(
    answers: Sequence[tuple[float, bool]], start: float, end: float, window_s: float
) -> float | None:
    """The highest abandon rate over any window of ``window_s`` inside
    [start, end]; the whole span when it is shorter. Only windows starting
    or ending at an answer need checking: moving a window's edge between
    answers changes neither count."""
    if not answers:
        return None
    pts = sorted(answers)
    times = [t for t, _ in pts]
    prefix = [0]
    for _, ab in pts:
        prefix.append(prefix[-1] + ab)
    if end - start <= window_s:
        return _ratio(prefix[-1], len(pts))

    def rate(lo: float, hi: float) -> float | None:
        i, j = bisect.bisect_left(times, lo), bisect.bisect_left(times, hi)  # [lo, hi)
        n = j - i
        return (prefix[j] - prefix[i]) / n if n else None

    best: float | None = None
    for t in times:
        # the window starting at t, and the one ending just after t
        for lo in (
            min(max(t, start), end - window_s),
            max(min(t - window_s + 1e-6, end), start),
        ):
            r = rate(lo, lo + window_s)
            if r is not None and (best is None or r > best):
                best = r
    return None if best is None else round(best, 5)


def _figures(acc: _Acc, start: float, end: float) -> dict[str, Any]:
    talk_min = acc.talk_s / 60.0
    return {
        "dials": acc.dials,
        "contacts": acc.contacts,
        "contact_rate": _ratio(acc.contacts, acc.dials),
        "connected": acc.connected,
        "talk_min": round(talk_min, 3),
        "agents": len(acc.agents),
        "agent_hours": round(acc.logged_in_s / 3600.0, 4),
        "talk_min_per_agent_hour": _ratio(talk_min, acc.logged_in_s / 3600.0, 3),
        "occupancy": _ratio(acc.handling_s + acc.wrap_s, acc.logged_in_s),
        "aht_s": _ratio(acc.talk_s + acc.wrap_s, acc.connected, 2),
        "acw_s": round(acc.wrap_s, 2),
        "acw_per_call_s": _ratio(acc.wrap_s, acc.connected, 2),
        "paused_s": round(acc.paused_s, 2),
        "abandons": acc.abandons,
        "abandon_rate_ftc": _ratio(acc.abandons, acc.contacts),
        "abandon_rate_ftc_worst_30d": worst_window_rate(acc.answers, start, end, FTC_WINDOW_S),
        "abandon_rate_ofcom_worst_24h": worst_window_rate(acc.answers, start, end, OFCOM_WINDOW_S),
        "outcomes": dict(sorted(acc.outcomes.items())),
        "dispositions": dict(sorted(acc.dispositions.items())),
    }


def compute(
    attempts: Iterable[StoredAttempt],
    agent_events: Iterable[AgentEvent],
    *,
    by: GroupBy = "campaign",
    start: float | None = None,
    end: float | None = None,
    lead_counts: dict[str, dict[str, int]] | None = None,
    campaign: str | None = None,
    tz: tzinfo | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The report. ``attempts`` are those started in the period; the period
    defaults to [first attempt or agent event, ``now``]. ``lead_counts``
    (campaign -> status -> n) adds leads exhausted/remaining per campaign."""
    attempts = list(attempts)
    evs = [e for e in agent_events if campaign is None or e[1] == campaign]
    t_now = time.time() if now is None else now
    lo = start
    if lo is None:
        firsts = [a.started_at for a in attempts] + [e[3] for e in evs]
        lo = min(firsts) if firsts else t_now
    hi = t_now if end is None else end
    groups: dict[str, _Acc] = defaultdict(_Acc)
    total = _Acc()

    for a in attempts:
        if by == "campaign":
            key = a.campaign
        elif by == "agent":
            key = a.agent_id or NO_AGENT
        else:
            key = hour_key(a.started_at, tz)
        groups[key].add_attempt(a)
        total.add_attempt(a)

    for agent, camp, state, t0, t1 in agent_intervals(evs, lo, hi):
        total.add_agent_time(agent, state, t1 - t0)
        if by == "hour":
            for key, secs in hour_spans(t0, t1, tz):
                if state != "logged_out":
                    groups[key].add_agent_time(agent, state, secs)
        elif state != "logged_out":
            key = agent if by == "agent" else (camp or NO_AGENT)
            groups[key].add_agent_time(agent, state, t1 - t0)

    rows = []
    for key in sorted(groups):
        row: dict[str, Any] = {by: key, **_figures(groups[key], lo, hi)}
        if by == "campaign" and lead_counts is not None:
            row.update(_lead_figures(lead_counts.get(key, {})))
        rows.append(row)
    tot: dict[str, Any] = {by: "total", **_figures(total, lo, hi)}
    if lead_counts is not None:
        merged: dict[str, int] = defaultdict(int)
        for name, counts in lead_counts.items():
            if campaign is None or name == campaign:
                for k, v in counts.items():
                    merged[k] += v
        tot.update(_lead_figures(merged))
    if by == "campaign" and lead_counts is not None:
        # a campaign with leads but no attempt in the period still gets a row
        have = {r["campaign"] for r in rows}
        for name in sorted(lead_counts):
            if name not in have and (campaign is None or name == campaign):
                rows.append(
                    {
                        "campaign": name,
                        **_figures(_Acc(), lo, hi),
                        **_lead_figures(lead_counts[name]),
                    }
                )
        rows.sort(key=lambda r: str(r["campaign"]))
    return {
        "period": {"from": _iso(lo, tz), "to": _iso(hi, tz), "from_ts": lo, "to_ts": hi},
        "by": by,
        "campaign": campaign,
        "rows": rows,
        "total": tot,
    }


def _lead_figures(counts: dict[str, int]) -> dict[str, int]:
    return {
        "leads_total": sum(counts.values()),
        "leads_exhausted": counts.get("done", 0),
        "leads_remaining": counts.get("new", 0) + counts.get("retry", 0),
        "leads_dialing": counts.get("dialing", 0),
    }


def _iso(t: float, tz: tzinfo | None) -> str:
    return datetime.fromtimestamp(t, tz).astimezone(tz).isoformat(timespec="seconds")


def parse_time(text: str) -> float:
    """ISO 8601 date or date-time; without an offset it is local time."""
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.astimezone()  # local
    return dt.timestamp()


async def load_report(
    store: StoreApi,
    *,
    campaign: str | None = None,
    start: float | None = None,
    end: float | None = None,
    by: GroupBy = "campaign",
    tz: tzinfo | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The report from the store. Without ``campaign`` it has an
    ``inbound`` part (:func:`dialerd.report_inbound.compute_inbound`, over
    the same period; a period without ``start`` then begins at the first
    attempt, agent event or inbound arrival); with one, ``inbound`` is None
    (queues are not campaigns')."""
    attempts = await store.report_attempts(campaign, start, end)
    events = await store.agent_events(start, end)
    names = [campaign] if campaign is not None else await store.campaign_names()
    counts = {n: await store.lead_counts(n) for n in names}
    calls = await store.inbound_calls(start, end) if campaign is None else None
    lo = start
    if lo is None and calls:
        firsts = [a.started_at for a in attempts] + [e[3] for e in events]
        lo = min([*firsts, *(c.arrived_at for c in calls)])
    report = compute(
        attempts,
        events,
        by=by,
        start=lo,
        end=end,
        lead_counts=counts,
        campaign=campaign,
        tz=tz,
        now=now,
    )
    period = report["period"]
    report["inbound"] = (
        None
        if calls is None
        else compute_inbound(
            calls, attempts, events, start=period["from_ts"], end=period["to_ts"], tz=tz
        )
    )
    return report


# ------------------------------------------------------------------ output

#: the table's columns: (header, key)
TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("dials", "dials"),
    ("contacts", "contacts"),
    ("contact%", "contact_rate"),
    ("connected", "connected"),
    ("talk min", "talk_min"),
    ("agent h", "agent_hours"),
    ("talk min/agent h", "talk_min_per_agent_hour"),
    ("occupancy", "occupancy"),
    ("AHT s", "aht_s"),
    ("ACW s/call", "acw_per_call_s"),
    ("abandon FTC", "abandon_rate_ftc"),
    ("FTC worst 30d", "abandon_rate_ftc_worst_30d"),
    ("Ofcom worst 24h", "abandon_rate_ofcom_worst_24h"),
    ("exhausted", "leads_exhausted"),
    ("remaining", "leads_remaining"),
)
_PERCENT = {
    "contact_rate",
    "occupancy",
    "abandon_rate_ftc",
    "abandon_rate_ftc_worst_30d",
    "abandon_rate_ofcom_worst_24h",
}


def cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key in _PERCENT:
        return f"{100 * float(value):.1f}%"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def to_csv(report: dict[str, Any]) -> str:
    """One line per group and a total line; outcomes and dispositions as
    ``outcome:<name>`` and ``disposition:<code>`` columns."""
    rows = [*report["rows"], report["total"]]
    nested = ("outcomes", "dispositions")
    names = {n: sorted({o for r in rows for o in r.get(n, {})}) for n in nested}
    keys: list[str] = []
    for r in rows:
        for k in r:
            if k not in nested and k not in keys:
                keys.append(k)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            *keys,
            *(f"outcome:{o}" for o in names["outcomes"]),
            *(f"disposition:{o}" for o in names["dispositions"]),
        ]
    )
    for r in rows:
        w.writerow(
            ["" if r.get(k) is None else r.get(k) for k in keys]
            + [r.get(n, {}).get(o, 0) for n in nested for o in names[n]]
        )
    return buf.getvalue()


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=False)
