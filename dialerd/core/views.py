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

from typing import Any

from dialerd.core.engine import DialerCore


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
            }
        )
    return out


def status(core: DialerCore, now: float, ami_down: str | None = None) -> dict[str, Any]:
    """The reply to the control socket's ``status``: every campaign and
    every agent."""
    return {
        "ok": True,
        "at": now,
        "campaigns": [campaign_state(core, n, now, ami_down) for n in sorted(core.campaigns)],
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
