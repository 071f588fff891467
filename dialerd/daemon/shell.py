"""What the daemon's parts share: the core, the queue that feeds it, the
resources one run opens, the tasks doing I/O.

Every part (executor, hopper loader, keys, supervisor, lifecycle) is handed
this one object rather than the ``Daemon``, so none of them imports the
module that wires them together, and each can be built around a bare
``Shell`` in a test.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import structlog

from dialerd import sdnotify
from dialerd.asterisk.ami import AmiClient, AmiError
from dialerd.campaign.model import Campaign
from dialerd.campaign.queues import Queue
from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.engine import DialerCore
from dialerd.core.models import InboundOutcome
from dialerd.daemon.dncjournal import DncJournal
from dialerd.daemon.tasks import TaskSet
from dialerd.daemon.writes import StoreWriter, Write
from dialerd.metrics import Metrics
from dialerd.mqtt.bridge import MqttBridge
from dialerd.settings import Settings
from dialerd.store.api import StoreApi

#: what the core loop reads: the shell's own events, and AMI messages as
#: panoramisk delivers them (mapped to events in the core task, where the
#: core's call table can be read without a lock)
QueueItem = ev.Event | Mapping[str, Any]

log = structlog.get_logger("dialerd")


class Shell:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        on_command: Callable[[cmd.Command], None] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.run_id = uuid.uuid4().hex[:12]
        self.core = DialerCore(run_id=self.run_id, screen=True)
        #: the one way into the core: only the core task reads it
        self.queue: asyncio.Queue[QueueItem] = asyncio.Queue()
        #: the campaigns running, as loaded from their files
        self.campaigns: dict[str, Campaign] = {}
        #: the inbound queues, as loaded from their files, and which
        #: enabled queue each DID (E.164) reaches (``queue_for_did``)
        self.queues: dict[str, Queue] = {}
        self.did_queues: dict[str, str] = {}
        #: a test's window on every command, before it is carried out
        self.on_command = on_command
        #: open only while ``run`` runs
        self.store: StoreApi | None = None
        self.ami: AmiClient | None = None
        self.mqtt: MqttBridge | None = None
        self.metrics: Metrics | None = Metrics() if settings.metrics.enabled else None
        #: why nothing can be dialed through AMI right now (None: it is up)
        self.ami_down_reason: str | None = "not connected yet"
        #: AMI actions awaiting their answer, resyncs
        self.io_tasks = TaskSet("io")
        #: store reads (lead fetches, manual leads, the DNC poll)
        self.store_tasks = TaskSet("store")
        #: every store write the core asked for, owed until written; the
        #: store's health (down: the core places no call)
        self.writer = StoreWriter(
            self.need_store,
            self.store_health_changed,
            clock=clock,
            on_failure=self._store_failure,
        )
        if self.metrics is not None:
            self.metrics.store_pending.set_function(lambda: self.writer.pending)
        #: DNC requests outside the store until it has them
        self.dnc_journal = DncJournal(
            settings.dnc_journal or Path(settings.control_socket).parent / "dnc-journal.jsonl"
        )

    def put(self, item: QueueItem) -> None:
        self.queue.put_nowait(item)

    def need_store(self) -> StoreApi:
        """The open store; only I/O tasks of a running daemon ask for it."""
        if self.store is None:
            raise RuntimeError("the store is not open (the daemon is not running)")
        return self.store

    def store_health_changed(self, down: str | None) -> None:
        """The store went down (``down`` says why) or is back (None): the
        core is told (it stops or resumes dialing) and so is the world."""
        now = self.clock()
        self.put(ev.StoreDown(now, down) if down is not None else ev.StoreUp(now))
        if self.metrics is not None:
            self.metrics.store_up.set(0 if down else 1)
        state = "degraded" if down else "ok"
        sdnotify.notify(f"STATUS={state}" + (f": store: {down}" if down else ""))
        self.publish_daemon_state()

    def daemon_state(self) -> dict[str, Any]:
        """The daemon as a whole (MQTT ``daemon/state``): ``degraded`` with
        the reason while the store cannot record."""
        w = self.writer
        return {
            "at": self.clock(),
            "run_id": self.run_id,
            "state": "degraded" if w.down_reason else "ok",
            "degraded": f"store: {w.down_reason}" if w.down_reason else None,
            "store_up": w.down_reason is None,
            "store_down_since": w.down_since,
            "pending_writes": w.pending,
            "ami_up": self.ami_down_reason is None,
        }

    def publish_daemon_state(self) -> None:
        if self.mqtt is not None:
            self.mqtt.publish("daemon/state", self.daemon_state(), retain=True)

    def _store_failure(self, op: str) -> None:
        if self.metrics is not None:
            self.metrics.store_failures.labels(op).inc()

    # ------------------------------------------------------------ inbound

    def queue_for_did(self, did: str) -> Queue | None:
        """The enabled queue a dialed number (E.164) reaches, or None (an
        unknown DID: the FastAGI ``inbound`` handler refuses the call)."""
        name = self.did_queues.get(did)
        return self.queues.get(name) if name is not None else None

    def submit_inbound_record(self, c: cmd.RecordInbound) -> None:
        """One inbound call's row, owed to the store like every write (never
        lost while the store is down: retried until written, and the core
        dials nothing meanwhile). The queue's service-level target of the
        moment goes with it."""
        run = self.core.queues.get(c.queue)
        cfg = run.cfg if run is not None else self.queues.get(c.queue)
        sl = cfg.service_level.within_s if cfg is not None else None
        about = {"call_id": c.call_id, "queue": c.queue, "outcome": c.outcome.value}

        def applied(new: bool) -> None:
            if not new:
                log.warning("inbound.record_exists", **about)

        self.writer.submit(
            Write("record_inbound", lambda s: s.record_inbound(c, sl), about, applied)
        )

    def record_refused(self, call_id: str, did: str, caller: str, at: float) -> None:
        """A call to an unknown DID, refused by the FastAGI ``inbound``
        handler (the core never saw it): recorded with outcome ``refused``
        and no queue. ``caller``: E.164 or "" (see ``mapping.caller_number``)."""
        log.info("inbound.refused", call_id=call_id, did=did)
        self.submit_inbound_record(
            cmd.RecordInbound(
                call_id=call_id,
                queue="",
                did=did,
                caller=caller,
                arrived_at=at,
                ended_at=at,
                outcome=InboundOutcome.REFUSED,
                wait_s=0.0,
            )
        )

    def need_ami(self) -> AmiClient:
        if self.ami is None:
            raise RuntimeError("no AMI client (the daemon is not running)")
        return self.ami

    async def action_result(self, fut: asyncio.Future[Any]) -> tuple[bool, str]:
        """Whether an AMI action sent without waiting succeeded, and
        Asterisk's message (or why no answer came in time)."""
        try:
            resp = await self.need_ami().wait_future(fut, self.settings.ami.action_timeout_s)
        except (AmiError, TimeoutError) as exc:
            return False, str(exc)
        return str(resp.get("Response", "")).lower() == "success", str(resp.get("Message", ""))
