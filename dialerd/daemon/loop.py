"""The core task: the one reader of the queue and the only code that
touches the core.

Everything that changes core state happens here, one event at a time, so
the core needs no locks and every decision sees the events in the order
Asterisk sent them. AMI messages are mapped to events here too (not in
panoramisk's callback), because the mapping reads the core's call table.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from dialerd.asterisk import mapping
from dialerd.core import events as ev
from dialerd.daemon.executor import CommandExecutor
from dialerd.daemon.keys import AgentKeys
from dialerd.daemon.shell import Shell
from dialerd.daemon.supervisor import Supervisor

log = structlog.get_logger("dialerd")


class CoreLoop:
    def __init__(
        self, shell: Shell, keys: AgentKeys, executor: CommandExecutor, supervisor: Supervisor
    ) -> None:
        self.shell = shell
        self.keys = keys
        self.executor = executor
        self.supervisor = supervisor
        #: Hangups the core had no call for yet (see ``UnclaimedHangups``)
        self.unclaimed = mapping.UnclaimedHangups()

    async def run(self) -> None:
        sh = self.shell
        core = sh.core
        while True:
            item = await sh.queue.get()
            event: ev.Event | None
            if isinstance(item, Mapping):  # an AMI message from panoramisk
                event = mapping.to_event(item, sh.clock(), core.calls, core.agent_by_uniqueid)
                if event is None:
                    self.unclaimed.seen(item, sh.clock())
            else:
                event = item
            if isinstance(event, ev.AgentKey):
                event = self.keys.intercept(event)
            if event is None:
                continue
            try:
                out = core.handle(event)
            except Exception:
                log.exception("core.error", event=type(event).__name__)
                continue
            if isinstance(event, ev.Resync):
                # adopted calls that hung up while the snapshot was on its way
                for hup in self.unclaimed.claim(event.now, core.calls, sh.clock()):
                    log.info("ami.resync_hangup", attempt_id=hup.attempt_id, cause=hup.cause)
                    out += core.handle(hup)
            self.supervisor.observe(event)
            for c in out:
                self.executor.execute(c)
