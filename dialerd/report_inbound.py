"""The inbound side of ``dialerd report``: per queue and hour, and per agent
on both kinds of call. Pure computation over rows read from the store
(``inbound_calls``, ``attempts``, the agent events); the loader and the
outbound figures are in :mod:`dialerd.report`.

Per queue and hour (local time, by the caller's arrival; a ``total`` line
follows each queue's hours, and an ``(all)`` line sums every queue). Each caller is one row of
``inbound_calls``, written when the call ended: a caller still waiting or
talking when the report runs is not in it yet.

- **offered**: every caller of the queue (``refused`` calls to an unknown
  DID have no queue: they are counted apart, ``refused``).
- **answered**: the caller reached an agent's room; **answered in SL**:
  within the queue's target ``sl_within_s`` (recorded with each call, so a
  target changed mid-day is applied call by call).
- **abandoned**: hung up while waiting; **abandoned in SL** (inside the
  target: not held against the level) and **after SL**; their waits: mean,
  max and a histogram (0-10 s, 10-30 s, 30-60 s, 60 s and more).
- **fallbacks**: sent to the queue's fallback, after ``max_wait`` or at once
  for ``no_agents`` (no agent logged in, or the daemon draining);
  **callbacks**: of those, the callers who asked for a callback (outcome
  ``callback``).
- **service level** = answered in SL / (answered + abandoned after SL +
  fallbacks), the definition of the live ``dialerd status``; ``null`` when
  the denominator is 0. One difference: the live count holds a caller who
  hangs up while being put through to an agent against the level whatever
  the wait, while the report, which has only the row, goes by the wait. An
  answered or abandoned row without a recorded target (its queue was gone
  when the call ended) is left out of the level (``sl_unknown``).
- **ASA** (average speed of answer) = mean wait of the answered callers.

Per agent (calls that arrived or were dialed in the period; talk is
connected to ended, clipped to the period):
**inbound talk** from answered ``inbound_calls`` rows, **outbound talk**
from the agent's connected attempts, **wrap** and **logged-in** time from
the agent events exactly as the outbound report counts them
(:func:`dialerd.report_time.agent_intervals`), and **occupancy** =
(inbound talk + outbound talk + wrap) / logged-in time, capped at 1 like
the live view.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from dialerd.report_time import AgentEvent, agent_intervals, hour_key
from dialerd.store.api import StoredAttempt, StoredInbound

REFUSED = "refused"
TOTAL = "total"
#: the labels of the all-queues line and of the refused line (no queue
#: name has parentheses, so neither can be taken for a queue)
ALL_QUEUES = "(all)"
REFUSED_LINE = "(refused)"
#: the abandoned callers' wait histogram: (label, lower bound included)
WAIT_BUCKETS: tuple[tuple[str, float], ...] = (
    ("0-10", 0.0),
    ("10-30", 10.0),
    ("30-60", 30.0),
    ("60+", 60.0),
)
FALLBACK_REASONS = ("max_wait", "no_agents")


def wait_bucket(wait_s: float) -> str:
    label = WAIT_BUCKETS[0][0]
    for name, lo in WAIT_BUCKETS:
        if wait_s >= lo:
            label = name
    return label


def _r(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


@dataclass(slots=True)
class _QAcc:
    offered: int = 0
    answered: int = 0
    answered_in_sl: int = 0
    #: callers the service level counts (its denominator)
    in_level: int = 0
    answer_wait_s: float = 0.0
    abandoned: int = 0
    abandoned_in_sl: int = 0
    abandon_wait_s: float = 0.0
    abandon_wait_max_s: float = 0.0
    abandon_hist: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys((n for n, _ in WAIT_BUCKETS), 0)
    )
    fallbacks: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FALLBACK_REASONS, 0))
    callbacks: int = 0
    sl_unknown: int = 0
    targets: set[int] = field(default_factory=set)

    def add(self, c: StoredInbound) -> None:
        self.offered += 1
        target = c.sl_within_s
        if target is not None:
            self.targets.add(target)
        wait = max(0.0, c.wait_s)
        inside = None if target is None else wait <= target
        if c.outcome == "answered":
            self.answered += 1
            self.answer_wait_s += wait
            self.answered_in_sl += inside is True
            self.in_level += inside is not None
        elif c.outcome == "abandoned":
            self.abandoned += 1
            self.abandon_wait_s += wait
            self.abandon_wait_max_s = max(self.abandon_wait_max_s, wait)
            self.abandon_hist[wait_bucket(wait)] += 1
            self.abandoned_in_sl += inside is True
            self.in_level += inside is False
        elif c.outcome in ("fallback", "callback"):
            # a fallback misses the level whatever the target was
            reason = c.fallback if c.fallback in FALLBACK_REASONS else "max_wait"
            self.fallbacks[reason] += 1
            self.callbacks += c.outcome == "callback"
            self.in_level += 1
        if inside is None and c.outcome in ("answered", "abandoned"):
            self.sl_unknown += 1

    def merge(self, o: _QAcc) -> None:
        self.offered += o.offered
        self.answered += o.answered
        self.answered_in_sl += o.answered_in_sl
        self.in_level += o.in_level
        self.answer_wait_s += o.answer_wait_s
        self.abandoned += o.abandoned
        self.abandoned_in_sl += o.abandoned_in_sl
        self.abandon_wait_s += o.abandon_wait_s
        self.abandon_wait_max_s = max(self.abandon_wait_max_s, o.abandon_wait_max_s)
        for k, v in o.abandon_hist.items():
            self.abandon_hist[k] += v
        for k, v in o.fallbacks.items():
            self.fallbacks[k] += v
        self.callbacks += o.callbacks
        self.sl_unknown += o.sl_unknown
        self.targets |= o.targets

    def figures(self) -> dict[str, Any]:
        ab = self.abandoned
        return {
            "offered": self.offered,
            "answered": self.answered,
            "answered_in_sl": self.answered_in_sl,
            "service_level": _r(self.answered_in_sl / self.in_level, 5) if self.in_level else None,
            "sl_within_s": sorted(self.targets),
            "asa_s": _r(self.answer_wait_s / self.answered, 2) if self.answered else None,
            "abandoned": ab,
            "abandoned_in_sl": self.abandoned_in_sl,
            "abandoned_after_sl": ab - self.abandoned_in_sl,
            "abandon_wait_mean_s": _r(self.abandon_wait_s / ab, 2) if ab else None,
            "abandon_wait_max_s": _r(self.abandon_wait_max_s, 2) if ab else None,
            "abandon_wait": dict(self.abandon_hist),
            "fallbacks": sum(self.fallbacks.values()),
            "fallback_max_wait": self.fallbacks["max_wait"],
            "fallback_no_agents": self.fallbacks["no_agents"],
            "callbacks": self.callbacks,
            "sl_unknown": self.sl_unknown,
        }


@dataclass(slots=True)
class _AgentAcc:
    inbound_calls: int = 0
    inbound_talk_s: float = 0.0
    outbound_calls: int = 0
    outbound_talk_s: float = 0.0
    wrap_s: float = 0.0
    logged_in_s: float = 0.0

    def merge(self, o: _AgentAcc) -> None:
        self.inbound_calls += o.inbound_calls
        self.inbound_talk_s += o.inbound_talk_s
        self.outbound_calls += o.outbound_calls
        self.outbound_talk_s += o.outbound_talk_s
        self.wrap_s += o.wrap_s
        self.logged_in_s += o.logged_in_s

    def figures(self) -> dict[str, Any]:
        busy = self.inbound_talk_s + self.outbound_talk_s + self.wrap_s
        occ = min(1.0, busy / self.logged_in_s) if self.logged_in_s > 0 else None
        return {
            "inbound_calls": self.inbound_calls,
            "inbound_talk_min": round(self.inbound_talk_s / 60.0, 3),
            "outbound_calls": self.outbound_calls,
            "outbound_talk_min": round(self.outbound_talk_s / 60.0, 3),
            "wrap_min": round(self.wrap_s / 60.0, 3),
            "logged_in_h": round(self.logged_in_s / 3600.0, 4),
            "occupancy": _r(occ, 5),
        }


def _clipped(t0: float | None, t1: float | None, lo: float, hi: float) -> float:
    if t0 is None or t1 is None:
        return 0.0
    return max(0.0, min(t1, hi) - max(t0, lo))


def compute_inbound(
    calls: Iterable[StoredInbound],
    attempts: Iterable[StoredAttempt],
    agent_events: Iterable[AgentEvent],
    *,
    start: float,
    end: float,
    tz: tzinfo | None = None,
) -> dict[str, Any]:
    """The inbound part of the report over [start, end): ``calls`` are the
    ``inbound_calls`` rows that arrived in it, ``attempts`` the outbound
    attempts started in it (every campaign), ``agent_events`` as for
    :func:`dialerd.report.compute`."""
    hours: dict[tuple[str, str], _QAcc] = defaultdict(_QAcc)
    refused_by_did: dict[str, int] = defaultdict(int)
    refused_by_hour: dict[str, int] = defaultdict(int)
    agents: dict[str, _AgentAcc] = defaultdict(_AgentAcc)
    for c in calls:
        if c.outcome == REFUSED:
            refused_by_did[c.did or "-"] += 1
            refused_by_hour[hour_key(c.arrived_at, tz)] += 1
            continue
        hours[(c.queue, hour_key(c.arrived_at, tz))].add(c)
        if c.outcome == "answered" and c.agent_id:
            acc = agents[c.agent_id]
            acc.inbound_calls += 1
            acc.inbound_talk_s += _clipped(c.answered_at, c.ended_at, start, end)
    for a in attempts:
        if a.agent_id and a.state == "done" and a.outcome == "answered":
            acc = agents[a.agent_id]
            acc.outbound_calls += 1
            acc.outbound_talk_s += _clipped(a.connected_at, a.ended_at, start, end)
    for agent, _camp, state, t0, t1 in agent_intervals(agent_events, start, end):
        if state == "logged_out":
            continue
        acc = agents[agent]
        acc.logged_in_s += t1 - t0
        if state == "wrap":
            acc.wrap_s += t1 - t0

    rows: list[dict[str, Any]] = []
    per_queue: dict[str, _QAcc] = defaultdict(_QAcc)
    total = _QAcc()
    for queue, hour in sorted(hours):
        acc_q = hours[(queue, hour)]
        per_queue[queue].merge(acc_q)
        total.merge(acc_q)
        rows.append({"queue": queue, "hour": hour, **acc_q.figures()})
    # each queue's hours, then its total line
    out_rows: list[dict[str, Any]] = []
    for queue in sorted(per_queue):
        out_rows += [r for r in rows if r["queue"] == queue]
        out_rows.append({"queue": queue, "hour": TOTAL, **per_queue[queue].figures()})

    agent_rows = []
    agents_total = _AgentAcc()
    for aid in sorted(agents):
        agents_total.merge(agents[aid])
        agent_rows.append({"agent": aid, **agents[aid].figures()})
    return {
        "queues": out_rows,
        "total": {"queue": ALL_QUEUES, "hour": TOTAL, **total.figures()},
        "refused": {
            "calls": sum(refused_by_did.values()),
            "by_did": dict(sorted(refused_by_did.items())),
            "by_hour": dict(sorted(refused_by_hour.items())),
        },
        "agents": agent_rows,
        "agents_total": {"agent": TOTAL, **agents_total.figures()},
    }


# ------------------------------------------------------------------ output

#: the per-queue table's columns: (header, key for :func:`queue_cell`)
QUEUE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("offered", "offered"),
    ("answered", "answered"),
    ("SL", "service_level"),
    ("target s", "sl_within_s"),
    ("ASA s", "asa_s"),
    ("abandoned (in SL)", "abandoned"),
    ("aband. wait mean/max s", "abandon_wait"),
    ("aband. 0-10/10-30/30-60/60+ s", "abandon_wait_hist"),
    ("fallbacks (max_wait/no_agents)", "fallbacks"),
    ("callbacks", "callbacks"),
)
AGENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("inbound calls", "inbound_calls"),
    ("inbound talk min", "inbound_talk_min"),
    ("outbound calls", "outbound_calls"),
    ("outbound talk min", "outbound_talk_min"),
    ("wrap min", "wrap_min"),
    ("logged in h", "logged_in_h"),
    ("occupancy", "occupancy"),
)


def _num(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 100 else f"{v:.2f}"
    return str(v)


def queue_cell(key: str, row: dict[str, Any]) -> str:
    """One cell of the per-queue table."""
    if key == "service_level":
        v = row[key]
        return "-" if v is None else f"{100 * float(v):.1f}%"
    if key == "sl_within_s":
        return ",".join(str(t) for t in row[key]) or "-"
    if key == "abandon_wait":
        if not row["abandoned"]:
            return "-"
        return f"{_num(row['abandon_wait_mean_s'])}/{_num(row['abandon_wait_max_s'])}"
    if key == "abandon_wait_hist":
        return "/".join(str(row["abandon_wait"][n]) for n, _ in WAIT_BUCKETS)
    if key == "abandoned":
        return f"{row['abandoned']} ({row['abandoned_in_sl']})"
    if key == "fallbacks":
        return f"{row['fallbacks']} ({row['fallback_max_wait']}/{row['fallback_no_agents']})"
    return _num(row[key])


def agent_cell(key: str, row: dict[str, Any]) -> str:
    v = row[key]
    if key == "occupancy":
        return "-" if v is None else f"{100 * float(v):.1f}%"
    return _num(v)


def refused_line(inbound: dict[str, Any]) -> str:
    ref = inbound["refused"]
    if not ref["calls"]:
        return "refused (unknown DID): 0"
    dids = ", ".join(f"{d} {n}" for d, n in ref["by_did"].items())
    return f"refused (unknown DID): {ref['calls']} ({dids})"


def queues_csv_rows(inbound: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The per-queue part as CSV: one line per queue and hour, a total line
    per queue and one for all queues (``(all)``), then a ``(refused)`` line (its count in
    the ``refused`` column); the wait histogram as ``abandon_wait:<bucket>``
    and the targets joined by ``,``."""
    lines = [*inbound["queues"], inbound["total"]]
    keys = [k for k in inbound["total"] if k != "abandon_wait"]
    header = [*keys, *(f"abandon_wait:{n}" for n, _ in WAIT_BUCKETS), "refused"]
    out: list[list[Any]] = []
    for r in lines:
        cells: list[Any] = []
        for k in keys:
            v = r.get(k)
            if k == "sl_within_s":
                v = ",".join(str(t) for t in v)
            cells.append("" if v is None else v)
        cells += [r["abandon_wait"][n] for n, _ in WAIT_BUCKETS]
        out.append([*cells, ""])
    out.append([REFUSED_LINE, TOTAL, *([""] * (len(header) - 3)), inbound["refused"]["calls"]])
    return header, out


def agents_csv_rows(inbound: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    lines = [*inbound["agents"], inbound["agents_total"]]
    keys = list(inbound["agents_total"])
    return keys, [["" if r.get(k) is None else r.get(k) for k in keys] for r in lines]
