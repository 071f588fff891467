"""One run of the daemon, from opening the store to closing it.

Every resource and long-running task is entered on one
``contextlib.AsyncExitStack`` as it is opened, so shutting down is the
stack unwinding: in the reverse order of start-up, each step run even when
an earlier one (or start-up itself) failed. A daemon that cannot log in to
AMI still closes its store and says goodbye on MQTT.

Start-up order, and so the reverse shut-down order:

1. the store (closed last, after every task that writes to it is done) and
   its writer (every write owed is written before it stops, for as long
   as the drain allows);
2. campaigns, then the inbound queues (checked against them), the DNC
   lists and the outcome history, queued for the core;
3. signal handlers; the AMI client; Prometheus; MQTT (the last state is
   published before it goes);
4. the AMI login, waited for with backoff while Asterisk is not up;
5. the core task, then the ticker and the state publisher (the I/O tasks
   settle between the ticker stopping and the core stopping, so a write's
   result still reaches the core);
6. the control socket (closed first: no command is taken once the daemon
   is going).

SIGTERM does not unwind the stack at once: it drains first (no new dials,
live calls end on their own, up to ``drain_timeout_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import structlog

from dialerd import sdnotify
from dialerd.asterisk.ami import AmiAuthError, AmiClient, AmiError
from dialerd.control import Handler, serve_control
from dialerd.core import events as ev
from dialerd.core import views
from dialerd.daemon.campaigns import CampaignFiles
from dialerd.daemon.compliance import DNC_REFRESH_S, ComplianceFeed
from dialerd.daemon.loop import CoreLoop
from dialerd.daemon.queues import QueueFiles
from dialerd.daemon.resync import resync
from dialerd.daemon.shell import Shell
from dialerd.daemon.supervisor import Supervisor
from dialerd.daemon.tasks import background, settle
from dialerd.daemon.writes import describe
from dialerd.store import open_store
from dialerd.store.api import StoreUnavailableError

log = structlog.get_logger("dialerd")


class Service(Protocol):
    """A part that serves a socket of its own (the phone-login FastAGI):
    started after the control socket, told each time AMI comes up."""

    async def start(self, stack: contextlib.AsyncExitStack) -> None: ...

    def ami_up(self) -> None: ...


#: seconds the last MQTT messages get to leave before the bridge stops
MQTT_LINGER_S = 0.2
#: the AMI login is retried with backoff, doubling up to this
AMI_RETRY_MAX_S = 30.0


class Lifecycle:
    def __init__(
        self,
        shell: Shell,
        *,
        core_loop: CoreLoop,
        supervisor: Supervisor,
        campaign_files: CampaignFiles,
        compliance: ComplianceFeed,
        control_handler: Handler,
        reload: Callable[[], None],
        services: Sequence[Service] = (),
        queue_files: QueueFiles | None = None,
    ) -> None:
        self.shell = shell
        self.core_loop = core_loop
        self.supervisor = supervisor
        self.campaign_files = campaign_files
        self.queue_files = queue_files
        self.compliance = compliance
        self.control_handler = control_handler
        self.reload = reload
        self.services = tuple(services)
        #: set once AMI is logged in and every task runs
        self.started = asyncio.Event()
        self._stop = asyncio.Event()
        self._core_task: asyncio.Task[Any] | None = None
        self._resync_task: asyncio.Task[Any] | None = None

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(log.info, "daemon.stopped")
            await self._open_store(stack)
            self.campaign_files.load()
            if self.queue_files is not None:
                # after the campaigns: a queue is checked against them
                self.queue_files.load()
            try:
                await self.compliance.load()
            except Exception as exc:
                raise StoreUnavailableError(
                    f"cannot read the DNC lists and outcome history from the store "
                    f"{self.shell.settings.store.describe()}: {describe(exc)}"
                ) from exc
            # do-not-call requests a killed run still owed the store: written
            # first, and in the core's list (after the store's) before any dial
            self.core_loop.executor.replay_dnc_journal()
            self._handle_signals(stack)
            self._make_ami(stack)
            await self._start_outputs(stack)
            await self._login_ami()
            await self._start_tasks(stack)
            await self._serve_control(stack)
            for service in self.services:
                await service.start(stack)
            self.started.set()
            sdnotify.notify(f"READY=1\nSTATUS=dialing {len(self.shell.campaigns)} campaign(s)")
            await self._stop.wait()
            await self._drain()
        return 0

    # ------------------------------------------------------------ start-up

    async def _open_store(self, stack: contextlib.AsyncExitStack) -> None:
        """A store that cannot be opened ends the run with one clear line
        (``StoreUnavailableError``), not a traceback."""
        sh = self.shell
        path = sh.settings.store.describe()
        try:
            store = await open_store(sh.settings)
        except Exception as exc:
            raise StoreUnavailableError(f"cannot open the store {path}: {describe(exc)}") from exc
        sh.store = store
        stack.push_async_callback(store.close)
        # the writer outlives every task that owes it a write; it stops
        # after the last of them is written (``_finish_io``)
        await stack.enter_async_context(background(sh.writer.run(), "writer"))
        # runs just before the writer stops: the last writes are let finish
        stack.push_async_callback(self._finish_io)
        try:
            released = await store.release_all_held()
        except Exception as exc:
            why = f"cannot write to the store {path}: {describe(exc)}"
            raise StoreUnavailableError(why) from exc
        log.info("store.open", store=path, released_held=released)
        sh.publish_daemon_state()

    def _handle_signals(self, stack: contextlib.AsyncExitStack) -> None:
        loop = asyncio.get_running_loop()
        wanted: list[tuple[signal.Signals, Callable[[], None]]] = [
            (signal.SIGTERM, self.request_stop),
            (signal.SIGINT, self.request_stop),
            (signal.SIGHUP, self.reload),
        ]
        for sig, handler in wanted:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                before = signal.getsignal(sig)
                loop.add_signal_handler(sig, handler)
                stack.callback(self._restore_signal, loop, sig, before)

    @staticmethod
    def _restore_signal(loop: asyncio.AbstractEventLoop, sig: signal.Signals, before: Any) -> None:
        """asyncio's removal sets the default action, not the one the process
        had: a daemon started with SIGHUP ignored (``nohup``) would leave it
        fatal after a stop. Put back what was there."""
        loop.remove_signal_handler(sig)
        if before is not None:
            signal.signal(sig, before)

    def _make_ami(self, stack: contextlib.AsyncExitStack) -> None:
        sh = self.shell
        s = sh.settings.ami
        ami = AmiClient(
            s.host,
            s.port,
            s.username,
            s.secret.get_secret_value(),
            on_event=sh.queue.put_nowait,
            on_up=self._ami_up,
            on_down=lambda why: sh.put(ev.AmiDown(sh.clock(), why)),
            action_timeout_s=s.action_timeout_s,
            connect_timeout_s=s.connect_timeout_s,
        )
        sh.ami = ami
        stack.push_async_callback(ami.close)

    async def _start_outputs(self, stack: contextlib.AsyncExitStack) -> None:
        """MQTT and Prometheus: the state's readers. MQTT goes after the
        final state is published, so subscribers see how the run ended."""
        sh = self.shell
        if sh.mqtt is not None:
            sh.mqtt.start()
            stack.push_async_callback(self._stop_mqtt)
        else:
            stack.callback(self.supervisor.publish_state)  # the metrics' last figures
        if sh.metrics is not None:
            m = sh.settings.metrics
            sh.metrics.serve(m.host, m.port)
            stack.push_async_callback(sh.metrics.stop)
            log.info("metrics.serving", host=m.host, port=m.port)

    async def _stop_mqtt(self) -> None:
        assert self.shell.mqtt is not None
        self.supervisor.publish_state()
        await asyncio.sleep(MQTT_LINGER_S)  # let the last state leave
        await self.shell.mqtt.stop()

    async def _login_ami(self) -> None:
        """Wrong credentials end the daemon with a clear message (retrying
        cannot help); an Asterisk that is not up yet is waited for, with
        backoff, and the state says why nothing is dialed meanwhile. A stop
        requested meanwhile ends the run with the last error."""
        sh = self.shell
        ami = sh.need_ami()
        delay = 1.0
        while True:
            try:
                await ami.start()
                return
            except AmiAuthError:
                raise
            except AmiError as exc:
                sh.ami_down_reason = str(exc)
                log.warning("ami.unreachable", error=str(exc), retry_in_s=delay)
                sdnotify.notify(f"STATUS=waiting for AMI: {exc}")
                try:
                    await asyncio.wait_for(self._stop.wait(), delay)
                except TimeoutError:
                    delay = min(delay * 2, AMI_RETRY_MAX_S)
                    continue
                raise

    def _ami_up(self) -> None:
        sh = self.shell
        sh.put(ev.AmiUp(sh.clock()))
        if self._resync_task is not None:
            # a resync still retrying its store read is stale: this one
            # takes a fresh snapshot
            self._resync_task.cancel()
        self._resync_task = sh.io_tasks.spawn(resync(sh))
        for service in self.services:
            service.ami_up()

    async def _start_tasks(self, stack: contextlib.AsyncExitStack) -> None:
        sh = self.shell
        self._core_task = await stack.enter_async_context(background(self.core_loop.run(), "core"))
        # after the ticker and the state publisher stop, before the core
        # does: the results of I/O in flight still reach the core
        stack.push_async_callback(settle, sh.io_tasks, sh.store_tasks)
        await stack.enter_async_context(background(self._ticker(), "ticker"))
        await stack.enter_async_context(background(self.supervisor.state_loop(), "state"))

    async def _serve_control(self, stack: contextlib.AsyncExitStack) -> None:
        """``dialerd status`` / ``campaign pause`` talk to this socket. A
        daemon that cannot create it still dials (and says so)."""
        path = self.shell.settings.control_socket
        try:
            server = await serve_control(path, self.control_handler)
        except OSError as exc:
            log.warning("control.unavailable", path=str(path), error=str(exc))
            return

        async def close() -> None:
            server.close()
            await server.wait_closed()
            Path(path).unlink(missing_ok=True)  # noqa: ASYNC240 (one unlink at exit)

        stack.push_async_callback(close)

    # ------------------------------------------------------------- running

    async def _ticker(self) -> None:
        """Time for the core, and proof of life for systemd's watchdog. The
        ping is sent from the event loop (a blocked loop stops it), and
        only while the core task is alive and keeps taking its Ticks: a
        daemon whose core died or hangs is restarted by systemd."""
        sh = self.shell
        wd = sdnotify.watchdog_interval()
        last_wd = 0.0
        last_dnc = sh.clock()
        while True:
            await asyncio.sleep(sh.settings.tick_s)
            now = sh.clock()
            sh.put(ev.Tick(now))
            if now - last_dnc >= DNC_REFRESH_S:
                last_dnc = now
                sh.store_tasks.spawn(self.compliance.poll_dnc())
            if wd is not None and now - last_wd >= wd and self.core_alive(wd):
                last_wd = now
                sdnotify.notify(f"WATCHDOG=1\nSTATUS={views.status_line(sh.core)}")

    def core_alive(self, within_s: float) -> bool:
        """The core task runs and finished an item in the last ``within_s``
        (it is fed a Tick every ``tick_s``)."""
        task = self._core_task
        if task is None or task.done():
            return False
        return time.monotonic() - self.core_loop.alive_at <= within_s

    # ----------------------------------------------------------- shut-down

    async def _drain(self) -> None:
        """No new dials; live calls end on their own, up to the timeout."""
        sh = self.shell
        core = sh.core
        log.info("daemon.draining", live_calls=core.live_calls)
        sdnotify.notify(f"STOPPING=1\nSTATUS=draining {core.live_calls} live call(s)")
        sh.put(ev.Drain(sh.clock()))
        deadline = sh.clock() + sh.settings.drain_timeout_s
        while core.live_calls and sh.clock() < deadline:
            await asyncio.sleep(0.1)
        if core.live_calls:
            log.warning("daemon.drain_timeout", live_calls=core.live_calls)

    async def _finish_io(self) -> None:
        """The I/O tasks' last chance before the store closes under them;
        one still stuck after that is cancelled, and said so. Then every
        write still owed is given up to the drain timeout; what the store
        still refuses after that is logged one write per line (the
        README's "Store faults" says how the next start closes it)."""
        sh = self.shell
        await settle(sh.io_tasks, sh.store_tasks)
        left = await sh.io_tasks.cancel() + await sh.store_tasks.cancel()
        if left:
            log.error("daemon.tasks_cancelled_at_exit", tasks=left)
        lost = await sh.writer.flush(sh.settings.drain_timeout_s)
        if not sh.dnc_journal.pending():
            sh.dnc_journal.clear()
        if lost:
            log.error("daemon.writes_lost_at_exit", writes=len(lost), reason=sh.writer.down_reason)
