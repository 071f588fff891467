"""The asyncio shell around the core: AMI, the store, signals, time.

Everything that touches the core happens in one task (``_core_loop``) that
reads a single queue, so core state needs no locks and every decision sees
the events in the order Asterisk sent them. I/O runs in tasks the daemon
keeps references to, and results come back as events on the same queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog

from dialerd import sdnotify
from dialerd.agents import AgentsFile, LoginGuard, Verdict, load_agents_file
from dialerd.asterisk import mapping
from dialerd.asterisk.ami import (
    AmiAuthError,
    AmiClient,
    AmiConnectionLost,
    AmiError,
    AmiUnavailable,
)
from dialerd.asterisk.safety import UnsafeValue
from dialerd.campaign.lint import check_campaign
from dialerd.campaign.loader import ConfigError, ConfigErrors, load_campaigns_with_sources
from dialerd.campaign.model import Campaign
from dialerd.control import daemon_handler, serve_control
from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.engine import DialerCore
from dialerd.core.models import AgentStatus, Lead
from dialerd.metrics import Metrics
from dialerd.mqtt.bridge import MqttBridge
from dialerd.phone import PhoneError, normalize
from dialerd.rules.abandon import DAYS_30
from dialerd.rules.screening import screen_for_dial
from dialerd.rules.windows import local_day_start, zones_for_lead
from dialerd.settings import Settings
from dialerd.store.db import LeadNotDialableError, Store

log = structlog.get_logger("dialerd")

#: extra time past the ring timeout before an Originate with no verdict is
#: declared interrupted (Asterisk normally answers within the ring timeout)
ORIGINATE_GRACE_S = 30.0
#: how often the DNC table is checked for changes made by ``dialerd dnc``
DNC_REFRESH_S = 5.0


class Daemon:
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
        self._dnc_stamp: tuple[int, float] | None = None
        self.queue: asyncio.Queue[ev.Event | Mapping[str, Any]] = asyncio.Queue()
        self.store: Store | None = None
        self.ami: AmiClient | None = None
        self.campaigns: dict[str, Campaign] = {}
        self._sources: dict[str, Path] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._store_tasks: set[asyncio.Task[Any]] = set()
        self._stop = asyncio.Event()
        self._on_command = on_command
        self.started = asyncio.Event()
        self.ami_down_reason: str | None = "not connected yet"
        self.mqtt: MqttBridge | None = (
            MqttBridge(settings.mqtt, self.supervisor_command, client_id=f"dialerd-{self.run_id}")
            if settings.mqtt.enabled
            else None
        )
        self.metrics: Metrics | None = Metrics() if settings.metrics.enabled else None
        #: Hangups the core had no call for yet (see ``UnclaimedHangups``)
        self._unclaimed = mapping.UnclaimedHangups()
        #: PIN checks for phone logins (the agents file; reloaded on SIGHUP)
        self.logins = LoginGuard(AgentsFile())
        self._load_agents()

    # ------------------------------------------------------------- control
    def request_stop(self) -> None:
        """SIGTERM: drain (no new dials, live calls finish), then exit."""
        self._stop.set()

    async def run(self) -> int:
        s = self.settings
        self.store = await Store.open(Path(s.store.path))
        released = await self.store.release_all_held()
        log.info("store.open", path=str(s.store.path), released_held=released)
        self._load_campaigns()
        await self._load_compliance_state()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, self.reload)
        self.ami = AmiClient(
            s.ami.host,
            s.ami.port,
            s.ami.username,
            s.ami.secret.get_secret_value(),
            on_event=self.queue.put_nowait,
            on_up=self._ami_up,
            on_down=lambda why: self.queue.put_nowait(ev.AmiDown(self.clock(), why)),
            action_timeout_s=s.ami.action_timeout_s,
            connect_timeout_s=s.ami.connect_timeout_s,
        )
        if self.mqtt is not None:
            self.mqtt.start()
        if self.metrics is not None:
            self.metrics.serve(s.metrics.host, s.metrics.port)
            log.info("metrics.serving", host=s.metrics.host, port=s.metrics.port)
        await self._start_ami()
        core_task = asyncio.create_task(self._core_loop(), name="core")
        tick_task = asyncio.create_task(self._ticker(), name="ticker")
        state_task = asyncio.create_task(self._state_loop(), name="state")
        control = await self._serve_control()
        self.started.set()
        sdnotify.notify(f"READY=1\nSTATUS=dialing {len(self.campaigns)} campaign(s)")
        try:
            await self._stop.wait()
            log.info("daemon.draining", live_calls=self.core.live_calls)
            sdnotify.notify(f"STOPPING=1\nSTATUS=draining {self.core.live_calls} live call(s)")
            self.queue.put_nowait(ev.Drain(self.clock()))
            deadline = self.clock() + s.drain_timeout_s
            while self.core.live_calls and self.clock() < deadline:
                await asyncio.sleep(0.1)
            if self.core.live_calls:
                log.warning("daemon.drain_timeout", live_calls=self.core.live_calls)
        finally:
            tick_task.cancel()
            state_task.cancel()
            await self._settle()
            core_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await core_task
            await self.ami.close()
            await self._settle()
            self._publish_state()
            if self.mqtt is not None:
                await asyncio.sleep(0.2)  # let the last state leave
                await self.mqtt.stop()
            if control is not None:
                control.close()
                await control.wait_closed()
                Path(s.control_socket).unlink(missing_ok=True)  # noqa: ASYNC240 (one unlink at exit)
            await self.store.close()
            log.info("daemon.stopped")
        return 0

    async def _load_compliance_state(self) -> None:
        """The DNC lists and the last 30 days of outcomes (abandon accounting,
        the 72-hour lock), into the core before any dial."""
        assert self.store is not None
        await self._refresh_dnc()
        now = self.clock()
        hist = await self.store.recent_outcomes(now - DAYS_30)
        self.queue.put_nowait(ev.HistoryLoaded(now, tuple(hist)))
        log.info("compliance.loaded", dnc=len(self.core.dnc), outcomes_30d=len(hist))

    async def _refresh_dnc(self) -> None:
        """Reload the DNC table when it changed (``dialerd dnc`` writes it
        while the daemon runs); the core gets the whole list again."""
        assert self.store is not None
        stamp = await self.store.dnc_stamp()
        if stamp == self._dnc_stamp:
            return
        self._dnc_stamp = stamp
        entries = await self.store.dnc_entries()
        self.queue.put_nowait(ev.DncUpdated(self.clock(), tuple(entries), replace=True))

    async def _serve_control(self) -> asyncio.AbstractServer | None:
        """``dialerd status`` / ``campaign pause`` talk to this socket. A
        daemon that cannot create it still dials (and says so)."""
        try:
            return await serve_control(self.settings.control_socket, daemon_handler(self))
        except OSError as exc:
            log.warning(
                "control.unavailable", path=str(self.settings.control_socket), error=str(exc)
            )
            return None

    async def _start_ami(self) -> None:
        """Wrong credentials end the daemon with a clear message (retrying
        cannot help); an Asterisk that is not up yet is waited for, with
        backoff, and the state says why nothing is dialed meanwhile."""
        assert self.ami is not None
        delay = 1.0
        while True:
            try:
                await self.ami.start()
                return
            except AmiAuthError:
                raise
            except AmiError as exc:
                self.ami_down_reason = str(exc)
                log.warning("ami.unreachable", error=str(exc), retry_in_s=delay)
                sdnotify.notify(f"STATUS=waiting for AMI: {exc}")
                try:
                    await asyncio.wait_for(self._stop.wait(), delay)
                except TimeoutError:
                    delay = min(delay * 2, 30.0)
                    continue
                raise

    async def _settle(self) -> None:
        """Wait for I/O tasks (store writes above all) before closing."""
        for _ in range(50):
            pending = [t for t in self._tasks | self._store_tasks if not t.done()]
            if not pending:
                return
            await asyncio.wait(pending, timeout=0.2)

    def reload(self) -> None:
        """SIGHUP: re-read the campaign files. A broken file is reported and
        its previous version keeps running; live calls are never touched."""
        log.info("daemon.reload")
        self._load_campaigns(keep_broken=True)
        self._load_agents()

    def _load_agents(self) -> None:
        """The agents file; a broken one is reported and the previous PINs
        stay in force (failure counts are kept either way)."""
        path = self.settings.agents_file
        if path is None:
            return
        try:
            agents = load_agents_file(path)
        except (ConfigError, ConfigErrors, OSError) as exc:
            log.error("agents.invalid", file=str(path), error=str(exc))
            return
        self.logins.agents = agents
        log.info("agents.loaded", file=str(path), agents=len(agents.agents))

    def _ami_up(self) -> None:
        self.queue.put_nowait(ev.AmiUp(self.clock()))
        self._spawn(self._resync())

    async def _resync(self) -> None:
        """After every AMI login: what is live in Asterisk right now.

        ConfbridgeJoin and Hangup are only seen live; agents who logged in
        before we connected, calls a killed run left behind and calls that
        ended while AMI was down are found here instead, in one ``Resync``
        the core applies atomically."""
        assert self.ami is not None and self.store is not None
        taken_at = self.clock()
        try:
            resp = await self.ami.action({"Action": "CoreShowChannels"})
            stored = await self.store.open_attempts()
        except (AmiError, TimeoutError) as exc:
            log.warning("ami.resync_failed", error=str(exc))
            return
        msgs = resp if isinstance(resp, list) else [resp]
        open_ids = {oa.attempt_id for oa in stored}
        calls = mapping.live_calls(msgs, lambda uid: uid in open_ids or uid in self.core.calls)
        unknown = []
        for oa in stored:
            if oa.attempt_id in self.core.calls:
                continue
            lead = await self.store.get_lead(oa.lead_id)
            if lead is None:
                continue
            unknown.append(
                ev.OpenAttempt(
                    oa.attempt_id,
                    oa.campaign,
                    Lead(
                        lead.id,
                        lead.campaign,
                        lead.phone,
                        lead.attempts,
                        lead.priority,
                        lead.timezone,
                        lead.fields,
                    ),
                    oa.started_at,
                )
            )
        agents = mapping.agents_in_rooms(msgs, taken_at)
        self.queue.put_nowait(ev.Resync(taken_at, tuple(calls), tuple(agents), tuple(unknown)))
        log.info(
            "ami.resync",
            agents_in_rooms=len(agents),
            live_calls=len(calls),
            open_attempts_of_earlier_runs=len(unknown),
        )

    def _load_campaigns(self, keep_broken: bool = False) -> None:
        found, files, errors = load_campaigns_with_sources(Path(self.settings.campaigns_dir))
        broken_files = set()
        for e in errors:
            log.error("campaign.rejected", error=str(e))
            broken_files.add(Path(e.file).resolve())
        if keep_broken:
            # a campaign whose file is now broken keeps its previous version
            for name, old in self.campaigns.items():
                src = self._sources.get(name)
                if name not in found and src is not None and src.resolve() in broken_files:
                    found[name] = old
        now = self.clock()
        for name, c in list(found.items()):
            bad = [f for f in check_campaign(c) if f.level == "error"]
            if bad:
                # a campaign breaking a compliance rule never dials
                for f in bad:
                    log.error("campaign.refused", campaign=name, field=f.field, error=f.message)
                del found[name]
        for name in set(self.campaigns) - set(found):
            self.queue.put_nowait(ev.CampaignRemoved(now, name))
        for name, c in found.items():
            if self.campaigns.get(name) != c:
                self._spawn_store(self._ensure_campaign(c))
                self.queue.put_nowait(ev.CampaignLoaded(now, c))
        self.campaigns = found
        sources = {n: p for n, p in files.items() if n in found}
        for name in found:
            if name not in sources and name in self._sources:
                sources[name] = self._sources[name]  # kept from a now-broken file
        self._sources = sources

    async def _ensure_campaign(self, c: Campaign) -> None:
        assert self.store is not None
        await self.store.ensure_campaign(c.name)

    # ---------------------------------------------------------------- loop
    async def _ticker(self) -> None:
        """Time for the core, and proof of life for systemd's watchdog: the
        ping is sent from the event loop, so a blocked loop stops it."""
        wd = sdnotify.watchdog_interval()
        last_wd = 0.0
        last_dnc = self.clock()
        while True:
            await asyncio.sleep(self.settings.tick_s)
            now = self.clock()
            self.queue.put_nowait(ev.Tick(now))
            if now - last_dnc >= DNC_REFRESH_S:
                last_dnc = now
                self._spawn_store(self._refresh_dnc())
            if wd is not None and now - last_wd >= wd:
                last_wd = now
                sdnotify.notify(f"WATCHDOG=1\nSTATUS={self.status_line()}")

    def status_line(self) -> str:
        parts = []
        for name, r in sorted(self.core.campaigns.items()):
            parts.append(
                f"{name}: {len(r.agents)} agents ({len(r.ready)} ready), {r.live} lines, "
                f"{r.stats.dials} dials, {r.stats.abandoned} abandoned"
            )
        return "; ".join(parts) or "no campaigns"

    async def _core_loop(self) -> None:
        while True:
            item = await self.queue.get()
            event: ev.Event | None
            if isinstance(item, Mapping):  # an AMI message from panoramisk
                event = mapping.to_event(
                    item, self.clock(), self.core.calls, self.core.agent_by_uniqueid
                )
                if event is None:
                    self._unclaimed.seen(item, self.clock())
            else:
                event = item
            if event is None:
                continue
            if isinstance(event, ev.AgentKey) and event.key in ("login", "dial", "pause"):
                event = self._agent_key(event)
                if event is None:
                    continue
            try:
                out = self.core.handle(event)
            except Exception:
                log.exception("core.error", event=type(event).__name__)
                continue
            if isinstance(event, ev.Resync):
                # adopted calls that hung up while the snapshot was on its way
                for hup in self._unclaimed.claim(event.now, self.core.calls, self.clock()):
                    log.info("ami.resync_hangup", attempt_id=hup.attempt_id, cause=hup.cause)
                    out += self.core.handle(hup)
            self._observe(event)
            for c in out:
                self._execute(c)

    # ------------------------------------------------------------ agent keys
    def _agent_key(self, e: ev.AgentKey) -> ev.Event | None:
        """The keys the shell answers (or completes) before the core: the
        login (PINs are the shell's), the pause code (a name from the
        settings), a manual dial (the lead comes from the store)."""
        agent = self.core.agents.get(e.agent_id)
        campaign = agent.campaign if agent is not None else None
        if e.key == "pause":
            name = self.settings.pause_reasons.get(int(e.data)) if e.data.isdigit() else None
            if name is None:
                self._answer(e, campaign, False, "invalid", f"{e.data}: no such reason")
                return None
            return replace(e, data=name)
        if e.key == "dial":
            if campaign is None or campaign not in self.campaigns:
                self._answer(e, campaign, False, "refused", "not in a campaign")
                return None
            self._spawn_store(self._manual_lead(e, self.campaigns[campaign]))
            return None
        verdict = self.logins.check(e.agent_id, e.data, e.now)
        ok, prompt = verdict is Verdict.OK, "login" if verdict is Verdict.OK else "wrong_pin"
        if ok and agent is not None and agent.channel and agent.channel != e.channel:
            if agent.status in (AgentStatus.TALKING, AgentStatus.RESERVED):
                ok, prompt = False, "already_on"
            else:  # logged in on another phone: the new one takes over
                self._hangup_channel(agent.channel)
        log.info("agent.login", agent=e.agent_id, verdict=verdict.value, ok=ok)
        self._answer(e, campaign, ok, prompt, verdict.value)
        return None

    def _answer(
        self, e: ev.AgentKey, campaign: str | None, ok: bool, prompt: str, detail: str
    ) -> None:
        """The shell's own answer to a key: the prompt for the waiting
        dialplan, and the record (the action is the key)."""
        if e.channel:
            self._execute(cmd.AgentAck(e.channel, ok, prompt))
        self._execute(cmd.AgentAction(e.agent_id, campaign, e.key, detail, ok, e.now))

    async def _manual_lead(self, e: ev.AgentKey, c: Campaign) -> None:
        assert self.store is not None
        try:
            phone = normalize(e.data, c.default_region)
        except PhoneError as exc:
            self._answer(e, c.name, False, "invalid", f"{e.data}: {exc}")
            return
        lead = await self.store.manual_lead(c.name, phone, None, self.clock())
        if lead is None:
            self._answer(e, c.name, False, "refused", f"{phone}: in a call")
            return
        self.queue.put_nowait(ev.ManualDial(self.clock(), e.agent_id, lead, e.channel))

    def _send_actions(self, actions: list[dict[str, str | list[str]]]) -> None:
        """Fire-and-forget actions (prompts, hangups): sent in order on the one
        AMI connection, which Asterisk runs in order. Nobody waits for the
        answers: a failed one is dropped (its exception retrieved, so asyncio
        does not warn)."""
        if self.ami is None:
            return
        for a in actions:
            with contextlib.suppress(AmiError):
                fut = self.ami.send(a)
                fut.add_done_callback(lambda f: f.exception() if not f.cancelled() else None)

    # ------------------------------------------------- live state, supervisor
    def _observe(self, event: ev.Event) -> None:
        """Events worth telling the outside world about (MQTT event stream)."""
        match event:
            case ev.AmiUp():
                self.ami_down_reason = None
                self._publish_state()
            case ev.AmiDown(reason=why):
                self.ami_down_reason = why
                self._publish_state()
            case ev.CallAnswered(attempt_id=aid):
                call = self.core.calls.get(aid)
                if self.mqtt is not None and call is not None:
                    self.mqtt.event(
                        "attempt_answered", attempt_id=aid, campaign=call.campaign, at=event.now
                    )
            case ev.CampaignPause() | ev.SetDialLevel():
                self._publish_state()

    def campaign_state(self, name: str) -> dict[str, Any]:
        """The live figures of one campaign (MQTT retained state, metrics,
        ``status``). Counts are kept by the core; nothing here scans."""
        r = self.core.campaigns[name]
        st = r.stats
        return {
            "campaign": name,
            "at": self.clock(),
            "enabled": r.active,
            "paused": r.paused,
            "dialing_blocked_by": (
                "ami: " + self.ami_down_reason
                if self.ami_down_reason
                else "paused"
                if r.paused
                else "draining"
                if self.core.draining
                else None
            ),
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
                "preview": self.core.previewing(name),
            },
            "dials": st.dials,
            "answered": st.answered,
            "connected": st.connected,
            "abandoned": st.abandoned,
            "abandon_rate": round(st.abandon_rate, 5),
            "outcomes": dict(st.outcomes),
        }

    def _publish_state(self) -> None:
        for name in list(self.core.campaigns):
            state = self.campaign_state(name)
            if self.mqtt is not None:
                self.mqtt.publish(f"campaign/{name}/state", state, retain=True)
            if self.metrics is not None:
                self.metrics.campaign_state(name, state)
        if self.metrics is not None:
            self.metrics.ami_up.set(0 if self.ami_down_reason else 1)

    async def _state_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.mqtt.state_interval_s)
            self._publish_state()

    def supervisor_command(self, c: dict[str, Any]) -> dict[str, Any]:
        """A supervisor's command (MQTT ``<prefix>/cmd``), turned into a core
        event. Validated here: only known commands, campaigns and agents."""
        now = self.clock()
        kind = str(c.get("command", ""))
        if kind in ("pause", "resume", "set_dial_level"):
            name = str(c.get("campaign", ""))
            if name not in self.core.campaigns:
                return {"ok": False, "error": f"unknown campaign {name!r}"}
            if kind == "set_dial_level":
                level = c.get("max_level")
                if level is not None and not (
                    isinstance(level, int | float) and 1.0 <= float(level) <= 5.0
                ):
                    return {"ok": False, "error": "max_level must be null or 1.0-5.0"}
                self.queue.put_nowait(
                    ev.SetDialLevel(now, name, None if level is None else float(level))
                )
            else:
                self.queue.put_nowait(
                    ev.CampaignPause(now, name, kind == "pause", str(c.get("reason", "")))
                )
            log.info("supervisor.command", command=kind, campaign=name)
            return {"ok": True, "command": kind, "campaign": name}
        if kind in ("agent_pause", "agent_unpause", "agent_logout"):
            aid = str(c.get("agent", ""))
            if aid not in self.core.agents:
                return {"ok": False, "error": f"agent {aid!r} is not logged in"}
            if kind == "agent_logout":
                self.queue.put_nowait(ev.AgentLogout(now, aid))
            else:
                self.queue.put_nowait(
                    ev.AgentPause(now, aid, kind == "agent_pause", str(c.get("reason", "")))
                )
            log.info("supervisor.command", command=kind, agent=aid)
            return {"ok": True, "command": kind, "agent": aid}
        return {"ok": False, "error": f"unknown command {kind!r}"}

    # ------------------------------------------------------------ commands
    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        t = asyncio.create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def _spawn_store(self, coro: Coroutine[Any, Any, Any]) -> None:
        t = asyncio.create_task(coro)
        self._store_tasks.add(t)
        t.add_done_callback(self._store_tasks.discard)

    def _execute(self, c: cmd.Command) -> None:
        if self._on_command is not None:
            self._on_command(c)
        if self.mqtt is not None:
            self._publish_command(c)
        if self.metrics is not None:
            if isinstance(c, cmd.PlaceCall):
                self.metrics.dials.labels(c.campaign).inc()
            elif isinstance(c, cmd.RecordOutcome):
                self.metrics.outcomes.labels(c.campaign, c.outcome.value).inc()
        match c:
            case cmd.PlaceCall():
                self._spawn(self._place_call(c))
            case cmd.HangupAgent():
                self._hangup_channel(c.channel)
            case cmd.Redirect():
                self._redirect(c)
            case cmd.Hangup():
                self._hangup(c)
            case cmd.LoadLeads():
                self._spawn_store(self._load_leads(c))
            case cmd.RecordOutcome():
                log.info(
                    "attempt.ended",
                    attempt_id=c.attempt_id,
                    campaign=c.campaign,
                    outcome=c.outcome.value,
                    lead_status=c.lead.status.value,
                    agent=c.agent_id,
                    detail=c.detail or None,
                )
                self._spawn_store(self._finish(c))
            case cmd.ReleaseLeads():
                self._spawn_store(self._release(c))
            case cmd.AgentStateChanged():
                log.info("agent.state", agent=c.agent_id, campaign=c.campaign, state=c.state)
                self._spawn_store(self._agent_event(c))
            case cmd.SkipLead():
                log.info(
                    "lead.skipped",
                    campaign=c.campaign,
                    lead=c.lead_id,
                    reason=c.reason,
                    detail=c.detail,
                    retry_at=c.retry_at,
                )
                self._spawn_store(self._skip(c))
            case cmd.AgentAck():
                with contextlib.suppress(UnsafeValue):
                    self._send_actions(mapping.ack_actions(c))
            case cmd.AgentPrompt():
                if c.channel:
                    with contextlib.suppress(UnsafeValue):
                        self._send_actions(mapping.prompt_actions(c))
            case cmd.AgentAction():
                log.info(
                    "agent.key",
                    agent=c.agent_id,
                    campaign=c.campaign,
                    action=c.action,
                    detail=c.detail or None,
                    ok=c.ok,
                )
                self._spawn_store(self._agent_action(c))
            case cmd.RecordDisposition():
                log.info(
                    "attempt.disposition",
                    attempt_id=c.attempt_id,
                    code=c.code,
                    lead_status=c.lead.status.value,
                    next_due_at=c.lead.next_due_at,
                    dnc=c.dnc,
                )
                self._spawn_store(self._dispose(c))

    async def _place_call(self, c: cmd.PlaceCall) -> None:
        """Write-ahead, then Originate. The row exists before any ring."""
        assert self.store is not None and self.ami is not None
        try:
            action = mapping.originate_action(c)
        except UnsafeValue as exc:
            log.error(
                "attempt.unsafe", attempt_id=c.attempt_id, campaign=c.campaign, error=str(exc)
            )
            await self.store.begin_attempt(c)
            self.queue.put_nowait(
                ev.OriginateResult(self.clock(), c.attempt_id, False, 0, f"unsafe: {exc}")
            )
            return
        try:
            await self.store.begin_attempt(c)
        except LeadNotDialableError as exc:
            # the store refuses a second live call for a lead: never dial it
            log.error("attempt.refused_by_store", attempt_id=c.attempt_id, error=str(exc))
            self.queue.put_nowait(
                ev.OriginateResult(self.clock(), c.attempt_id, False, None, "not dialable")
            )
            return
        log.info("attempt.dialing", attempt_id=c.attempt_id, campaign=c.campaign, lead=c.lead_id)
        try:
            fut = self.ami.send(action)
            resp = await self.ami.wait_future(fut, c.ring_timeout_s + ORIGINATE_GRACE_S)
            ok, reason, detail = mapping.originate_result(resp)
        except AmiConnectionLost as exc:
            # the call may well be ringing: the next Resync decides its fate
            self.queue.put_nowait(
                ev.OriginateResult(self.clock(), c.attempt_id, False, None, str(exc), lost=True)
            )
            return
        except (AmiError, TimeoutError) as exc:
            ok, reason, detail = False, None, f"{type(exc).__name__}: {exc}"
        self.queue.put_nowait(ev.OriginateResult(self.clock(), c.attempt_id, ok, reason, detail))

    def _redirect(self, c: cmd.Redirect) -> None:
        """Sent synchronously from the core task: nothing may sit between the
        decision and the socket on the answer path."""
        assert self.ami is not None
        try:
            fut = self.ami.send(mapping.redirect_action(c))
        except (AmiUnavailable, UnsafeValue) as exc:
            self.queue.put_nowait(ev.RedirectFailed(self.clock(), c.attempt_id, str(exc)))
            return
        self._spawn(self._redirect_result(c, fut))

    async def _redirect_result(self, c: cmd.Redirect, fut: asyncio.Future[Any]) -> None:
        assert self.ami is not None
        try:
            resp = await self.ami.wait_future(fut, self.settings.ami.action_timeout_s)
            ok = str(resp.get("Response", "")).lower() == "success"
            detail = str(resp.get("Message", ""))
        except (AmiError, TimeoutError) as exc:
            ok, detail = False, str(exc)
        if not ok:
            log.warning("redirect.failed", attempt_id=c.attempt_id, detail=detail)
            self.queue.put_nowait(ev.RedirectFailed(self.clock(), c.attempt_id, detail))

    def _publish_command(self, c: cmd.Command) -> None:
        assert self.mqtt is not None
        match c:
            case cmd.PlaceCall():
                self.mqtt.event(
                    "attempt_started",
                    attempt_id=c.attempt_id,
                    campaign=c.campaign,
                    lead_id=c.lead_id,
                    at=c.started_at,
                )
            case cmd.RecordOutcome():
                self.mqtt.event(
                    "attempt_ended",
                    attempt_id=c.attempt_id,
                    campaign=c.campaign,
                    lead_id=c.lead_id,
                    outcome=c.outcome.value,
                    agent=c.agent_id,
                    lead_status=c.lead.status.value,
                    at=c.ended_at,
                )
            case cmd.ScreenPop():
                pop = {
                    "kind": c.kind,
                    "agent": c.agent_id,
                    "campaign": c.campaign,
                    "attempt_id": c.attempt_id,
                    "lead_id": c.lead.id,
                    "phone": c.lead.phone,
                    "attempts": c.lead.attempts,
                    "timezone": c.lead.timezone,
                    "fields": c.lead.fields,
                    "at": c.at,
                }
                self.mqtt.publish(f"agent/{c.agent_id}/screenpop", pop)
            case cmd.AgentAction():
                self.mqtt.event(
                    "agent_action",
                    agent=c.agent_id,
                    campaign=c.campaign,
                    action=c.action,
                    detail=c.detail,
                    ok=c.ok,
                    at=c.at,
                )
            case cmd.AgentStateChanged():
                state = {
                    "agent": c.agent_id,
                    "campaign": c.campaign,
                    "state": c.state,
                    "since": c.at,
                    "reason": c.reason or None,
                }
                self.mqtt.publish(f"agent/{c.agent_id}/state", state, retain=True)
                self.mqtt.event("agent_state", **state)

    def _hangup_channel(self, channel: str) -> None:
        self._hangup(cmd.Hangup("", channel))

    def _hangup(self, c: cmd.Hangup) -> None:
        with contextlib.suppress(UnsafeValue):
            self._send_actions([mapping.hangup_action(c)])

    async def _load_leads(self, c: cmd.LoadLeads) -> None:
        """The hopper: due leads from the index, each screened (DNC, attempt
        limits, the 72-hour lock, calling windows) before the core sees it.
        Refused leads are recorded and postponed (or finished); the store is
        asked again for more until the limit is met or nothing is due."""
        assert self.store is not None
        camp = self.campaigns.get(c.campaign)
        now = self.clock()
        kept: list[Lead] = []
        exhausted = False
        for _ in range(5):  # over-fetch rounds
            want = c.limit - len(kept)
            leads = await self.store.fetch_due_leads(c.campaign, now, want, frozenset())
            if len(leads) < want:
                exhausted = True
            for lead in leads:
                if camp is None:
                    kept.append(lead)
                    continue
                ok, skip = await self._screen(camp, lead, now)
                if ok is not None:
                    kept.append(ok)
                elif skip is not None:
                    self._execute(skip)
            if exhausted or len(kept) >= c.limit:
                break
        self.queue.put_nowait(ev.LeadsLoaded(self.clock(), c.campaign, tuple(kept), exhausted))

    async def _screen(
        self, camp: Campaign, lead: Lead, now: float
    ) -> tuple[Lead | None, cmd.SkipLead | None]:
        assert self.store is not None
        zones = zones_for_lead(lead.phone, lead.timezone)
        today = 0
        if zones:
            today = await self.store.attempts_since(lead.id, local_day_start(zones, now))
        verdict = screen_for_dial(
            camp, lead, now, dnc=self.core.dnc, lock=self.core.lock, attempts_today=today
        )
        if verdict.ok:
            return replace(lead, attempts_today=today), None
        return None, cmd.SkipLead(
            camp.name, lead.id, verdict.reason, verdict.detail, now, verdict.retry_at
        )

    async def _skip(self, c: cmd.SkipLead) -> None:
        assert self.store is not None
        await self.store.skip_lead(c)

    async def _dispose(self, c: cmd.RecordDisposition) -> None:
        assert self.store is not None
        for _ in range(50):
            # the outcome is written first (its task was spawned first); wait
            # for it rather than lose the disposition
            if await self.store.record_disposition(c):
                return
            await asyncio.sleep(0.1)
        log.error("attempt.disposition_lost", attempt_id=c.attempt_id, code=c.code)

    async def _agent_action(self, c: cmd.AgentAction) -> None:
        assert self.store is not None
        await self.store.record_agent_action(c)

    async def _agent_event(self, c: cmd.AgentStateChanged) -> None:
        assert self.store is not None
        await self.store.record_agent_event(c.agent_id, c.campaign, c.state, c.at)

    async def _finish(self, c: cmd.RecordOutcome) -> None:
        assert self.store is not None
        await self.store.finish_attempt(c)

    async def _release(self, c: cmd.ReleaseLeads) -> None:
        assert self.store is not None
        await self.store.release_leads(list(c.lead_ids))
