"""Supervisors: their commands in (MQTT ``<prefix>/cmd``, the control
socket), the live state out (retained MQTT state, Prometheus, ``status``).

Commands arrive from outside the core task, so they are validated here and
only ever reach the core as events on its queue: a hostile or malformed
command gets an error reply and changes nothing. The figures come from
``dialerd.core.views``, the same for every reader.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from dialerd.core import events as ev
from dialerd.core import views
from dialerd.core.state import QueueRun
from dialerd.daemon.shell import Shell

log = structlog.get_logger("dialerd")

#: the range a supervisor may cap the dial level to (lines per agent)
MAX_LEVEL_RANGE = (1.0, 5.0)
#: a pause reason: at most this many printable characters (MQTT and the
#: control socket alike); it is logged, published and shown on wallboards
MAX_REASON = 64
#: a campaign name or agent id in a command (longer is no name we know)
MAX_NAME = 64

CAMPAIGN_COMMANDS = ("pause", "resume", "set_dial_level")
AGENT_COMMANDS = ("agent_pause", "agent_unpause", "agent_logout")


class CommandError(ValueError):
    """A command refused; ``str()`` is the reply's error: short, and never
    more than a bounded excerpt of what was sent."""


@dataclass(frozen=True, slots=True)
class SupervisorCommand:
    """A command that passed validation (its target may still not exist)."""

    kind: str
    target: str
    reason: str = ""
    max_level: float | None = None


def _show(value: Any) -> str:
    """A bounded, printable excerpt of a value, for an error message."""
    r = repr(value)
    return r if len(r) <= 40 else r[:37] + "..."


def _name(c: Mapping[str, Any], key: str) -> str:
    v = c.get(key)
    if not isinstance(v, str) or not 0 < len(v) <= MAX_NAME:
        raise CommandError(f"{key} must be a name of 1-{MAX_NAME} characters, not {_show(v)}")
    return v


def _reason(c: Mapping[str, Any]) -> str:
    v = c.get("reason")
    if v is None:
        return ""
    if not isinstance(v, str) or len(v) > MAX_REASON or not v.isprintable():
        raise CommandError(
            f"reason must be at most {MAX_REASON} printable characters (no line breaks)"
        )
    return v


def _level(c: Mapping[str, Any]) -> float | None:
    """``max_level``: null, or a finite number in range. Compared before
    any conversion, so a 400-digit integer cannot overflow ``float()``."""
    v = c.get("max_level")
    if v is None:
        return None
    lo, hi = MAX_LEVEL_RANGE
    ok = (isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi) or (
        isinstance(v, float) and math.isfinite(v) and lo <= v <= hi
    )
    if not ok:
        raise CommandError(f"max_level must be null or a number from {lo} to {hi}")
    return float(v)


def parse_command(c: Mapping[str, Any]) -> SupervisorCommand:
    """Validate a command's shape and values (pure; raises
    :class:`CommandError`). Unknown keys are ignored."""
    kind = c.get("command")
    if kind in CAMPAIGN_COMMANDS:
        name = _name(c, "campaign")
        if kind == "set_dial_level":
            return SupervisorCommand(kind, name, max_level=_level(c))
        return SupervisorCommand(kind, name, reason=_reason(c) if kind == "pause" else "")
    if kind in AGENT_COMMANDS:
        aid = _name(c, "agent")
        return SupervisorCommand(kind, aid, reason=_reason(c) if kind == "agent_pause" else "")
    raise CommandError(f"unknown command {_show(kind)}")


def _queue_mark(q: QueueRun) -> tuple[object, ...]:
    """What an event can change in a queue's published state (the rest,
    clocks and agents, goes out on the timer)."""
    st = q.stats
    head = q.waiting[0] if q.waiting else None
    return (q.removed, id(q.cfg), len(q.waiting), head, st.offered, st.answered, st.abandoned,
            st.abandoned_short, st.fallbacks, st.callbacks, q.today.day)  # fmt: skip


class Supervisor:
    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        #: each queue's :func:`_queue_mark` when its state last went out
        self._queue_marks: dict[str, tuple[object, ...]] = {}

    # ------------------------------------------------------------ commands

    def command(self, c: Mapping[str, Any]) -> dict[str, Any]:
        """A supervisor's command, turned into a core event. Validated here
        (:func:`parse_command`, then: only known campaigns and logged-in
        agents); a refused command queues nothing. Never raises for what
        the command holds."""
        try:
            cmd = parse_command(c)
        except CommandError as exc:
            return {"ok": False, "error": str(exc)}
        sh = self.shell
        now = sh.clock()
        kind, target = cmd.kind, cmd.target
        if kind in CAMPAIGN_COMMANDS:
            if target not in sh.core.campaigns:
                return {"ok": False, "error": f"unknown campaign {_show(target)}"}
            if kind == "set_dial_level":
                sh.put(ev.SetDialLevel(now, target, cmd.max_level))
            else:
                sh.put(ev.CampaignPause(now, target, kind == "pause", cmd.reason))
            log.info("supervisor.command", command=kind, campaign=target)
            return {"ok": True, "command": kind, "campaign": target}
        if target not in sh.core.agents:
            return {"ok": False, "error": f"agent {_show(target)} is not logged in"}
        if kind == "agent_logout":
            sh.put(ev.AgentLogout(now, target))
        else:
            sh.put(ev.AgentPause(now, target, kind == "agent_pause", cmd.reason))
        log.info("supervisor.command", command=kind, agent=target)
        return {"ok": True, "command": kind, "agent": target}

    def handle_control(self, req: Mapping[str, Any]) -> dict[str, Any]:
        """The control socket's handler: ``status`` here, the rest are
        commands (the same validation as over MQTT)."""
        if req.get("command") == "status":
            sh = self.shell
            return views.status(sh.core, sh.clock(), sh.ami_down_reason)
        return self.command(req)

    # --------------------------------------------------------------- state

    def campaign_state(self, name: str) -> dict[str, Any]:
        sh = self.shell
        return views.campaign_state(sh.core, name, sh.clock(), sh.ami_down_reason)

    def publish_state(self) -> None:
        sh = self.shell
        for name in list(sh.core.campaigns):
            state = self.campaign_state(name)
            if sh.mqtt is not None:
                sh.mqtt.publish(f"campaign/{name}/state", state, retain=True)
            if sh.metrics is not None:
                sh.metrics.campaign_state(name, state)
        self.publish_queues()
        if sh.metrics is not None:
            sh.metrics.ami_up.set(0 if sh.ami_down_reason else 1)

    def publish_queues(self, changed_only: bool = False) -> None:
        """Each inbound queue's state: retained on ``queue/<name>/state``
        and in the metrics. ``changed_only``: only the queues an event
        changed (a caller arrived, was answered, hung up, fell back)."""
        sh = self.shell
        now = sh.clock()
        for name, q in list(sh.core.queues.items()):
            mark = _queue_mark(q)
            if changed_only and self._queue_marks.get(name) == mark:
                continue
            self._queue_marks[name] = mark
            state = views.queue_state(sh.core, name, now)
            if sh.mqtt is not None:
                sh.mqtt.publish(f"queue/{name}/state", state, retain=True)
            if sh.metrics is not None:
                sh.metrics.queue_state(name, state)

    async def state_loop(self) -> None:
        """Figures that change without an event worth one (time in state,
        rates) are republished on a timer; an unchanged retained state is
        not sent again (the bridge compares)."""
        while True:
            await asyncio.sleep(self.shell.settings.mqtt.state_interval_s)
            self.publish_state()

    def observe(self, event: ev.Event) -> None:
        """After the core handled ``event``: what the outside world hears of
        it beyond the commands (AMI up/down, answers, supervisor changes)."""
        sh = self.shell
        match event:
            case ev.AmiUp():
                sh.ami_down_reason = None
                self.publish_state()
            case ev.AmiDown(reason=why):
                sh.ami_down_reason = why
                self.publish_state()
            case ev.CallAnswered(attempt_id=aid):
                call = sh.core.calls.get(aid)
                if sh.mqtt is not None and call is not None:
                    sh.mqtt.event(
                        "attempt_answered", attempt_id=aid, campaign=call.campaign, at=event.now
                    )
            case ev.CampaignPause() | ev.SetDialLevel():
                self.publish_state()
        if sh.core.queues:
            self.publish_queues(changed_only=True)
