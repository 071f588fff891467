"""Supervisors: their commands in (MQTT ``<prefix>/cmd``, the control
socket), the live state out (retained MQTT state, Prometheus, ``status``).

Commands arrive from outside the core task, so they are validated here and
only ever reach the core as events on its queue: a hostile or malformed
command gets an error reply and changes nothing. The figures come from
``dialerd.core.views``, the same for every reader.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from dialerd.core import events as ev
from dialerd.core import views
from dialerd.daemon.shell import Shell

log = structlog.get_logger("dialerd")

#: the range a supervisor may cap the dial level to (lines per agent)
MAX_LEVEL_RANGE = (1.0, 5.0)


class Supervisor:
    def __init__(self, shell: Shell) -> None:
        self.shell = shell

    # ------------------------------------------------------------ commands

    def command(self, c: dict[str, Any]) -> dict[str, Any]:
        """A supervisor's command, turned into a core event. Validated here:
        only known commands, campaigns and agents."""
        sh = self.shell
        now = sh.clock()
        kind = str(c.get("command", ""))
        if kind in ("pause", "resume", "set_dial_level"):
            name = str(c.get("campaign", ""))
            if name not in sh.core.campaigns:
                return {"ok": False, "error": f"unknown campaign {name!r}"}
            if kind == "set_dial_level":
                level = c.get("max_level")
                lo, hi = MAX_LEVEL_RANGE
                if level is not None and not (
                    isinstance(level, int | float) and lo <= float(level) <= hi
                ):
                    return {"ok": False, "error": "max_level must be null or 1.0-5.0"}
                sh.put(ev.SetDialLevel(now, name, None if level is None else float(level)))
            else:
                sh.put(ev.CampaignPause(now, name, kind == "pause", str(c.get("reason", ""))))
            log.info("supervisor.command", command=kind, campaign=name)
            return {"ok": True, "command": kind, "campaign": name}
        if kind in ("agent_pause", "agent_unpause", "agent_logout"):
            aid = str(c.get("agent", ""))
            if aid not in sh.core.agents:
                return {"ok": False, "error": f"agent {aid!r} is not logged in"}
            if kind == "agent_logout":
                sh.put(ev.AgentLogout(now, aid))
            else:
                sh.put(ev.AgentPause(now, aid, kind == "agent_pause", str(c.get("reason", ""))))
            log.info("supervisor.command", command=kind, agent=aid)
            return {"ok": True, "command": kind, "agent": aid}
        return {"ok": False, "error": f"unknown command {kind!r}"}

    def handle_control(self, req: dict[str, Any]) -> dict[str, Any]:
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
        if sh.metrics is not None:
            sh.metrics.ami_up.set(0 if sh.ami_down_reason else 1)

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
