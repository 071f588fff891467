"""Agent keys the shell answers (or completes) before the core sees them.

- ``login``: refused. The PIN is asked for over FastAGI
  (:mod:`dialerd.daemon.login`), never sent in a UserEvent; one that comes
  anyway (an old dialplan, a forged event) checks nothing;
- the pause code: its name comes from the settings (``pause_reasons``);
- a manual dial: the lead for the keyed number comes from the store.

Every other key goes to the core untouched.
"""

from __future__ import annotations

from dataclasses import replace

import structlog

from dialerd.agents import AgentsFile, load_agents_file
from dialerd.campaign.loader import ConfigError, ConfigErrors
from dialerd.campaign.model import Campaign
from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.daemon.executor import CommandExecutor
from dialerd.daemon.shell import Shell
from dialerd.phone import PhoneError, normalize

log = structlog.get_logger("dialerd")

#: the keys answered here; the rest go to the core
SHELL_KEYS = frozenset({"login", "dial", "pause"})


class AgentKeys:
    def __init__(self, shell: Shell, executor: CommandExecutor) -> None:
        self.shell = shell
        self.executor = executor
        #: who may log in by phone (the agents file; reloaded on SIGHUP)
        self.agents = AgentsFile()

    def load_agents(self) -> None:
        """The agents file; a broken one is reported and the previous one
        stays in force."""
        path = self.shell.settings.agents_file
        if path is None:
            return
        try:
            agents = load_agents_file(path)
        except (ConfigError, ConfigErrors, OSError) as exc:
            log.error("agents.invalid", file=str(path), error=str(exc))
            return
        self.agents = agents
        log.info("agents.loaded", file=str(path), agents=len(agents.agents))
        clear = sorted(a for a, e in agents.agents.items() if e.pin is not None)
        if clear:
            log.warning(
                "agents.clear_pins",
                file=str(path),
                agents=clear,
                fix="dialerd agents set-pin <id> (stores a hash), then delete the pin lines",
            )

    def intercept(self, e: ev.AgentKey) -> ev.Event | None:
        """The event for the core (the key completed), or None when the
        shell answered the key itself or will answer it later."""
        if e.key not in SHELL_KEYS:
            return e
        sh = self.shell
        agent = sh.core.agents.get(e.agent_id)
        campaign = agent.campaign if agent is not None else None
        if e.key == "pause":
            name = sh.settings.pause_reasons.get(int(e.data)) if e.data.isdigit() else None
            if name is None:
                self._answer(e, campaign, False, "invalid", f"{e.data}: no such reason")
                return None
            return replace(e, data=name)
        if e.key == "dial":
            if campaign is None or campaign not in sh.campaigns:
                self._answer(e, campaign, False, "refused", "not in a campaign")
                return None
            sh.store_tasks.spawn(self._manual_lead(e, sh.campaigns[campaign]))
            return None
        # login: the PIN goes over FastAGI only; nothing is checked here
        log.warning("agent.login_by_event_refused", agent=e.agent_id)
        self._answer(e, campaign, False, "refused", "login by UserEvent refused (use the AGI)")
        return None

    def _answer(
        self, e: ev.AgentKey, campaign: str | None, ok: bool, prompt: str, detail: str
    ) -> None:
        """The shell's own answer to a key: the prompt for the waiting
        dialplan, and the record (the action is the key)."""
        if e.channel:
            self.executor.execute(cmd.AgentAck(e.channel, ok, prompt))
        self.executor.execute(cmd.AgentAction(e.agent_id, campaign, e.key, detail, ok, e.now))

    async def _manual_lead(self, e: ev.AgentKey, c: Campaign) -> None:
        sh = self.shell
        store = sh.need_store()
        try:
            phone = normalize(e.data, c.default_region)
        except PhoneError as exc:
            self._answer(e, c.name, False, "invalid", f"{e.data}: {exc}")
            return
        try:
            lead = await store.manual_lead(c.name, phone, None, sh.clock())
        except Exception as exc:
            # the agent's key is always answered; the store is down meanwhile
            sh.writer.failed("manual_lead", exc)
            self._answer(e, c.name, False, "refused", "store unavailable")
            return
        sh.writer.succeeded("manual_lead", write=True)
        if lead is None:
            self._answer(e, c.name, False, "refused", f"{phone}: in a call")
            return
        sh.put(ev.ManualDial(sh.clock(), e.agent_id, lead, e.channel))
