"""Time helpers the report's parts share: agents' state intervals from the
agent events, and local-time hour buckets."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo

#: (agent_id, campaign, state, at)
AgentEvent = tuple[str, str | None, str, float]


def agent_intervals(
    events: Iterable[AgentEvent], start: float, end: float
) -> list[tuple[str, str | None, str, float, float]]:
    """(agent, campaign, state, t0, t1) clipped to [start, end]; each state
    lasts until the agent's next event (or ``end``)."""
    by_agent: dict[str, list[AgentEvent]] = defaultdict(list)
    for e in events:
        by_agent[e[0]].append(e)
    out = []
    for agent, evs in by_agent.items():
        evs.sort(key=lambda e: e[3])
        for k, (_, camp, state, at) in enumerate(evs):
            nxt = evs[k + 1][3] if k + 1 < len(evs) else end
            t0, t1 = max(at, start), min(nxt, end)
            if t1 > t0:
                out.append((agent, camp, state, t0, t1))
    return out


def hour_key(t: float, tz: tzinfo | None) -> str:
    dt = datetime.fromtimestamp(t, tz).astimezone(tz)
    return dt.replace(minute=0, second=0, microsecond=0).isoformat()


def hour_spans(t0: float, t1: float, tz: tzinfo | None) -> Iterable[tuple[str, float]]:
    """Split [t0, t1) at hour boundaries: (hour key, seconds)."""
    t = t0
    while t < t1:
        dt = datetime.fromtimestamp(t, tz).astimezone(tz)
        floor = dt.replace(minute=0, second=0, microsecond=0)
        nxt = min(t1, (floor + timedelta(hours=1)).timestamp())
        if nxt <= t:  # a DST fold: step on by an hour of wall time
            nxt = min(t1, t + 3600.0)
        yield floor.isoformat(), nxt - t
        t = nxt
