"""The daemon: the shell, its parts wired together, and the public face
the CLI, the tests, the demo and the benchmarks use.

Each part does one job and lives in its own module; this class only builds
them and forwards to them, so the way the daemon is put together can be
read in one screen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

from dialerd.asterisk import mapping
from dialerd.core import commands as cmd
from dialerd.core import views
from dialerd.daemon.agi import AgiSession, Handler
from dialerd.daemon.agiserver import AgiServer
from dialerd.daemon.campaigns import CampaignFiles
from dialerd.daemon.compliance import ComplianceFeed
from dialerd.daemon.executor import CommandExecutor
from dialerd.daemon.inbound_agi import queues_by_did, serve_inbound
from dialerd.daemon.keys import AgentKeys
from dialerd.daemon.lifecycle import Lifecycle, Service
from dialerd.daemon.login import PhoneLogin
from dialerd.daemon.loop import CoreLoop
from dialerd.daemon.queues import QueueFiles
from dialerd.daemon.shell import Shell
from dialerd.daemon.supervisor import Supervisor
from dialerd.mqtt.bridge import MqttBridge
from dialerd.settings import Settings

log = structlog.get_logger("dialerd")


class Daemon(Shell):
    """``await Daemon(settings).run()`` dials until SIGTERM (or
    ``request_stop``), then drains and returns 0.

    The parts share this object as their ``Shell``; ``on_command`` sees
    every core command before it is carried out (tests record them)."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        on_command: Callable[[cmd.Command], None] | None = None,
    ) -> None:
        super().__init__(settings, clock=clock, on_command=on_command)
        self.executor = CommandExecutor(self)
        self.keys = AgentKeys(self, self.executor)
        self.supervisor = Supervisor(self)
        self.campaign_files = CampaignFiles(self)
        self.queue_files = QueueFiles(self)
        #: the PIN login over FastAGI, when agents may log in by phone
        self.phone_login: PhoneLogin | None = None
        scripts: dict[str, Handler] = {"inbound": self.inbound_agi}
        if settings.agents_file is not None:
            self.phone_login = PhoneLogin(self, self.executor, lambda: self.keys.agents)
            scripts["login"] = self.phone_login.session
        #: the FastAGI server (script name -> handler), when agents log in
        #: by phone or inbound queues may take calls
        self.agi: AgiServer | None = None
        services: list[Service] = []
        if settings.agents_file is not None or settings.queues_dir.is_dir():
            self.agi = AgiServer(self, self.executor, scripts)
            services.append(self.agi)
        if settings.mqtt.enabled:
            self.mqtt = MqttBridge(
                settings.mqtt,
                self.supervisor_command,
                client_id=f"dialerd-{self.run_id}",
                registry=self.metrics.registry if self.metrics is not None else None,
            )
        self.lifecycle = Lifecycle(
            self,
            core_loop=CoreLoop(self, self.keys, self.executor, self.supervisor),
            supervisor=self.supervisor,
            campaign_files=self.campaign_files,
            queue_files=self.queue_files,
            compliance=ComplianceFeed(self),
            control_handler=self.handle_control,
            reload=self.reload,
            services=services,
        )
        #: set once AMI is logged in and every task runs
        self.started = self.lifecycle.started
        self.keys.load_agents()

    async def run(self) -> int:
        return await self.lifecycle.run()

    def request_stop(self) -> None:
        """SIGTERM: drain (no new dials, live calls finish), then exit."""
        self.lifecycle.request_stop()

    async def inbound_agi(self, agi: AgiSession) -> None:
        """The FastAGI ``inbound`` script (a carrier call to a DID): the
        verdict of :mod:`dialerd.daemon.inbound_agi` on the queues loaded
        now; a refusal (an unknown DID, or a disabled queue's) is recorded
        here, since the core never sees the call."""
        by_did = queues_by_did(self.queues.values())
        verdict = await serve_inbound(agi, by_did)
        if verdict.ack == "no":
            did = verdict.did or agi.arg(1)[:32]
            caller = mapping.caller_number(agi.env.get("agi_callerid", ""), did)
            now = self.clock()
            call_id = agi.env.get("agi_uniqueid") or f"agi-{now:.6f}"
            self.record_refused(call_id, did, caller, now)

    def reload(self) -> None:
        """SIGHUP: re-read the campaign files, the queue files and the
        agents file. A broken
        file is reported and its previous version stays in force; live
        calls are never touched."""
        log.info("daemon.reload")
        self.campaign_files.load(keep_broken=True)
        self.queue_files.load(keep_broken=True)
        self.keys.load_agents()

    # ---------------------------------------------- state and supervisors

    def status_line(self) -> str:
        return views.status_line(self.core)

    def campaign_state(self, name: str) -> dict[str, Any]:
        """The live figures of one campaign (MQTT, metrics, ``status``)."""
        return self.supervisor.campaign_state(name)

    def supervisor_command(self, c: dict[str, Any]) -> dict[str, Any]:
        """A supervisor's command (MQTT or the control socket), validated,
        queued for the core; the reply says whether it was taken."""
        return self.supervisor.command(c)

    def handle_control(self, req: dict[str, Any]) -> dict[str, Any]:
        """What the control socket serves: ``status``, and the commands."""
        return self.supervisor.handle_control(req)
