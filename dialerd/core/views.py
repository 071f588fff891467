"""Read-only views of a core, for whoever shows its state: ``dialerd
status`` (the control socket), the retained MQTT state, Prometheus, the
systemd status line.

Pure functions of the core and the time given, so every reader shows the
same figures, and a test or the simulator can call them on a core with no
daemon around it. They only read counters the core keeps up to date on each
event: nothing here scans leads or calls, so a status request costs the
same with ten agents as with five hundred.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from dialerd.core.engine import DialerCore
from dialerd.core.models import AgentStatus
from dialerd.core.state import Agent, QueueStats, local_day


def campaign_state(
    core: DialerCore, name: str, now: float, ami_down: str | None = None
) -> dict[str, Any]:
    """The live figures of one campaign. ``ami_down`` is why the AMI link
    is down (None while it is up): the core knows that it is down, the
    shell knows why."""
    r = core.campaigns[name]
    st = r.stats
    return {
        "campaign": name,
        "at": now,
        "enabled": r.active,
        "paused": r.paused,
        #: why no call is placed although the campaign would dial: the
        #: store cannot record (fail closed); None while it can
        "degraded": _degraded(core),
        "dialing_blocked_by": _blocked_by(core, r.paused, ami_down),
        "dial_mode": r.cfg.dial_mode.value,
        "dial_level": round(r.live / len(r.agents), 3) if r.agents else 0.0,
        "max_dial_level": r.max_level,
        "lines_in_use": r.live,
        "max_lines": r.cfg.max_lines,
        "calls": {"dialing": r.dialing, "waiting": len(r.waiting)},
        "agents": {
            "logged_in": len(r.agents),
            "ready": len(r.ready),
            "talking": r.talking,
            "wrap": r.wrap,
            "paused": r.paused_agents,
            "preview": core.previewing(name),
        },
        "dials": st.dials,
        "answered": st.answered,
        "connected": st.connected,
        "abandoned": st.abandoned,
        "abandon_rate": round(st.abandon_rate, 5),
        "outcomes": dict(st.outcomes),
    }


def _degraded(core: DialerCore) -> str | None:
    return f"store: {core.store_down}" if core.store_down is not None else None


def _blocked_by(core: DialerCore, paused: bool, ami_down: str | None) -> str | None:
    if ami_down:
        return "ami: " + ami_down
    if core.store_down is not None:
        return f"degraded: store: {core.store_down}"
    if paused:
        return "paused"
    if core.draining:
        return "draining"
    return None


#: the figures of a queue's :class:`QueueStats` counted in callers
_COUNTS = ("offered", "answered", "answered_in_sl", "abandoned", "abandoned_short",
           "fallbacks", "callbacks")  # fmt: skip


def _queue_figures(st: QueueStats) -> dict[str, Any]:
    out: dict[str, Any] = {k: getattr(st, k) for k in _COUNTS}
    sl, asa = st.service_level, st.asa_s
    out["service_level"] = None if sl is None else round(sl, 5)
    out["asa_s"] = None if asa is None else round(asa, 3)
    out["answer_wait_s"] = round(st.answer_wait_s, 3)
    out["longest_wait_s"] = round(st.longest_wait_s, 3)
    return out


def queue_state(core: DialerCore, name: str, now: float) -> dict[str, Any]:
    """The live figures of one inbound queue: callers waiting now, its
    agents, and today's counts (the host's local day: they start again at
    local midnight; ``since_start`` holds the same counts since the daemon
    started, which Prometheus counters are made of)."""
    q = core.queues[name]
    day = local_day(now)
    today = q.today if q.today.day == day else QueueStats(day=day)
    oldest = core.inbound[q.waiting[0]].arrived_at if q.waiting else None
    longest_now = round(max(0.0, now - oldest), 3) if oldest is not None else 0.0
    logged_in = ready = talking = on_queue = 0
    for aid in q.agents:
        a = core.agents.get(aid)
        if a is None or a.campaign is None:
            continue
        logged_in += 1
        if a.status is AgentStatus.READY:
            ready += 1
        elif a.status is AgentStatus.TALKING:
            talking += 1
        icall = core.inbound.get(a.call) if a.call is not None else None
        if icall is not None and icall.queue == name:
            on_queue += 1
    figures = _queue_figures(today)
    # today's longest wait counts the callers still waiting too
    figures["longest_wait_today_s"] = max(figures.pop("longest_wait_s"), longest_now)
    return {
        "queue": name,
        "at": now,
        "enabled": q.cfg.enabled and not q.removed,
        "priority": q.cfg.priority,
        "waiting": len(q.waiting),
        "longest_wait_s": longest_now,
        "agents": {
            "logged_in": logged_in,
            "ready": ready,
            "talking": talking,
            "on_queue": on_queue,
        },
        "target": {
            "percent": q.cfg.service_level.percent,
            "within_s": q.cfg.service_level.within_s,
        },
        "arrivals_per_min": round(q.arrivals.rate(now) * 60.0, 3),
        "day": date.fromordinal(day).isoformat(),
        **figures,
        "since_start": _queue_figures(q.stats),
    }


def _agent_times(core: DialerCore, a: Agent, now: float) -> dict[str, Any]:
    """An agent's talk time on inbound and outbound calls, wrap-up, and
    occupancy (talk + wrap over logged-in time), since the login; the call
    or wrap-up under way counts up to ``now``."""
    inbound, outbound, wrap = a.inbound_talk_s, a.talk_s - a.inbound_talk_s, a.wrap_s
    if a.status is AgentStatus.TALKING and a.call is not None:
        icall = core.inbound.get(a.call)
        call = core.calls.get(a.call)
        if icall is not None and icall.connected_at is not None:
            inbound += max(0.0, now - icall.connected_at)
        elif call is not None and call.connected_at is not None:
            outbound += max(0.0, now - call.connected_at)
    elif a.status is AgentStatus.WRAP:
        wrap += max(0.0, now - a.since)
    logged = max(0.0, now - a.logged_in_at)
    return {
        "inbound_calls": a.inbound_calls,
        "outbound_calls": a.calls - a.inbound_calls,
        "inbound_talk_s": round(inbound, 3),
        "outbound_talk_s": round(outbound, 3),
        "wrap_s": round(wrap, 3),
        "logged_in_s": round(logged, 3),
        "occupancy": round(min(1.0, (inbound + outbound + wrap) / logged), 5) if logged else None,
    }


def agents_state(core: DialerCore, now: float) -> list[dict[str, Any]]:
    """Every agent the core knows, by id."""
    out = []
    for aid, a in sorted(core.agents.items()):
        out.append(
            {
                "id": aid,
                "campaign": a.campaign,
                "state": a.status.value,
                #: why a paused agent paused ('**' + code), else null
                "reason": a.pause_reason if a.status.value == "paused" else None,
                "since": a.since,
                "time_in_state_s": round(max(0.0, now - a.since), 3),
                "calls": a.calls,
                "talk_s": round(a.talk_s, 3),
                **_agent_times(core, a, now),
            }
        )
    return out


def status(core: DialerCore, now: float, ami_down: str | None = None) -> dict[str, Any]:
    """The reply to the control socket's ``status``: every campaign and
    every agent, and every inbound queue."""
    return {
        "ok": True,
        "at": now,
        "campaigns": [campaign_state(core, n, now, ami_down) for n in sorted(core.campaigns)],
        "queues": [queue_state(core, n, now) for n in sorted(core.queues)],
        "agents": agents_state(core, now),
        "ami_up": ami_down is None,
        "draining": core.draining,
        "state": "degraded" if core.store_down is not None else "ok",
        "degraded": _degraded(core),
    }


def status_line(core: DialerCore) -> str:
    """One line for ``systemctl status`` (sd_notify STATUS=)."""
    parts = []
    for name, r in sorted(core.campaigns.items()):
        parts.append(
            f"{name}: {len(r.agents)} agents ({len(r.ready)} ready), {r.live} lines, "
            f"{r.stats.dials} dials, {r.stats.abandoned} abandoned"
        )
    line = "; ".join(parts) or "no campaigns"
    if core.store_down is not None:
        return f"DEGRADED (store: {core.store_down}, no new calls); {line}"
    return line
