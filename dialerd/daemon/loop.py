"""The core task: the one reader of the queue and the only code that
touches the core.

Everything that changes core state happens here, one event at a time, so
the core needs no locks and every decision sees the events in the order
Asterisk sent them. AMI messages are mapped to events here too (not in
panoramisk's callback), because the mapping reads the core's call table.

One bad event must not end the task: whatever fails while an item is
mapped, handled or its commands carried out is logged with the event's
type and counted, and the loop goes on with the next. ``alive_at`` is when
it last finished an item: the systemd watchdog is only fed while it moves.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import structlog

from dialerd.asterisk import mapping
from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.daemon.executor import CommandExecutor
from dialerd.daemon.keys import AgentKeys
from dialerd.daemon.shell import QueueItem, Shell
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
        #: monotonic time the loop last finished an item (the watchdog's proof)
        self.alive_at = time.monotonic()
        #: items the loop failed on since start
        self.errors = 0

    async def run(self) -> None:
        sh = self.shell
        while True:
            item = await sh.queue.get()
            try:
                self.step(item)
            except Exception:
                kind = _kind(item)
                self.errors += 1
                log.exception("core.error", event_type=kind)
                if sh.metrics is not None:
                    sh.metrics.core_errors.labels(kind).inc()
            self.alive_at = time.monotonic()

    def step(self, item: QueueItem) -> None:
        """One item of the queue: mapped, handled by the core, its commands
        carried out."""
        sh = self.shell
        core = sh.core
        event: ev.Event | None
        if isinstance(item, Mapping):  # an AMI message from panoramisk
            event = mapping.to_event(
                item, sh.clock(), core.calls, core.agent_by_uniqueid, core.inbound
            )
            if event is None:
                self.unclaimed.seen(item, sh.clock())
                gave_up = mapping.inbound_timeout(item)
                if gave_up is not None:
                    # the dialplan's backstop: it ended the wait itself (the
                    # daemon missed the maximum); the caller's hang-up follows
                    log.warning("inbound.dialplan_timeout", call_id=gave_up[0], queue=gave_up[1])
        else:
            event = item
        if isinstance(event, ev.AgentKey):
            event = self.keys.intercept(event)
        if event is None:
            return
        out: list[cmd.Command] = core.handle(event)
        if isinstance(event, ev.Resync):
            # adopted calls that hung up while the snapshot was on its way
            for hup in self.unclaimed.claim(event.now, core.calls, sh.clock()):
                log.info("ami.resync_hangup", attempt_id=hup.attempt_id, cause=hup.cause)
                out += core.handle(hup)
        self.supervisor.observe(event)
        if isinstance(event, ev.StoreDown | ev.StoreUp):
            self.supervisor.publish_state()  # every campaign shows it at once
        failed = 0
        for c in out:
            # one command that fails must not cost the others (an outcome
            # after a failed prompt must still be written)
            try:
                self.executor.execute(c)
            except Exception:
                failed += 1
                log.exception(
                    "core.command_failed", event_type=type(event).__name__, command=type(c).__name__
                )
        if failed:
            raise CommandsFailed(f"{failed} of {len(out)} commands failed")


class CommandsFailed(RuntimeError):
    """Some commands of one event could not be carried out (each logged)."""


def _kind(item: QueueItem) -> str:
    """The item's event type, for the log and the metric's label."""
    if isinstance(item, Mapping):
        return f"ami:{item.get('Event') or item.get('Response') or '?'}"
    return type(item).__name__
